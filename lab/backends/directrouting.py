"""flannel VXLAN with DirectRouting: {"Type": "vxlan", "DirectRouting": true}.

flannel.1 exists as for plain VXLAN, but for a peer whose node IP is on this node's
underlay subnet (vxlan_network.go: directRoutingOK) flanneld installs only
`<peer CIDR> via <peer node IP> dev <uplink>`, and no ARP or FDB entry; peers on another
subnet get the VXLAN route, ARP and FDB entries. Node annotations and MTU as for VXLAN
(flannel.1's MTU, uplink - 50, is what the pods get).
"""

from __future__ import annotations

from typing import ClassVar

from needle.lab import netns
from needle.lab.backends import flannel
from needle.lab.backends.base import Fault, Route, Target, same_subnet
from needle.lab.backends.vxlan import Vxlan
from needle.lab.batches import Batch
from needle.lab.errors import LabError
from needle.lab.state import FaultRecord, NodeState
from needle.lab.topology import vtep_address


class DirectRouting(Vxlan):
    name: ClassVar[str] = "vxlan-directrouting"
    title: ClassVar[str] = "flannel VXLAN with DirectRouting"
    net_conf_backend: ClassVar[dict[str, object]] = {"Type": "vxlan", "DirectRouting": True}

    def vxlan_peers(self, node: NodeState, peers: list[NodeState]) -> list[NodeState]:
        return [peer for peer in peers if not same_subnet(node.underlay_ip, peer.underlay_ip)]

    def peer_route(self, node: NodeState, peer: NodeState) -> Route | None:
        if same_subnet(node.underlay_ip, peer.underlay_ip):
            return flannel.direct_route(peer)
        return flannel.vxlan_route(peer)

    def faults(self) -> list[Fault]:
        return [VXLAN_ROUTE_NO_FDB]


def vxlan_route_no_fdb(target: Target) -> FaultRecord:
    """The mixed state after DirectRouting is toggled: a same-subnet peer is routed into
    flannel.1 again (as without DirectRouting), but the ARP and FDB entries that route
    needs are absent (flanneld with DirectRouting never adds them for a direct peer), so
    the kernel cannot resolve the peer's VTEP and drops the packets."""
    node, peer = target.node, target.peer("vxlan-route-no-fdb")
    if not same_subnet(node.underlay_ip, peer.underlay_ip):
        raise LabError(
            f"fault vxlan-route-no-fdb needs {peer.name} on {node.name}'s subnet; it is not"
        )
    before = flannel.direct_route(peer)
    after = flannel.vxlan_route(peer)
    netns.run_batch(
        Batch(
            "ip",
            node.netns,
            (f"route replace {after.spec}",),
            f"fault vxlan-route-no-fdb on {node.name}",
        )
    )
    return FaultRecord(
        fault="vxlan-route-no-fdb",
        message=(
            f"{node.name}: route to {peer.name}'s pod CIDR {peer.pod_cidr} changed from "
            f"`{before.spec}` (DirectRouting, same subnet) to `{after.spec}`, with no ARP "
            f"entry for {vtep_address(peer.pod_cidr)} and no FDB entry for {peer.name}'s "
            f"VTEP MAC {peer.vtep_mac} on {flannel.VTEP_DEVICE}"
        ),
        node=node.name,
        peer_node=peer.name,
        netns=node.netns,
        interface=flannel.VTEP_DEVICE,
        cidr=peer.pod_cidr,
        before=before.spec,
        after=after.spec,
    )


VXLAN_ROUTE_NO_FDB = Fault(
    "vxlan-route-no-fdb",
    f"a same-subnet peer routed via {flannel.VTEP_DEVICE} with no ARP/FDB entry "
    "(mixed DirectRouting state)",
    vxlan_route_no_fdb,
    ("vxlan-directrouting",),
)
