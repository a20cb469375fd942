"""The data-plane side of the model: one node's raw outputs, parsed into namespaces.

Outputs are found through the manifest's command records, never by guessing file
names; a JSON form is preferred over its text fallback when both are there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from needle.analyzer.bundle.reader import Bundle
from needle.analyzer.gcpause import paused_gc
from needle.analyzer.model.entities import HOST, Interface, Namespace, Node
from needle.analyzer.model.sources import BY_KIND, SOURCES
from needle.analyzer.parsers.bridge_fdb import parse_bridge_fdb
from needle.analyzer.parsers.common import Parsed
from needle.analyzer.parsers.ip_addr import parse_ip_addr
from needle.analyzer.parsers.ip_link import LinkMemo, parse_ip_link
from needle.analyzer.parsers.ip_neigh import parse_ip_neigh
from needle.analyzer.parsers.ip_route import parse_ip_route

R = TypeVar("R")

OutputKey = tuple[str, str, str | None]  # (netns id or "host", command id, interface)
Output = tuple[str, bool]  # (bundle path, whether the command exited 0)


class ParseCache:
    """Parses shared by the bundles of one diff: the same bytes parse once, into the
    same records (parsers' records are immutable). Two snapshots of a cluster are
    mostly identical files, so the second bundle costs mostly reading and hashing."""

    def __init__(self) -> None:
        self._done: dict[tuple[object, bytes], Parsed[Any]] = {}
        self.links = LinkMemo()  # for every bundle's ip link outputs

    def parse(
        self,
        parser: Callable[[bytes], Parsed[R]],
        data: bytes,
        run: Callable[[bytes], Parsed[R]] | None = None,
    ) -> Parsed[R]:
        """`parser`'s records of `data`; `run`: the same parser with its memo bound."""
        key = (parser, hashlib.blake2b(data, digest_size=16).digest())
        found = self._done.get(key)
        if found is None:
            found = self._done[key] = (run or parser)(data)
        return found


def output_index(node_record: dict[str, Any]) -> dict[OutputKey, tuple[Output, ...]]:
    """Each command's output path, by what it ran where: tuples of strings, not the
    manifest's records, so the manifest can be freed while this index is still used."""
    index: dict[OutputKey, list[Output]] = {}
    for command in node_record.get("commands", []):
        if not command.get("output"):
            continue
        key = (command.get("netns") or HOST, command["id"], command.get("interface"))
        index.setdefault(key, []).append((str(command["output"]), command.get("exit_code") == 0))
    return {key: tuple(outputs) for key, outputs in index.items()}


class NodeOutputs:
    """Reads one node's outputs through its manifest records."""

    def __init__(
        self, bundle: Bundle, node_record: dict[str, Any], cache: ParseCache | None = None
    ) -> None:
        self.bundle = bundle
        self.cache = cache
        self.index = output_index(node_record)
        self._parse_links = partial(
            parse_ip_link, memo=cache.links if cache is not None else LinkMemo()
        )

    def raw(self, netns: str, command_id: str, interface: str | None = None) -> bytes | None:
        """The bytes of the command's output, to be parsed (counted as records)."""
        for path, ok in self.index.get((netns, command_id, interface), ()):
            if ok:
                data = self.bundle.read_records(path)
                if data:
                    return data
        return None

    def path_of(self, netns: str, what: str) -> str | None:
        """The bundle path of the output that holds `what`, best form first."""
        found = self.candidates(netns, what)
        return found[0] if found else None

    def candidates(self, netns: str, what: str) -> tuple[str, ...]:
        """Every bundle path that may hold `what`, best form first."""
        # spelled out: 10^5 pod namespaces ask for four kinds each
        index = self.index
        found: tuple[str, ...] = ()
        for command_id in SOURCES[what]:
            outputs = index.get((netns, command_id, None))
            if outputs:
                found += tuple([path for path, ok in outputs if ok])
        return found

    def parse(self, parser: Callable[[bytes], Parsed[R]], data: bytes) -> Parsed[R]:
        # ip link through the memo: the node's 10^2 pod namespaces print the same lo
        run: Callable[[bytes], Parsed[Any]] = (
            self._parse_links if parser is parse_ip_link else parser
        )
        return run(data) if self.cache is None else self.cache.parse(parser, data, run)

    def parsed(
        self, netns: str, what: str, parser: Callable[[bytes], Parsed[R]]
    ) -> Parsed[R] | None:
        for command_id in SOURCES[what]:
            data = self.raw(netns, command_id)
            if data is not None:
                return self.parse(parser, data)
        return None

    def paths(self, command_id: str) -> list[str]:
        return [
            path
            for (_, cid, _), outputs in self.index.items()
            if cid == command_id
            for path, _ in outputs
        ]


@dataclass(frozen=True, slots=True)
class LazyOutputs:
    """The bundle paths of the few outputs read on first use, and nothing else: the
    manifest's command records (10^6 at 1,000 nodes) can go once the model is built."""

    bundle: Bundle
    paths: dict[str, tuple[str, ...]]  # data kind -> candidate paths, best form first
    cache: ParseCache | None = None

    @classmethod
    def of(cls, outputs: NodeOutputs, netns: str, kinds: tuple[str, ...]) -> LazyOutputs:
        return cls(
            outputs.bundle, {what: outputs.candidates(netns, what) for what in kinds}, outputs.cache
        )

    def raw(self, what: str, to_parse: bool = False) -> bytes | None:
        """The bytes parsed() would parse for `what` (counted as records when they are
        `to_parse`, not when they are only compared)."""
        read = self.bundle.read_records if to_parse else self.bundle.read_bytes
        for path in self.paths.get(what, ()):
            data = read(path)
            if data:
                return data
        return None

    def parsed(self, what: str, parser: Callable[[bytes], Parsed[R]]) -> Parsed[R] | None:
        data = self.raw(what, to_parse=True)
        if data is None:
            return None
        return parser(data) if self.cache is None else self.cache.parse(parser, data)


DETAILS = ("routes", "routes6", "neighbours")


@dataclass(frozen=True, slots=True)
class DetailLoader:
    """Fills a namespace's routes and neighbours when something first asks for them."""

    outputs: LazyOutputs

    def __call__(self, namespace: Namespace) -> None:
        with paused_gc():  # 10^3 long-lived records: nothing for the collector to find
            fill_details(namespace, self.outputs)


@dataclass(frozen=True, slots=True)
class FdbLoader:
    outputs: LazyOutputs

    def __call__(self, node: Node) -> None:
        with paused_gc():  # 10^3 entries a node: the collector has nothing to find
            self._load(node)

    def _load(self, node: Node) -> None:
        fdb = self.outputs.parsed("fdb", parse_bridge_fdb)
        if fdb is not None:
            node.sources["fdb"] = fdb
            node.loaded_fdb.extend(fdb.records)


def same_unread_details(a: Namespace, b: Namespace, kinds: tuple[str, ...]) -> bool | None:
    """Whether two namespaces' `kinds` (routes, routes6, neighbours) come from the same
    bytes, compared while still unread (a cluster has 10^5 pod namespaces, and most are
    the same in two snapshots); None when either has read its details already."""
    left, right = a.load_details, b.load_details
    if not isinstance(left, DetailLoader) or not isinstance(right, DetailLoader):
        return None
    return all(left.outputs.raw(kind) == right.outputs.raw(kind) for kind in kinds)


@dataclass(frozen=True, slots=True)
class NetfilterLoader:
    """Reads the node's iptables ruleset when a trace first asks (10^5 rules on a large
    kube-proxy node: nothing else needs them)."""

    outputs: LazyOutputs

    def __call__(self, node: Node) -> None:
        ruleset = self.outputs.parsed("netfilter", BY_KIND["netfilter"].parser)
        if ruleset is not None and ruleset.records:
            node.loaded_netfilter = ruleset.records[0]


def fill_namespace(namespace: Namespace, outputs: NodeOutputs, details: str = "now") -> None:
    """Links and addresses now; routes and neighbours "now", "lazy" (read on first use:
    at 1,000 nodes they are 3·10^6 records, and a rule may need only some nodes' of them)
    or "never" (the rules do not look into pods' routes, and a large cluster has 10^5 pod
    namespaces)."""
    links = outputs.parsed(namespace.id, "links", parse_ip_link)
    addresses = outputs.parsed(namespace.id, "addresses", parse_ip_addr)
    namespace.sources.update(links=links, addresses=addresses)
    links_file = outputs.path_of(namespace.id, "links")
    if links_file is not None:
        namespace.files["links"] = links_file
    if links is not None:
        namespace.present.add("links")
        for link in links.records:
            namespace.add(Interface(namespace.node, namespace.id, link))
    if addresses is not None:
        namespace.present.add("addresses")
        for entry in addresses.records:
            interface = namespace.interfaces.get(entry.name)
            if interface is None:  # no ip-link output: the addr output has the links too
                interface = Interface(namespace.node, namespace.id, entry.link)
                namespace.add(interface)
                namespace.present.add("links")
            interface.addresses.extend(entry.addresses)
    if details != "never":
        attach_details(namespace, outputs, lazy=details == "lazy")


def attach_details(namespace: Namespace, outputs: NodeOutputs, lazy: bool = True) -> None:
    """Where the namespace's routes and neighbours are; read now, or on first use."""
    sources = LazyOutputs.of(outputs, namespace.id, DETAILS)
    for what in DETAILS:
        if sources.paths[what]:
            namespace.present.add(what)
            namespace.files[what] = sources.paths[what][0]
    if lazy:
        namespace.load_details = DetailLoader(sources)
    else:
        fill_details(namespace, sources)


def fill_details(namespace: Namespace, outputs: LazyOutputs) -> None:
    """Routes (both families) and neighbours of one namespace."""
    routes6 = outputs.parsed("routes6", parse_ip_route)
    routes = outputs.parsed("routes", parse_ip_route)
    if routes is not None:
        # bundles from before the -4/-6 split hold both families in ip-route
        namespace.loaded_routes.extend(
            r for r in routes.records if routes6 is None or r.family != "inet6"
        )
    if routes6 is not None:
        namespace.loaded_routes.extend(routes6.records)
    neighbours = outputs.parsed("neighbours", parse_ip_neigh)
    namespace.sources.update(routes=routes, routes6=routes6, neighbours=neighbours)
    if neighbours is not None:
        namespace.loaded_neighbours.extend(neighbours.records)


def fill_host_extras(node: Node, outputs: NodeOutputs, lazy: bool = True) -> None:
    """What only the host namespace has (sources.py, scopes host, files, interface)."""
    fdb = FdbLoader(LazyOutputs.of(outputs, HOST, ("fdb",)))
    if fdb.outputs.paths["fdb"]:
        node.present.add("fdb")
        if lazy:
            node.load_fdb = fdb
        else:
            fdb(node)
    netfilter = NetfilterLoader(LazyOutputs.of(outputs, HOST, ("netfilter",)))
    if netfilter.outputs.paths["netfilter"]:
        node.present.add("netfilter")
        node.load_netfilter = netfilter
    sysctl = _parsed(outputs, "sysctl")
    node.sources["sysctl"] = sysctl
    if sysctl is not None:
        node.present.add("sysctl")
        # the node script writes /proc/sys paths; rules speak sysctl's dotted names
        node.sysctls.update({_dotted(e.key): e.value for e in sysctl.records})
    uname = _parsed(outputs, "uname")
    if uname is not None and uname.records:
        node.present.add("uname")
        node.kernel = uname.records[0].release
    subnet = _parsed(outputs, "subnet_env")
    if subnet is not None and subnet.records:
        node.present.add("subnet_env")
        node.subnet_env = subnet.records[0]
    net_conf = _parsed(outputs, "k3s_net_conf")
    if net_conf is not None and net_conf.records:
        node.present.add("k3s_net_conf")
        node.net_conf = net_conf.records[0]
    rules = _parsed(outputs, "rules")
    if rules is not None and node.host is not None:
        node.host.present.add("rules")
        node.host.rules.extend(rules.records)
    ports = _parsed(outputs, "bridge_ports")
    if ports is not None:
        node.present.add("bridge_ports")
        node.bridge_ports.update((port.name, port) for port in ports.records)
    for path, data in _files(outputs, "cni"):
        parsed = outputs.parse(BY_KIND["cni"].parser, data)
        if parsed.records:
            node.present.add("cni")
            node.cni_configs[path.rsplit("/", 1)[-1]] = parsed.records[0]
    # a process's flags win over its config files, as k3s and RKE2 read them
    for kind in ("rancher_config", "rancher_cmdline"):
        for path, data in _files(outputs, kind):
            settings = outputs.parse(BY_KIND[kind].parser, data).records
            if settings:
                node.rancher.update((setting.key, setting.value) for setting in settings)
                node.outputs["rancher"] = path
    host = node.host
    if host is None:
        return
    for name, interface in host.interfaces.items():
        driver = _parsed(outputs, "driver", name)
        if driver is not None:
            node.present.add("ethtool")
            interface.driver = driver.records[0] if driver.records else None
        features = _parsed(outputs, "features", name)
        if features is not None:
            node.present.add("ethtool")
            interface.features = features.records[0] if features.records else None
        if interface.kind == "veth" and not interface.ipv4:
            # a pod's host end: its speed and duplex are made up, and there are 10^5 of
            # them at 1,000 nodes (a veth with an IPv4 address is an uplink, as in the lab)
            continue
        settings = _parsed(outputs, "settings", name)
        if settings is not None and settings.records:
            interface.settings = settings.records[0]


def _parsed(outputs: NodeOutputs, kind: str, interface: str | None = None) -> Parsed[Any] | None:
    """The host's `kind` (sources.py), parsed from its best form (None when absent)."""
    source = BY_KIND[kind]
    for command_id in source.commands:
        data = outputs.raw(HOST, command_id, interface)
        if data is not None:
            return outputs.parse(source.parser, data)
    return None


def _files(outputs: NodeOutputs, kind: str) -> list[tuple[str, bytes]]:
    """Every file a `files` source's commands wrote (a glob's matches, one per process),
    with its bytes, counted as records to parse."""
    found = []
    for command_id in BY_KIND[kind].commands:
        for path in outputs.paths(command_id):
            data = outputs.bundle.read_records(path)
            if data:
                found.append((path, data))
    return found


def _dotted(key: str) -> str:
    """net/ipv4/conf/flannel.1/rp_filter -> net.ipv4.conf.flannel/1.rp_filter (sysctl -a's
    spelling: dots inside an interface name become slashes)."""
    if "/" not in key:
        return key
    return ".".join(part.replace(".", "/") for part in key.split("/"))
