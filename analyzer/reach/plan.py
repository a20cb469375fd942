"""From every node's signatures to the few walks that stand for all pairs.

A pair's class is what decides its path: the source pod's class and node profile, the
pair signature between the nodes (and, where the receiver's rp_filter is strict, the
reverse one), the destination's profile and pod class. Pairs of one class take the same
hops relative to their nodes, so one walk stands for the class; a class whose walk fails
is walked again once per node at fault (up to MAX_NODES_A_CAUSE), so that each finding
names its own node and values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from needle.analyzer.reach.signatures import NodeFacts

# pair kinds, as the report names them
POD_TO_POD = "pod to pod on another node"
SAME_NODE = "pod to pod on the same node"
NODE_TO_POD = "node to pod on another node"
TO_OWN_SERVICE = "pod to a Service it backs"


class Interner:
    """Small integers for equal signatures (a tuple compared once, then an int)."""

    def __init__(self) -> None:
        self.ids: dict[Any, int] = {}

    def __call__(self, value: Any) -> int:
        found = self.ids.get(value)
        if found is None:
            found = self.ids[value] = len(self.ids)
        return found


@dataclass
class Member:
    """Pairs of a class between one source node and some destination nodes."""

    source: str
    source_pods: list[str]  # empty: the node itself
    destinations: list[tuple[str, list[str]]]  # (node, pods)
    # the pairs toward each destination (a pod is no pair with itself); None: every
    # source pod with every destination pod (made when asked: 10^6 of them at scale)
    given_weights: list[int] | None = None

    @property
    def weights(self) -> list[int]:
        if self.given_weights is None:
            sources = len(self.source_pods) or 1
            self.given_weights = [sources * len(refs) for _, refs in self.destinations]
        return self.given_weights


@dataclass
class PairClass:
    kind: str
    weight: int = 0  # ordered pairs of endpoints it stands for
    members: list[Member] = field(default_factory=list)
    # TO_OWN_SERVICE: each member's Service port (analyzer/reach/services.Backed)
    services: list[Any] = field(default_factory=list)


def classes(facts: list[NodeFacts]) -> dict[tuple[Any, ...], PairClass]:
    """Every pair of the cluster in its class."""
    names = sorted(fact.name for fact in facts)
    by_name = {fact.name: fact for fact in facts}
    index_name = dict(enumerate(sorted(by_name)))
    profiles, pods, pairs = Interner(), Interner(), Interner()
    profile_of = {fact.name: profiles(fact.profile) for fact in facts}
    pod_classes = {
        fact.name: [(pods(signature), refs) for signature, refs in fact.pod_classes]
        for fact in facts
    }
    strict = {fact.name for fact in facts if fact.needs_reverse}
    # where a receiver filters by the reverse path, its signature toward the source counts
    reverse: dict[tuple[str, str], int] = {}
    for name in strict:
        for signature, peers in by_name[name].peers.items():
            number = pairs(signature)
            for peer in peers:
                reverse[(name, index_name[peer])] = number
    profile_by_index = [profile_of[index_name[i]] for i in range(len(index_name))]
    strict_index = {i for i, name in index_name.items() if name in strict}
    # per node: (its pod class, (node, the class's pods)) made once, shared by every member
    destinations_of = [
        [(number, (index_name[i], refs), len(refs)) for number, refs in pod_classes[index_name[i]]]
        for i in range(len(index_name))
    ]
    found: dict[tuple[Any, ...], PairClass] = {}

    def add(key: tuple[Any, ...], kind: str, weight: int, member: Member) -> None:
        entry = found.get(key)
        if entry is None:
            entry = found[key] = PairClass(kind)
        entry.weight += weight
        entry.members.append(member)

    for name in names:
        fact = by_name[name]
        mine = pod_classes[name]
        # each pod to each Service port it backs: alike when pod class, node profile and
        # protocol are (the Service's own rules are the profile's, written alike)
        for number, ref, service in fact.backs:
            key = ("service", profile_of[name], mine[number][0], service.proto)
            entry = found.get(key)
            if entry is None:
                entry = found[key] = PairClass(TO_OWN_SERVICE)
            entry.weight += 1
            entry.members.append(Member(name, [ref], [(name, [service.ip])], [1]))
            entry.services.append(service)
        # pods of one node, to each other
        for source_class, source_refs in mine:
            for target_class, target_refs in mine:
                same = source_class == target_class
                weight = len(source_refs) * (len(target_refs) - 1 if same else len(target_refs))
                if weight <= 0:
                    continue
                key = ("same", profile_of[name], source_class, target_class)
                targets = target_refs if not same else target_refs[1:] + target_refs[:1]
                member = Member(name, source_refs, [(name, targets)], [weight])
                add(key, SAME_NODE, weight, member)
        for signature, peers in fact.peers.items():
            number = pairs(signature)
            groups: dict[tuple[int, int | None], list[int]] = {}
            for peer in peers:
                back = reverse.get((index_name[peer], name)) if peer in strict_index else None
                groups.setdefault((profile_by_index[peer], back), []).append(peer)
            for (peer_profile, back), group in groups.items():
                by_target: dict[int, tuple[list[tuple[str, list[str]]], list[int]]] = {}
                for peer in group:
                    for target_class, destination, size in destinations_of[peer]:
                        held = by_target.get(target_class)
                        if held is None:
                            held = by_target[target_class] = ([], [0])
                        held[0].append(destination)
                        held[1][0] += size
                for target_class, (destinations, (targets,)) in by_target.items():
                    common = (profile_of[name], number, back, peer_profile, target_class)
                    for source_class, source_refs in mine:
                        add(
                            ("pod", source_class, *common),
                            POD_TO_POD,
                            len(source_refs) * targets,
                            Member(name, source_refs, destinations),
                        )
                    add(("node", *common), NODE_TO_POD, targets, Member(name, [], destinations))
    return found
