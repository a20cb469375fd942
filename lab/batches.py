"""The commands that build the lab, rendered as `ip -batch` / `bridge -batch` scripts.

Pure: plan in, command lines out. Every script runs inside a lab namespace (`ip -n NS`), and
veth pairs are created with both ends placed straight into lab namespaces, so nothing ever
appears in the root namespace, not even for an instant.
"""

from __future__ import annotations

from dataclasses import dataclass

from needle.lab.state import NodeState
from needle.lab.topology import (
    CLUSTER_CIDR,
    UNDERLAY_BRIDGE,
    UNDERLAY_GATEWAY,
    UNDERLAY_PREFIX,
    VNI,
    VXLAN_PORT,
    gateway,
    vtep_address,
)


@dataclass(frozen=True)
class Batch:
    """One tool process fed `lines` on stdin inside namespace `netns`."""

    tool: str
    """"ip" or "bridge"."""
    netns: str
    lines: tuple[str, ...]
    what: str
    """Who this batch builds, for error messages ("node lab-node-2")."""


def underlay(underlay_ns: str, nodes: list[NodeState], mtu: int) -> Batch:
    """The infrastructure switch: one bridge, one port per node whose other end is the
    node's ens3. The bridge must not hand frames to netfilter (it could re-fragment them)."""
    lines = [
        "link set lo up",
        f"link add {UNDERLAY_BRIDGE} mtu {mtu} type bridge "
        "nf_call_iptables 0 nf_call_ip6tables 0 nf_call_arptables 0",
        f"link set {UNDERLAY_BRIDGE} up",
    ]
    for node in nodes:
        lines += [
            f"link add {node.underlay_port} mtu {mtu} type veth "
            f"peer name ens3 mtu {mtu} netns {node.netns}",
            f"link set {node.underlay_port} master {UNDERLAY_BRIDGE} up",
        ]
    return Batch("ip", underlay_ns, tuple(lines), "underlay switch")


def node(node: NodeState, peers: list[NodeState], overlay_mtu: int) -> Batch:
    """A node's host network: ens3, cni0 with the pods' veths, flannel.1 and, for every
    peer, the route and permanent neighbour entry flanneld programs."""
    lines = [
        "link set lo up",
        f"addr add {node.underlay_ip}/24 brd {UNDERLAY_PREFIX}.255 dev ens3",
        "link set ens3 up",
        # A real node has a default route; its gateway is absent here, so nothing leaves.
        f"route add default via {UNDERLAY_GATEWAY} dev ens3",
        f"link add cni0 mtu {overlay_mtu} type bridge",
        f"addr add {gateway(node.pod_cidr)}/24 dev cni0",
        "link set cni0 up",
        f"link add flannel.1 address {node.vtep_mac} mtu {overlay_mtu} type vxlan id {VNI} "
        f"local {node.underlay_ip} dev ens3 dstport {VXLAN_PORT} nolearning",
        f"addr add {vtep_address(node.pod_cidr)}/32 dev flannel.1",
        "link set flannel.1 up",
    ]
    for pod in node.pods:
        lines += [
            f"link add {pod.host_veth} mtu {overlay_mtu} type veth "
            f"peer name eth0 mtu {overlay_mtu} netns {pod.netns}",
            f"link set {pod.host_veth} master cni0",
            # The CNI bridge plugin in flannel's delegate config sets hairpinMode: true.
            f"link set {pod.host_veth} type bridge_slave hairpin on",
            f"link set {pod.host_veth} up",
        ]
    for peer in peers:
        vtep = vtep_address(peer.pod_cidr)
        lines += [
            f"route add {peer.pod_cidr} via {vtep} dev flannel.1 onlink",
            f"neigh replace {vtep} lladdr {peer.vtep_mac} dev flannel.1 nud permanent",
        ]
    return Batch("ip", node.netns, tuple(lines), f"node {node.name}")


def node_fdb(node: NodeState, peers: list[NodeState]) -> Batch:
    """flannel.1's forwarding database: each peer VTEP MAC lives behind the peer's node IP."""
    lines = tuple(
        f"fdb replace {peer.vtep_mac} dev flannel.1 dst {peer.underlay_ip} self permanent"
        for peer in peers
    )
    return Batch("bridge", node.netns, lines, f"flannel FDB of node {node.name}")


def pods(node: NodeState) -> list[Batch]:
    """Each pod's eth0 address and the routes the CNI bridge plugin (isDefaultGateway) and
    flannel's IPAM route to the cluster network give it."""
    gw = gateway(node.pod_cidr)
    return [
        Batch(
            "ip",
            pod.netns,
            (
                "link set lo up",
                f"addr add {pod.ip}/24 dev eth0",
                "link set eth0 up",
                f"route add default via {gw} dev eth0",
                f"route add {CLUSTER_CIDR} via {gw} dev eth0",
            ),
            f"pod {pod.ref} on {node.name}",
        )
        for pod in node.pods
    ]
