"""Walk one pair per class (plan.py), and gather the hops where walks die into causes.

A cause is a hop: the node, host or pod namespace, step and device where packets die.
Pairs that die there, whatever their class, are one cause; its weight is how many
ordered pairs of endpoints it breaks. A walk that ends `unknown` (a rule the netfilter
evaluator cannot decide, rules not collected) is no cause: it is what could not be
checked, reported as such.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from needle.analyzer.backends.base import node_ip
from needle.analyzer.model.entities import HOST, Model, Pod
from needle.analyzer.reach.grid import Grid, GridOutcome
from needle.analyzer.reach.plan import TO_OWN_SERVICE, Member, PairClass, classes
from needle.analyzer.reach.signatures import NodeFacts
from needle.analyzer.trace.endpoints import Endpoint
from needle.analyzer.trace.hops import NftSource
from needle.analyzer.trace.routing import decide
from needle.analyzer.trace.walk import Hop, Packet, Path, Walker

SMALL = 84  # ping's default: 56 bytes of payload
# a class broken the same way on more nodes than this is walked again for this many;
# the finding counts the others
MAX_NODES_A_CAUSE = 20
MAX_EXAMPLES = 3
# steps whose cause is a node's ruleset, not the device the packet came in or goes out by
CHAIN_STEPS = frozenset({"filter", "nat"})


@dataclass
class Cause:
    node: str
    scope: str  # "host" or "pod"
    step: str
    interface: str | None
    hop: Hop
    path: Path | None = None  # the first walk that died here
    pairs: int = 0
    kinds: set[str] = field(default_factory=set)
    pods: set[str] = field(default_factory=set)  # the pods whose namespace is the hop
    examples: list[str] = field(default_factory=list)
    sizes: set[int] = field(default_factory=set)
    # a class broken on more nodes than were walked: the others, by name
    also: set[str] = field(default_factory=set)
    # the nodes at the other end of the pairs it breaks
    peers: set[str] = field(default_factory=set)
    # the report's findings that tell of it (findings.merge)
    findings: list[Any] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str, str, str | None]:
        return (self.node, self.scope, self.step, self.interface)


@dataclass
class Unknown:
    node: str
    step: str
    reason: str
    pairs: int = 0
    # every node whose pairs stopped there alike (the reason names the walked one)
    nodes: set[str] = field(default_factory=set)


@dataclass
class Reachability:
    causes: dict[tuple[str, str, str, str | None], Cause] = field(default_factory=dict)
    unknown: dict[tuple[str, str, str], Unknown] = field(default_factory=dict)
    pairs: int = 0
    delivered: int = 0
    walks: int = 0
    classes: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "pairs": self.pairs,
            "delivered": self.delivered,
            "dropped": sum(cause.pairs for cause in self.causes.values()),
            "unknown": sum(item.pairs for item in self.unknown.values()),
            "classes": self.classes,
            "walks": self.walks,
            "not_checked": [
                {
                    "node": item.node,
                    "step": item.step,
                    "reason": item.reason,
                    "pairs": item.pairs,
                    "nodes": len(item.nodes | {item.node}),
                }
                for item in sorted(self.unknown.values(), key=lambda u: -u.pairs)
            ],
        }


class Judge:
    def __init__(
        self, model: Model, nft: NftSource | None = None, grid: Grid | None = None
    ) -> None:
        self.model = model
        self.grid = grid  # each node pair's verdict, when the report draws it
        self.nft = nft
        self.nft_parsed: dict[str, Any] = {}  # each node's nft ruleset parsed once
        self.pods: dict[str, Pod] = {pod.ref: pod for pod in model.pods}
        self.walkers: dict[tuple[int, str, int | None], Walker] = {}
        self.result = Reachability()

    # -- endpoints and walks ---------------------------------------------------------

    def _endpoint(self, node: str, pod_ref: str | None) -> Endpoint:
        if pod_ref is None:
            found = self.model.nodes[node]
            return Endpoint("node", node, node, node_ip(found) or "", found.host)
        pod = self.pods[pod_ref]
        owner = self.model.nodes.get(node)
        if owner is not None:
            owner.ensure_pod_side()
        return Endpoint("pod", pod_ref, node, pod.ip or "", pod.netns)

    def _walker(self, size: int, proto: str, port: int | None) -> Walker:
        key = (size, proto, port)
        walker = self.walkers.get(key)
        if walker is None:
            packet = Packet(proto=proto, size=size, port=port)
            walker = self.walkers[key] = Walker(self.model, packet, self.nft, self.nft_parsed)
        return walker

    def walk(
        self, source: Endpoint, target: Endpoint, proto: str = "icmp", port: int | None = None
    ) -> tuple[Path, int]:
        """The small packet's path; when it is delivered, the full-size packet's (the
        MTU of the sending pod's eth0, or of the receiving pod's when a node sends)."""
        self.result.walks += 1
        path = self._walker(SMALL, proto, port).walk(source, target)
        if path.verdict != "delivered":
            return path, SMALL
        full = _full_size(source, target)
        if full is None or full <= SMALL:
            return path, SMALL
        self.result.walks += 1
        return self._walker(full, proto, port).walk(source, target), full

    # -- causes ------------------------------------------------------------------------

    def record(
        self,
        path: Path,
        size: int,
        kind: str,
        weight: int,
        source: Endpoint,
        target: Endpoint,
        sides: tuple[Iterable[str], Iterable[str]] = ((), ()),
        alike: Iterable[str] = (),
        peers: Iterable[str] | None = None,
        cells: Iterable[tuple[str, str]] = (),
        rows: Iterable[tuple[str, Iterable[tuple[str, Any]]]] = (),
    ) -> Cause | None:
        """Count a walk's pairs: delivered, unknown, or to the cause where it died.
        `sides`: the pods the source and the destination stand for (their class);
        `cells`: the (source node, destination node) pairs they are between, and `rows`
        more of them, a source at a time (Grid.mark_rows)."""
        hop = path.failing
        if hop is None:
            self.result.delivered += weight
            return None
        if hop.verdict != "drop":
            key = (hop.node, hop.step, hop.detail)
            entry = self.result.unknown.setdefault(key, Unknown(hop.node, hop.step, hop.detail))
            entry.pairs += weight
            entry.nodes.update(alike)
            self._mark("unknown", key, path, size, source, target, cells, rows)
            return None
        side = _pod_side(hop, source, target)
        scope = "host" if side is None else "pod"
        interface = hop.interface if side is None or hop.netns != HOST else "host veth"
        if hop.step in CHAIN_STEPS:
            interface = None  # a ruleset's chain, whichever device the packet crossed
        cause_key = (hop.node, scope, hop.step, interface)
        cause = self.result.causes.get(cause_key)
        if cause is None:
            cause = self.result.causes[cause_key] = Cause(
                hop.node, scope, hop.step, interface, hop, path
            )
        self._mark("dropped", cause_key, path, size, source, target, cells, rows)
        cause.pairs += weight
        if peers is None:
            peers = (target.node if hop.node == source.node else source.node,)
        cause.peers.update(peers)
        cause.kinds.add(kind)
        cause.sizes.add(size)
        if side is not None:
            cause.pods.update(sides[side])
        if len(cause.examples) < MAX_EXAMPLES:
            cause.examples.append(f"{source.name} -> {target.name} ({size} bytes)")
        return cause

    def _mark(
        self,
        verdict: str,
        key: tuple[Any, ...],
        path: Path,
        size: int,
        source: Endpoint,
        target: Endpoint,
        cells: Iterable[tuple[str, str]],
        rows: Iterable[tuple[str, Iterable[tuple[str, Any]]]] = (),
    ) -> None:
        if self.grid is not None:
            outcome = GridOutcome(verdict, key, path, source.name, target.name, size)
            code = self.grid.code(outcome)
            self.grid.mark(cells, code)
            self.grid.mark_rows(rows, code)

    def mark_like(self, cause: Cause, cells: Iterable[tuple[str, str]]) -> None:
        """Cells whose pairs die as `cause`'s did, counted on it without a walk."""
        code = self.grid.known("dropped", cause.key) if self.grid is not None else None
        if self.grid is not None and code is not None:
            self.grid.mark(cells, code)


