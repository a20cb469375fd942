"""Flannel's data planes: `vxlan` (optionally with DirectRouting) and `host-gw`, the way
flanneld programs them (flannel-io/flannel pkg/backend/vxlan and hostgw), and the
backends flannel has that needle recognises but does not analyse.

vxlan: flanneld creates `flannel.<VNI>` (VNI 1 by default, UDP port 8472: the kernel's
default when net-conf.json's Port is 0) on the node's public-ip; for each peer lease it
adds a neighbour entry (the peer's VTEP address, the network address of its pod CIDR,
-> the peer's VtepMAC), an FDB entry (VtepMAC -> the peer's public-ip) and the route
`<peer pod CIDR> via <VTEP address> dev flannel.<VNI> onlink`. With DirectRouting, a
peer whose public-ip is on one of the node's own subnets gets only `<peer pod CIDR> via
<peer public-ip> dev <underlay>`, and no neighbour or FDB entry.

host-gw: no overlay; each peer's pod CIDR is routed `via <peer public-ip> dev
<underlay>`, which works only when every peer is on the node's own L2 segment.

Pods attach to the `cni0` bridge (the flannel CNI plugin delegating to `bridge`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from needle.analyzer.backends.base import (
    Backend,
    ExpectedRoute,
    Overlay,
    PodAttach,
    node_ip,
    on_link,
    pod_cidr_network,
)

if TYPE_CHECKING:  # the model imports the backends (build.py): types only here
    from needle.analyzer.model.entities import Interface, Model, Node

BRIDGE = "cni0"
DEFAULT_VNI = 1
DEFAULT_PORT = 8472  # Linux's own VXLAN port (IANA's is 4789): flannel's Port 0
# outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8 (an IPv6 underlay: 20 more)
VXLAN_OVERHEAD = 50
VXLAN_OVERHEAD_IPV6 = 70
VXLAN_KIND = "vxlan"


def vxlan_device_name(vni: int) -> str:
    """flanneld names its VXLAN device after the VNI (backend/vxlan/vxlan.go)."""
    return f"flannel.{vni}"


def bridge_attach() -> PodAttach:
    return PodAttach(bridge=BRIDGE)


@dataclass(frozen=True)
class FlannelVxlan(Backend):
    vni: int = DEFAULT_VNI
    port: int = DEFAULT_PORT
    direct_routing: bool = False

    def overlay(self, node: Node) -> Overlay:
        device = vxlan_device_name(self.vni)
        found = node.interface(device)
        details = found.link.vxlan if found is not None else None
        ipv6 = details is not None and ":" in (details.local or "")
        return Overlay(
            device=device,
            kind=VXLAN_KIND,
            overhead=VXLAN_OVERHEAD_IPV6 if ipv6 else VXLAN_OVERHEAD,
            vni=self.vni,
            port=self.port,
        )

    def pod_attach(self) -> PodAttach:
        return bridge_attach()

    def underlay_interface(self, node: Node) -> Interface | None:
        """The device flannel.<VNI> sends from (its `dev`), else the node IP's."""
        overlay = self.overlay_interface(node)
        details = overlay.link.vxlan if overlay is not None else None
        if details is not None and details.dev:
            found = node.interface(details.dev)
            if found is not None:
                return found
        return super().underlay_interface(node)

    def route_context(self, node: Node) -> object:
        # without DirectRouting every node routes a peer the same way
        return super().route_context(node) if self.direct_routing else None

    def routes_directly(self, node: Node, peer: Node) -> bool:
        """DirectRouting's test: the peer's public-ip is on one of the node's subnets."""
        return self.direct_routing and on_link(self.underlay_interface(node), node_ip(peer))

    def expected_route(self, model: Model, node: Node, peer: Node) -> ExpectedRoute | None:
        cidr = peer.pod_cidr
        if not cidr:
            return None
        if self.routes_directly(node, peer):
            underlay = self.underlay_interface(node)
            address = node_ip(peer)
            if underlay is None or address is None:
                return None
            return ExpectedRoute(dst=cidr, dev=underlay.name, via=address)
        vtep = pod_cidr_network(peer)
        if vtep is None:
            return None
        return ExpectedRoute(dst=cidr, dev=self.overlay(node).device, via=vtep, onlink=True)

    def programs_vtep_entries(self, model: Model, node: Node, peer: Node) -> bool:
        return not self.routes_directly(node, peer)


@dataclass(frozen=True)
class FlannelHostGw(Backend):
    def pod_attach(self) -> PodAttach:
        return bridge_attach()

    def expected_route(self, model: Model, node: Node, peer: Node) -> ExpectedRoute | None:
        cidr, address = peer.pod_cidr, node_ip(peer)
        underlay = self.underlay_interface(node)
        if not cidr or address is None or underlay is None:
            return None
        if not on_link(underlay, address):
            return None  # the kernel refuses a gateway off-link: flanneld adds nothing
        return ExpectedRoute(dst=cidr, dev=underlay.name, via=address)

    def peer_off_link(self, node: Node, peer: Node) -> bool:
        """host-gw's precondition broken: the peer's public-ip is on none of the node's
        subnets, so no route to its pods can be programmed."""
        underlay, address = self.underlay_interface(node), node_ip(peer)
        if underlay is None or address is None or not underlay.addresses:
            return False
        return not on_link(underlay, address)


def vxlan(vni: int | None, port: int | None, direct_routing: bool) -> FlannelVxlan:
    label = "flannel vxlan" + (" with DirectRouting" if direct_routing else "")
    return FlannelVxlan(
        name="vxlan",
        label=label,
        analysed=True,
        vni=vni if vni is not None and vni > 0 else DEFAULT_VNI,
        port=port if port else DEFAULT_PORT,
        direct_routing=direct_routing,
    )


def host_gw() -> FlannelHostGw:
    return FlannelHostGw(
        name="host-gw", label="flannel host-gw", analysed=True, needs_one_segment=True
    )


# Bytes each flannel backend adds to a packet (outer headers), over IPv4 and IPv6
# underlays: for rules that reason about a backend other than the cluster's own.
ENCAP_OVERHEAD = {"vxlan": 50, "ipip": 20, "wireguard": 60, "host-gw": 0, "udp": 28, "ipsec": 73}
ENCAP_OVERHEAD_IPV6 = {"vxlan": 70, "ipip": 40, "wireguard": 80, "host-gw": 0, "udp": 48}


# flannel's other backends: recognised from net-conf.json, reported as not analysed
UNANALYSED = {
    "wireguard": "flannel wireguard (k3s wireguard-native)",
    "wireguard-native": "flannel wireguard (k3s wireguard-native)",
    "ipsec": "flannel ipsec",
    "udp": "flannel udp",
    "ipip": "flannel ipip",
    "alivpc": "flannel alivpc",
    "alloc": "flannel alloc",
    "gce": "flannel gce",
    "aws-vpc": "flannel aws-vpc",
    "tencentvpc": "flannel tencentvpc",
    "extension": "flannel extension",
    "none": "no flannel (k3s --flannel-backend=none)",
}


def unanalysed(kind: str) -> Backend:
    family = "wireguard" if kind.startswith("wireguard") else kind
    label = UNANALYSED.get(kind, f"flannel {kind}")
    return Backend(name=family, label=label, analysed=False)
