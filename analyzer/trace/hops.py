"""What a walk records (a Packet's Hops on a Path) and the recorder every step class
builds on: it adds a hop (a hop that does not pass ends the walk), names the bundle file
that shows it, and finds the node that holds an address."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from needle.analyzer.backends import backend_of
from needle.analyzer.model.entities import HOST, Interface, Model, Namespace, Node
from needle.analyzer.netfilter import Packet as NetfilterPacket
from needle.analyzer.netfilter import Verdict
from needle.analyzer.netfilter.nft_rules import NftRuleset, nft_ruleset
from needle.analyzer.parsers.ip_route import Route
from needle.analyzer.rules.helpers import cidr_contains
from needle.analyzer.trace.routing import local_addresses


class Traversable(Protocol):
    """A ruleset the hooks ask: iptables' (netfilter.Ruleset) or nftables'."""

    def traverse(
        self, table: str, chain: str, packet: NetfilterPacket, *, local_addresses: frozenset[str]
    ) -> Verdict: ...


# reads a node's `nft list ruleset`: (its bundle file, its bytes), None when not collected
NftSource = Callable[[Node], tuple[str, bytes] | None]


@dataclass(frozen=True)
class Packet:
    proto: str = "icmp"
    size: int = 84  # the IP packet's length: ping's default 56-byte payload
    df: bool = True
    port: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"proto": self.proto, "size": self.size, "df": self.df, "port": self.port}


@dataclass(frozen=True)
class Hop:
    node: str
    netns: str
    step: str
    interface: str | None
    verdict: str  # pass | drop | unknown
    detail: str
    evidence: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "netns": self.netns,
            "step": self.step,
            "interface": self.interface,
            "verdict": self.verdict,
            "detail": self.detail,
            "evidence": [{"file": file, "detail": detail} for file, detail in self.evidence],
        }


@dataclass(frozen=True)
class Translation:
    """A rewrite conntrack remembers for the connection: on `node`, the packet's source
    (SNAT, MASQUERADE) or destination (DNAT) `original` became `translated`. A reply
    addressed to `translated` is restored to `original` there."""

    node: str
    kind: str  # "SNAT" | "DNAT"
    original: str
    translated: str


@dataclass
class Path:
    hops: list[Hop] = field(default_factory=list)
    verdict: str = "unknown"  # delivered | dropped | unknown
    # one path per endpoint when a DNAT (kube-proxy's Service) chose among several; the
    # hops above are then those of the first endpoint not delivered (else the first's)
    endpoints: list[Branch] = field(default_factory=list)
    endpoint: str | None = None  # the endpoint whose hops these are, when it is one
    # for the reply: where the packet ended and what conntrack rewrote on the way
    end: tuple[Node, Namespace, str] | None = None
    translations: tuple[Translation, ...] = ()
    # the address a node's packet left with, when the route chose another than its IP
    source: str | None = None

    @property
    def failing(self) -> Hop | None:
        return next((hop for hop in self.hops if hop.verdict != "pass"), None)

    def to_json(self) -> dict[str, Any]:
        failing = self.failing
        drop: dict[str, Any] | None = None
        if failing is not None and failing.verdict == "drop":
            drop = {
                "node": failing.node,
                "netns": failing.netns,
                "step": failing.step,
                "reason": failing.detail,
            }
            if self.endpoint is not None:
                drop["endpoint"] = self.endpoint
        return {
            "verdict": self.verdict,
            "hops": [hop.to_json() for hop in self.hops],
            "drop": drop,
            "endpoints": [branch.to_json() for branch in self.endpoints],
        }


@dataclass
class Branch:
    """The way of the packet to one endpoint a DNAT chose (`address`: ip:port)."""

    address: str
    path: Path

    def to_json(self) -> dict[str, Any]:
        whole = self.path.to_json()
        return {"address": self.address, **{k: whole[k] for k in ("verdict", "hops", "drop")}}


def settle(path: Path) -> Path:
    """The path's verdict from its first hop that did not pass."""
    failing = path.failing
    path.verdict = (
        "delivered" if failing is None else "dropped" if failing.verdict == "drop" else "unknown"
    )
    return path


class Stop(Exception):
    """The walk ends at the hop just recorded."""


def netns_label(namespace: Namespace) -> str:
    return (
        HOST
        if namespace.is_host
        else (namespace.pod.ref if namespace.pod else None) or (namespace.name or namespace.id)
    )


def namespace_of(node: Node, interface: Interface) -> Namespace | None:
    return node.host if interface.netns == HOST else node.pods_netns.get(interface.netns)


def is_up(interface: Interface) -> tuple[bool, str]:
    flags, state = interface.link.flags, (interface.link.operstate or "").upper()
    if flags and "UP" not in flags:
        return False, f"{interface.name} is administratively down"
    if state in ("DOWN", "LOWERLAYERDOWN", "NOTPRESENT"):
        peer = interface.peer
        if peer is not None and peer.link.flags and "UP" not in peer.link.flags:
            return False, (
                f"{interface.name} has no carrier: its peer {peer.name} is administratively down"
            )
        return False, f"{interface.name} is {state.lower()} (no carrier)"
    return True, f"{interface.name} is up"


