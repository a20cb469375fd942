"""The diff for people: text for a terminal, markdown for a change ticket. Both lead
with what the change fixed or broke, then what changed, node by node."""

from __future__ import annotations

import json
from itertools import groupby
from typing import Any


def _value(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_value(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + "; ".join(_value(v) for v in value) + "]"
    return json.dumps(value) if value is None or isinstance(value, bool) else str(value)


def _describe(change: dict[str, Any]) -> str:
    key = change["key"][1:] if change["kind"] not in {"pod"} else change["key"]
    what = " ".join([change["kind"], *key])
    if change["op"] == "added":
        return f"+ {what}: {_value(change['after'])}"
    if change["op"] == "removed":
        return f"- {what}: {_value(change['before'])}"
    pairs = (
        [
            f"{field} {_value(change['before'].get(field))} -> {_value(after)}"
            for field, after in change["after"].items()
        ]
        if isinstance(change["after"], dict)
        else [f"{_value(change['before'])} -> {_value(change['after'])}"]
    )
    return f"~ {what}: {', '.join(pairs)}"


def _finding_lines(document: dict[str, Any], bullet: str) -> list[str]:
    lines = []
    for title, group in (("new", "NEW"), ("resolved", "RESOLVED")):
        for finding in document["findings"][title]:
            lines.append(
                f"{bullet}{group} {finding['severity']}: {finding['message']} ({finding['rule']})"
            )
    return lines


def render_text(document: dict[str, Any]) -> str:
    old, new = document["old"], document["new"]
    summary = document["summary"]
    lines = [
        f"needle diff {old['path']} ({old['created']}) -> {new['path']} ({new['created']})",
        f"{summary['new_findings']} new findings, {summary['resolved_findings']} resolved, "
        f"{summary['unchanged_findings']} still present; {summary['changes']} changes",
    ]
    findings = _finding_lines(document, "  ")
    if findings:
        lines += ["", "Findings:", *findings]
    changes = document["changes"]
    for node, group in groupby(changes, key=lambda c: c["node"] or "(cluster)"):
        lines += ["", f"{node}:"]
        lines += [f"  {_describe(change)}" for change in group]
    if document["not_compared"]:
        lines += ["", "Not compared:"] + [f"  {item}" for item in document["not_compared"]]
    if not changes and not findings:
        lines += ["", "No changes."]
    return "\n".join(lines) + "\n"


def render_markdown(document: dict[str, Any]) -> str:
    old, new = document["old"], document["new"]
    summary = document["summary"]
    lines = [
        "## needle diff",
        "",
        f"`{old['path']}` ({old['created']}) -> `{new['path']}` ({new['created']}): "
        f"**{summary['new_findings']} new findings, {summary['resolved_findings']} resolved**, "
        f"{summary['unchanged_findings']} still present, {summary['changes']} changes.",
        "",
    ]
    findings = _finding_lines(document, "- ")
    if findings:
        lines += ["### Findings", "", *findings, ""]
    changes = sorted(document["changes"], key=lambda c: c["node"] or "")
    if changes:
        lines += ["### Changes", ""]
        for node, group in groupby(changes, key=lambda c: c["node"] or "(cluster)"):
            lines += [f"**{node}**", ""]
            lines += [f"- `{_describe(change)}`" for change in group]
            lines.append("")
    if document["not_compared"]:
        lines += ["### Not compared", ""] + [f"- {item}" for item in document["not_compared"]]
    return "\n".join(lines).rstrip() + "\n"
