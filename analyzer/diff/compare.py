"""Compares two snapshots and two analyses: changes, and findings new, resolved or still
present (matched by rule and subject, not by message)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from needle.analyzer.diff.snapshot import Snapshot, render_route
from needle.analyzer.rules.engine import Finding

# which per-node data a kind of change needs in both bundles to be compared
NEEDS = {
    "interface": "links",
    "route": "routes",
    "neighbour": "neighbours",
    "fdb": "fdb",
    "sysctl": "sysctl",
    "ethtool": "ethtool",
}
KIND_ORDER = ("node", "pod", "interface", "route", "neighbour", "fdb", "sysctl", "ethtool")


@dataclass
class Change:
    kind: str
    op: str  # added, removed, changed
    node: str | None
    key: list[str]
    before: Any = None
    after: Any = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "op": self.op,
            "node": self.node,
            "key": self.key,
            "before": self.before,
            "after": self.after,
        }


@dataclass
class DiffResult:
    changes: list[Change] = field(default_factory=list)
    not_compared: list[str] = field(default_factory=list)
    new_findings: list[Finding] = field(default_factory=list)
    resolved_findings: list[Finding] = field(default_factory=list)
    unchanged_findings: list[Finding] = field(default_factory=list)


def _changed_fields(before: Any, after: Any) -> tuple[Any, Any]:
    if isinstance(before, dict) and isinstance(after, dict):
        keys = [k for k in dict.fromkeys([*before, *after]) if before.get(k) != after.get(k)]
        return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}
    return before, after


def _shown(kind: str, value: Any) -> Any:
    return render_route(value) if kind == "route" else value


def _node_of(kind: str, key: tuple[str, ...], value: Any) -> str | None:
    if kind == "pod":
        return value.get("node") if isinstance(value, dict) else None
    return key[0]


def compare_snapshots(old: Snapshot, new: Snapshot, only_node: str | None) -> DiffResult:
    result = DiffResult()
    for missing in sorted(old.missing_cluster ^ new.missing_cluster):
        side = "old" if missing in old.missing_cluster else "new"
        result.not_compared.append(f"{missing}: absent from the {side} bundle")
    skipped: set[tuple[str, str]] = set()
    for node in sorted(set(old.present) & set(new.present)):
        for kind, data in NEEDS.items():
            in_old, in_new = data in old.present[node], data in new.present[node]
            if in_old != in_new:
                skipped.add((node, kind))
                side = "new" if in_old else "old"
                result.not_compared.append(f"{node}: {data} absent from the {side} bundle")
    for node in sorted(set(old.present) ^ set(new.present)):
        side = "new" if node in old.present else "old"
        result.not_compared.append(f"{node}: not collected in the {side} bundle")
    for kind in KIND_ORDER:
        before, after = old.kinds.get(kind, {}), new.kinds.get(kind, {})
        for key in sorted(set(before) | set(after)):
            node = _node_of(kind, key, after.get(key, before.get(key)))
            if (
                only_node is not None
                and node != only_node
                and not (
                    kind == "pod"
                    and isinstance(before.get(key), dict)
                    and before[key].get("node") == only_node
                )
            ):
                continue
            if (
                kind != "node"
                and kind != "pod"
                and (
                    key[0] not in old.present
                    or key[0] not in new.present
                    or (key[0], kind) in skipped
                )
            ):
                continue
            if key not in after:
                result.changes.append(
                    Change(kind, "removed", node, list(key), _shown(kind, before[key]))
                )
            elif key not in before:
                result.changes.append(
                    Change(kind, "added", node, list(key), None, _shown(kind, after[key]))
                )
            elif before[key] != after[key]:
                was, now = _changed_fields(_shown(kind, before[key]), _shown(kind, after[key]))
                result.changes.append(Change(kind, "changed", node, list(key), was, now))
    order = {kind: rank for rank, kind in enumerate(KIND_ORDER)}
    result.changes.sort(key=lambda c: (c.node or "", order[c.kind], c.key))
    return result


def finding_key(finding: Finding) -> tuple[str, ...]:
    """Rule and subject, minus what is random between snapshots (netns ids, veth names)."""
    subject = finding.subject
    interface = subject.get("interface") or ""
    return (
        finding.rule,
        subject.get("node") or "",
        subject.get("peer_node") or "",
        subject.get("pod") or "",
        subject.get("cidr") or "",
        "" if interface.startswith("veth") else interface,
    )


def compare_findings(
    old: list[Finding], new: list[Finding], result: DiffResult, only_node: str | None
) -> None:
    def keep(finding: Finding) -> bool:
        return only_node is None or only_node in (
            finding.subject.get("node"),
            finding.subject.get("peer_node"),
        )

    old_keys = {finding_key(f): f for f in old if keep(f)}
    new_keys = {finding_key(f): f for f in new if keep(f)}
    result.new_findings = [f for k, f in new_keys.items() if k not in old_keys]
    result.resolved_findings = [f for k, f in old_keys.items() if k not in new_keys]
    result.unchanged_findings = [f for k, f in new_keys.items() if k in old_keys]