def _pod_side(hop: Hop, source: Endpoint, target: Endpoint) -> int | None:
    """0 or 1 when the hop is the source's or the destination's own (its namespace, or
    its veth's host end), None when it is a node's. A packet delivered to another pod
    than the one it is for is the destination's loss, wherever it arrived."""
    if hop.step == "deliver" and hop.netns != HOST and target.kind == "pod":
        return 1
    for number, end in enumerate((source, target)):
        if end.kind != "pod" or end.namespace is None or end.namespace.is_host:
            continue
        if hop.netns == end.name:
            return number
        pod = end.namespace.pod
        veth = pod.host_veth if pod is not None else None
        if hop.netns == HOST and veth is not None and hop.interface == veth.name:
            return number
    return None


def _full_size(source: Endpoint, target: Endpoint) -> int | None:
    """The largest packet the sender sends: a pod's, its eth0's MTU; a node's, the
    smaller of its route's device's MTU and the receiving pod's eth0's (the largest the
    pod can take; above it, path-MTU discovery shrinks the node's packets)."""
    space = source.namespace
    if space is None:
        return None
    if source.kind == "pod":
        return _eth0_mtu(source)
    decision = decide(space, source.ip, target.ip)
    device = space.interfaces.get(decision.route.dev or "") if decision.route else None
    mtus = [mtu for mtu in (device.mtu if device else None, _eth0_mtu(target)) if mtu]
    return min(mtus) if mtus else None


