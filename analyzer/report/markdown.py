"""The report as markdown that pastes into a ticket."""

from __future__ import annotations

from typing import Any

from needle.analyzer.report.counts import rules_ran, severity_counts
from needle.analyzer.rules.engine import SEVERITIES
from needle.analyzer.terminal import plural

_ICON = {"error": "ERROR", "warning": "WARNING", "info": "INFO"}


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(document: dict[str, Any]) -> str:
    bundle = document["bundle"]
    summary = document["summary"]
    lines = [
        "## needle analysis",
        "",
        f"Bundle `{bundle['path']}`: {plural(bundle['nodes'], 'node')}, collected "
        f"{bundle['created']} ({bundle['status']}). **{severity_counts(summary)}.**",
        "",
    ]
    if document["findings"]:
        lines += ["| severity | finding | rule |", "|---|---|---|"]
        lines += [
            f"| {_ICON[f['severity']]} | {_cell(f['message'])} | `{f['rule']}` |"
            for f in document["findings"]
        ]
        lines.append("")
    for severity in SEVERITIES:
        for finding in (f for f in document["findings"] if f["severity"] == severity):
            lines += [f"### {_ICON[severity]}: {finding['title']}", "", finding["message"], ""]
            if finding["evidence"]:
                lines.append("Evidence:")
                for item in finding["evidence"]:
                    detail = f": {item['detail']}" if item.get("detail") else ""
                    lines.append(f"- `{item['file']}`{detail}")
                lines.append("")
            lines += [f"Fix: {finding['remediation']}", ""]
            if finding["references"]:
                links = ", ".join(f"<{reference}>" for reference in finding["references"])
                lines += [f"References: {links}", ""]
    coverage = document["coverage"]
    lines.append(f"_{rules_ran(coverage)}._")
    for skipped in coverage["rules_skipped"]:
        lines.append(f"- skipped `{skipped['rule']}`: {skipped['reason']}")
    return "\n".join(lines).rstrip() + "\n"
