"""The report as markdown that pastes into a ticket."""

from __future__ import annotations

from typing import Any

from needle.analyzer.rules.engine import SEVERITIES

_ICON = {"error": "ERROR", "warning": "WARNING", "info": "INFO"}


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(document: dict[str, Any]) -> str:
    bundle = document["bundle"]
    summary = document["summary"]
    lines = [
        "## needle analysis",
        "",
        f"Bundle `{bundle['path']}`: {bundle['nodes']} nodes, collected {bundle['created']} "
        f"({bundle['status']}). **{summary['error']} errors, {summary['warning']} warnings, "
        f"{summary['info']} info.**",
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
                lines += ["References: " + ", ".join(finding["references"]), ""]
    coverage = document["coverage"]
    lines.append(f"_{coverage['rules_run']} rules ran._")
    for skipped in coverage["rules_skipped"]:
        lines.append(f"- skipped `{skipped['rule']}`: {skipped['reason']}")
    return "\n".join(lines).rstrip() + "\n"
