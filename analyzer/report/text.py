"""The report for a terminal: findings grouped by severity, colour only on a terminal.

Every value from the bundle or a rule goes through terminal.safe_markup() (`shown`):
console markup in it is shown as typed, control characters and line breaks escaped, so
each finding keeps to its own lines and nothing in a bundle drives the terminal."""

from __future__ import annotations

from typing import Any, TextIO

from needle.analyzer.report.counts import (
    bundle_line,
    dataplane_line,
    evidence_label,
    observation_lines,
    observed_line,
    reachability_lines,
    summary_line,
)
from needle.analyzer.rules.engine import SEVERITIES
from needle.analyzer.terminal import make_console
from needle.analyzer.terminal import safe_markup as shown

_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
_GROUP = {"error": "ERRORS", "warning": "WARNINGS", "info": "INFO"}


def render_text(document: dict[str, Any], stream: TextIO, color: bool | None = None) -> None:
    """Write the report to `stream`; `color` as terminal.make_console() takes it."""
    console = make_console(stream, color, soft_wrap=True)
    bundle = document["bundle"]
    console.print(f"needle analyzed {shown(bundle_line(bundle))}")
    dataplane = dataplane_line(document["coverage"].get("dataplane"))
    if dataplane is not None:
        console.print(shown(dataplane))
    findings = document["findings"]
    for severity in SEVERITIES:
        group = [f for f in findings if f["severity"] == severity]
        if not group:
            continue
        style = _STYLE[severity]
        console.print()
        console.print(f"[{style}]{_GROUP[severity]} ({len(group)})[/]")
        for finding in group:
            console.print(f"  [{style}]{severity}[/] {shown(finding['message'])}")
            console.print(f"    rule: {shown(finding['rule'])} ({shown(finding['title'])})")
            observed = observed_line(finding)
            if observed is not None:
                console.print(f"    {observed}")
            for item in finding["evidence"]:
                detail = f": {shown(item['detail'])}" if item.get("detail") else ""
                console.print(f"    {evidence_label(item)}: {shown(item['file'])}{detail}")
            console.print(f"    fix: {shown(finding['remediation'])}")
            for reference in finding.get("references", []):
                console.print(f"    see: {shown(reference)}")
    coverage = document["coverage"]
    console.print()
    console.print(shown(summary_line(document["summary"], coverage)))
    for line in reachability_lines(coverage.get("reachability")):
        console.print(shown(line))
    for line in observation_lines(coverage.get("observations")):
        console.print(shown(line))
    for skipped in coverage["rules_skipped"]:
        console.print(f"  skipped {shown(skipped['rule'])}: {shown(skipped['reason'])}")
    for partial in coverage["rules_partial"]:
        console.print(f"  partly run {shown(partial['rule'])}: {shown(partial['reason'])}")
    for invalid in coverage["rules_invalid"]:
        console.print(f"  [red]invalid rule[/] {shown(invalid['reason'])}")
    for bad in coverage.get("objects_invalid", []):
        console.print(
            f"  [yellow]invalid object[/] {shown(bad['kind'])} {shown(bad['name'])} "
            f"in {shown(bad['file'])}: {shown(bad['field'])} {shown(bad['problem'])} "
            "(left out; the rest was analyzed)"
        )
