"""The commands that build the lab, rendered as `ip -batch` / `bridge -batch` scripts.

Pure: plan in, command lines out. Every script runs inside a lab namespace (`ip -n NS`), and
veth pairs are created with both ends placed straight into lab namespaces, so nothing ever
appears in the root namespace, not even for an instant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from needle.lab.state import NodeState
from needle.lab.topology import UNDERLAY_BRIDGE

if TYPE_CHECKING:
    from needle.lab.backends.base import Backend


UPLINK = "ens3"
"""The node's end of its underlay cable (every backend's node has it)."""


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
    node's uplink. The bridge must not hand frames to netfilter (it could re-fragment them)."""
    lines = [
        "link set lo up",
        f"link add {UNDERLAY_BRIDGE} mtu {mtu} type bridge "
        "nf_call_iptables 0 nf_call_ip6tables 0 nf_call_arptables 0",
        f"link set {UNDERLAY_BRIDGE} up",
    ]
    for node in nodes:
        lines += [
            f"link add {node.underlay_port} mtu {mtu} type veth "
            f"peer name {UPLINK} mtu {mtu} netns {node.netns}",
            f"link set {node.underlay_port} master {UNDERLAY_BRIDGE} up",
        ]
    return Batch("ip", underlay_ns, tuple(lines), "underlay switch")


def node(
    node: NodeState, peers: list[NodeState], overlay_mtu: int, backend: str = "vxlan"
) -> Batch:
    """A node's host network as `backend` builds it: uplink, pod attachment, overlay device
    and, for every peer, what the CNI daemon programs (see needle.lab.backends)."""
    return _backend(backend).node(node, peers, overlay_mtu)


def node_fdb(node: NodeState, peers: list[NodeState], backend: str = "vxlan") -> Batch | None:
    """`bridge` commands for the node (flannel's forwarding database), or None."""
    return _backend(backend).node_fdb(node, peers)


def pods(node: NodeState, backend: str = "vxlan") -> list[Batch]:
    """Each pod's eth0 address and routes, as the backend's CNI plugin sets them."""
    return _backend(backend).pods(node)


def _backend(name: str) -> Backend:
    # Imported here: backends render their commands as this module's Batch.
    from needle.lab.backends import get

    return get(name)
