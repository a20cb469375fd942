"""What a node does with pod traffic, written so that nodes that behave alike compare equal.

Three signatures, each built in the process that holds the node's pod side:
- the node's *profile*: its host devices, the routes that are not about one peer or one
  pod, its policy rules, the sysctls the walk reads and its iptables rules, relative to
  the node (canon.py);
- each pod's *signature*: its namespace (devices, routes, neighbours), its host veth,
  bridge port, sysctls, the host's neighbour and FDB entries for it, relative to the pod
  and its node;
- each peer's *pair signature*: the route the node takes to the peer's pods, the
  neighbour and FDB entries it uses, the underlay route to the peer and the peer's
  overlay device, relative to the two nodes.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from needle.analyzer.backends import backend_of
from needle.analyzer.backends.base import node_ip
from needle.analyzer.model.entities import Model, Node, Pod
from needle.analyzer.parsers.ip_route import Route
from needle.analyzer.reach import canon, pod_rows
from needle.analyzer.trace.hops import NftSource
from needle.analyzer.trace.routing import _span, decide

ALL_ZEROS = "00:00:00:00:00:00"
# the kernel's three rules: a namespace with only these routes by table main (and default)
_DEFAULT_PRIORITIES = frozenset({0, 32766, 32767})
_SKIPPED_TYPES = frozenset({"broadcast", "multicast", "anycast", "local", "nat"})
# sysctl names the walk reads, by the device's role
_DEVICE_SYSCTLS = ("forwarding", "rp_filter", "proxy_arp")


@dataclass
class NodeFacts:
    """One node's signatures, small enough to send from a worker process."""

    name: str
    profile: tuple[Any, ...]
    # the node's walks depend on the source's own address (a strict rp_filter, or
    # iptables filter rules naming pod or node addresses): its signature toward each
    # source joins the class
    needs_reverse: bool
    # (pod signature, the refs of the pods that have it), in a stable order
    pod_classes: list[tuple[tuple[Any, ...], list[str]]] = field(default_factory=list)
    # pair signature -> the indexes (in the model's sorted node names) of the peers
    peers: dict[tuple[Any, ...], Sequence[int]] = field(default_factory=dict)
    # (index of the pod's class in pod_classes, pod ref, Service port) of each of the
    # node's pods that backs a Service port (analyzer/reach/services.py)
    backs: list[tuple[int, str, Any]] = field(default_factory=list)
    # the node's distinct MTU chains, pod eth0 to the underlay (facts.MtuChain), when asked
    mtu_chains: list[Any] = field(default_factory=list)


@functools.lru_cache(maxsize=1 << 16)
def _ipv4_int(address: str | None) -> int | None:
    try:
        return int(ipaddress.IPv4Address(address)) if address else None
    except ValueError:
        return None


# where a route sits in a RouteIndex: (table, prefix length, network), or None when the
# index leaves it out
Placement = tuple[str, int, int] | None


def _placement(item: Route) -> Placement:
    if item.table not in ("main", "default") or item.cached or item.type in _SKIPPED_TYPES:
        return None
    if item.family == "inet6":
        return None
    span = _span(item.dst)
    return None if span is None else (item.table, span[1], span[0])


