"""Paths inside a bundle: relative, '/'-separated, never escaping the bundle root."""

from __future__ import annotations

import re

from needle.collector.errors import CollectorError

# Kubernetes node names are DNS subdomains; they become directory names under nodes/.
_NODE_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,251}[A-Za-z0-9])?$")


def checked_relpath(path: str) -> str:
    """Return `path` if it is a safe bundle-relative path, else raise CollectorError."""
    parts = path.split("/")
    if (
        not path
        or path.startswith("/")
        or "\\" in path
        or "\x00" in path
        or any(part in {"", ".", ".."} for part in parts)
    ):
        raise CollectorError(f"refusing unsafe path inside the bundle: {path!r}")
    return path


def checked_node_name(name: str) -> str:
    if not _NODE_NAME.match(name):
        raise CollectorError(
            f"node name {name!r} is not a valid Kubernetes node name "
            "(letters, digits, '.', '-', '_'; starts and ends with a letter or digit)"
        )
    return name


def node_dir(name: str) -> str:
    return f"nodes/{checked_node_name(name)}"
