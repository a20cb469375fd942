"""flannel with the host-gw backend: {"Type": "host-gw"}, no encapsulation.

No VXLAN device: each node routes every peer's pod CIDR `via <peer node IP> dev <uplink>`
(route_network.go), which only works when the peer's node IP is on the node's own link;
for a peer off-link the kernel refuses the route ("network is unreachable") and flanneld
logs it and carries on without it. Pods attach to `cni0` as with VXLAN; with no
encapsulation the pod and bridge MTU equal the uplink's (subnet.env FLANNEL_MTU too).
Node annotations: backend-type host-gw, backend-data "null".
"""

from __future__ import annotations

from typing import ClassVar

from needle.lab import kube_objects, netns
from needle.lab.backends import bridge, flannel
from needle.lab.backends.base import (
    UNDERLAY_DEVICE,
    Backend,
    Fault,
    Route,
    SystemObjects,
    Target,
    same_subnet,
)
from needle.lab.batches import Batch
from needle.lab.errors import LabError
from needle.lab.kube_objects import KubeContext
from needle.lab.state import FaultRecord, LabState, NodeState
from needle.lab.topology import (
    ROUTED_GATEWAY,
    ROUTED_PREFIX,
    UNDERLAY_BRIDGE,
    UNDERLAY_GATEWAY,
    UNDERLAY_PREFIX,
    UNDERLAY_PREFIX_LENGTH,
)

STALE_NEXT_HOP = f"{UNDERLAY_PREFIX}.254"
"""An underlay address no lab node ever has (node IPs stop at .210)."""


class HostGw(Backend):
    name: ClassVar[str] = "host-gw"
    title: ClassVar[str] = "flannel host-gw"
    overhead: ClassVar[int] = 0
    build_step: ClassVar[str] = f"build nodes ({UNDERLAY_DEVICE}, {bridge.BRIDGE}, routes)"
    finish_step: ClassVar[str] = "program sysctls and pods"
    pod_mtu_devices: ClassVar[str] = bridge.BRIDGE
    pod_cidr_users: ClassVar[str] = f"its {bridge.BRIDGE}"
    orphan_remains: ClassVar[str] = f"stays on {bridge.BRIDGE}"

    def adjust_plan(self, nodes: list[NodeState]) -> None:
        # No VXLAN device, so no VTEP MAC.
        for node in nodes:
            node.vtep_mac = ""

    def node(self, node: NodeState, peers: list[NodeState], overlay_mtu: int) -> Batch:
        lines = bridge.uplink_lines(node) + bridge.bridge_lines(node, overlay_mtu)
        lines += bridge.veth_lines(node, overlay_mtu)
        for peer in peers:
            route = self.peer_route(node, peer)
            if route is not None:
                lines.append(f"route add {route.spec}")
        return Batch("ip", node.netns, tuple(lines), f"node {node.name}")

    def pods(self, node: NodeState) -> list[Batch]:
        return bridge.pod_batches(node)

    def peer_route(self, node: NodeState, peer: NodeState) -> Route | None:
        if not same_subnet(node.underlay_ip, peer.underlay_ip):
            return None  # the kernel would refuse it: network is unreachable
        return flannel.direct_route(peer)

    def node_annotations(self, node: NodeState) -> dict[str, str]:
        return flannel.annotations(node, "host-gw", "null")

    def system_objects(self, state: LabState, kube: KubeContext) -> SystemObjects:
        return flannel.system_objects(state, kube, {"Type": "host-gw"})

    def node_files(self, state: LabState, node: NodeState) -> dict[str, str]:
        return {
            flannel.CNI_CONF_FILE: flannel.CNI_CONF,
            flannel.SUBNET_ENV_FILE: flannel.subnet_env(node, state.overlay_mtu),
        }

    def faults(self) -> list[Fault]:
        return [ROUTE_WRONG_NEXTHOP, PEER_OFF_LINK]


def _ip(netns_name: str, what: str, *lines: str) -> None:
    netns.run_batch(Batch("ip", netns_name, lines, what))


def route_wrong_nexthop(target: Target) -> FaultRecord:
    """The route to a peer points at an address that is not the peer's (as after the
    peer's node IP changed and the route was not reprogrammed): ARP for it goes unanswered."""
    node, peer = target.node, target.peer("route-wrong-nexthop")
    before = flannel.direct_route(peer)
    after = Route(peer.pod_cidr, UNDERLAY_DEVICE, via=STALE_NEXT_HOP)
    _ip(node.netns, f"fault route-wrong-nexthop on {node.name}", f"route replace {after.spec}")
    return FaultRecord(
        fault="route-wrong-nexthop",
        message=(
            f"{node.name}: route to {peer.name}'s pod CIDR {peer.pod_cidr} changed from "
            f"`{before.spec}` to `{after.spec}`; {STALE_NEXT_HOP} is no node's address"
        ),
        node=node.name,
        peer_node=peer.name,
        netns=node.netns,
        interface=UNDERLAY_DEVICE,
        cidr=peer.pod_cidr,
        before=before.spec,
        after=after.spec,
    )


