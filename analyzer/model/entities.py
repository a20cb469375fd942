"""The model's objects. Plain classes with slots: a 1,000-node bundle holds ~10^6 of them.

Parsed records stay as the parsers made them (`Route`, `Neighbour`, `FdbEntry`, ...);
the model adds the joins the raw outputs cannot hold on their own: which namespace an
interface lives in, its veth peer across namespaces, the pod behind a namespace.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from needle.analyzer.model.kube_objects import ObjectProblem
from needle.analyzer.parsers.bridge_fdb import FdbEntry
from needle.analyzer.parsers.bridge_link import BridgePort
from needle.analyzer.parsers.ethtool import EthtoolDriver, EthtoolFeatures, EthtoolSettings
from needle.analyzer.parsers.flannel import FlannelNetConf, FlannelSubnetEnv
from needle.analyzer.parsers.ip_addr import Address
from needle.analyzer.parsers.ip_link import Link
from needle.analyzer.parsers.ip_neigh import Neighbour
from needle.analyzer.parsers.ip_route import Route
from needle.analyzer.parsers.ip_rule import Rule

if TYPE_CHECKING:  # the backends read the model: only the type is needed here
    from needle.analyzer.backends.detection import Detection

PeerState = Literal["resolved", "missing", "not-veth"]
HOST = "host"


@dataclass(slots=True, eq=False)
class Interface:
    """One link in one namespace, with what the model joined to it."""

    node: str
    netns: str  # "host" or the bundle's netns id
    link: Link
    addresses: list[Address] = field(default_factory=list)
    peer: Interface | None = None
    peer_state: PeerState = "not-veth"
    driver: EthtoolDriver | None = None
    features: EthtoolFeatures | None = None
    settings: EthtoolSettings | None = None  # `ethtool IFACE`: speed, duplex, link

    @property
    def name(self) -> str:
        return self.link.name

    @property
    def kind(self) -> str | None:
        return self.link.kind

    @property
    def mtu(self) -> int | None:
        return self.link.mtu

    @property
    def mac(self) -> str | None:
        return self.link.address

    @property
    def master(self) -> str | None:
        return self.link.master

    @property
    def ipv4(self) -> list[str]:
        return [a.local for a in self.addresses if a.family == "inet"]

    def feature_on(self, name: str) -> bool | None:
        if self.features is None or name not in self.features.features:
            return None
        return self.features.features[name].enabled


@dataclass(slots=True, eq=False)
class Namespace:
    """A network namespace of a node: its host namespace, or a pod's."""

    node: str
    id: str  # "host" or the bundle's netns id (ns-<inode>)
    dir: str  # where its raw outputs are in the bundle
    inode: int | None = None
    nsid: int | None = None  # as the node's host namespace knows it
    name: str | None = None
    pids: list[int] = field(default_factory=list)
    interfaces: dict[str, Interface] = field(default_factory=dict)
    by_ifindex: dict[int, Interface] = field(default_factory=dict)
    loaded_routes: list[Route] = field(default_factory=list)
    loaded_neighbours: list[Neighbour] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)  # policy routing (`ip rule`), host only
    # reads this namespace's routes and neighbours on first use (pod namespaces: a large
    # bundle has 10^5 of them, and only `show` and `diff` look at their routes)
    load_details: Callable[[Namespace], None] | None = field(default=None, repr=False)
    pod: Pod | None = None
    # which of links/addresses/routes/neighbours the bundle had (absent data is not "none")
    present: set[str] = field(default_factory=set)
    # the parse each kind of data came from: with a diff's shared ParseCache, the same
    # object in two models means the same bytes
    sources: dict[str, object] = field(default_factory=dict)
    # names of devices listed more than once (the first is kept): damaged or edited data
    duplicate_names: list[str] = field(default_factory=list)
    # the bundle file each kind of data was read from (evidence for what it holds)
    files: dict[str, str] = field(default_factory=dict)

    @property
    def is_host(self) -> bool:
        return self.id == HOST

    def _details(self) -> None:
        if self.load_details is not None:
            load, self.load_details = self.load_details, None
            load(self)

    @property
    def routes(self) -> list[Route]:
        self._details()
        return self.loaded_routes

    @property
    def neighbours(self) -> list[Neighbour]:
        self._details()
        return self.loaded_neighbours

    def add(self, interface: Interface) -> None:
        if interface.name in self.interfaces:  # never one overwriting the other
            self.duplicate_names.append(interface.name)
            return
        self.interfaces[interface.name] = interface
        self.by_ifindex[interface.link.ifindex] = interface


