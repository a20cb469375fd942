"""Pods attached the way flannel's CNI plugin does it, by delegating to the CNI bridge plugin:
a `cni0` bridge holding the pod CIDR's first address, one `veth` per pod on it (hairpin on),
and in the pod eth0 with a /24, a default route and a route to the cluster network.

Used by the vxlan, vxlan-directrouting and host-gw backends.
"""

from __future__ import annotations

import json
import subprocess

from needle.lab import netns
from needle.lab.backends.base import UNDERLAY_DEVICE
from needle.lab.batches import Batch
from needle.lab.state import NodeState
from needle.lab.topology import (
    CLUSTER_CIDR,
    UNDERLAY_GATEWAY,
    UNDERLAY_PREFIX,
    UNDERLAY_PREFIX_LENGTH,
    gateway,
)

BRIDGE = "cni0"


def uplink_lines(node: NodeState) -> list[str]:
    """The node's uplink address and default route (every backend's node has them)."""
    return [
        "link set lo up",
        f"addr add {node.underlay_ip}/{UNDERLAY_PREFIX_LENGTH} brd {UNDERLAY_PREFIX}.255 "
        f"dev {UNDERLAY_DEVICE}",
        f"link set {UNDERLAY_DEVICE} up",
        # A real node has a default route; its gateway is absent here, so nothing leaves.
        f"route add default via {UNDERLAY_GATEWAY} dev {UNDERLAY_DEVICE}",
    ]


def bridge_lines(node: NodeState, mtu: int) -> list[str]:
    return [
        f"link add {BRIDGE} mtu {mtu} type bridge",
        f"addr add {gateway(node.pod_cidr)}/24 dev {BRIDGE}",
        f"link set {BRIDGE} up",
    ]


def shown_link(netns_name: str, device: str) -> tuple[dict[str, object] | None, str]:
    """A device as `ip -j link show` reports it (None when there is none), and ip's
    complaint when it could not."""
    proc = subprocess.run(
        ["ip", "-j", "-n", netns_name, "link", "show", "dev", device],
        capture_output=True,
        text=True,
        check=False,
        timeout=netns.TIMEOUT_SECONDS,
    )
    if proc.returncode != 0:
        return None, proc.stderr.strip()
    found: dict[str, object] = json.loads(proc.stdout)[0]
    return found, ""


def pin_bridge_mac(netns_name: str) -> None:
    """Set the node's bridge's MAC to the one it has, as the CNI bridge plugin does: a
    bridge whose MAC was never set takes its ports' lowest, so a new pod's veth could
    change it (and the neighbour entries pointing at it). A node without the bridge
    (Canal) is left alone."""
    link, _ = shown_link(netns_name, BRIDGE)
    if link is not None:
        mac = link["address"]
        netns.run_batch(Batch("ip", netns_name, (f"link set {BRIDGE} address {mac}",), "bridge"))


def veth_lines(node: NodeState, mtu: int) -> list[str]:
    lines: list[str] = []
    for pod in node.pods:
        lines += [
            f"link add {pod.host_veth} mtu {mtu} type veth "
            f"peer name eth0 mtu {mtu} netns {pod.netns}",
            f"link set {pod.host_veth} master {BRIDGE}",
            # The CNI bridge plugin in flannel's delegate config sets hairpinMode: true.
            f"link set {pod.host_veth} type bridge_slave hairpin on",
            f"link set {pod.host_veth} up",
        ]
    return lines


def pod_batches(node: NodeState) -> list[Batch]:
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