def route_leg(route: Route) -> tuple[str | None, str | None, bool]:
    """(device, gateway, onlink) of a route, or of its first nexthop when multipath."""
    if route.dev is None and route.nexthops:
        first = route.nexthops[0]
        return first.dev, first.gateway, "onlink" in first.flags or "onlink" in route.flags
    return route.dev, route.gateway, "onlink" in route.flags


class Recorder:
    """The walk's state and bookkeeping, shared by the step classes (see walk.Walker)."""

    def __init__(
        self,
        model: Model,
        packet: Packet,
        nft: NftSource | None = None,
        nft_parsed: dict[str, tuple[NftRuleset, str] | None] | None = None,
    ) -> None:
        self.model = model
        self.packet = packet
        self.backend = backend_of(model)
        # a node's `nft list ruleset` (bundle file, bytes), when the caller can read it;
        # `nft_parsed`: the rulesets parsed so far, shared by walkers of one model
        self._nft_source = nft
        self._nft: dict[str, tuple[NftRuleset, str] | None] = (
            {} if nft_parsed is None else nft_parsed
        )
        self._path = Path()
        # address -> node, on its host namespace and as the API names it (see _node_at)
        self._holders: tuple[dict[str, Node], dict[str, Node]] | None = None
        # the pod namespace the packet is for (None: a node, a Service, an address)
        self._target: Namespace | None = None
        # a node's own packet: its source address is the route's choice (see routing)
        self._from_node = False
        self._begin()

    def _begin(self, reply: tuple[Translation, ...] | None = None) -> None:
        """Fresh state for one run of the walk. `reply`: the run is the reply of a
        connection whose packets conntrack rewrote so (no nat rules, state ESTABLISHED)."""
        self._path = Path()
        self._mark: int | None = 0  # the skb's mark: 0 when it enters a node
        self._dport = self.packet.port
        self._port_in: Interface | None = None  # the bridge port it came up to the host by
        self._translations: list[Translation] = []
        self._reply = reply
        self._to_service = False
        self._answering: str | None = None  # a reply: the address it must come back to
        # (address, the pods holding it) when two pods behind a bridge hold one address
        self._shared_address: tuple[str, str] | None = None
        # kube-proxy's random endpoint choices: the run takes _choices[k] at the k-th,
        # and records (taken, how many, the endpoint) in _forks
        self._choices: list[int] = []
        self._forks: list[tuple[int, int, str]] = []

    def _rulesets(self, node: Node) -> list[tuple[Traversable, str]]:
        """The rulesets that see a packet at the node's netfilter hooks, each with its
        bundle file: iptables-save's, then nftables rules iptables-save does not show."""
        found: list[tuple[Traversable, str]] = []
        iptables = node.netfilter if "netfilter" in node.present else None
        if iptables is not None:
            found.append((iptables, node.outputs.get("netfilter", "")))  # type: ignore[arg-type]
        if node.name not in self._nft:
            read = self._nft_source(node) if self._nft_source is not None else None
            shown = iptables is not None and bool(iptables.table_names)  # type: ignore[attr-defined]
            rules = nft_ruleset(read[1], skip_compat=shown) if read is not None else None
            self._nft[node.name] = (rules, read[0]) if rules and read is not None else None
        nft = self._nft[node.name]
        if nft is not None:
            found.append(nft)
        return found

    def _file(self, node: Node, namespace: Namespace, kind: str) -> str:
        if namespace.is_host:
            return node.outputs.get(kind, "") or namespace.files.get(kind, "")
        return namespace.files.get(kind, "")

    def _add(
        self,
        node: str,
        netns: str,
        step: str,
        interface: str | None,
        verdict: str,
        detail: str,
        *evidence: tuple[str, str],
    ) -> None:
        self._path.hops.append(
            Hop(node, netns, step, interface, verdict, detail, tuple(e for e in evidence if e[0]))
        )
        if verdict != "pass":
            raise Stop

    def _node_at(self, address: str) -> Node | None:
        """The node holding `address` on its host namespace (its IP, or its VTEP's),
        else the node the API gives that IP."""
        if self._holders is None:  # built once: a walk asks at every hand-over
            local: dict[str, Node] = {}
            named: dict[str, Node] = {}
            for node in self.model.nodes.values():  # the first node holding one wins
                for ip in local_addresses(node.host) if node.host is not None else ():
                    local.setdefault(ip, node)
                api = node.api
                for ip in (api.internal_ip, api.public_ip) if api is not None else ():
                    if ip:
                        named.setdefault(ip, node)
            self._holders = (local, named)
        local, named = self._holders
        return local.get(address) or named.get(address)

    def _pod_owner(self, address: str) -> str | None:
        """The node whose pods hold `address` (by pod IP, else by pod CIDR)."""
        for pod in self.model.pods_by_ip.get(address, []):
            if not pod.host_network and pod.node:
                return pod.node
        for node in self.model.nodes.values():
            if node.pod_cidr and cidr_contains(node.pod_cidr, address):
                return node.name
        return None
