"""flannel with the VXLAN backend (the lab's default): what flanneld programs on a node.

Node i owns 10.244.i.0/24 on `cni0`; `flannel.1` is a VXLAN device (VNI 1, port 8472,
learning off) holding 10.244.i.0/32; for each peer flanneld adds
`<peer CIDR> via <peer VTEP address> dev flannel.1 onlink`, a permanent ARP entry for the
peer's VTEP address and an FDB entry sending the peer's VTEP MAC to its node IP.
Pod MTU = underlay MTU - 50.
"""

from __future__ import annotations

from typing import ClassVar

from needle.lab import netns
from needle.lab.backends import bridge, flannel
from needle.lab.backends.base import (
    UNDERLAY_DEVICE,
    Backend,
    Fault,
    Route,
    SystemObjects,
    Target,
)
from needle.lab.batches import Batch
from needle.lab.kube_objects import KubeContext
from needle.lab.state import FaultRecord, LabState, NodeState
from needle.lab.topology import vtep_address


class Vxlan(Backend):
    name: ClassVar[str] = "vxlan"
    title: ClassVar[str] = "flannel VXLAN"
    overhead: ClassVar[int] = flannel.VXLAN_OVERHEAD
    build_step: ClassVar[str] = (
        f"build nodes ({UNDERLAY_DEVICE}, {bridge.BRIDGE}, {flannel.VTEP_DEVICE}, routes, "
        "neighbours)"
    )
    finish_step: ClassVar[str] = "program flannel FDB, sysctls and pods"
    pod_mtu_devices: ClassVar[str] = f"{bridge.BRIDGE}/{flannel.VTEP_DEVICE}"
    pod_cidr_users: ClassVar[str] = f"its {bridge.BRIDGE}"
    orphan_remains: ClassVar[str] = f"stays on {bridge.BRIDGE}"
    net_conf_backend: ClassVar[dict[str, object]] = {"Type": "vxlan"}

    def vxlan_peers(self, node: NodeState, peers: list[NodeState]) -> list[NodeState]:
        """The peers reached through the VXLAN device (all of them, without DirectRouting)."""
        return peers

    def node(self, node: NodeState, peers: list[NodeState], overlay_mtu: int) -> Batch:
        lines = bridge.uplink_lines(node) + bridge.bridge_lines(node, overlay_mtu)
        lines += flannel.vtep_lines(node, overlay_mtu)
        lines += bridge.veth_lines(node, overlay_mtu)
        for peer in peers:
            route = self.peer_route(node, peer)
            if route is not None and route.dev != flannel.VTEP_DEVICE:
                lines.append(f"route add {route.spec}")
            elif route is not None:
                lines += flannel.vxlan_peer_lines(peer)
        return Batch("ip", node.netns, tuple(lines), f"node {node.name}")

    def node_fdb(self, node: NodeState, peers: list[NodeState]) -> Batch | None:
        lines = tuple(flannel.fdb_line(peer) for peer in self.vxlan_peers(node, peers))
        if not lines:
            return None
        return Batch("bridge", node.netns, lines, f"flannel FDB of node {node.name}")

    def pods(self, node: NodeState) -> list[Batch]:
        return bridge.pod_batches(node)

    def peer_route(self, node: NodeState, peer: NodeState) -> Route | None:
        return flannel.vxlan_route(peer)

    def node_annotations(self, node: NodeState) -> dict[str, str]:
        return flannel.annotations(node, "vxlan", flannel.vtep_annotation(node.vtep_mac))

    def system_objects(self, state: LabState, kube: KubeContext) -> SystemObjects:
        return flannel.system_objects(state, kube, dict(self.net_conf_backend))

    def node_files(self, state: LabState, node: NodeState) -> dict[str, str]:
        return {
            flannel.CNI_CONF_FILE: flannel.CNI_CONF,
            flannel.SUBNET_ENV_FILE: flannel.subnet_env(node, state.overlay_mtu),
        }

    def faults(self) -> list[Fault]:
        return [MTU_UNDERLAY, VTEP_ENTRIES_MISSING]


def mtu_underlay(target: Target) -> FaultRecord:
    node = target.node
    mtu = target.state.overlay_mtu
    netns.run_batch(
        Batch(
            "ip",
            node.netns,
            (f"link set dev {UNDERLAY_DEVICE} mtu {mtu}",),
            f"fault mtu-underlay on {node.name}",
        )
    )
    return FaultRecord(
        fault="mtu-underlay",
        message=(
            f"{node.name}: {UNDERLAY_DEVICE} MTU lowered from {target.state.underlay_mtu} to "
            f"{mtu}, but {flannel.VTEP_DEVICE} (MTU {target.state.overlay_mtu}) needs "
            f"{target.state.overlay_mtu + flannel.VXLAN_OVERHEAD} on the uplink; "
            "VXLAN frames above that are dropped"
        ),
        node=node.name,
        netns=node.netns,
        interface=UNDERLAY_DEVICE,
        before=str(target.state.underlay_mtu),
        after=str(mtu),
    )


MTU_UNDERLAY = Fault(
    "mtu-underlay",
    f"a node's {UNDERLAY_DEVICE} MTU has no room for VXLAN's {flannel.VXLAN_OVERHEAD} bytes",
    mtu_underlay,
    ("vxlan", "canal"),
)


def vtep_entries_missing(target: Target) -> FaultRecord:
    """What a flanneld restart that did not re-sync its leases (or a hand-flushed table)
    leaves: the route to a peer's pod CIDR is still there, but the permanent ARP entry
    for its VTEP address and the FDB entry for its VTEP MAC are gone, so packets to its
    pods die on this node."""
    node, peer = target.node, target.peer("vtep-entries-missing")
    vtep = vtep_address(peer.pod_cidr)
    netns.run_batch(
        Batch(
            "ip",
            node.netns,
            (f"neigh del {vtep} dev {flannel.VTEP_DEVICE}",),
            f"fault vtep-entries-missing on {node.name}",
        )
    )
    netns.run_batch(
        Batch(
            "bridge",
            node.netns,
            (f"fdb del {peer.vtep_mac} dev {flannel.VTEP_DEVICE} dst {peer.underlay_ip}",),
            f"fault vtep-entries-missing on {node.name}",
        )
    )
    return FaultRecord(
        fault="vtep-entries-missing",
        message=(
            f"{node.name}: the ARP entry for {peer.name}'s VTEP address {vtep} and the FDB "
            f"entry for its VTEP MAC {peer.vtep_mac} on {flannel.VTEP_DEVICE} removed; the "
            "route to its pod CIDR stays"
        ),
        node=node.name,
        netns=node.netns,
        interface=flannel.VTEP_DEVICE,
        before="present",
        after="absent",
    )


VTEP_ENTRIES_MISSING = Fault(
    "vtep-entries-missing",
    "a node lost the ARP and FDB entries for a peer's VTEP (its route stays)",
    vtep_entries_missing,
    ("vxlan", "canal"),
)