@dataclass(slots=True)
class NodeApi:
    """A node as the Kubernetes API describes it."""

    name: str
    pod_cidr: str | None = None
    pod_cidrs: tuple[str, ...] = ()
    internal_ip: str | None = None
    vtep_mac: str | None = None  # flannel backend-data VtepMAC
    backend_data: dict[str, object] = field(default_factory=dict)
    public_ip: str | None = None  # flannel.alpha.coreos.com/public-ip
    backend_type: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    ready: bool | None = None


@dataclass(slots=True)
class MtuHop:
    """One step of a path's MTU chain."""

    where: str  # "pod", "host", "underlay"
    interface: str
    mtu: int | None


@dataclass(slots=True, eq=False)
class Node:
    """One node: the API's view and, if collected, the data plane's."""

    name: str
    api: NodeApi | None = None
    collected: bool = False
    status: str | None = None  # from the manifest: ok, partial, failed
    errors: list[str] = field(default_factory=list)
    host: Namespace | None = None
    pods_netns: dict[str, Namespace] = field(default_factory=dict)  # by netns id
    loaded_fdb: list[FdbEntry] = field(default_factory=list)
    # reads the FDB on first use (10^3 entries per node at 1,000 nodes)
    load_fdb: Callable[[Node], None] | None = field(default=None, repr=False)
    sysctls: dict[str, str] = field(default_factory=dict)
    kernel: str | None = None  # the kernel release, as `uname -r` prints it
    subnet_env: FlannelSubnetEnv | None = None
    net_conf: FlannelNetConf | None = None  # k3s's own net-conf.json (no config map)
    cni_configs: dict[str, object] = field(default_factory=dict)
    # k3s/RKE2 settings that decide pod networking (flannel-backend, cni, ...)
    rancher: dict[str, str] = field(default_factory=dict)
    bridge_ports: dict[str, BridgePort] = field(default_factory=dict)  # by port name
    # the node's iptables ruleset (netfilter.Ruleset), read when a trace first needs it
    loaded_netfilter: object | None = None
    load_netfilter: Callable[[Node], None] | None = field(default=None, repr=False)
    captures: list[dict[str, object]] = field(default_factory=list)
    # the manifest's probe record of the node (plan and results), None: no probes ran
    probes: dict[str, object] | None = None
    # (netns id or "host", counter command id with its phase) -> bundle path
    counters: dict[tuple[str, str], str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)  # data kind -> bundle path
    present: set[str] = field(default_factory=set)  # fdb, sysctl, ethtool, subnet_env, ...
    sources: dict[str, object] = field(default_factory=dict)  # as Namespace.sources
    # reads the pod namespaces, pairs the veths and joins the pods on first use
    load_pod_side: Callable[[Node], None] | None = field(default=None, repr=False)

    @property
    def pod_cidr(self) -> str | None:
        return self.api.pod_cidr if self.api else None

    @property
    def fdb(self) -> list[FdbEntry]:
        if self.load_fdb is not None:
            load, self.load_fdb = self.load_fdb, None
            load(self)
        return self.loaded_fdb

    @property
    def netfilter(self) -> object | None:
        if self.load_netfilter is not None:
            load, self.load_netfilter = self.load_netfilter, None
            load(self)
        return self.loaded_netfilter

    def ensure_pod_side(self) -> None:
        if self.load_pod_side is not None:
            load, self.load_pod_side = self.load_pod_side, None
            load(self)

    def interface(self, name: str) -> Interface | None:
        return self.host.interfaces.get(name) if self.host else None

    def namespaces(self) -> list[Namespace]:
        return ([self.host] if self.host else []) + list(self.pods_netns.values())

    def mtu_chains(
        self, vxlan: Interface | None, underlay: Interface | None
    ) -> list[tuple[str, list[MtuHop]]]:
        """Per pod namespace with a paired veth (by its pod, else its name): the MTUs a
        packet meets on its way out, pod eth0 to the underlay, through the overlay
        device `vxlan` if the data plane has one. Worked out when asked (only `show mtu`
        does): 10^5 chains are not worth building for every analysis."""
        self.ensure_pod_side()
        host = self.host
        if host is None:
            return []
        chains = []
        for namespace in self.pods_netns.values():
            for interface in namespace.interfaces.values():
                if interface.kind != "veth" or interface.peer is None:
                    continue
                host_veth = interface.peer
                hops = [
                    MtuHop("pod", interface.name, interface.mtu),
                    MtuHop("host", host_veth.name, host_veth.mtu),
                ]
                bridge = host.interfaces.get(host_veth.master or "")
                if bridge is not None:
                    hops.append(MtuHop("host", bridge.name, bridge.mtu))
                if vxlan is not None:
                    hops.append(MtuHop("host", vxlan.name, vxlan.mtu))
                if underlay is not None:
                    hops.append(MtuHop("underlay", underlay.name, underlay.mtu))
                label = namespace.pod.ref if namespace.pod else (namespace.name or namespace.id)
                chains.append((label, hops))
        return chains


