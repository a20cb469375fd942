"""What a data plane is, to the rest of the analyzer: the interface every backend implements.

A backend describes, from the bundle, what the data plane should look like on each node:
the route to every peer's pod CIDR, the overlay device and its encapsulation, whether it
programs neighbour and FDB entries for a peer, how pods attach, and the MTU a pod can
use. Rules, facts and views ask these questions and never name a device themselves:
`flannel.1`, `cni0` and the VXLAN overhead live in the backend modules only.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the model imports the backends (build.py): types only here
    from needle.analyzer.model.entities import Interface, Model, Node


# UDP ports the kernel and NICs treat as tunnels: IANA's VXLAN 4789, Geneve 6081 and
# Linux's own VXLAN default 8472 (vmxnet3 offloads only these)
STANDARD_TUNNEL_PORTS = frozenset({4789, 6081, 8472})
# a VXLAN device made without a dstport takes the kernel's own port
KERNEL_VXLAN_PORT = 8472
# what a capture's UDP is VXLAN on, before the bundle's devices say more: IANA's, Linux's
VXLAN_PORTS = frozenset({4789, KERNEL_VXLAN_PORT})


@dataclass(frozen=True, slots=True)
class Evidence:
    """A bundle file and what in it says so."""

    file: str
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"file": self.file, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Overlay:
    """The device that carries pod traffic between nodes, and what it adds to a packet."""

    device: str
    kind: str  # the device kind `ip -d link` shows: vxlan, wireguard, ...
    overhead: int  # bytes of outer headers per packet (over an IPv4 underlay)
    vni: int | None = None
    port: int | None = None


@dataclass(frozen=True, slots=True)
class PodAttach:
    """How a pod's veth meets the node: on a bridge (`bridge` set), or routed (a host
    route per pod to its veth, which answers ARP for the gateway: proxy ARP)."""

    bridge: str | None
    routed: bool = False
    veth_prefix: str | None = None  # host-side veth names, where the CNI fixes them
    proxy_arp: bool = False


@dataclass(frozen=True, slots=True)
class ExpectedRoute:
    """The route a node should hold for a peer's pod CIDR, as `ip route` prints it."""

    dst: str
    dev: str
    via: str | None
    onlink: bool = False

    def text(self) -> str:
        """`via 10.244.2.0 dev <overlay> onlink`: the form rules' route_via() returns."""
        words = (["via", self.via] if self.via else []) + ["dev", self.dev]
        return " ".join(words + (["onlink"] if self.onlink else []))


@dataclass(frozen=True)
class Backend:
    """A data plane needle knows. Subclasses answer for their own kind; this base is
    what an unanalysed one (recognised, never silently judged as another) answers."""

    name: str  # the family rules name in `backends:`: vxlan, host-gw, canal, ...
    label: str  # how a person calls it: "flannel vxlan with DirectRouting"
    analysed: bool = False
    # every node must reach every other on its own L2 segment (routes via peers' IPs)
    needs_one_segment: bool = False
    notes: tuple[str, ...] = field(default=())

    def overlay(self, node: Node) -> Overlay | None:
        """The node's overlay device as the backend defines it (None: no overlay)."""
        return None

    def overlay_interface(self, node: Node) -> Interface | None:
        overlay = self.overlay(node)
        return node.interface(overlay.device) if overlay is not None else None

    def pod_attach(self) -> PodAttach:
        return PodAttach(bridge=None)

    def underlay_interface(self, node: Node) -> Interface | None:
        """The device that carries the node's own traffic: the one holding its node IP."""
        return node_ip_interface(node)

    def expected_route(self, model: Model, node: Node, peer: Node) -> ExpectedRoute | None:
        """The route `node` should hold for `peer`'s pod CIDR (None: none expected, or
        the backend does not say)."""
        return None

    def route_context(self, node: Node) -> object:
        """What expected_route() reads of `node` (not of the peer), as a hashable value:
        pair rules ask for 10^6 pairs, and nodes alike share one answer per peer. The
        base: the node's underlay device and its subnets."""
        underlay = self.underlay_interface(node)
        if underlay is None:
            return ("", node.name)
        return (
            underlay.name,
            tuple(f"{a.local}/{a.prefixlen}" for a in underlay.addresses if a.family == "inet"),
        )

    def peer_off_link(self, node: Node, peer: Node) -> bool:
        """Whether the backend needs `peer` on `node`'s own L2 segment and the bundle
        shows it is not (False when it does not need it, or cannot tell)."""
        return False

    def programs_vtep_entries(self, model: Model, node: Node, peer: Node) -> bool:
        """Whether `node` holds neighbour and FDB entries for `peer`'s VTEP."""
        return False

    def pod_mtu_ceiling(self, node: Node) -> tuple[str, int]:
        """The device whose MTU bounds a pod's, and that MTU (0 when unknown): the
        overlay's when there is one, else the underlay's."""
        overlay = self.overlay_interface(node)
        if overlay is not None:
            return overlay.name, overlay.mtu or 0
        underlay = self.underlay_interface(node)
        if underlay is not None and self.overlay(node) is None:
            return underlay.name, underlay.mtu or 0
        return "", 0


