"""The report for a terminal: findings grouped by severity, colour only on a terminal."""

from __future__ import annotations

from typing import Any, TextIO

from needle.analyzer.report.counts import bundle_line, summary_line
from needle.analyzer.rules.engine import SEVERITIES
from needle.analyzer.terminal import make_console
from rich.markup import escape

_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
_GROUP = {"error": "ERRORS", "warning": "WARNINGS", "info": "INFO"}


def render_text(document: dict[str, Any], stream: TextIO, color: bool | None = None) -> None:
    """Write the report to `stream`; `color` as terminal.make_console() takes it."""
    console = make_console(stream, color, soft_wrap=True)
    bundle = document["bundle"]
    console.print(f"needle analyzed {escape(bundle_line(bundle))}")
    findings = document["findings"]
    for severity in SEVERITIES:
        group = [f for f in findings if f["severity"] == severity]
        if not group:
            continue
        style = _STYLE[severity]
        console.print()
        console.print(f"[{style}]{_GROUP[severity]} ({len(group)})[/]")
        for finding in group:
            console.print(f"  [{style}]{severity}[/] {escape(finding['message'])}")
            console.print(f"    rule: {finding['rule']} ({escape(finding['title'])})")
            for item in finding["evidence"]:
                detail = f": {item['detail']}" if item.get("detail") else ""
                console.print(f"    evidence: {escape(item['file'])}{escape(detail)}")
            console.print(f"    fix: {escape(finding['remediation'])}")
            for reference in finding.get("references", []):
                console.print(f"    see: {escape(reference)}")
    coverage = document["coverage"]
    console.print()
    console.print(escape(summary_line(document["summary"], coverage)))
    for skipped in coverage["rules_skipped"]:
        console.print(f"  skipped {skipped['rule']}: {escape(skipped['reason'])}")
    for partial in coverage["rules_partial"]:
        console.print(f"  partly run {partial['rule']}: {escape(partial['reason'])}")
    for invalid in coverage["rules_invalid"]:
        console.print(f"  [red]invalid rule[/] {escape(invalid['reason'])}")