def _eth0_mtu(end: Endpoint) -> int | None:
    space = end.namespace
    if space is None:
        return None
    mtus = [item.mtu for item in space.interfaces.values() if end.ip in item.ipv4]
    return next((mtu for mtu in mtus if mtu), None)


def _member_pairs(member: Member) -> Iterator[tuple[str | None, str, str, int]]:
    """(source pod or None, destination node, destination pod, weight) of the member's
    first pair toward each destination node."""
    sources = member.source_pods or [None]
    for (node, refs), weight in zip(member.destinations, member.weights, strict=True):
        yield sources[0], node, refs[0], weight


def judge(
    model: Model,
    facts: list[NodeFacts],
    found: dict[tuple[object, ...], PairClass] | None = None,
    nft: NftSource | None = None,
    grid: Grid | None = None,
) -> Reachability:
    """Every pair of the cluster, by class (`found`: the classes, when made already;
    `nft`: each node's nft ruleset, for the netfilter hooks iptables-save does not show;
    `grid`: filled with each node pair's verdict)."""
    found = classes(facts) if found is None else found
    judge = Judge(model, nft, grid)
    judge.result.classes = len(found)
    for pair_class in found.values():
        judge.result.pairs += pair_class.weight
        _judge_class(judge, pair_class)
    return judge.result


def _judge_services(judge: Judge, pair_class: PairClass) -> None:
    """Pods to the Service ports they back: one walk for the class, again on each node
    where it dies (the hop is the pod's node's: its bridge port, its nat rules)."""
    ones = list(zip(pair_class.members, pair_class.services, strict=True))
    member, service = ones[0]

    def walk(item: Member, port: object) -> tuple[Path, int, Endpoint, Endpoint]:
        source = judge._endpoint(item.source, item.source_pods[0])
        ip, proto, number, name = (
            getattr(port, "ip", ""),
            str(getattr(port, "proto", "tcp")),
            getattr(port, "port", None),
            str(getattr(port, "service", "")),
        )
        target = Endpoint("service", name, item.source, ip, None)
        path, size = judge.walk(source, target, proto, number)
        return path, size, source, target

    path, size, source, target = walk(member, service)
    hop = path.failing
    if hop is None or hop.verdict != "drop":
        alike = {item.source for item, _ in ones} if hop is not None else set()
        cells = ((item.source, item.source) for item, _ in ones)
        judge.record(
            path, size, pair_class.kind, pair_class.weight, source, target, alike=alike, cells=cells
        )
        return
    by_node: dict[str, list[tuple[Member, object]]] = {}
    for item, port in ones:
        by_node.setdefault(item.source, []).append((item, port))
    _refine(
        judge,
        pair_class.kind,
        {
            node: Share(
                len(entries),
                lambda first=entries[0]: walk(*first),
                ([ref for item, _ in entries for ref in item.source_pods], []),
                (),
                ((node, node),),
            )
            for node, entries in by_node.items()
        },
    )


