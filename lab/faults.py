"""The fault catalogue: each fault changes one thing a real cluster gets wrong.

A fault picks its target node (the first, or the one asked for), a peer (the next node)
and a pod (the target node's first; its last for veth-orphan) deterministically, changes
the data plane or the kube dir, and returns a FaultRecord saying exactly what changed.
Faults are applied under the lab's lock by needle.lab.api; they never touch anything outside the
lab's namespaces and state dir.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from needle.lab import keepalive, kube_objects, netns
from needle.lab.batches import Batch
from needle.lab.errors import LabError
from needle.lab.state import FaultRecord, LabState, NodeState, PodState, save
from needle.lab.terminal import did_you_mean
from needle.lab.topology import VXLAN_OVERHEAD, pod_cidr, vtep_address


@dataclass(frozen=True)
class Target:
    """Where a fault lands."""

    state: LabState
    node: NodeState

    @property
    def kube_dir(self) -> Path:
        return Path(self.state.kube_dir)

    def peer(self, fault: str) -> NodeState:
        """The node after the target (wrapping round), for faults between two nodes."""
        if len(self.state.nodes) < 2:
            raise LabError(f"fault {fault} needs a lab with at least 2 nodes; run `up --nodes 2`")
        index = self.state.nodes.index(self.node)
        return self.state.nodes[(index + 1) % len(self.state.nodes)]

    def pod(self, fault: str, *, last: bool = False) -> PodState:
        """The node's first pod (or last: faults that remove a pod take the last, so one
        that changes a pod and one that removes one do not collide on a 2-pod node)."""
        if not self.node.pods:
            raise LabError(f"fault {fault} needs a pod on {self.node.name}, which has none left")
        return self.node.pods[-1 if last else 0]


@dataclass(frozen=True)
class Fault:
    name: str
    summary: str
    """One line for `needle lab fault --help`."""
    apply: Callable[[Target], FaultRecord]


def _ip(netns_name: str, what: str, *lines: str) -> None:
    netns.run_batch(Batch("ip", netns_name, lines, what))


def mtu_underlay(target: Target) -> FaultRecord:
    node = target.node
    mtu = target.state.overlay_mtu
    _ip(node.netns, f"fault mtu-underlay on {node.name}", f"link set dev ens3 mtu {mtu}")
    return FaultRecord(
        fault="mtu-underlay",
        message=(
            f"{node.name}: ens3 MTU lowered from {target.state.underlay_mtu} to {mtu}, but "
            f"flannel.1 (MTU {target.state.overlay_mtu}) needs "
            f"{target.state.overlay_mtu + VXLAN_OVERHEAD} on the uplink; "
            "VXLAN frames above that are dropped"
        ),
        node=node.name,
        netns=node.netns,
        interface="ens3",
        before=str(target.state.underlay_mtu),
        after=str(mtu),
    )


def mtu_pod(target: Target) -> FaultRecord:
    pod = target.pod("mtu-pod")
    mtu = target.state.overlay_mtu + VXLAN_OVERHEAD
    _ip(pod.netns, f"fault mtu-pod on {pod.ref}", f"link set dev eth0 mtu {mtu}")
    return FaultRecord(
        fault="mtu-pod",
        message=(
            f"pod {pod.ref} on {target.node.name}: eth0 MTU raised from "
            f"{target.state.overlay_mtu} to {mtu}, above cni0/flannel.1 "
            f"({target.state.overlay_mtu}); its larger packets are dropped at {pod.host_veth}"
        ),
        node=target.node.name,
        netns=pod.netns,
        pod=pod.ref,
        interface="eth0",
        before=str(target.state.overlay_mtu),
        after=str(mtu),
    )


def route_missing(target: Target) -> FaultRecord:
    node, peer = target.node, target.peer("route-missing")
    _ip(
        node.netns,
        f"fault route-missing on {node.name}",
        f"route del {peer.pod_cidr} via {vtep_address(peer.pod_cidr)} dev flannel.1 onlink",
    )
    return FaultRecord(
        fault="route-missing",
        message=(
            f"{node.name}: route to {peer.name}'s pod CIDR {peer.pod_cidr} "
            f"(via {vtep_address(peer.pod_cidr)} dev flannel.1 onlink) deleted"
        ),
        node=node.name,
        peer_node=peer.name,
        netns=node.netns,
        interface="flannel.1",
        cidr=peer.pod_cidr,
        before=f"{peer.pod_cidr} via {vtep_address(peer.pod_cidr)} dev flannel.1 onlink",
        after=None,
    )


def _edit_node_object(target: Target, edit: Callable[[dict[str, Any]], None]) -> None:
    path = target.kube_dir / kube_objects.NODES_FILE
    document = kube_objects.read_list(path)
    for item in document["items"]:
        if item["metadata"]["name"] == target.node.name:
            edit(item)
            break
    else:
        raise LabError(f"{path} has no node {target.node.name}; was it edited by hand?")
    kube_objects.write_list(path, document)


def podcidr_mismatch(target: Target) -> FaultRecord:
    node = target.node
    used = {other.pod_cidr for other in target.state.nodes}
    # The lowest /24 no node uses: 10.244.0.0/24 in a lab whose nodes start at 1.
    wrong = next(pod_cidr(i) for i in range(256) if pod_cidr(i) not in used)

    def edit(item: dict[str, Any]) -> None:
        item["spec"]["podCIDR"] = wrong
        item["spec"]["podCIDRs"] = [wrong]

    _edit_node_object(target, edit)
    return FaultRecord(
        fault="podcidr-mismatch",
        message=(
            f"{node.name}: spec.podCIDR in nodes.json changed from {node.pod_cidr} to {wrong}; "
            f"its cni0 and the other nodes' routes still use {node.pod_cidr}"
        ),
        node=node.name,
        cidr=wrong,
        before=node.pod_cidr,
        after=wrong,
    )


def duplicate_public_ip(target: Target) -> FaultRecord:
    node, peer = target.node, target.peer("duplicate-public-ip")
    key = "flannel.alpha.coreos.com/public-ip"

    def edit(item: dict[str, Any]) -> None:
        item["metadata"]["annotations"][key] = peer.underlay_ip

    _edit_node_object(target, edit)
    return FaultRecord(
        fault="duplicate-public-ip",
        message=(
            f"{node.name}: annotation {key} in nodes.json changed from {node.underlay_ip} to "
            f"{peer.underlay_ip}, the same as {peer.name}'s"
        ),
        node=node.name,
        peer_node=peer.name,
        before=node.underlay_ip,
        after=peer.underlay_ip,
    )


def ip_forward_off(target: Target) -> FaultRecord:
    node = target.node
    netns.set_sysctls(node.netns, {"net.ipv4.ip_forward": "0"}, {})
    return FaultRecord(
        fault="ip-forward-off",
        message=f"{node.name}: net.ipv4.ip_forward set from 1 to 0",
        node=node.name,
        netns=node.netns,
        before="1",
        after="0",
    )


def veth_orphan(target: Target) -> FaultRecord:
    """What a pod whose CNI DEL never ran looks like: the pod object and the namespace's name
    are gone, but something still holds the namespace, so the veth pair survives on cni0."""
    state, node = target.state, target.node
    pod = target.pod("veth-orphan", last=True)
    holder = keepalive.hold_netns(state.name, pod.netns, f"holds the netns of orphaned {pod.ref}")
    # Recorded before the name goes, so `down` can always find and stop it.
    state.processes.append(holder)
    save(state)
    netns.delete([pod.netns])
    if pod.netns in netns.existing():
        raise LabError(f"could not remove the name of namespace {pod.netns}")
    path = target.kube_dir / kube_objects.PODS_FILE
    document = kube_objects.read_list(path)
    document["items"] = [
        item
        for item in document["items"]
        if (item["metadata"]["namespace"], item["metadata"]["name"]) != (pod.namespace, pod.name)
    ]
    kube_objects.write_list(path, document)
    node.pods.remove(pod)
    return FaultRecord(
        fault="veth-orphan",
        message=(
            f"{node.name}: pod {pod.ref} ({pod.ip}) deleted from pods.json and its namespace "
            f"{pod.netns} unnamed, but pid {holder.pid} keeps it alive, so host veth "
            f"{pod.host_veth} stays on cni0"
        ),
        node=node.name,
        netns=node.netns,
        pod=pod.ref,
        interface=pod.host_veth,
        before=pod.netns,
        after=None,
    )


CATALOGUE: dict[str, Fault] = {
    fault.name: fault
    for fault in (
        Fault("mtu-underlay", "a node's ens3 MTU has no room for VXLAN's 50 bytes", mtu_underlay),
        Fault("mtu-pod", "a pod's eth0 MTU is above the overlay MTU", mtu_pod),
        Fault("route-missing", "a node lacks the route to the next node's pod CIDR", route_missing),
        Fault(
            "podcidr-mismatch",
            "a node's API podCIDR differs from its cni0 (API only)",
            podcidr_mismatch,
        ),
        Fault("veth-orphan", "a pod is gone but its host veth stays on cni0", veth_orphan),
        Fault(
            "duplicate-public-ip",
            "two nodes share a flannel public-ip (API only)",
            duplicate_public_ip,
        ),
        Fault("ip-forward-off", "IP forwarding is off on a node", ip_forward_off),
    )
}


def lookup(name: str) -> Fault:
    try:
        return CATALOGUE[name]
    except KeyError:
        hint = did_you_mean(name, CATALOGUE) or f"choose one of: {', '.join(CATALOGUE)}"
        raise LabError(f"unknown fault {name!r}; {hint}") from None


def help_text() -> str:
    """The catalogue, one fault a line, for `needle lab fault --help`."""
    width = max(len(name) for name in CATALOGUE)
    return "\n".join(f"{fault.name:<{width}}  {fault.summary}" for fault in CATALOGUE.values())
