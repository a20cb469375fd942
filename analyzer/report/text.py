"""The report for a terminal: findings grouped by severity, colour only on a terminal."""

from __future__ import annotations

from typing import Any, TextIO

from needle.analyzer.rules.engine import SEVERITIES
from rich.console import Console
from rich.markup import escape

_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def render_text(document: dict[str, Any], stream: TextIO, color: bool | None = None) -> None:
    console = Console(
        file=stream, highlight=False, soft_wrap=True, force_terminal=color, no_color=color is False
    )
    bundle = document["bundle"]
    console.print(
        f"needle analyzed {escape(str(bundle['path']))}: {bundle['nodes']} nodes, "
        f"collected {bundle['created']} ({bundle['status']})"
    )
    findings = document["findings"]
    for severity in SEVERITIES:
        group = [f for f in findings if f["severity"] == severity]
        if not group:
            continue
        style = _STYLE[severity]
        console.print()
        console.print(f"[{style}]{severity.upper()}S ({len(group)})[/]")
        for finding in group:
            console.print(f"  [{style}]{severity}[/] {escape(finding['message'])}")
            console.print(f"    rule: {finding['rule']} ({escape(finding['title'])})")
            for item in finding["evidence"]:
                detail = f": {item['detail']}" if item.get("detail") else ""
                console.print(f"    evidence: {escape(item['file'])}{escape(detail)}")
            console.print(f"    fix: {escape(finding['remediation'])}")
    summary = document["summary"]
    coverage = document["coverage"]
    console.print()
    console.print(
        f"{summary['error']} errors, {summary['warning']} warnings, {summary['info']} info; "
        f"{coverage['rules_run']} rules ran"
        + (f", {len(coverage['rules_skipped'])} skipped" if coverage["rules_skipped"] else "")
    )
    for skipped in coverage["rules_skipped"]:
        console.print(f"  skipped {skipped['rule']}: {escape(skipped['reason'])}")
    for partial in coverage["rules_partial"]:
        console.print(f"  partly run {partial['rule']}: {escape(partial['reason'])}")
    for invalid in coverage["rules_invalid"]:
        console.print(f"  [red]invalid rule[/] {escape(invalid['reason'])}")
