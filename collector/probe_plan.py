"""Which probes each node runs in the shared window: its peers on a hash ring, their
targets, and the cut that makes them fit the window.

Each node probes the K nodes that follow it on a ring ordered by a hash of the node
names, so every node is probed by exactly K others whatever their names, and the same
cluster gives the same plan on every run. The plan is bounded twice: by K, and by the
window (waves of at most `parallel` probes, each ending by its deadline); targets that
do not fit are recorded as cut, with the reason, never dropped silently.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from needle.collector.probe_facts import ClusterFacts, NodeFacts
from needle.collector.spec.loader import ProbeSettings

Kind = Literal["node-gateway", "pod", "vxlan-port"]
SIZES = ("small", "under-mtu", "over-mtu")
ICMP_HEADERS = 28
"""IPv4 20 + ICMP 8: ping's -s is the payload, the MTU counts the whole IP packet."""


@dataclass(frozen=True)
class ProbeTarget:
    kind: Kind
    address: str
    peer_node: str
    port: int | None = None
    pod: str | None = None

    def word(self) -> str:
        """How the node script receives it: kind,address,port,peer (no spaces or quotes:
        addresses are checked IPv4, node names DNS names)."""
        return f"{self.kind},{self.address},{self.port or '-'},{self.peer_node}"


@dataclass(frozen=True)
class CutTarget:
    target: ProbeTarget
    reason: str


@dataclass
class NodeProbePlan:
    """What one node is asked to probe; recorded in the manifest as planned."""

    node: str
    mtu: int | None
    """None: the node takes its own (subnet.env, its overlay device's MTU)."""
    mtu_source: str | None
    sizes: dict[str, int]
    """ping payload bytes (-s) per size name, as far as the MTU is known here; the IP
    packet is 28 bytes more."""
    count: int
    interval_s: float
    deadline_s: float
    parallel: int
    window_s: float
    capacity: int
    """How many probes fit the window: parallel x whole deadlines after the start delay."""
    sources: list[str]
    targets: list[ProbeTarget] = field(default_factory=list)
    cut: list[CutTarget] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def planned(self) -> int:
        return sum(probes_for(target, self.sources) for target in self.targets)


def payload_sizes(mtu: int | None, small: int) -> dict[str, int]:
    """A small echo, the largest that fits the MTU, and one byte more."""
    if mtu is None:
        return {"small": small}
    return {
        "small": small,
        "under-mtu": mtu - ICMP_HEADERS,
        "over-mtu": mtu - ICMP_HEADERS + 1,
    }


def probes_for(target: ProbeTarget, sources: Sequence[str]) -> int:
    """Probes one target costs: each size from each source namespace for an echo; one
    datagram from the host namespace for a VXLAN port."""
    return 1 if target.kind == "vxlan-port" else len(SIZES) * len(sources)


def _ring_key(name: str) -> bytes:
    return hashlib.blake2b(name.encode(), digest_size=8).digest()


def ring_peers(names: Sequence[str], peers: int) -> dict[str, list[str]]:
    """Each node's K successors on the hash ring (all other nodes when K >= n - 1)."""
    ring = sorted(dict.fromkeys(names), key=lambda name: (_ring_key(name), name))
    count = min(max(peers, 0), max(len(ring) - 1, 0))
    return {
        name: [ring[(index + step) % len(ring)] for step in range(1, count + 1)]
        for index, name in enumerate(ring)
    }


def window_capacity(settings: ProbeSettings, window_s: float) -> int:
    waves = math.floor(max(0.0, window_s - settings.start_delay_s) / settings.deadline_s + 1e-9)
    return waves * settings.parallel


def _targets_of(peer: NodeFacts) -> list[ProbeTarget]:
    targets = []
    if peer.gateway:
        targets.append(ProbeTarget("node-gateway", peer.gateway, peer.name))
    if peer.pod_ip:
        targets.append(ProbeTarget("pod", peer.pod_ip, peer.name, pod=peer.pod))
    if peer.vxlan_address:
        targets.append(ProbeTarget("vxlan-port", peer.vxlan_address, peer.name, peer.vxlan_port))
    return targets


def plan_node(
    node: str,
    peers: Sequence[str],
    facts: ClusterFacts,
    settings: ProbeSettings,
    window_s: float,
) -> NodeProbePlan:
    plan = NodeProbePlan(
        node=node,
        mtu=facts.mtu,
        mtu_source=facts.mtu_source,
        sizes=payload_sizes(facts.mtu, settings.small_size),
        count=settings.count,
        interval_s=settings.interval_s,
        deadline_s=settings.deadline_s,
        parallel=settings.parallel,
        window_s=window_s,
        capacity=window_capacity(settings, window_s),
        sources=list(settings.sources),
    )
    used = 0
    for peer_name in peers:
        peer = facts.nodes.get(peer_name)
        if peer is None:
            continue
        found = _targets_of(peer)
        if not found:
            plan.problems.append(f"{peer_name}: no podCIDR, Running pod or VXLAN address to probe")
        for target in found:
            cost = probes_for(target, plan.sources)
            if used + cost > plan.capacity:
                reason = (
                    f"does not fit the {window_s:g} s window: {plan.capacity} probes at most "
                    f"({settings.parallel} at a time, {settings.deadline_s:g} s each)"
                )
                plan.cut.append(CutTarget(target, reason))
                continue
            used += cost
            plan.targets.append(target)
    return plan


def plan_cluster(
    nodes: Sequence[str],
    facts: ClusterFacts,
    settings: ProbeSettings,
    peers: int,
    window_s: float,
) -> Mapping[str, NodeProbePlan]:
    """A plan for each collected node that is also a Node object; peers are drawn from
    every Node object, so a node collected alone still probes the others."""
    ring = ring_peers(list(facts.nodes), peers)
    return {
        node: plan_node(node, ring[node], facts, settings, window_s)
        for node in nodes
        if node in ring
    }
