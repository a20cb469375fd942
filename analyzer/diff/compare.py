"""Compares two snapshots and two analyses: changes, and findings new, resolved or still
present (matched by rule and subject, not by message).

Not every difference is a change to the network. Two kinds are left out of the default
view (and counted), `--all` lists them, marked with why they would be left out:

- `per-boot`: identifiers the kernel or the runtime hands out again when something is
  re-created (MACs, ifindexes, veth names, namespace ids, generated pod names), and
  whole entries that are only that;
- `implied`: the facts of a pod's namespace and host veth when the pod came or went
  (the pod's own line says it), and routes the kernel derives per device.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from needle.analyzer.diff.snapshot import VETH_ROLE, Snapshot, render_route
from needle.analyzer.model.entities import HOST
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
KIND_ORDER = (
    "probe",  # what changed in what the probes met: connectivity fixed or broken
    "node",
    "pod",
    "interface",
    "route",
    "neighbour",
    "fdb",
    "sysctl",
    "ethtool",
)
CLUSTER_KINDS = ("node", "pod", "probe")  # compared whatever a node's data held
PER_BOOT = "per-boot"
IMPLIED = "implied"
# fields that are per-boot identifiers, by kind (see _per_boot_fields for the rest)
_PER_BOOT_FIELDS: dict[str, frozenset[str]] = {
    "interface": frozenset({"mac", "ifindex"}),
    "pod": frozenset({"name", "netns_id", "host_veth_name"}),
    "neighbour": frozenset({"lladdr"}),
    "fdb": frozenset({"mac"}),
}
_NONE: frozenset[str] = frozenset()


@dataclass
class Change:
    kind: str
    op: str  # added, removed, changed
    node: str | None
    key: list[str]
    before: Any = None
    after: Any = None
    noise: str | None = None  # PER_BOOT or IMPLIED: why the default view leaves it out

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "op": self.op,
            "node": self.node,
            "key": self.key,
            "before": self.before,
            "after": self.after,
            "noise": self.noise,
        }


@dataclass
class DiffResult:
    changes: list[Change] = field(default_factory=list)
    not_compared: list[str] = field(default_factory=list)
    new_findings: list[Finding] = field(default_factory=list)
    resolved_findings: list[Finding] = field(default_factory=list)
    unchanged_findings: list[Finding] = field(default_factory=list)
    # differences the default view does not list, by PER_BOOT / IMPLIED
    left_out: Counter[str] = field(default_factory=Counter)


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


def _per_boot_fields(kind: str, key: tuple[str, ...], before: Any, after: Any) -> frozenset[str]:
    """The fields of a fact that are per-boot identifiers."""
    if kind == "interface":
        # a pod's host veth has a random name; a device's own name (ens3) is not random,
        # though it may be a veth too (a VM's or the lab's uplink)
        if key[1] == HOST and key[2].startswith("veth to "):
            return _PER_BOOT_FIELDS["interface"] | {"name"}
        return _PER_BOOT_FIELDS["interface"]
    if kind == "node":
        # the VtepMAC annotation changes with a re-created flannel.1; whether it is the
        # node's own MAC does not (where the bundles can tell: else the MAC is all we have)
        known = all(
            isinstance(v, dict) and v.get("vtep_mac_is_own") is not None for v in (before, after)
        )
        return frozenset({"vtep_mac"}) if known else _NONE
    return _PER_BOOT_FIELDS.get(kind, _NONE)


def _sysctl_device(key: str) -> str | None:
    """The device label in net.ipv4.conf.<device>.<setting> (labels hold dots)."""
    for prefix in ("net.ipv4.conf.", "net.ipv6.conf."):
        if key.startswith(prefix):
            return key[len(prefix) : key.rfind(".")]
    return None


def _scope(kind: str, key: tuple[str, ...]) -> str | None:
    """The pod namespace or host device a fact belongs to, if any."""
    if kind in {"interface", "route"} and key[1] != HOST:
        return key[1]
    if kind == "interface":
        return key[2]
    if kind == "sysctl":
        return _sysctl_device(key[1])
    if kind == "ethtool":
        return key[1] if key[1] != VETH_ROLE else None
    return None


def _implied(kind: str, key: tuple[str, ...], old: Snapshot, new: Snapshot) -> bool:
    """Whether an added or removed fact comes with a namespace or host device that is on
    one side only. A pod's (`pod X`, `veth to X`) is said by the pod's own change; a
    namespace no pod explains (`netns ...`) and a host device that is not a pod's veth
    keep their interface lines, only their routes, sysctls and features are implied."""
    if kind == "route" and key[1] == HOST:
        # the kernel adds one IPv6 multicast route per device: it follows the devices
        return key[2] == "local" and key[3] == "multicast" and key[4] == "ff00::/8"
    scope = _scope(kind, key)
    if scope is None:
        return False
    node = key[0]
    if (scope in old.scopes.get(node, ())) == (scope in new.scopes.get(node, ())):
        return False
    if kind != "interface":
        return True
    if key[1] != HOST:
        return scope.startswith("pod ")
    return scope.startswith("veth to ") and not scope.startswith("veth to netns ")


def _without(value: Any, fields: frozenset[str]) -> Any:
    if not fields or not isinstance(value, dict):
        return value
    return {k: v for k, v in value.items() if k not in fields}


def _without_name(value: Any, label: str) -> Any:
    if isinstance(value, dict) and value.get("name") == label:
        return {k: v for k, v in value.items() if k != "name"}
    return value


def classify(
    kind: str,
    op: str,
    key: tuple[str, ...],
    facts: tuple[Any, Any],
    changed: Any,
    old: Snapshot,
    new: Snapshot,
) -> tuple[str | None, frozenset[str]]:
    """Why the default view would leave a difference out (None: it is a change), and
    the per-boot fields of the fact (`facts`: its whole values before and after;
    `changed`: the fields that differ, for a changed fact)."""
    per_boot = _per_boot_fields(kind, key, *facts)
    if op != "changed":
        if kind in {"interface", "route", "sysctl", "ethtool"} and _implied(kind, key, old, new):
            return IMPLIED, per_boot
        return None, per_boot
    if kind == "route" and _implied(kind, key, old, new):
        return IMPLIED, per_boot
    if isinstance(changed, dict) and per_boot and all(field in per_boot for field in changed):
        return PER_BOOT, per_boot
    return None, per_boot


def compare_snapshots(
    old: Snapshot, new: Snapshot, only_node: str | None, show_all: bool = False
) -> DiffResult:
    """The changes from `old` to `new`; differences that are only per-boot or implied
    are counted in `left_out`, or listed with their `noise` when `show_all`."""
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
            if kind not in CLUSTER_KINDS and (
                key[0] not in old.present or key[0] not in new.present or (key[0], kind) in skipped
            ):
                continue
            if key not in after:
                op, was, now = "removed", _shown(kind, before[key]), None
            elif key not in before:
                op, was, now = "added", None, _shown(kind, after[key])
            elif before[key] != after[key]:
                op = "changed"
                was, now = _changed_fields(_shown(kind, before[key]), _shown(kind, after[key]))
            else:
                continue
            facts = (before.get(key), after.get(key))
            noise, per_boot = classify(kind, op, key, facts, now, old, new)
            if noise is not None and not show_all:
                result.left_out[noise] += 1
                continue
            if not show_all:
                was, now = _without(was, per_boot), _without(now, per_boot)
            if kind == "interface" and op != "changed":
                # a device's name is its key's last part, unless a label stands for it
                was, now = _without_name(was, key[2]), _without_name(now, key[2])
            result.changes.append(Change(kind, op, node, list(key), was, now, noise))
    order = {kind: rank for rank, kind in enumerate(KIND_ORDER)}
    result.changes.sort(key=lambda c: (c.node or "", order[c.kind], c.key))
    return result


def finding_key(finding: Finding, pods: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Rule and subject, minus what is random between snapshots (netns ids, veth names);
    a pod named as the pod it is paired with (`pods`: ref -> paired ref)."""
    subject = finding.subject
    interface = subject.get("interface") or ""
    pod = subject.get("pod") or ""
    return (
        finding.rule,
        subject.get("node") or "",
        subject.get("peer_node") or "",
        pods.get(pod, pod) if pods else pod,
        subject.get("cidr") or "",
        "" if interface.startswith("veth") else interface,
    )


def compare_findings(
    old: list[Finding],
    new: list[Finding],
    result: DiffResult,
    only_node: str | None,
    pods: Mapping[str, str] | None = None,
) -> None:
    """Findings new, resolved and still present; `pods` (old ref -> new ref) matches a
    finding about a pod re-created under another name to the same finding about it."""

    def keep(finding: Finding) -> bool:
        return only_node is None or only_node in (
            finding.subject.get("node"),
            finding.subject.get("peer_node"),
        )

    old_keys = {finding_key(f, pods): f for f in old if keep(f)}
    new_keys = {finding_key(f): f for f in new if keep(f)}
    result.new_findings = [f for k, f in new_keys.items() if k not in old_keys]
    result.resolved_findings = [f for k, f in old_keys.items() if k not in new_keys]
    result.unchanged_findings = [f for k, f in new_keys.items() if k in old_keys]