@dataclass(slots=True, eq=False)
class Pod:
    """A pod from the API, joined to its namespace and host veth when they were found."""

    namespace: str
    name: str
    node: str | None
    ip: str | None
    host_network: bool = False
    phase: str | None = None
    netns: Namespace | None = None
    eth0: Interface | None = None
    host_veth: Interface | None = None

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(slots=True)
class Model:
    """The whole bundle, indexed."""

    nodes: dict[str, Node] = field(default_factory=dict)
    pods: list[Pod] = field(default_factory=list)
    net_conf: FlannelNetConf | None = None
    # where net_conf came from: (bundle file, "namespace/name" of its config map)
    net_conf_origin: tuple[str, str] | None = None
    # the data plane detected (or chosen with --backend): backends.detection.Detection
    dataplane: Detection | None = None
    created: str | None = None
    bundle_status: str | None = None
    # data the bundle lacks, by name ("cluster.nodes", "cluster.configmaps", ...) -> why
    missing: dict[str, str] = field(default_factory=dict)
    # invalid fields of cluster objects (kube_objects.ObjectProblem), each dropped
    objects_invalid: list[ObjectProblem] = field(default_factory=list)
    # indexes
    node_by_vtep_mac: dict[str, Node] = field(default_factory=dict)
    node_by_underlay_ip: dict[str, Node] = field(default_factory=dict)
    node_by_pod_cidr: dict[str, Node] = field(default_factory=dict)
    pods_by_ip: dict[str, list[Pod]] = field(default_factory=dict)
    pods_by_node: dict[str, list[Pod]] = field(default_factory=dict)
    # per node, its host's main-table unicast routes by destination (normalize_cidr):
    # built on the first lookup on that node (pair rules look up 10^6 times)
    route_index: dict[str, dict[str, tuple[Route, ...]]] = field(default_factory=dict)

    def load_nodes(self, names: Iterable[str] | None = None) -> None:
        """Read the pod side of these nodes (all when None) if not read yet: a model
        built with lazy_nodes=True leaves it for the process that checks the node."""
        for name in self.nodes if names is None else names:
            node = self.nodes.get(name)
            if node is not None:
                node.ensure_pod_side()

    def main_routes(self, node: str) -> dict[str, tuple[Route, ...]]:
        """`node`'s host routes in table main of type unicast, by destination (a bare
        address as its /32 or /128): what the kernel forwards pod traffic by."""
        index = self.route_index.get(node)
        if index is None:
            index = self.route_index[node] = {}
            found = self.nodes.get(node)
            host = found.host if found is not None else None
            for route in host.routes if host is not None else ():
                if route.table == "main" and route.type == "unicast":
                    key = normalize_cidr(route.dst)
                    held = index.get(key)
                    index[key] = (route,) if held is None else (*held, route)
        return index


def normalize_cidr(destination: str) -> str:
    """`10.244.1.0/24` stays; a host route's bare `10.244.1.5` becomes `10.244.1.5/32`."""
    if destination == "default" or "/" in destination:
        return destination
    try:
        address = ipaddress.ip_address(destination)
    except ValueError:
        return destination
    return f"{destination}/{address.max_prefixlen}"
