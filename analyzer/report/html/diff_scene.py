"""What the HTML diff shows: the new snapshot's nodes (and the old one's that went) with
what changed on each and the findings that came, the findings delta, and every change
grouped by node. Strings are the bundles', exact; page.py's boundary escapes them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from needle.analyzer.model.entities import Model
from needle.analyzer.report.html.scene import group_quiet, node_box
from needle.analyzer.report.html.views import Edge, Mark, NodeBox
from needle.analyzer.terminal import plural

# MTU changes a node's box names; the rest are in the table
MTU_LINES = 2
# change rows the page holds (~300 bytes each: 10 MB would be ~30,000); the rest are
# counted per node, and the JSON diff lists them all
MAX_ROWS = 10_000


@dataclass
class FindingLine:
    anchor: str
    severity: str
    rule: str
    message: str
    subject: list[tuple[str, str]]


@dataclass
class ChangeLine:
    kind: str
    op: str
    key: str
    before: str
    after: str


@dataclass
class NodeChanges:
    node: str
    anchor: str
    changes: list[ChangeLine] = field(default_factory=list)
    count: int = 0  # all of its changes, shown or not


@dataclass
class DiffScene:
    title: str
    old: dict[str, Any]
    new: dict[str, Any]
    headline: str
    nodes: list[NodeBox]
    grouped: str | None
    edges: list[Edge]
    new_findings: list[FindingLine]
    resolved: list[FindingLine]
    unchanged: int
    by_node: list[NodeChanges]
    not_compared: list[str]
    left_out: str | None
    rows_left_out: int = 0


def _line(number: int, prefix: str, finding: dict[str, Any]) -> FindingLine:
    subject = [(key, str(value)) for key, value in finding["subject"].items() if value]
    return FindingLine(
        f"{prefix}-{number}", finding["severity"], finding["rule"], finding["message"], subject
    )


def _value(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def build_diff_scene(old: Model, new: Model, document: dict[str, Any]) -> DiffScene:
    boxes: dict[str, NodeBox] = {}
    for name in sorted(set(old.nodes) | set(new.nodes)):
        model = new if name in new.nodes else old
        box = node_box(model, model.nodes[name])
        box.state = (
            "removed" if name not in new.nodes else "added" if name not in old.nodes else None
        )
        boxes[name] = box
    findings = document["findings"]
    new_findings = [_line(n, "new", f) for n, f in enumerate(findings["new"])]
    resolved = [_line(n, "resolved", f) for n, f in enumerate(findings["resolved"])]
    edges: dict[tuple[str, str], Edge] = {}
    for line, finding in zip(new_findings, findings["new"], strict=True):
        mark = Mark(line.anchor, line.severity, finding["message"])
        node, peer = finding["subject"].get("node"), finding["subject"].get("peer_node")
        if node in boxes and peer in boxes:
            pair = (node, peer) if node < peer else (peer, node)
            edges.setdefault(pair, Edge(*pair)).marks.append(mark)
        if node in boxes:
            boxes[node].marks.append(mark)
    by_node: dict[str, NodeChanges] = {}
    rows = 0
    for change in document["changes"]:
        node = change.get("node") or ""
        entry = by_node.setdefault(node, NodeChanges(node or "the cluster", f"c-{node or '-'}"))
        entry.count += 1
        if rows >= MAX_ROWS and entry.changes:
            continue  # every node keeps its first row, to link to
        rows += 1
        entry.changes.append(
            ChangeLine(
                change["kind"],
                change["op"],
                " ".join(str(part) for part in change.get("key") or []),
                _value(change.get("before")),
                _value(change.get("after")),
            )
        )
    for node, entry in by_node.items():
        if node in boxes:
            boxes[node].changes = entry.count
            boxes[node].changes_anchor = entry.anchor
    for change in document["changes"]:
        box = boxes.get(change.get("node") or "")
        before, after = change.get("before"), change.get("after")
        if box is None or not isinstance(before, dict) or not isinstance(after, dict):
            continue
        if "mtu" in before and "mtu" in after and len(box.mtu_changes) < MTU_LINES:
            device = (change.get("key") or ["", "", "?"])[-1]
            box.mtu_changes.append(f"{device} mtu {before['mtu']} → {after['mtu']}")
    for box in boxes.values():
        box.pods = box.pods[:4]
    # alike nodes share a box: changed with changed, added with added
    drawn, grouped = group_quiet(list(boxes.values()), set())
    summary = document["summary"]
    left = summary.get("left_out") or {}
    left_out = None
    if left.get("per_boot") or left.get("implied"):
        left_out = (
            f"{plural(left.get('per_boot', 0), 'per-boot difference')} and "
            f"{plural(left.get('implied', 0), 'implied fact')} left out "
            "(needle diff --all lists them)"
        )
    return DiffScene(
        title=f"needle diff: {document['old']['path']} → {document['new']['path']}",
        old=document["old"],
        new=document["new"],
        headline=(
            f"{plural(summary['changes'], 'change')}; "
            f"{plural(summary['new_findings'], 'new finding')}, "
            f"{summary['resolved_findings']} resolved, {summary['unchanged_findings']} unchanged"
        ),
        nodes=drawn,
        grouped=grouped,
        edges=list(edges.values()),
        new_findings=new_findings,
        resolved=resolved,
        unchanged=summary["unchanged_findings"],
        by_node=sorted(by_node.values(), key=lambda entry: entry.node),
        not_compared=list(document["not_compared"]),
        left_out=left_out,
        rows_left_out=len(document["changes"]) - rows,
    )
