"""What every backend offers the rest of the lab: the small interface, and fault plumbing.

A backend describes one data plane as real nodes show it: which devices a node has, how
pods attach, which routes/neighbours/FDB entries the CNI daemon programs for each peer, the
MTU arithmetic, the Kubernetes objects and node files of that CNI, and the faults that make
sense on it. The rest of the lab (api, topology, kube_objects, faults, cli) only asks these
questions and never names a device, a port or an overhead itself.
"""

from __future__ import annotations

import ipaddress
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from needle.lab.batches import UPLINK, Batch
from needle.lab.errors import LabError
from needle.lab.state import FaultRecord, LabState, NodeState, PodState
from needle.lab.topology import UNDERLAY_PREFIX_LENGTH

if TYPE_CHECKING:
    from needle.lab.kube_objects import KubeContext

UNDERLAY_DEVICE = UPLINK
"""The node's uplink, as the lab names it on every backend."""


@dataclass(frozen=True)
class Route:
    """One route a CNI daemon installs on a node, in the words `ip route` takes."""

    dst: str
    dev: str
    via: str | None = None
    onlink: bool = False
    scope_link: bool = False

    @property
    def spec(self) -> str:
        """ "10.244.2.0/24 via 10.244.2.0 dev X onlink", for `ip route add|del`."""
        parts = [self.dst]
        if self.via:
            parts += ["via", self.via]
        parts += ["dev", self.dev]
        if self.scope_link:
            parts += ["scope", "link"]
        if self.onlink:
            parts.append("onlink")
        return " ".join(parts)


@dataclass(frozen=True)
class SystemObjects:
    """The CNI's own Kubernetes objects: one DaemonSet pod per node, config maps, daemonsets."""

    pods: list[dict[str, Any]]
    configmaps: list[dict[str, Any]]
    daemonsets: list[dict[str, Any]]


@dataclass(frozen=True)
class Target:
    """Where a fault lands."""

    state: LabState
    node: NodeState

    @property
    def kube_dir(self) -> Path:
        return Path(self.state.kube_dir)

    @property
    def backend(self) -> Backend:
        # Imported here: the registry imports every backend module, which import this one.
        from needle.lab.backends import get

        return get(self.state.backend)

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
    backends: tuple[str, ...]
    """The backends whose labs this fault makes sense on; others refuse it."""
    step: str = ""
    """The `needle trace` step whose check the fault breaks ("" for the older faults,
    which rules find); see lab/backends/pathfaults.py."""


def same_subnet(a: str, b: str, prefix_length: int = UNDERLAY_PREFIX_LENGTH) -> bool:
    """Whether two underlay addresses share a subnet: flannel's directRoutingOK test, and
    what decides whether a host-gw route can be installed at all."""
    network = ipaddress.ip_network(f"{a}/{prefix_length}", strict=False)
    return ipaddress.ip_address(b) in network


class Backend(ABC):
    """One data plane. Subclasses set the class attributes and implement the methods."""

    name: ClassVar[str]
    """What `--backend` takes and state.json records."""
    title: ClassVar[str]
    """For people: "flannel VXLAN"."""
    overhead: ClassVar[int] = 0
    """Encapsulation bytes taken off the underlay MTU for pods."""
    build_step: ClassVar[str]
    """Name of the `up` step that builds node host networks (shown if it fails)."""
    finish_step: ClassVar[str]
    """Name of the `up` step that programs the rest (FDB, sysctls, pods)."""
    pod_mtu_devices: ClassVar[str]
    """Which host devices carry the pod MTU, for fault messages ("bridge X and VTEP Y")."""
    pod_cidr_users: ClassVar[str]
    """What on a node uses its pod CIDR, for fault messages."""
    orphan_remains: ClassVar[str]
    """What stays behind when a pod's namespace outlives it, for fault messages."""

    def overlay_mtu(self, underlay_mtu: int) -> int:
        return underlay_mtu - self.overhead

    def adjust_plan(self, nodes: list[NodeState]) -> None:  # noqa: B027 - most keep the plan
        """Change the topology's generic plan where this data plane differs (veth names,
        no VTEP). Pure; called before anything is built."""

    @abstractmethod
    def node(self, node: NodeState, peers: list[NodeState], overlay_mtu: int) -> Batch:
        """The node's host network: uplink, pod attachment, overlay device, peer routes."""

    def node_fdb(self, node: NodeState, peers: list[NodeState]) -> Batch | None:
        """`bridge` commands for the node (flannel's FDB), or None."""
        return None

    def node_sysctls(self, node: NodeState) -> dict[str, str]:
        """Sysctls of the node's host namespace, set after node() ran."""
        return {"net.ipv4.ip_forward": "1"}

    @abstractmethod
    def pods(self, node: NodeState) -> list[Batch]:
        """One batch per pod: eth0's address and routes inside the pod's namespace."""

    @abstractmethod
    def peer_route(self, node: NodeState, peer: NodeState) -> Route | None:
        """The route `node` has to `peer`'s pod CIDR (None when none can be installed)."""

    @abstractmethod
    def node_annotations(self, node: NodeState) -> dict[str, str]:
        """The CNI's annotations on the Node object."""

    @abstractmethod
    def system_objects(self, state: LabState, kube: KubeContext) -> SystemObjects:
        """The CNI's DaemonSet, its pods and config maps."""

    @abstractmethod
    def node_files(self, state: LabState, node: NodeState) -> dict[str, str]:
        """Files the CNI leaves on a node, by absolute path (CNI config, subnet.env)."""

    def faults(self) -> list[Fault]:
        """Faults only this backend (and its kin) defines."""
        return []
