"""The diff for people: text for a terminal, markdown for a change ticket.

Both lead with a summary (what kinds of change, how many findings new or resolved, how
much the default view left out), then the changes, most significant first: what breaks
packets (MTUs, routes) before what moves them (addresses, node facts, overlay entries),
before pods that came or went, before offload features; then the findings the change
brought or fixed. A reader of a re-created cluster's diff meets the one real change in
the first lines, not after a thousand renamed veths.

Names and values come from bundles: every line of the text goes through
terminal.safe_text() as it leaves (one line stays one line, no control character
reaches the terminal), and every value in the markdown through terminal.markdown_text()
or terminal.markdown_code() (no HTML, links or broken code spans in a ticket).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

from needle.analyzer.terminal import markdown_code, markdown_text, safe_text

# (rank, category) per change: lower ranks first; categories name the counts
_PROBE, _MTU, _ROUTE, _ADDRESS, _NODE, _INTERFACE, _OVERLAY, _SYSCTL, _POD, _ETHTOOL, _NOISE = (
    range(11)
)


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


def _category(change: dict[str, Any]) -> tuple[int, str]:
    """How significant a change is, and what to count it as."""
    kind, op = change["kind"], change["op"]
    if change.get("noise"):
        return _NOISE, str(change["noise"])
    fields = change["after"] if isinstance(change["after"], dict) else {}
    if kind == "probe":
        return _PROBE, "probe"
    if kind == "interface" and op == "changed" and "mtu" in fields:
        return _MTU, "MTU"
    if kind == "route":
        return _ROUTE, "route"
    if kind == "interface" and op == "changed" and "addresses" in fields:
        return _ADDRESS, "address"
    if kind == "node":
        return _NODE, "node"
    if kind == "interface":
        return _INTERFACE, "interface"
    if kind in {"neighbour", "fdb"}:
        return _OVERLAY, kind
    if kind == "sysctl":
        return _SYSCTL, "sysctl"
    if kind == "pod":
        return _POD, "pod"
    return _ETHTOOL, kind


def by_significance(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Most significant first; within a rank, in the document's order (node, kind, key)."""
    return sorted(changes, key=lambda change: _category(change)[0])


def _line(change: dict[str, Any]) -> str:
    node = change["node"] or "(cluster)"
    noise = f" ({change['noise']})" if change.get("noise") else ""
    described = _describe(change)
    return f"{described[:2]}{node}: {described[2:]}{noise}"


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}" if count == 1 else f"{count:,} {word}s"


def summary_line(document: dict[str, Any]) -> str:
    """Findings first (what the change fixed or broke), then the changes by category
    and operation, then what the default view left out."""
    summary = document["summary"]
    counts: Counter[tuple[int, str, str]] = Counter(
        (*_category(change), change["op"]) for change in document["changes"]
    )
    parts = [f"{count:,} {category} {op}" for (_, category, op), count in sorted(counts.items())]
    changes = _plural(summary["changes"], "change") + (f" ({', '.join(parts)})" if parts else "")
    line = (
        f"{_plural(summary['new_findings'], 'new finding')}, "
        f"{summary['resolved_findings']:,} resolved, "
        f"{summary['unchanged_findings']:,} still present; {changes}"
    )
    left_out = summary.get("left_out") or {}
    per_boot, implied = left_out.get("per_boot", 0), left_out.get("implied", 0)
    reasons = [
        *([f"{per_boot:,} per-boot (new MACs, names, ids)"] if per_boot else []),
        *([f"{implied:,} implied by pods or devices that came or went"] if implied else []),
    ]
    if reasons:
        line += f"; left out: {' and '.join(reasons)} (--all lists them)"
    return line


def _finding_lines(
    document: dict[str, Any], bullet: str, shown: Callable[[object], str]
) -> list[str]:
    lines = []
    for title, group in (("new", "NEW"), ("resolved", "RESOLVED")):
        for finding in document["findings"][title]:
            line = f"{group} {finding['severity']}: {finding['message']} ({finding['rule']})"
            lines.append(f"{bullet}{shown(line)}")
    return lines


def render_text(document: dict[str, Any]) -> str:
    old, new = document["old"], document["new"]
    lines = [
        f"needle diff {old['path']} ({old['created']}) -> {new['path']} ({new['created']})",
        summary_line(document),
    ]
    changes = by_significance(document["changes"])
    if changes:
        lines += ["", "Changes:", *(f"  {_line(change)}" for change in changes)]
    findings = _finding_lines(document, "  ", str)  # lines leave through safe_text()
    if findings:
        lines += ["", "Findings:", *findings]
    if document["not_compared"]:
        lines += ["", "Not compared:"] + [f"  {item}" for item in document["not_compared"]]
    if not changes and not findings:
        lines += ["", "No changes."]
    return "\n".join(safe_text(line) for line in lines) + "\n"


def render_markdown(document: dict[str, Any]) -> str:
    old, new = document["old"], document["new"]
    lines = [
        "## needle diff",
        "",
        f"{markdown_code(old['path'])} ({markdown_text(old['created'])}) -> "
        f"{markdown_code(new['path'])} ({markdown_text(new['created'])}): "
        f"{markdown_text(summary_line(document))}.",
        "",
    ]
    changes = by_significance(document["changes"])
    if changes:
        lines += ["### Changes", ""]
        lines += [f"- {markdown_code(_line(change))}" for change in changes]
        lines.append("")
    findings = _finding_lines(document, "- ", markdown_text)
    if findings:
        lines += ["### Findings", "", *findings, ""]
    if document["not_compared"]:
        lines += ["### Not compared", ""] + [
            f"- {markdown_text(item)}" for item in document["not_compared"]
        ]
    return "\n".join(lines).rstrip() + "\n"
