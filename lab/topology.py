"""The lab's shape as data: names, addresses, MACs, before anything is built.

Pure functions only; randomness (MACs, veth names, pod-name hashes) comes from the `rng`
the caller passes, so a seeded rng gives a reproducible plan.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from needle.lab.errors import LabError
from needle.lab.state import NodeState, PodState

DEFAULT_NAME = "needle-lab"
DEFAULT_NODES = 3
DEFAULT_PODS = 2
DEFAULT_UNDERLAY_MTU = 1500

MAX_NODES = 200
MAX_PODS = 250
MIN_UNDERLAY_MTU = 1280
MAX_UNDERLAY_MTU = 9216

UNDERLAY_PREFIX = "192.168.122"
UNDERLAY_PREFIX_LENGTH = 24
UNDERLAY_GATEWAY = f"{UNDERLAY_PREFIX}.1"
ROUTED_PREFIX = "192.168.123"
"""A second underlay subnet, behind the router the underlay namespace becomes when a fault
moves a node off its peers' link (the peer-off-link fault)."""
ROUTED_GATEWAY = f"{ROUTED_PREFIX}.1"
CLUSTER_CIDR = "10.244.0.0/16"
UNDERLAY_BRIDGE = "br-infra"
POD_NAMESPACE = "default"

# Stand-ins for Deployments, so pods get names like a real cluster's.
DEPLOYMENTS = ("web", "api", "cache", "queue", "auth", "search", "billing", "report")
# The alphabet Kubernetes uses for generated name suffixes (no vowels, no look-alikes).
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_LAB_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
MAX_NAME_LENGTH = 32


@dataclass(frozen=True)
class Settings:
    """What the user asked for, validated."""

    name: str
    nodes: int
    pods: int
    underlay_mtu: int
    backend: str = "vxlan"


def validate_name(name: str) -> str:
    """A lab name becomes a namespace prefix and a directory name: keep it tame."""
    if not _LAB_NAME.match(name) or len(name) > MAX_NAME_LENGTH:
        raise LabError(
            f"invalid lab name {name!r}: use lowercase letters, digits and single dashes, "
            f"starting with a letter, at most {MAX_NAME_LENGTH} characters (e.g. needle-lab)"
        )
    return name


def validate(
    name: str, nodes: int, pods: int, underlay_mtu: int, backend: str = "vxlan"
) -> Settings:
    validate_name(name)
    if not 1 <= nodes <= MAX_NODES:
        raise LabError(f"--nodes must be between 1 and {MAX_NODES}, not {nodes}")
    if not 1 <= pods <= MAX_PODS:
        raise LabError(f"--pods must be between 1 and {MAX_PODS}, not {pods}")
    if not MIN_UNDERLAY_MTU <= underlay_mtu <= MAX_UNDERLAY_MTU:
        raise LabError(
            f"--underlay-mtu must be between {MIN_UNDERLAY_MTU} and {MAX_UNDERLAY_MTU}, "
            f"not {underlay_mtu}"
        )
    return Settings(name=name, nodes=nodes, pods=pods, underlay_mtu=underlay_mtu, backend=backend)


def underlay_netns(name: str) -> str:
    return f"{name}-underlay"


def node_netns(name: str, node_index: int) -> str:
    return f"{name}-n{node_index}"


def pod_netns(name: str, node_index: int, pod_index: int) -> str:
    return f"{name}-n{node_index}-p{pod_index}"


def netns_pattern(name: str) -> re.Pattern[str]:
    """Matches exactly the namespace names lab `name` can make, and no other lab's.

    Lab "a" can never match lab "a-n1"'s namespaces ("a-n1-underlay", "a-n1-n2",
    "a-n1-n2-p3"): after the prefix only "underlay", "nI" or "nI-pJ" may follow.
    """
    return re.compile(rf"^{re.escape(name)}-(underlay|n\d+(-p\d+)?)$")


def node_name(node_index: int) -> str:
    return f"lab-node-{node_index}"


def node_ip(node_index: int) -> str:
    return f"{UNDERLAY_PREFIX}.{10 + node_index}"


def pod_cidr(node_index: int) -> str:
    return f"10.244.{node_index}.0/24"


def cidr_base(cidr: str) -> str:
    """ "10.244.3.0/24" -> "10.244.3"."""
    return cidr.split("/")[0].rsplit(".", 1)[0]


def gateway(cidr: str) -> str:
    """The first address of a node's pod CIDR (the pod bridge's address and the pods'
    default gateway, on backends with a bridge)."""
    return f"{cidr_base(cidr)}.1"


def vtep_address(cidr: str) -> str:
    """The network address of the node's pod CIDR: flannel's VTEP address (a /32)."""
    return f"{cidr_base(cidr)}.0"


def random_mac(rng: random.Random) -> str:
    """A locally administered unicast MAC, as the kernel or flanneld would pick one."""
    octets = [rng.randrange(256) for _ in range(6)]
    octets[0] = (octets[0] & 0xFC) | 0x02
    return ":".join(f"{octet:02x}" for octet in octets)


def random_suffix(rng: random.Random, length: int) -> str:
    return "".join(rng.choice(_NAME_ALPHABET) for _ in range(length))


def replicaset_hashes(rng: random.Random, pods: int) -> dict[str, str]:
    """One pod-template-hash per stand-in Deployment."""
    return {deployment_name(index): random_suffix(rng, 10) for index in range(pods)}


def deployment_name(pod_index: int) -> str:
    """Pod slot K on every node belongs to the same Deployment (a spread of replicas)."""
    if pod_index < len(DEPLOYMENTS):
        return DEPLOYMENTS[pod_index]
    return f"app-{pod_index + 1}"


def plan_nodes(settings: Settings, rng: random.Random) -> list[NodeState]:
    """Every node and pod of the lab, with names, addresses, MACs and veth names."""
    hashes = replicaset_hashes(rng, settings.pods)
    used_pod_names: set[str] = set()
    nodes: list[NodeState] = []
    for i in range(1, settings.nodes + 1):
        cidr = pod_cidr(i)
        used_veths: set[str] = set()
        pods: list[PodState] = []
        for k in range(1, settings.pods + 1):
            deployment = deployment_name(k - 1)
            name = _unique(
                lambda d=deployment: f"{d}-{hashes[d]}-{random_suffix(rng, 5)}", used_pod_names
            )
            veth = _unique(lambda: f"veth{rng.getrandbits(32):08x}", used_veths)
            pods.append(
                PodState(
                    namespace=POD_NAMESPACE,
                    name=name,
                    netns=pod_netns(settings.name, i, k),
                    ip=f"{cidr_base(cidr)}.{k + 1}",
                    host_veth=veth,
                )
            )
        nodes.append(
            NodeState(
                name=node_name(i),
                netns=node_netns(settings.name, i),
                underlay_ip=node_ip(i),
                pod_cidr=cidr,
                vtep_mac=random_mac(rng),
                underlay_port=f"swp{i}",
                pods=pods,
            )
        )
    return nodes


def _unique(make: Callable[[], str], used: set[str]) -> str:
    while True:
        candidate = make()
        if candidate not in used:
            used.add(candidate)
            return candidate
