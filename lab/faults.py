"""The fault catalogue: each fault changes one thing a real cluster gets wrong.

A fault picks its target node (the first, or the one asked for), a peer (the next node)
and a pod (the target node's first; its last for veth-orphan) deterministically, changes
the data plane or the kube dir, and returns a FaultRecord saying exactly what changed.
Faults are applied under the lab's lock by needle.lab.api; they never touch anything outside the
lab's namespaces and state dir. Each declares the backends it applies to (api refuses it on
a lab of another backend); the faults here work on any backend through its interface, and
those that only make sense on one data plane live with it in needle.lab.backends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from needle.lab import keepalive, kube_objects, netns
from needle.lab.backends import BACKENDS, NAMES
from needle.lab.backends.base import Fault, Target
from needle.lab.backends.pathfaults import FAULTS as PATH_FAULTS
from needle.lab.batches import Batch
from needle.lab.errors import LabError
from needle.lab.state import FaultRecord, save
from needle.lab.terminal import did_you_mean
from needle.lab.topology import pod_cidr

__all__ = ["CATALOGUE", "Fault", "Target", "help_text", "lookup"]
ALL = NAMES
"""Faults that make sense on every backend."""
ENCAPSULATED = tuple(name for name in NAMES if BACKENDS[name].overhead)
"""Backends whose pods get less than the uplink's MTU."""


def _ip(netns_name: str, what: str, *lines: str) -> None:
    netns.run_batch(Batch("ip", netns_name, lines, what))


def mtu_pod(target: Target) -> FaultRecord:
    pod = target.pod("mtu-pod")
    overlay = target.state.overlay_mtu
    mtu = overlay + target.backend.overhead
    _ip(pod.netns, f"fault mtu-pod on {pod.ref}", f"link set dev eth0 mtu {mtu}")
    return FaultRecord(
        fault="mtu-pod",
        message=(
            f"pod {pod.ref} on {target.node.name}: eth0 MTU raised from "
            f"{overlay} to {mtu}, above {target.backend.pod_mtu_devices} "
            f"({overlay}); its larger packets are dropped at {pod.host_veth}"
        ),
        node=target.node.name,
        netns=pod.netns,
        pod=pod.ref,
        interface="eth0",
        before=str(overlay),
        after=str(mtu),
    )


def route_missing(target: Target) -> FaultRecord:
    node, peer = target.node, target.peer("route-missing")
    route = target.backend.peer_route(node, peer)
    if route is None:
        raise LabError(f"fault route-missing: {node.name} has no route to {peer.name} to delete")
    _ip(node.netns, f"fault route-missing on {node.name}", f"route del {route.spec}")
    how = route.spec.split(" ", 1)[1]
    return FaultRecord(
        fault="route-missing",
        message=f"{node.name}: route to {peer.name}'s pod CIDR {peer.pod_cidr} ({how}) deleted",
        node=node.name,
        peer_node=peer.name,
        netns=node.netns,
        interface=route.dev,
        cidr=peer.pod_cidr,
        before=route.spec,
        after=None,
    )


def _edit_node_object(target: Target, edit: Callable[[dict[str, Any]], None]) -> None:
    kube_objects.edit_node_object(target.kube_dir, target.node.name, edit)


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
            f"{target.backend.pod_cidr_users} and the other nodes' routes still use "
            f"{node.pod_cidr}"
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
    are gone, but something still holds the namespace, so the veth pair (and on Canal its
    /32 route) survives on the node."""
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
            f"{pod.host_veth} {target.backend.orphan_remains}"
        ),
        node=node.name,
        netns=node.netns,
        pod=pod.ref,
        interface=pod.host_veth,
        before=pod.netns,
        after=None,
    )


_GENERIC = (
    Fault("mtu-pod", "a pod's eth0 MTU is above the overlay MTU", mtu_pod, ENCAPSULATED),
    Fault(
        "route-missing", "a node lacks the route to the next node's pod CIDR", route_missing, ALL
    ),
    Fault(
        "podcidr-mismatch",
        "a node's API podCIDR differs from the one its data plane uses (API only)",
        podcidr_mismatch,
        ALL,
    ),
    Fault("veth-orphan", "a pod is gone but its host veth stays on the node", veth_orphan, ALL),
    Fault(
        "duplicate-public-ip",
        "two nodes share a flannel public-ip (API only)",
        duplicate_public_ip,
        ALL,
    ),
    Fault("ip-forward-off", "IP forwarding is off on a node", ip_forward_off, ALL),
)
_BACKEND_FAULTS = {fault.name: fault for backend in BACKENDS.values() for fault in backend.faults()}
# The order `needle lab fault --help` lists them in: the original catalogue first, then
# the faults no rule finds, one per `needle trace` step.
CATALOGUE: dict[str, Fault] = {
    fault.name: fault
    for fault in (
        _BACKEND_FAULTS["mtu-underlay"],
        *_GENERIC,
        *(fault for name, fault in _BACKEND_FAULTS.items() if name != "mtu-underlay"),
        *PATH_FAULTS,
    )
}


def check_backend(fault: Fault, backend: str, lab: str) -> None:
    """Refuse, in one line, a fault that makes no sense on the lab's data plane."""
    if backend not in fault.backends:
        raise LabError(
            f"fault {fault.name} does not apply to lab {lab!r}, which runs the {backend} "
            f"backend; it applies to: {', '.join(fault.backends)}"
        )


def lookup(name: str) -> Fault:
    try:
        return CATALOGUE[name]
    except KeyError:
        hint = did_you_mean(name, CATALOGUE) or f"choose one of: {', '.join(CATALOGUE)}"
        raise LabError(f"unknown fault {name!r}; {hint}") from None


def help_text() -> str:
    """The catalogue, one fault a line, for `needle lab fault --help`."""
    width = max(len(name) for name in CATALOGUE)
    return "\n".join(
        f"{fault.name:<{width}}  {fault.summary} [{_backends_text(fault.backends)}]"
        + (f" (trace step: {fault.step})" if fault.step else "")
        for fault in CATALOGUE.values()
    )


def _backends_text(backends: tuple[str, ...]) -> str:
    return "all backends" if set(backends) == set(NAMES) else ", ".join(backends)