def node_ip(node: Node) -> str | None:
    """The address peers reach the node at: flannel's public-ip, else the InternalIP."""
    api = node.api
    if api is None:
        return None
    return api.public_ip or api.internal_ip


def node_ip_interface(node: Node) -> Interface | None:
    """The host device holding the node's IP (None when the bundle does not show it)."""
    address = node_ip(node)
    host = node.host
    if address is None or host is None:
        return None
    for interface in host.interfaces.values():
        if address in interface.ipv4:
            return interface
    return None


def _ipv4(address: str | None) -> int | None:
    try:
        return int(ipaddress.IPv4Address(address)) if address else None
    except ValueError:
        return None


def ipv4_subnets(interface: Interface | None) -> list[tuple[int, int]]:
    """(network, netmask) as integers of each IPv4 subnet `interface` holds (a /32 is
    an address, not a subnet)."""
    spans = []
    for entry in interface.addresses if interface is not None else []:
        if entry.family != "inet" or entry.prefixlen is None or entry.prefixlen >= 32:
            continue
        try:
            network = ipaddress.IPv4Network(f"{entry.local}/{entry.prefixlen}", strict=False)
        except ValueError:
            continue
        spans.append((int(network.network_address), int(network.netmask)))
    return spans


def on_link(interface: Interface | None, address: str | None) -> bool:
    """Whether `address` is inside a subnet `interface` holds (reachable without a
    router): what flannel's host-gw and DirectRouting need of a peer."""
    target = _ipv4(address)
    return target is not None and any(target & mask == net for net, mask in ipv4_subnets(interface))


def pod_cidr_network(node: Node) -> str | None:
    """The network address of the node's pod CIDR: flannel's VTEP address for it."""
    cidr = node.pod_cidr
    if not cidr:
        return None
    try:
        return str(ipaddress.ip_network(cidr, strict=False).network_address)
    except ValueError:
        return None


def off_segment_peers(nodes: list[Node], backend: Backend) -> dict[str, list[str]]:
    """Per node, the peers whose node IP is on none of its underlay's subnets (nodes
    whose underlay or IP the bundle does not show are left out). Integer masks: a
    1,000-node cluster asks 10^6 times."""
    subnets: dict[str, list[tuple[int, int]]] = {}
    addresses: dict[str, int] = {}
    for node in nodes:
        address = _ipv4(node_ip(node))
        if address is not None:
            addresses[node.name] = address
        spans = ipv4_subnets(backend.underlay_interface(node))
        if spans:
            subnets[node.name] = spans
    found: dict[str, list[str]] = {}
    for name, spans in subnets.items():
        found[name] = [
            peer
            for peer, address in addresses.items()
            if peer != name and not any(address & mask == net for net, mask in spans)
        ]
    return found