class RouteIndex:
    """Longest-prefix match over a namespace's tables main and default, as the kernel's
    three default rules do; a namespace with other policy rules asks routing.decide.
    `placements`: id(route) -> where it sits, shared by the indexes of one run (every
    node holds the same record for a peer's route: parsers/elements.py)."""

    def __init__(self, node: Node, placements: dict[int, Placement] | None = None) -> None:
        host = node.host
        assert host is not None
        self.host = host
        self.policy = any(r.priority not in _DEFAULT_PRIORITIES for r in host.rules)
        known = {} if placements is None else placements
        self.tables: dict[str, dict[int, dict[int, Route]]] = {"main": {}, "default": {}}
        tables = self.tables
        for item in host.routes:
            key = id(item)
            if key in known:
                placed = known[key]
            else:
                placed = known[key] = _placement(item)
            if placed is None:
                continue
            table, length, network = placed
            by_network = tables[table].get(length)
            if by_network is None:
                by_network = tables[table][length] = {}
            held = by_network.get(network)
            if held is None or (item.metric or 0) < (held.metric or 0):
                by_network[network] = item
        # per table, main then default: (mask, routes by network), longest prefix first
        self.order = [
            [
                ((0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF if length else 0, by_length[length])
                for length in sorted(by_length, reverse=True)
            ]
            for by_length in (self.tables["main"], self.tables["default"])
        ]

    def lookup(self, src: str, dst: str, dst_int: int | None) -> Route | None:
        if self.policy or dst_int is None:
            decision = decide(self.host, src, dst)
            return decision.route
        return self.match(dst_int)

    def match(self, dst_int: int) -> Route | None:
        """The route for `dst_int` where the three default rules are all there is."""
        for table in self.order:
            for mask, routes in table:
                found = routes.get(dst_int & mask)
                if found is not None:
                    break
            else:
                continue
            if found.type != "throw":  # a throw goes on to the next rule's table
                return found
        return None


def node_tokens(node: Node, model: Model) -> dict[str, str]:
    backend = backend_of(model)
    tokens = canon.ipv4_tokens("POD", node.pod_cidr)
    tokens[node.name] = "NODENAME"
    for address in (node_ip(node), node.api.internal_ip if node.api else None):
        if address:
            tokens[address] = "NODE"
            tokens[f"{address}/32"] = "NODE/32"
    overlay = backend.overlay_interface(node)
    if overlay is not None and overlay.mac:
        tokens[overlay.mac.lower()] = "OVERLAYMAC"
    host = node.host
    if host is not None:
        for item in host.interfaces.values():
            if item.kind == "bridge" and item.mac:
                tokens[item.mac.lower()] = "BRIDGEMAC"
    return tokens


def peer_tokens(node: Node, model: Model) -> dict[str, str]:
    backend = backend_of(model)
    tokens = canon.ipv4_tokens("PEER", node.pod_cidr)
    for address in (node_ip(node), node.api.internal_ip if node.api else None):
        if address:
            tokens[address] = "PEERNODE"
    overlay = backend.overlay_interface(node)
    if overlay is not None and overlay.mac:
        tokens[overlay.mac.lower()] = "PEERMAC"
    return tokens


def strict_rp_filter(node: Node) -> bool:
    values = [value for key, value in node.sysctls.items() if key.endswith(".rp_filter")]
    return any(value.strip() == "1" for value in values)


@dataclass(frozen=True)
class PodCidrs:
    """Every node's pod CIDR, and those two nodes or more hold (worked out once for every
    node's profile: 10^3 nodes each skip 10^3 peers' routes)."""

    every: frozenset[str]
    shared: frozenset[str]

    def others(self, own: str | None) -> frozenset[str]:
        """Every other node's pod CIDR (one this node shares too, when another holds it)."""
        if own is None or own not in self.every or own in self.shared:
            return self.every
        return self.every - {own}


def pod_cidrs(model: Model) -> PodCidrs:
    held = Counter(node.pod_cidr for node in model.nodes.values() if node.pod_cidr)
    return PodCidrs(frozenset(held), frozenset(cidr for cidr, count in held.items() if count > 1))


def profile(
    node: Node,
    model: Model,
    tokens: dict[str, str],
    nft_rules: list[str],
    cidrs: PodCidrs,
) -> tuple[Any, ...]:
    host = node.host
    if host is None:
        return ("no host namespace",)
    peer_routes = cidrs.others(node.pod_cidr)
    pod_routes = {
        pod.ip for pod in model.pods_by_node.get(node.name, []) if pod.ip and not pod.host_network
    }
    # pods' veths are each pod's own signature; a veth that is the node's uplink (the
    # lab's cable, a VM's) is the node's, and its addresses are what encap checks
    uplinks = {
        item.link.vxlan.dev
        for item in host.interfaces.values()
        if item.link.vxlan is not None and item.link.vxlan.dev
    } | {route.dev for route in host.routes if route.dst == "default" and route.dev}
    veths = {
        name
        for name, item in host.interfaces.items()
        if item.kind == "veth" and name not in uplinks
    }
    space = canon.namespace(
        host,
        tokens,
        skip_routes=peer_routes | pod_routes | {f"{ip}/32" for ip in pod_routes} | veths,
        skip_devices=veths,
    )
    devices = space[0]
    sysctls = tuple(
        sorted(
            (key, value.strip())
            for key, value in node.sysctls.items()
            if key.startswith("net.ipv4.") and not _is_veth_key(key, veths)
        )
    )
    zeros = tuple(
        sorted(
            repr(canon.fdb(entry, tokens))
            for entry in node.fdb
            if entry.mac.lower() == ALL_ZEROS and entry.dst
        )
    )
    return (
        devices,
        space[1],
        space[2],
        sysctls,
        zeros,
        "netfilter" in node.present,
        _netfilter(node, tokens),
        _nft_digest(nft_rules, tokens),
    )


def _is_veth_key(key: str, veths: set[str]) -> bool:
    parts = key.split(".")
    return len(parts) > 4 and parts[2] == "conf" and parts[3] in veths


def _netfilter(node: Node, tokens: dict[str, str]) -> tuple[str, ...]:
    """The node's iptables rules relative to the node, as a digest: 10^5 kube-proxy
    rules a node would make every profile as large as the ruleset."""
    ruleset = node.netfilter
    if ruleset is None:
        return ()
    digest = hashlib.blake2b(digest_size=16)
    count = 0
    for table in ruleset.table_names:  # type: ignore[attr-defined]
        for chain, policy in sorted(ruleset.policies(table).items()):  # type: ignore[attr-defined]
            digest.update(f"\0{table} {chain} {policy}\n".encode())
            for line in ruleset.lines(table, chain):  # type: ignore[attr-defined]
                digest.update(canon.text(line, tokens).encode())
                digest.update(b"\n")
                count += 1
    return (digest.hexdigest(), str(count))


# what differs between two nodes' identical rulesets: counters, and handles (`-a`)
_NFT_NOISE = re.compile(r"counter packets \d+ bytes \d+|# handle \d+")


def nft_lines(node: Node, nft: NftSource | None) -> list[str]:
    """The node's `nft list ruleset`, line by line without counters ([] without one)."""
    read = nft(node) if nft is not None else None
    if read is None:
        return []
    text = read[1].decode("utf-8", "replace")
    return [_NFT_NOISE.sub("", line).rstrip() for line in text.splitlines()]


def _nft_digest(lines: list[str], tokens: dict[str, str]) -> tuple[str, ...]:
    """The nft ruleset relative to the node, as a digest (as _netfilter's)."""
    if not lines:
        return ()
    digest = hashlib.blake2b(digest_size=16)
    for line in lines:
        digest.update(canon.text(line, tokens).encode())
        digest.update(b"\n")
    return (digest.hexdigest(), str(len(lines)))


class HostIndex:
    """A node's host entries for its own pods, by the key a pod's are looked up by (the
    same tables hold 10^3 peers' entries: a scan per pod would be quadratic)."""

    def __init__(self, node: Node, pods: list[Pod]) -> None:
        addresses = {pod.ip for pod in pods if pod.ip}
        addresses |= {f"{address}/32" for address in addresses}
        macs = {pod.eth0.mac.lower() for pod in pods if pod.eth0 is not None and pod.eth0.mac}
        self.tables = pod_rows.PodTables()
        self.fdb: dict[str, list[Any]] = {}
        for entry in node.fdb:
            mac = entry.mac.lower()
            if mac in macs:
                self.fdb.setdefault(mac, []).append(entry)
        self.neighbours: dict[str, list[Any]] = {}
        self.routes: dict[str, list[Route]] = {}
        host = node.host
        for item in host.neighbours if host is not None else ():
            if item.dst in addresses:
                self.neighbours.setdefault(item.dst, []).append(item)
        # by the pod's address: a route for it or for it as a /32
        for route in host.routes if host is not None else ():
            if route.dst in addresses:
                self.routes.setdefault(route.dst.removesuffix("/32"), []).append(route)
        self.sysctls = node.sysctls
        # an address two pod namespaces hold: which gets a packet is up to each sender's
        # learnt neighbour entry, which signatures leave out (see pod_signature)
        seen: set[str] = set()
        self.shared = False
        for namespace in node.pods_netns.values():
            held = {
                address.local
                for interface in namespace.interfaces.values()
                for address in interface.addresses
                if address.family == "inet"
            }
            held.discard("127.0.0.1")
            if not seen.isdisjoint(held):
                self.shared = True
                break
            seen |= held

    def device_sysctls(self, device: str) -> tuple[str | None, ...]:
        """The walk's sysctls of a host device (a pod's veth), None where unread."""
        key = device.replace(".", "/")
        get = self.sysctls.get
        return tuple([get(f"net.ipv4.conf.{key}.{name}") for name in _DEVICE_SYSCTLS])


def pod_signature(
    node: Node, pod: Pod, tokens: dict[str, str], index: HostIndex
) -> tuple[Any, ...]:
    space, eth0, veth = pod.netns, pod.eth0, pod.host_veth
    if space is None or eth0 is None:
        return ("no namespace",)
    ip = pod.ip
    mac = (eth0.link.address or "").lower()
    own: dict[str, str] = {}
    if ip:
        own[ip] = "POD"
        own[f"{ip}/32"] = "POD/32"
    if mac:
        own[mac] = "PODMAC"
    if veth is not None:
        own[veth.link.name] = "VETH"
        if veth.link.address:
            own[veth.link.address.lower()] = "VETHMAC"
    mine = {**tokens, **own}
    routes, neighbours = index.tables.of(space, mine, own)
    inside = (pod_rows.interfaces(space, mine), routes)
    outside: tuple[Any, ...] = ()
    host = node.host
    if veth is not None and host is not None:
        name = veth.link.name
        outside = (
            canon.interface(veth, mine),
            canon.port(node.bridge_ports.get(name)),
            index.device_sysctls(name),
        )
    held = index.fdb.get(mac)
    fdb = canon.unordered([canon.fdb(entry, mine) for entry in held]) if held else ()
    host_side: tuple[Any, ...] = ()
    if host is not None and ip:
        found = index.neighbours.get(ip)
        routes = index.routes.get(ip)
        host_side = (
            canon.unresolved_neighbours(found, mine) if found else (),
            canon.unordered([canon.route(item, mine) for item in routes]) if routes else (),
        )
    # on a node where two pods hold one address, learnt neighbour entries decide which
    # gets a packet: each pod there is a class of its own (rare; walks stay exact)
    alone = pod.ref if index.shared else None
    return (inside, neighbours, outside, fdb, host_side, pod.host_network, alone)


class PairShapes:
    """The pair shapes of one process's signers. Every node holds the same route,
    neighbour and FDB record for a peer (one record per distinct text: parsers/
    elements.py), so the shape made of the same records for the same peer is made once
    and the other 10^6 pairs find it by the records' identity (they live as long as the
    model, which outlives the signers). Equal shapes are one object, so pairs group by
    identity instead of hashing a nested tuple each."""

    def __init__(self) -> None:
        self.by_inputs: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        self.canonical: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        # an underlay route's part of a shape, by its values (each node's own record)
        self.underlays: dict[tuple[Any, ...], int] = {}
        self.placements: dict[int, Placement] = {}  # for the signers' RouteIndex

    def one(self, shape: tuple[Any, ...]) -> tuple[Any, ...]:
        return self.canonical.setdefault(shape, shape)


NO_ROUTE = ("no route",)


class PairSigner:
    """Pair signatures of one node toward each peer (10^6 at 1,000 nodes: what the
    node's entries say is worked out once, in __init__, and each pair only looks up).
    Signatures are shared objects of `shapes`: equal ones are the same object."""

    def __init__(
        self,
        node: Node,
        holders: dict[str, Node],
        nft_rules: list[str],
        shapes: PairShapes,
    ) -> None:
        self.holders = holders
        self.shapes = shapes
        self.index = RouteIndex(node, shapes.placements)
        host = node.host
        assert host is not None
        # (next hop, device) -> the entry (the last one, as `ip neigh replace` leaves it)
        self.neighbours: dict[tuple[str | None, str | None], Any] = {
            (item.dst, item.dev): item for item in host.neighbours
        }
        # (device, MAC) -> the first entry with an underlay address
        self.fdb: dict[tuple[str | None, str], Any] = {}
        for entry in node.fdb:
            if entry.dst:
                self.fdb.setdefault((entry.dev, entry.mac.lower()), entry)
        self.source = node_ip(node) or ""
        self.overlays = {name for name, item in host.interfaces.items() if item.kind == "vxlan"}
        self.locals = {address for item in host.interfaces.values() for address in item.ipv4}
        self.literals = filter_literals(node, nft_rules)
        self._underlays: dict[int, int] = {}  # id(route) -> its class in shapes.underlays

    def sign(self, peer: Node, peer_facts: PeerFacts) -> tuple[Any, ...]:
        # 10^6 calls at 1,000 nodes: the memo's lookups spelled out
        index = self.index
        route = index.lookup(self.source, peer_facts.sample, peer_facts.sample_int)
        if route is None:
            return NO_ROUTE
        dev, gateway = route.dev, route.gateway
        if dev is None and route.nexthops:
            dev, gateway = route.nexthops[0].dev, route.nexthops[0].gateway
        nexthop = gateway or peer_facts.sample
        neighbour = self.neighbours.get((nexthop, dev))
        if dev in self.overlays:
            mac = (neighbour.lladdr or "").lower() if neighbour is not None else ""
            fdb = self.fdb
            entry = fdb.get((dev, mac)) or fdb.get((dev, ALL_ZEROS))
            if entry is None:
                under = holder = None
            else:
                outer = entry.dst
                under = index.lookup(self.source, outer, _ipv4_int(outer))
                holder = self._holder(outer, peer)
            underlay = -1 if under is None else self._underlays.get(id(under))
            if underlay is None:
                underlay = self._underlay(under)
            inputs: tuple[Any, ...] = (
                id(route),
                id(neighbour),
                id(entry),
                underlay,
                holder,
                id(peer_facts),
            )
        else:
            entry = under = None
            holder = self._holder(nexthop, peer)
            inputs = (id(route), id(neighbour), holder, id(peer_facts))
        shapes = self.shapes
        shape = shapes.by_inputs.get(inputs)
        if shape is None:
            shape = shapes.by_inputs[inputs] = shapes.one(
                self._shape(route, dev, gateway, neighbour, entry, under, holder, peer_facts)
            )
        if self.literals:
            literals = tuple(i for i, span in enumerate(self.literals) if peer_facts.within(span))
            shape = shapes.one((*shape, literals))
        return shape

    def _underlay(self, route: Route | None) -> int:
        """The class of an underlay route's part of a shape (its values, as they read)."""
        if route is None:
            return -1
        known = self._underlays.get(id(route))
        if known is None:
            values = (route.type, route.dev, route.gateway, route.dst)
            underlays = self.shapes.underlays
            known = self._underlays[id(route)] = underlays.setdefault(values, len(underlays))
        return known

    def _shape(
        self,
        route: Route,
        dev: str | None,
        gateway: str | None,
        neighbour: Any,
        entry: Any,
        under: Route | None,
        holder: str | None,
        peer_facts: PeerFacts,
    ) -> tuple[Any, ...]:
        get = peer_facts.tokens.get
        dst = route.dst
        shape: tuple[Any, ...] = (
            route.type,
            route.table,
            dev,
            get(gateway or "", gateway),
            get(dst, dst),
            "onlink" in route.flags,
        )
        if neighbour is None:
            shape += (None,)
        else:
            mac = (neighbour.lladdr or "").lower()
            shape += ((canon.state_class(tuple(neighbour.state)), get(mac, mac)),)
        if dev in self.overlays:
            if entry is None:
                shape += (None,)
            else:
                lower, outer = entry.mac.lower(), entry.dst
                shape += (
                    (get(lower, entry.mac), get(outer, outer), entry.port, entry.state),
                    None
                    if under is None
                    else (under.type, under.dev, under.gateway, get(under.dst, under.dst)),
                    holder,
                )
        else:
            shape += (holder,)
        return (*shape, peer_facts.constant)

    def _holder(self, address: str, peer: Node) -> str:
        """Which node the walk hands a packet for `address` to: the peer, this node or
        another (a duplicate address, a stale entry)."""
        if address in self.locals:
            return "self"
        holder = self.holders.get(address)
        if holder is None:
            return "none"
        return "peer" if holder is peer else "other"


def address_holders(model: Model) -> dict[str, Node]:
    """Address -> the node the walk hands it to (trace's rule: the first node holding it
    on its host namespace, else the node the API gives that IP)."""
    holders: dict[str, Node] = {}
    named: dict[str, Node] = {}
    for node in model.nodes.values():
        for item in node.host.interfaces.values() if node.host is not None else ():
            for address in item.ipv4:
                holders.setdefault(address, node)
        api = node.api
        for address in (api.internal_ip, api.public_ip) if api is not None else ():
            if address:
                named.setdefault(address, node)
    return {**named, **holders}


@dataclass
class PeerFacts:
    """What a node's pair signatures need of a peer, computed once per peer."""

    tokens: dict[str, str]
    sample: str  # an address of the peer's pods
    sample_int: int | None
    # the peer's overlay device and the device holding its IP, as its peers see them: a
    # digest, since each of 10^6 pair signatures holds it and a tuple hashes anew each time
    constant: str
    spans: tuple[tuple[int, int], ...] = ()  # (network, mask) of its node IP and pod CIDR

    def within(self, span: tuple[int, int]) -> bool:
        """Whether a prefix an iptables rule names overlaps the peer's addresses."""
        network, mask = span
        return any(
            network & (mask & theirs) == address & (mask & theirs) for address, theirs in self.spans
        )


def peer_facts(model: Model, node: Node) -> PeerFacts:
    backend = backend_of(model)
    tokens = peer_tokens(node, model)
    pods = [p for p in model.pods_by_node.get(node.name, []) if p.ip and not p.host_network]
    sample = pods[0].ip if pods and pods[0].ip else ""
    if not sample and node.pod_cidr:
        try:
            sample = str(ipaddress.IPv4Network(node.pod_cidr, strict=False).network_address + 2)
        except ValueError:
            sample = ""
    overlay = backend.overlay_interface(node)
    address = node_ip(node)
    ingress = None
    if node.host is not None and address:
        holding = next(
            (item for item in node.host.interfaces.values() if address in item.ipv4), None
        )
        ingress = None if holding is None else canon.interface(holding, tokens)[:5]
    spans = [span for span in (_prefix(address), _prefix(node.pod_cidr)) if span is not None]
    return PeerFacts(
        tokens,
        sample,
        _ipv4_int(sample),
        _digest((None if overlay is None else canon.interface(overlay, tokens), ingress)),
        tuple(spans),
    )


def _digest(value: tuple[Any, ...]) -> str:
    """A canonical tuple (strings, numbers, None, tuples) as a short key; the same in
    every worker, as the classes compare signatures made in different processes."""
    return hashlib.blake2b(repr(value).encode(), digest_size=16).hexdigest()


def _prefix(text: str | None) -> tuple[int, int] | None:
    try:
        network = ipaddress.IPv4Network(text, strict=False) if text else None
    except ValueError:
        return None
    return None if network is None else (int(network.network_address), int(network.netmask))


def filter_literals(node: Node, nft_rules: list[str]) -> tuple[tuple[int, int], ...]:
    """The IPv4 prefixes the node's iptables filter table names, and its nft ruleset (all
    of it: an nft chain filters by its hook, whatever its table is called); a rule that
    takes or drops one peer's traffic splits that peer's pairs from the others."""
    ruleset = node.netfilter
    lines: list[str] = list(nft_rules)
    if ruleset is not None and "filter" in ruleset.table_names:  # type: ignore[attr-defined]
        for chain in ruleset.policies("filter"):  # type: ignore[attr-defined]
            lines.extend(ruleset.lines("filter", chain))  # type: ignore[attr-defined]
    found: set[tuple[int, int]] = set()
    for line in lines:
        for match in canon.IPV4.finditer(line):
            span = _prefix(match.group(0))
            if span is not None:
                found.add(span)
    return tuple(sorted(found))
