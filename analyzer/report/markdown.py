"""The report as markdown that pastes into a ticket.

A ticket renders markdown as HTML, so every value from the bundle or a rule goes
through terminal.markdown_text() or terminal.markdown_code(): shown as typed, on one
line, never as a tag, a link, emphasis, a code span of its own or a table cell break."""

from __future__ import annotations

import re
from typing import Any

from needle.analyzer.report.counts import (
    dataplane_line,
    evidence_label,
    observation_lines,
    observed_line,
    reachability_lines,
    rules_ran,
    severity_counts,
)
from needle.analyzer.rules.engine import SEVERITIES
from needle.analyzer.terminal import markdown_code, markdown_text, plural

_ICON = {"error": "ERROR", "warning": "WARNING", "info": "INFO"}
# A reference that is plainly a web address stays a CommonMark autolink; anything else
# is text.
_URL = re.compile(r"https?://[^\s<>`\\\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]+")


def _reference(reference: object) -> str:
    text = str(reference)
    return f"<{text}>" if _URL.fullmatch(text) else markdown_text(text)


def render_markdown(document: dict[str, Any]) -> str:
    bundle = document["bundle"]
    summary = document["summary"]
    lines = [
        "## needle analysis",
        "",
        f"Bundle {markdown_code(bundle['path'])}: {plural(bundle['nodes'], 'node')}, "
        f"collected {markdown_text(bundle['created'])} ({markdown_text(bundle['status'])}). "
        f"**{severity_counts(summary)}.**",
        "",
    ]
    dataplane = dataplane_line(document["coverage"].get("dataplane"))
    if dataplane is not None:
        lines += [markdown_text(dataplane[:1].upper() + dataplane[1:]) + ".", ""]
    if document["findings"]:
        lines += ["| severity | finding | rule |", "|---|---|---|"]
        lines += [
            f"| {_ICON[f['severity']]} | {markdown_text(f['message'])} "
            f"| {markdown_code(f['rule'], table=True)} |"
            for f in document["findings"]
        ]
        lines.append("")
    for severity in SEVERITIES:
        for finding in (f for f in document["findings"] if f["severity"] == severity):
            lines += [
                f"### {_ICON[severity]}: {markdown_text(finding['title'])}",
                "",
                markdown_text(finding["message"]),
                "",
            ]
            observed = observed_line(finding)
            if observed is not None:
                lines += [markdown_text(observed[0].upper() + observed[1:]), ""]
            if finding["evidence"]:
                lines.append("Evidence:")
                for item in finding["evidence"]:
                    detail = f": {markdown_text(item['detail'])}" if item.get("detail") else ""
                    label = evidence_label(item)
                    where = "" if label == "evidence" else f"{markdown_text(label)}: "
                    lines.append(f"- {where}{markdown_code(item['file'])}{detail}")
                lines.append("")
            lines += [f"Fix: {markdown_text(finding['remediation'])}", ""]
            if finding["references"]:
                links = ", ".join(_reference(reference) for reference in finding["references"])
                lines += [f"References: {links}", ""]
    coverage = document["coverage"]
    lines.append(f"_{rules_ran(coverage)}._")
    for line in reachability_lines(coverage.get("reachability")):
        lines.append(f"- {markdown_text(line.strip())}")
    for line in observation_lines(coverage.get("observations")):
        lines.append(f"- {markdown_text(line.strip())}")
    for skipped in coverage["rules_skipped"]:
        lines.append(
            f"- skipped {markdown_code(skipped['rule'])}: {markdown_text(skipped['reason'])}"
        )
    for bad in coverage.get("objects_invalid", []):
        lines.append(
            f"- invalid object {markdown_text(bad['kind'])} {markdown_code(bad['name'])} in "
            f"{markdown_code(bad['file'])}: {markdown_code(bad['field'])} "
            f"{markdown_text(bad['problem'])} (left out; the rest was analyzed)"
        )
    return "\n".join(lines).rstrip() + "\n"
