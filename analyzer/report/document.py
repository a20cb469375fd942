"""The report as data: `needle.report/v1`, exactly as DESIGN.md §5 specifies."""

from __future__ import annotations

from typing import Any

from needle.analyzer.rules.engine import SEVERITIES, Outcome

FORMAT = "needle.report/v1"


def report_document(outcome: Outcome, bundle: dict[str, Any]) -> dict[str, Any]:
    """The report of `outcome` on the bundle `Bundle.summary()` describes."""
    summary = dict.fromkeys(SEVERITIES, 0)
    for finding in outcome.findings:
        summary[finding.severity] = summary.get(finding.severity, 0) + 1
    return {
        "format": FORMAT,
        "bundle": bundle,
        "findings": [finding.to_json() for finding in outcome.findings],
        "summary": summary,
        "coverage": {
            "rules_run": len(outcome.rules_run),
            "rules_skipped": list(outcome.skipped),
            "rules_partial": list(outcome.partial),
            "rules_not_applicable": list(outcome.not_applicable),
            "rules_invalid": [
                {"rule": problem.source, "reason": str(problem)} for problem in outcome.problems
            ],
            "objects_invalid": list(outcome.objects_invalid),
            "dataplane": outcome.dataplane,
            "reachability": outcome.reachability,
            "observations": outcome.observations,
        },
    }
