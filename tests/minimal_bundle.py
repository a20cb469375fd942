"""The smallest valid manifest, for tests that build bundles by hand."""

from __future__ import annotations

from typing import Any

MINIMAL_MANIFEST: dict[str, Any] = {
    "format": "needle.bundle/v1",
    "tool": {"name": "needle", "version": "0.1.0"},
    "created": "2026-11-26T08:00:00Z",
    "status": "complete",
    "collection": {"sources": []},
    "cluster": {"source": None, "resources": []},
    "nodes": [],
}
