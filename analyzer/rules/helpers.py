"""Helper functions rules call from CEL: indexed lookups into the model and CIDR math.

Every helper answers from a dictionary built once (never a scan per call), and never
raises on odd data: a malformed CIDR in a bundle is "no match", not a crashed rule.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from needle.analyzer.backends import Backend, ExpectedRoute, backend_of
from needle.analyzer.backends.base import node_ip, pod_cidr_network
from needle.analyzer.backends.flannel import ENCAP_OVERHEAD, ENCAP_OVERHEAD_IPV6
from needle.analyzer.model.entities import Model, Node, normalize_cidr
from needle.analyzer.parsers.ip_route import Route
from needle.analyzer.parsers.uname import kernel_version
from needle.analyzer.rules.cel_adapter import HelperFunction


@lru_cache(maxsize=65536)
def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


@lru_cache(maxsize=65536)
def _span(text: str) -> tuple[int, int, int] | None:
    """(IP version, first address, last address) as integers: pair rules compare 10^6
    CIDR pairs, and integer comparisons are ~10x cheaper than ipaddress objects."""
    network = _network(text)
    if network is None:
        return None
    first = int(network.network_address)
    return network.version, first, first + network.num_addresses - 1


def cidr_contains(outer: str, inner: str) -> bool:
    """True when every address of `inner` (a CIDR or an address, with or without /len)
    lies in `outer`."""
    a, b = _span(outer), _span(inner)
    return a is not None and b is not None and a[0] == b[0] and a[1] <= b[1] and b[2] <= a[2]


def cidrs_overlap(a: str, b: str) -> bool:
    left, right = _span(a), _span(b)
    return (
        left is not None
        and right is not None
        and left[0] == right[0]
        and left[1] <= right[2]
        and right[1] <= left[2]
    )


@lru_cache(maxsize=65536)
def cidr_network(cidr: str) -> str:
    network = _network(cidr)
    return str(network.network_address) if network is not None else ""


@lru_cache(maxsize=4096)
def _kernel(release: str) -> tuple[int, ...]:
    return kernel_version(release)


def kernel_in(release: str, lowest: str, below: str) -> bool:
    """`lowest` <= `release` < `below`, comparing the numbers releases start with
    ("5.4.0-104-generic" is (5, 4, 0, 104): after upstream 5.4.0, before 5.4.1); False
    for a release that starts with no number."""
    version = _kernel(release)
    return bool(version) and _kernel(lowest) <= version < _kernel(below)


def encap_overhead(backend: str, ipv6: bool) -> int:
    table = ENCAP_OVERHEAD_IPV6 if ipv6 else ENCAP_OVERHEAD
    return table.get(backend.lower(), 0)


_UNSET = object()
# helpers of (node, peer) whose answer a pair rule may ask for a node's whole row at once
# (ModelHelpers.failing): each returns a bool and never raises on odd data
PAIRWISE = ("has_peer_route", "route_as_expected", "peer_off_link")


class ModelHelpers:
    """Lookups bound to one model."""

    def __init__(self, model: Model) -> None:
        self.model = model
        # per node, how `ip route` would describe each main-table route (route_via):
        # pair rules ask 10^6 times, for ~10^3 nodes
        self._via: dict[str, dict[str, str]] = {}
        # a node's routes are mostly records it shares with every other node (one per
        # peer, parsed once): each is described once, by identity (the route is kept
        # with its text, so its id cannot be reused)
        self._described: dict[int, tuple[Route, str]] = {}
        # the route the data plane should hold, by (what it depends on in the node, peer):
        # for most backends the node side is one value for the whole cluster
        self._expected: dict[tuple[object, str], tuple[ExpectedRoute | None, str]] = {}
        self._pod_cidrs: dict[str, object] = {}
        self._peers: list[tuple[Node, str, str, str]] | None = None
        self._context: dict[str, object] = {}
        self._off_link: dict[tuple[object, str], bool] = {}

    def _main_index(self, node: str) -> dict[str, tuple[Route, ...]]:
        index = self.model.route_index.get(node)
        return index if index is not None else self.model.main_routes(node)

    def _main_routes(self, node: str, cidr: str) -> tuple[Route, ...]:
        return self._main_index(node).get(cidr if "/" in cidr else normalize_cidr(cidr), ())

    @staticmethod
    def _devices(route: Route) -> list[str]:
        return [route.dev] if route.dev else [n.dev for n in route.nexthops if n.dev]

    def has_route(self, node: str, cidr: str, dev: str) -> bool:
        """A main-table unicast route for exactly `cidr` on `node` (through `dev`, if given)."""
        # _main_routes() spelled out: pair rules call this 10^6 times
        index = self.model.route_index.get(node)
        if index is None:
            index = self.model.main_routes(node)
        routes = index.get(cidr if "/" in cidr else normalize_cidr(cidr), ())
        if not dev:
            return bool(routes)
        return any(dev in self._devices(route) for route in routes)

    def route_count(self, node: str, cidr: str) -> int:
        return len(self._main_routes(node, cidr))

    def route_dev(self, node: str, cidr: str) -> str:
        """The devices of every main-table route for `cidr`, comma-separated."""
        devices = [dev for route in self._main_routes(node, cidr) for dev in self._devices(route)]
        return ",".join(dict.fromkeys(devices))

    def route_gateway(self, node: str, cidr: str) -> str:
        routes = self._main_routes(node, cidr)
        if not routes:
            return ""
        route = routes[0]
        return route.gateway or ",".join(n.gateway or "" for n in route.nexthops)

    def route_onlink(self, node: str, cidr: str) -> bool:
        routes = self._main_routes(node, cidr)
        return bool(routes) and (
            "onlink" in routes[0].flags or any("onlink" in n.flags for n in routes[0].nexthops)
        )

    def route_via(self, node: str, cidr: str) -> str:
        """How `node` routes exactly `cidr` in its main table, as `ip route` would say it:
        "via 10.244.2.0 dev flannel.1 onlink" ("" when it does not). One call where a
        rule would otherwise ask for gateway, device and flags one by one, 10^6 times."""
        described = self._via.get(node)
        if described is None:
            described = self._described_routes(node)
        return described.get(cidr if "/" in cidr else normalize_cidr(cidr), "")

    def _described_routes(self, node: str) -> dict[str, str]:
        """route_via()'s answers for every destination of `node`'s main table."""
        described = self._via.get(node)
        if described is None:
            describe = self._describe
            described = self._via[node] = {
                destination: describe(routes[0])
                if len(routes) == 1
                else "; ".join(map(describe, routes))
                for destination, routes in self._main_index(node).items()
            }
        return described

    def _describe(self, route: Route) -> str:
        known = self._described.get(id(route))
        if known is None:
            legs = []
            for leg in route.nexthops or (route,):
                words = []
                if leg.gateway:
                    words += ["via", leg.gateway]
                if leg.dev:
                    words += ["dev", leg.dev]
                if "onlink" in leg.flags or "onlink" in route.flags:
                    words.append("onlink")
                legs.append(" ".join(words))
            known = self._described[id(route)] = (route, "; ".join(legs))
        return known[1]

    def _expected_route(self, node: str, peer: str) -> ExpectedRoute | None:
        return self._expected_of(node, peer)[0]

    def _expected_of(self, node: str, peer: str) -> tuple[ExpectedRoute | None, str]:
        """The expected route and its text, worked out once per (node context, peer)."""
        key = (self._node_context(node), peer)
        known = self._expected.get(key)
        if known is None:
            here, there = self.model.nodes.get(node), self.model.nodes.get(peer)
            route = (
                self._backend.expected_route(self.model, here, there)
                if here is not None and there is not None
                else None
            )
            known = self._expected[key] = (route, route.text() if route is not None else "")
        return known

    @property
    def _backend(self) -> Backend:
        return backend_of(self.model)

    def _node_context(self, node: str) -> object:
        context = self._context.get(node, _UNSET)
        if context is _UNSET:
            found = self.model.nodes.get(node)
            context = self._context[node] = (
                self._backend.route_context(found) if found is not None else ("", node)
            )
        return context

    def peer_off_link(self, node: str, peer: str) -> bool:
        """Whether the data plane needs `peer` on `node`'s L2 segment (host-gw) and the
        bundle shows it is not."""
        key = (self._node_context(node), peer)
        known = self._off_link.get(key)
        if known is None:
            here, there = self.model.nodes.get(node), self.model.nodes.get(peer)
            known = self._off_link[key] = (
                here is not None and there is not None and self._backend.peer_off_link(here, there)
            )
        return known

    def expected_route(self, node: str, peer: str) -> str:
        """The route the data plane programs on `node` for `peer`'s pod CIDR, as
        route_via() prints one ("" when it programs none, or cannot say)."""
        return self._expected_of(node, peer)[1]

    def expected_route_dev(self, node: str, peer: str) -> str:
        expected = self._expected_route(node, peer)
        return expected.dev if expected is not None else ""

    def has_peer_route(self, node: str, peer: str) -> bool:
        """A main-table route on `node` for `peer`'s pod CIDR, or none possible: the data
        plane needs the peer on the node's segment and it is not (its own finding). One
        call per pair."""
        cidr = self._pod_cidr(peer)
        if not cidr:
            return True
        return self.has_route(node, cidr, "") or self.peer_off_link(node, peer)

    def _pod_cidr(self, node: str) -> str | None:
        found = self._pod_cidrs.get(node, _UNSET)
        if found is _UNSET:
            there = self.model.nodes.get(node)
            found = self._pod_cidrs[node] = there.pod_cidr if there is not None else None
        return found  # type: ignore[return-value]

    def route_as_expected(self, node: str, peer: str) -> bool:
        """Whether `node`'s route for `peer`'s pod CIDR is the one its data plane
        programs: true when there is none (that is a missing route, another finding)
        or the data plane does not say which it would be. One call per pair (10^6)."""
        cidr = self._pod_cidr(peer)
        if not cidr:
            return True
        held = self.route_via(node, cidr)
        if not held:
            return True
        expected = self._expected_of(node, peer)[1]
        return not expected or held == expected

    def missing_vtep_entries(self, node: str) -> list[str]:
        """The peers whose VTEP `node`'s data plane programs, but whose FDB entry (its
        VtepMAC on the overlay device) or neighbour entry (its VTEP address) `node` does
        not hold at all, as `lab-node-2 (no FDB entry for 72:d1:... dst 192.168.122.12)`.
        An entry that is there but wrong, or a peer with no route at all, is another
        rule's finding."""
        here = self.model.nodes.get(node)
        backend = self._backend
        overlay = backend.overlay(here) if here is not None else None
        if here is None or here.host is None or overlay is None:
            return []
        device = overlay.device
        macs = {entry.mac.lower() for entry in here.fdb if entry.dev == device and entry.dst}
        addresses = {entry.dst for entry in here.host.neighbours if entry.dev == device}
        missing = []
        for peer, mac, vtep, address in self._vtep_peers():
            if peer is here or not backend.programs_vtep_entries(self.model, here, peer):
                continue
            if not self.has_route(node, peer.pod_cidr or "", ""):
                continue  # no route at all: that finding says it, for the same cause
            gaps = []
            if mac not in macs:
                gaps.append(f"no FDB entry for {mac} dst {address}")
            if vtep not in addresses:
                gaps.append(f"no neighbour entry for {vtep} lladdr {mac}")
            if gaps:
                missing.append(f"{peer.name} ({'; '.join(gaps)})")
        return missing

    def _vtep_peers(self) -> list[tuple[Node, str, str, str]]:
        """Every node a peer can program entries for: its VtepMAC (the annotation flanneld
        programs from, else its device's MAC), VTEP address and node IP."""
        if self._peers is None:
            backend, found = self._backend, []
            for peer in self.model.nodes.values():
                device = backend.overlay_interface(peer)
                mac = (peer.api.vtep_mac if peer.api else None) or (
                    device.mac if device is not None else None
                )
                vtep, address = pod_cidr_network(peer), node_ip(peer)
                if mac and vtep and address:
                    found.append((peer, mac.lower(), vtep, address))
            self._peers = found
        return self._peers

    def failing(self, helper: str, node: str, peers: list[str]) -> list[int]:
        """The indexes of `peers` for which `helper(node, peer)` is false, for one of
        PAIRWISE: a pair rule's engine asks once a node instead of CEL calling back
        10^6 times (rules/engine.py)."""
        if helper == "has_peer_route":
            return self._unrouted(node, peers)
        if helper == "route_as_expected":
            return self._misrouted(node, peers)
        check = getattr(self, helper)
        return [number for number, peer in enumerate(peers) if not check(node, peer)]

    def _unrouted(self, node: str, peers: list[str]) -> list[int]:
        """has_peer_route() for a row of peers, its lookups spelled out."""
        index = self._main_index(node)
        found = []
        for number, peer in enumerate(peers):
            cidr = self._pod_cidr(peer)
            if not cidr:
                continue
            if index.get(cidr if "/" in cidr else normalize_cidr(cidr)):
                continue
            if not self.peer_off_link(node, peer):
                found.append(number)
        return found

    def _misrouted(self, node: str, peers: list[str]) -> list[int]:
        """route_as_expected() for a row of peers, its lookups spelled out."""
        described = self._described_routes(node)
        context, known = self._node_context(node), self._expected
        found = []
        for number, peer in enumerate(peers):
            cidr = self._pod_cidr(peer)
            if not cidr:
                continue
            held = described.get(cidr if "/" in cidr else normalize_cidr(cidr), "")
            if not held:
                continue
            expected = known.get((context, peer)) or self._expected_of(node, peer)
            if expected[1] and held != expected[1]:
                found.append(number)
        return found

    def functions(self) -> list[HelperFunction]:
        return [
            HelperFunction("has_route", ("string", "string", "string"), "bool", self.has_route),
            HelperFunction("route_count", ("string", "string"), "int", self.route_count),
            HelperFunction("route_dev", ("string", "string"), "string", self.route_dev),
            HelperFunction("route_gateway", ("string", "string"), "string", self.route_gateway),
            HelperFunction("route_onlink", ("string", "string"), "bool", self.route_onlink),
            HelperFunction("route_via", ("string", "string"), "string", self.route_via),
            HelperFunction("expected_route", ("string", "string"), "string", self.expected_route),
            HelperFunction(
                "expected_route_dev", ("string", "string"), "string", self.expected_route_dev
            ),
            HelperFunction("peer_off_link", ("string", "string"), "bool", self.peer_off_link),
            HelperFunction("missing_vtep_entries", ("string",), "list", self.missing_vtep_entries),
            HelperFunction("has_peer_route", ("string", "string"), "bool", self.has_peer_route),
            HelperFunction(
                "route_as_expected", ("string", "string"), "bool", self.route_as_expected
            ),
            HelperFunction("cidr_contains", ("string", "string"), "bool", cidr_contains),
            HelperFunction("cidrs_overlap", ("string", "string"), "bool", cidrs_overlap),
            HelperFunction("cidr_network", ("string",), "string", cidr_network),
            HelperFunction("encap_overhead", ("string", "bool"), "int", encap_overhead),
            HelperFunction("kernel_in", ("string", "string", "string"), "bool", kernel_in),
        ]


def helper_signatures() -> list[HelperFunction]:
    """The helpers with no model behind them: for compiling rules without a bundle."""
    return ModelHelpers(Model()).functions()
