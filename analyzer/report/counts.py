"""The counting sentences the text and markdown reports share, with plurals done once."""

from __future__ import annotations

from typing import Any

from needle.analyzer.terminal import plural


def bundle_line(bundle: dict[str, Any]) -> str:
    """ "cluster.tar.gz: 1 node, collected 2026-01-02T03:04:05Z (complete)"."""
    return (
        f"{bundle['path']}: {plural(bundle['nodes'], 'node')}, "
        f"collected {bundle['created']} ({bundle['status']})"
    )


def severity_counts(summary: dict[str, int]) -> str:
    """ "1 error, 0 warnings, 3 info"."""
    return (
        f"{plural(summary['error'], 'error')}, {plural(summary['warning'], 'warning')}, "
        f"{plural(summary['info'], 'info', 'info')}"
    )


def rules_ran(coverage: dict[str, Any]) -> str:
    """ "20 rules ran, 1 skipped"."""
    text = f"{plural(coverage['rules_run'], 'rule')} ran"
    if coverage["rules_skipped"]:
        text += f", {len(coverage['rules_skipped'])} skipped"
    return text


def summary_line(summary: dict[str, int], coverage: dict[str, Any]) -> str:
    """ "1 error, 0 warnings, 3 info; 20 rules ran, 1 skipped"."""
    return f"{severity_counts(summary)}; {rules_ran(coverage)}"
