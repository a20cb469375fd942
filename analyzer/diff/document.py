"""The diff as data: `needle.diff/v1` (documented in docs/diff-format.md)."""

from __future__ import annotations

from typing import Any

from needle.analyzer.diff.compare import DiffResult
from needle.analyzer.rules.engine import Finding

FORMAT = "needle.diff/v1"


def _finding(finding: Finding) -> dict[str, Any]:
    return {
        "rule": finding.rule,
        "severity": finding.severity,
        "message": finding.message,
        "subject": finding.subject,
    }


def diff_document(result: DiffResult, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The diff of two bundles that `Bundle.summary()` describes as `old` and `new`."""
    return {
        "format": FORMAT,
        "old": old,
        "new": new,
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
        },
    }
