"""The diff as data: `needle.diff/v1` (documented in docs/diff-format.md)."""

from __future__ import annotations

from typing import Any

from needle.analyzer.diff.compare import IMPLIED, PER_BOOT, DiffResult
from needle.analyzer.rules.engine import Finding

FORMAT = "needle.diff/v1"


def _finding(finding: Finding) -> dict[str, Any]:
    return {
        "rule": finding.rule,
        "severity": finding.severity,
        "message": finding.message,
        "subject": finding.subject,
    }


def _by_kind(result: DiffResult) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for change in result.changes:
        per_op = counts.setdefault(change.kind, {})
        per_op[change.op] = per_op.get(change.op, 0) + 1
    return counts


def diff_document(
    result: DiffResult, old: dict[str, Any], new: dict[str, Any], show_all: bool = False
) -> dict[str, Any]:
    """The diff of two bundles that `Bundle.summary()` describes as `old` and `new`;
    `show_all` says the changes include per-boot and implied differences."""
    return {
        "format": FORMAT,
        "old": old,
        "new": new,
        "view": "all" if show_all else "changes",
        "findings": {
            "new": [_finding(f) for f in result.new_findings],
            "resolved": [_finding(f) for f in result.resolved_findings],
            "unchanged": [_finding(f) for f in result.unchanged_findings],
        },
        "changes": [change.to_json() for change in result.changes],
        "not_compared": list(result.not_compared),
        "summary": {
            "changes": len(result.changes),
            "new_findings": len(result.new_findings),
            "resolved_findings": len(result.resolved_findings),
            "unchanged_findings": len(result.unchanged_findings),
            "by_kind": _by_kind(result),
            "left_out": {
                "per_boot": result.left_out[PER_BOOT],
                "implied": result.left_out[IMPLIED],
            },
        },
    }