@dataclass
class Share:
    """One node's part of a class that dies there: walked again for its own cause."""

    weight: int  # the pairs it stands for
    walk: Callable[[], tuple[Path, int, Endpoint, Endpoint]]
    sides: tuple[Iterable[str], Iterable[str]]  # the pods the walk's two ends stand for
    peers: Iterable[str]  # the nodes on the other end of its pairs
    cells: Iterable[tuple[str, str]]  # (source node, destination node) of its pairs


def _refine(judge: Judge, kind: str, shares: dict[str, Share]) -> None:
    """Each node's share walked and recorded on its own, up to MAX_NODES_A_CAUSE; the
    rest counted on the first cause (as nodes alike)."""
    first: Cause | None = None
    for number, (node, share) in enumerate(sorted(shares.items(), key=lambda item: item[0])):
        if number >= MAX_NODES_A_CAUSE and first is not None:
            first.also.add(node)
            first.pairs += share.weight
            judge.mark_like(first, share.cells)
            continue
        path, size, source, target = share.walk()
        cause = judge.record(
            path,
            size,
            kind,
            share.weight,
            source,
            target,
            share.sides,
            peers=share.peers,
            cells=share.cells,
        )
        first = first or cause


def _judge_class(judge: Judge, pair_class: PairClass) -> None:
    if pair_class.kind == TO_OWN_SERVICE:
        _judge_services(judge, pair_class)
        return
    member = pair_class.members[0]
    source_pod, target_node, target_pod, _ = next(_member_pairs(member))
    source = judge._endpoint(member.source, source_pod)
    target = judge._endpoint(target_node, target_pod)
    path, size = judge.walk(source, target)
    hop = path.failing
    if hop is None or hop.verdict != "drop":
        alike: set[str] = set()
        if hop is not None:  # the nodes in the hop's place in the other pairs of the class
            for item in pair_class.members:
                if hop.node == member.source:
                    alike.add(item.source)
                elif hop.node == target_node:
                    alike.update(node for node, _ in item.destinations)
        rows = ((item.source, item.destinations) for item in pair_class.members)
        judge.record(
            path, size, pair_class.kind, pair_class.weight, source, target, alike=alike, rows=rows
        )
        return
    # the class dies at a hop of the source's node or of the destination's: each node
    # of that side gets its own walk, finding and count
    shares: dict[str, list[tuple[Member, str | None, str, str, int]]] = {}
    for item in pair_class.members:
        for pod, node, ref, weight in _member_pairs(item):
            side = item.source if hop.node == member.source else node
            if hop.node not in (member.source, target_node):
                side = hop.node
            shares.setdefault(side, []).append((item, pod, node, ref, weight))
    _refine(judge, pair_class.kind, {side: _share(judge, side, e) for side, e in shares.items()})


def _share(
    judge: Judge, side: str, entries: list[tuple[Member, str | None, str, str, int]]
) -> Share:
    item, pod, node, ref, _ = entries[0]

    def walk() -> tuple[Path, int, Endpoint, Endpoint]:
        source, target = judge._endpoint(item.source, pod), judge._endpoint(node, ref)
        path, size = judge.walk(source, target)
        return path, size, source, target

    return Share(
        _share_weight(entries, side),
        walk,
        (item.source_pods, dict(item.destinations).get(node, [])),
        {other if it.source == side else it.source for it, _, other, _, _ in entries},
        [(it.source, other) for it, _, other, _, _ in entries],
    )


def _share_weight(entries: list[tuple[Member, str | None, str, str, int]], side: str) -> int:
    """Pairs of a class that one node's share stands for: all of a source's pairs, or
    the pairs toward one destination node."""
    total = 0
    seen: set[int] = set()
    for item, _pod, _node, _ref, _weight in entries:
        if id(item) in seen:
            continue
        seen.add(id(item))
        for (node, _refs), weight in zip(item.destinations, item.weights, strict=True):
            if item.source == side or node == side:
                total += weight
    return total
