"""Turns the cluster objects of a collection into each node's probe plan: recorded in the
manifest before any node runs, and handed to the node script as its arguments."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from needle.collector.bundle.manifest import NodeProbes, NodeRecord, ProbeSettingsRecord
from needle.collector.probe_facts import read_cluster_facts
from needle.collector.probe_plan import NodeProbePlan, plan_cluster
from needle.collector.spec.loader import ProbeSettings


@dataclass(frozen=True)
class ProbeRequest:
    """What the user asked: probes on or off, how many peers, how long a window."""

    enabled: bool
    peers: int | None
    """None: the spec's default."""
    window_s: int
    off_reason: str = "--no-probe"


@dataclass(frozen=True)
class NodeProbeArgs:
    """What one node's script is told (see ScriptArgs)."""

    targets: tuple[str, ...]
    mtu: int | None
    mtu_source: str | None
    window_s: int


def plan_record(plan: NodeProbePlan) -> dict[str, Any]:
    """The plan as the manifest shows it: targets, counts, sizes, rates and the cut."""
    record = {
        key: value
        for key, value in dataclasses.asdict(plan).items()
        if key not in {"targets", "cut", "node"}
    }
    record["planned"] = plan.planned
    record["targets"] = [dataclasses.asdict(target) for target in plan.targets]
    record["cut"] = [{**dataclasses.asdict(c.target), "reason": c.reason} for c in plan.cut]
    return record


def prepare_probes(
    request: ProbeRequest,
    settings: ProbeSettings,
    cluster_dir: Path,
    nodes: Sequence[NodeRecord],
) -> tuple[ProbeSettingsRecord, Mapping[str, NodeProbeArgs], list[str]]:
    """The collection's probe settings, each node's arguments, and problems worth a line
    in the manifest's errors (unreadable objects). Sets every node record's probes."""
    peers = settings.peers if request.peers is None else request.peers
    record = ProbeSettingsRecord(
        enabled=request.enabled,
        reason=None if request.enabled else request.off_reason,
        peers=peers,
        window_s=request.window_s,
        count=settings.count,
        interval_s=settings.interval_s,
        deadline_s=settings.deadline_s,
        parallel=settings.parallel,
        sources=list(settings.sources),
    )
    if not request.enabled:
        return record, {}, []
    facts = read_cluster_facts(cluster_dir)
    if not facts.nodes:
        record.enabled = False
        record.reason = "no Node objects to take probe targets from"
        return record, {}, list(facts.problems)
    plans = plan_cluster([n.name for n in nodes], facts, settings, peers, request.window_s)
    found: dict[str, NodeProbeArgs] = {}
    for node in nodes:
        plan = plans.get(node.name)
        if plan is None:
            node.probes = NodeProbes(skipped="not a Node object of the cluster: no peers known")
            continue
        node.probes = NodeProbes(plan=plan_record(plan))
        if not plan.targets:
            node.probes.skipped = "no peer to probe"
            continue
        found[node.name] = NodeProbeArgs(
            tuple(target.word() for target in plan.targets),
            plan.mtu,
            plan.mtu_source,
            request.window_s,
        )
    return record, found, list(facts.problems)