def peer_off_link(target: Target) -> FaultRecord:
    """A node whose underlay address is on another subnet, behind a router: host-gw needs
    every node on one link, so no route between it and its peers can be installed.

    The underlay namespace becomes that router (both subnets' gateways on its bridge,
    forwarding on, no route to any pod CIDR, as a real router has none). The node moves to
    the other subnet with a default route via the router; the routes flanneld could never
    have installed (the kernel refuses them: network is unreachable) are removed on the
    node and on its peers; its Node object and its pods' hostIP follow the new address.
    """
    state, node = target.state, target.node
    target.peer("peer-off-link")  # needs 2 nodes
    moved = [
        other.name for other in state.nodes if not same_subnet(other.underlay_ip, UNDERLAY_GATEWAY)
    ]
    if moved:
        # Two moved nodes would share the other subnet, and flanneld would route between
        # them: a different picture from the one this fault promises.
        raise LabError(f"fault peer-off-link: {', '.join(moved)} is already off the link")
    old_ip = node.underlay_ip
    new_ip = f"{ROUTED_PREFIX}.{old_ip.rsplit('.', 1)[1]}"
    peers = [peer for peer in state.nodes if peer is not node]
    on_link = [peer for peer in peers if same_subnet(peer.underlay_ip, old_ip)]

    _ip(
        state.underlay_netns,
        "fault peer-off-link: the underlay's router",
        f"addr replace {UNDERLAY_GATEWAY}/{UNDERLAY_PREFIX_LENGTH} dev {UNDERLAY_BRIDGE}",
        f"addr replace {ROUTED_GATEWAY}/{UNDERLAY_PREFIX_LENGTH} dev {UNDERLAY_BRIDGE}",
    )
    netns.set_sysctls(state.underlay_netns, {"net.ipv4.ip_forward": "1"}, {})
    to_node = flannel.direct_route(node)  # before the node moves: via its old address
    netns.run_batches(
        Batch(
            "ip",
            peer.netns,
            (f"route del {to_node.spec}",),
            f"fault peer-off-link on {peer.name}",
        )
        for peer in on_link
    )
    own_routes = [flannel.direct_route(peer) for peer in on_link]
    _ip(
        node.netns,
        f"fault peer-off-link on {node.name}",
        *[f"route del {route.spec}" for route in own_routes],
        f"addr del {old_ip}/{UNDERLAY_PREFIX_LENGTH} dev {UNDERLAY_DEVICE}",
        f"addr add {new_ip}/{UNDERLAY_PREFIX_LENGTH} brd {ROUTED_PREFIX}.255 dev {UNDERLAY_DEVICE}",
        f"route replace default via {ROUTED_GATEWAY} dev {UNDERLAY_DEVICE}",
    )
    kube_objects.move_node_address(target.kube_dir, node.name, old_ip, new_ip)
    node.underlay_ip = new_ip
    return FaultRecord(
        fault="peer-off-link",
        message=(
            f"{node.name}: {UNDERLAY_DEVICE} moved from {old_ip}/{UNDERLAY_PREFIX_LENGTH} to "
            f"{new_ip}/{UNDERLAY_PREFIX_LENGTH} behind the underlay's router "
            f"({UNDERLAY_GATEWAY} and {ROUTED_GATEWAY} on {UNDERLAY_BRIDGE}, forwarding on; "
            f"{node.name}'s default route now via {ROUTED_GATEWAY}); host-gw routes across "
            "the router cannot be installed (network is unreachable): "
            + ", ".join(f"{peer.name} lost `{to_node.spec}`" for peer in on_link)
            + f"; {node.name} lost "
            + ", ".join(f"`{route.spec}`" for route in own_routes)
            + f"; nodes.json InternalIP and public-ip, and hostIP of its pods, now {new_ip}"
        ),
        node=node.name,
        netns=node.netns,
        interface=UNDERLAY_DEVICE,
        before=old_ip,
        after=new_ip,
    )


ROUTE_WRONG_NEXTHOP = Fault(
    "route-wrong-nexthop",
    "a node routes the next node's pod CIDR via an address that is not that node's",
    route_wrong_nexthop,
    ("host-gw",),
)
PEER_OFF_LINK = Fault(
    "peer-off-link",
    "a node on another subnet behind a router: host-gw routes to it cannot exist",
    peer_off_link,
    ("host-gw",),
)
