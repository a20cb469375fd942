"""What rules iterate over: small flat dicts built once from the model.

Each collection's items carry only scalars and short lists (a CEL call converts its
whole input, so a node's full route table never travels into an expression; rules
ask helper functions for lookups instead). Field names are part of the rule language
and documented in docs/rules.md.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from needle.analyzer.backends import Backend, Overlay, backend_of
from needle.analyzer.backends.base import STANDARD_TUNNEL_PORTS, node_ip, off_segment_peers
from needle.analyzer.model.dataplane import SOURCES
from needle.analyzer.model.entities import Interface, Model, Namespace, Node
from needle.analyzer.parsers.bridge_fdb import FdbEntry
from needle.analyzer.parsers.ip_neigh import Neighbour

Fact = dict[str, Any]


@dataclass(frozen=True)
class SharedFacts:
    """Entries that nodes hold alike, each distinct one's facts once: `facts`, and per
    node (its name, its table's file) the indexes of the facts it holds. A node's item
    is {"node", "file", **fact}; 10^6 FDB entries at 1,000 nodes are ~10^3 distinct
    records, so a rule that reads neither field judges each once."""

    facts: list[Fact]
    held: list[tuple[str, str, list[int]]]

    def item(self, node: str, file: str, index: int) -> Fact:
        return {"node": node, "file": file, **self.facts[index]}

    def holders(self) -> set[str]:
        """The nodes holding any entry (the collection's nodes)."""
        return {node for node, _, indexes in self.held if indexes}

    def expand(self) -> tuple[list[Fact], list[str | None]]:
        """Every node's items, and the node of each."""
        items: list[Fact] = []
        nodes: list[str | None] = []
        for node, file, indexes in self.held:
            items.extend(self.item(node, file, index) for index in indexes)
            nodes.extend([node] * len(indexes))
        return items, nodes


class Collection:
    """A for_each collection: the loop variable it binds, and per-item node names (for
    per-node data needs). One made `shared` lists its items (and their nodes) only
    when something asks for them one by one."""

    def __init__(
        self,
        variable: str,
        items: list[Fact] | None = None,
        nodes: list[str | None] | None = None,
        shared: SharedFacts | None = None,
    ) -> None:
        self.variable = variable
        self.shared = shared
        self._items = items
        self._nodes = nodes

    @property
    def items(self) -> list[Fact]:
        if self._items is None:
            self._expand()
        assert self._items is not None
        return self._items

    @property
    def nodes(self) -> list[str | None]:
        if self._nodes is None:
            self._expand()
        assert self._nodes is not None
        return self._nodes

    def _expand(self) -> None:
        assert self.shared is not None, "a collection is made of items or of shared facts"
        self._items, self._nodes = self.shared.expand()


def node_data(node: Node) -> list[str]:
    """Which kinds of data the bundle holds for this node (rules' `needs: [node.X]`)."""
    data = set(node.present)
    if node.host is not None:
        data |= {f"{what}" for what in node.host.present}
    return sorted(data)


def _mtu(interface: Interface | None) -> int:
    return interface.mtu or 0 if interface is not None else 0


# What the kernel can hold: 68 (IPv4's minimum, RFC 791) to 65536 (loopback's, the
# largest any device takes); a device's own max_mtu, where `ip -d` prints it, caps it.
MTU_LOWEST, MTU_HIGHEST = 68, 65536


def impossible_mtus(namespace: Namespace | None) -> list[str]:
    """The namespace's devices whose MTU no kernel holds, as `<device> mtu <value>`:
    a bundle's nonsense, never a reason to skip the device silently."""
    if namespace is None:
        return []
    found = []
    for name, interface in sorted(namespace.interfaces.items()):
        mtu = interface.link.mtu
        if mtu is None:
            continue
        highest = interface.link.max_mtu or MTU_HIGHEST
        if mtu < MTU_LOWEST or mtu > max(highest, MTU_LOWEST) or mtu > MTU_HIGHEST:
            found.append(f"{name} mtu {mtu}")
    return found


def duplicate_devices(namespace: Namespace | None) -> list[str]:
    """Device names the namespace's `ip link` output lists more than once."""
    return sorted(set(namespace.duplicate_names)) if namespace is not None else []


def _udp_csum(options: tuple[str, ...]) -> str:
    """Whether a VXLAN device puts UDP checksums on its packets: "on", "off", or "" when
    the output does not say (iproute2's JSON leaves a false switch out)."""
    if "udp_csum" in options or "udpcsum" in options:
        return "on"
    return "off" if "noudpcsum" in options else ""


def node_fact(model: Model, node: Node) -> Fact:
    api = node.api
    backend = backend_of(model)
    overlay = backend.overlay(node)
    vxlan = backend.overlay_interface(node)
    details = vxlan.link.vxlan if vxlan is not None else None
    underlay = backend.underlay_interface(node)
    attach = backend.pod_attach()
    bridge = node.interface(attach.bridge) if attach.bridge else None
    features = vxlan.features.features if vxlan is not None and vxlan.features else {}
    tx_checksum = features.get("tx-checksumming")
    return {
        "name": node.name,
        "dir": f"nodes/{node.name}",
        # where each kind of data is in the bundle, for evidence ("" when absent)
        "files": {what: node.outputs.get(what, "") for what in SOURCES},
        "in_api": api is not None,
        "collected": node.collected,
        "status": node.status or "",
        "data": node_data(node),
        "pod_cidr": (api.pod_cidr if api else None) or "",
        "pod_cidrs": list(api.pod_cidrs) if api else [],
        "internal_ip": (api.internal_ip if api else None) or "",
        "public_ip": (api.public_ip if api else None) or "",
        "vtep_mac_annotation": (api.vtep_mac if api else None) or "",
        "backend_type_annotation": (api.backend_type if api else None) or "",
        "backend": backend.name,
        "overlay_device": overlay.device if overlay is not None else "",
        "overlay_overhead": overlay.overhead if overlay is not None else 0,
        "expected_vni": overlay.vni if overlay is not None and overlay.vni is not None else -1,
        "expected_port": overlay.port if overlay is not None and overlay.port is not None else -1,
        "has_overlay_device": vxlan is not None,
        "vtep_mac": (vxlan.mac or "").lower() if vxlan is not None else "",
        "overlay_kind": (vxlan.kind or "") if vxlan is not None else "",
        "vxlan_vni": details.id if details and details.id is not None else -1,
        "vxlan_port": details.port if details and details.port is not None else -1,
        "vxlan_local": (details.local or "") if details else "",
        "vxlan_dev": (details.dev or "") if details else "",
        "overlay_mtu": _mtu(vxlan),
        "vxlan_addresses": vxlan.ipv4 if vxlan is not None else [],
        "underlay_dev": underlay.name if underlay is not None else "",
        "underlay_mtu": _mtu(underlay),
        "pod_attach": "routed" if attach.routed else "bridge",
        "bridge": attach.bridge or "",
        "has_bridge": bridge is not None,
        "bridge_mtu": _mtu(bridge),
        "bridge_addresses": [
            f"{a.local}/{a.prefixlen}" for a in bridge.addresses if a.family == "inet"
        ]
        if bridge is not None
        else [],
        "ip_forward": node.sysctls.get("net.ipv4.ip_forward", ""),
        "bridge_nf_call_iptables": node.sysctls.get("net.bridge.bridge-nf-call-iptables", ""),
        "kube_proxy": any(
            pod.name.startswith("kube-proxy") for pod in model.pods_by_node.get(node.name, [])
        ),
        "tx_checksum": ("on" if tx_checksum.enabled else "off") if tx_checksum else "",
        "tx_checksum_fixed": bool(tx_checksum.fixed) if tx_checksum else False,
        "vxlan_features_file": node.outputs.get(f"ethtool-k:{vxlan.name}", "") if vxlan else "",
        "vxlan_udp_csum": _udp_csum(details.options) if details else "",
        # unknown (-1) and 0 (the kernel's default) count as standard
        "vxlan_port_standard": details is None
        or details.port in (None, 0)
        or details.port in STANDARD_TUNNEL_PORTS,
        "kernel": node.kernel or "",
        "uname_file": node.outputs.get("uname", ""),
        "underlay_driver": (underlay.driver.driver or "")
        if underlay is not None and underlay.driver is not None
        else "",
        "underlay_driver_file": node.outputs.get(f"ethtool-i:{underlay.name}", "")
        if underlay is not None
        else "",
        "impossible_mtus": impossible_mtus(node.host),
        "duplicate_devices": duplicate_devices(node.host),
    }


Home = frozenset[str] | None  # the nodes one shard of an evaluation owns; None: all


def _nodes(model: Model, home: Home = None) -> Iterator[Node]:
    for name in sorted(model.nodes):
        if home is None or name in home:
            yield model.nodes[name]


def pod_facts(model: Model, home: Home = None) -> Collection:
    backend = backend_of(model)
    ceilings: dict[str, tuple[str, int, str]] = {}  # per node: its pods share one
    items, nodes = [], []
    for pod in model.pods:
        if home is not None and (pod.node or "") not in home:
            continue
        node = model.nodes.get(pod.node or "")
        ceiling, ceiling_mtu, ceiling_role = ceilings.get(pod.node or "") or ceilings.setdefault(
            pod.node or "", _ceiling(backend, node)
        )
        bridge = None
        if node is not None and pod.host_veth is not None and pod.host_veth.master:
            bridge = node.interface(pod.host_veth.master)
        items.append(
            {
                "ref": pod.ref,
                "namespace": pod.namespace,
                "name": pod.name,
                "node": pod.node or "",
                "ip": pod.ip or "",
                "phase": pod.phase or "",
                "host_network": pod.host_network,
                "node_collected": bool(node and node.collected),
                "netns_found": pod.netns is not None,
                "netns": (pod.netns.name or pod.netns.id) if pod.netns else "",
                "netns_dir": pod.netns.dir if pod.netns else "",
                "netns_id": pod.netns.id if pod.netns else "",
                "eth0": pod.eth0.name if pod.eth0 else "",
                "eth0_mtu": _mtu(pod.eth0),
                "host_veth": pod.host_veth.name if pod.host_veth else "",
                "veth_mtu": _mtu(pod.host_veth),
                "bridge": bridge.name if bridge else "",
                "bridge_mtu": _mtu(bridge),
                "ceiling_device": ceiling,
                "ceiling_role": ceiling_role,
                "ceiling_mtu": ceiling_mtu,
                "veth_proxy_arp": _proxy_arp(node, pod.host_veth) if node else "",
                "routes_file": node.outputs.get("routes", "") if node else "",
                "node_links_file": node.outputs.get("links", "") if node else "",
                "links_file": pod.netns.files.get("links", "") if pod.netns else "",
                "impossible_mtus": impossible_mtus(pod.netns),
                "duplicate_devices": duplicate_devices(pod.netns),
            }
        )
        nodes.append(pod.node)
    return Collection("pod", items, nodes)


def _ceiling(backend: Backend, node: Node | None) -> tuple[str, int, str]:
    """The device bounding the MTU of a pod on `node`, its MTU, and its role."""
    if node is None:
        return "", 0, ""
    device, mtu = backend.pod_mtu_ceiling(node)
    return device, mtu, "overlay" if backend.overlay(node) is not None else "underlay"


def _proxy_arp(node: Node, veth: Interface | None) -> str:
    """net.ipv4.conf.<veth>.proxy_arp on the node ("" when not collected)."""
    if veth is None:
        return ""
    return node.sysctls.get(f"net.ipv4.conf.{veth.name.replace('.', '/')}.proxy_arp", "")


def veth_facts(model: Model, home: Home = None) -> Collection:
    attach = backend_of(model).pod_attach()
    items, nodes = [], []
    for node in _nodes(model, home):
        if node.host is None:
            continue
        for veth in node.host.interfaces.values():
            if veth.kind != "veth":
                continue
            if attach.bridge is not None:
                attaches_pod = veth.master == attach.bridge
            else:  # routed: the CNI's own veths, on no bridge
                prefix = attach.veth_prefix or ""
                attaches_pod = not veth.master and veth.name.startswith(prefix)
            namespace = node.pods_netns.get(veth.peer.netns) if veth.peer else None
            items.append(
                {
                    "node": node.name,
                    "name": veth.name,
                    "master": veth.master or "",
                    "mtu": _mtu(veth),
                    "proxy_arp": _proxy_arp(node, veth),
                    "attaches_pod": attaches_pod,
                    "links_file": node.outputs.get("links", ""),
                    "sysctl_file": node.outputs.get("sysctl", ""),
                    "peer_state": veth.peer_state,
                    "peer": veth.peer.name if veth.peer else "",
                    "peer_netns": (namespace.name or namespace.id) if namespace else "",
                    "peer_netns_pids": len(namespace.pids) if namespace else 0,
                    "pod": namespace.pod.ref if namespace and namespace.pod else "",
                }
            )
            nodes.append(node.name)
    return Collection("veth", items, nodes)


MacOwners = dict[str, tuple[str, str, str]]  # VTEP MAC -> (node, public IP, internal IP)


def _mac_owners(model: Model) -> MacOwners:
    """Each VTEP MAC's owner: the node whose overlay device has it, else the node whose
    VtepMAC annotation says it."""
    owners: MacOwners = {}
    for mac, owner in (
        *((n.api.vtep_mac, n) for n in model.nodes.values() if n.api and n.api.vtep_mac),
        *model.node_by_vtep_mac.items(),  # later: wins over an annotation
    ):
        api = owner.api
        owners[mac] = (
            owner.name,
            (api.public_ip or "") if api else "",
            (api.internal_ip or "") if api else "",
        )
    return owners


def fdb_facts(model: Model, home: Home = None) -> Collection:
    """FDB entries on each node's VXLAN device, with the peer that owns the MAC."""
    owners = _mac_owners(model)
    unknown = ("", "", "")
    device = _overlay_device(model)

    def facts_of(entry: FdbEntry) -> Fact | None:
        if device is None or entry.dev != device or not entry.dst:
            return None
        mac = entry.mac.lower()
        peer, public_ip, internal_ip = owners.get(mac, unknown)
        return {
            "dev": device,
            "mac": mac,
            "dst": entry.dst,
            "state": entry.state,
            "peer": peer,
            "peer_public_ip": public_ip,
            "peer_internal_ip": internal_ip,
        }

    return _entry_collection(model, home, lambda node: node.fdb, facts_of, "fdb")


VtepOwners = dict[str, tuple[str, str]]  # VTEP address -> (node, its flannel.1 MAC)


def _vtep_owners(model: Model) -> VtepOwners:
    """Each VTEP address's owner (its pod CIDR's network address, or an address on its
    flannel.1), worked out once per node rather than per entry."""
    owners: VtepOwners = {}
    backend = backend_of(model)
    for node in model.nodes.values():
        vxlan = backend.overlay_interface(node)
        owner = (node.name, (vxlan.mac or "").lower() if vxlan is not None else "")
        if node.api and node.api.pod_cidr:
            owners[node.api.pod_cidr.split("/")[0]] = owner
        for address in vxlan.ipv4 if vxlan is not None else []:
            owners.setdefault(address, owner)
    return owners


def _overlay(model: Model) -> Overlay | None:
    """The overlay as the data plane defines it: its device name, VNI and port are the
    same on every node (flannel names the device after the VNI); None without one."""
    backend = backend_of(model)
    return next((backend.overlay(node) for node in model.nodes.values()), None)


def _overlay_device(model: Model) -> str | None:
    overlay = _overlay(model)
    return overlay.device if overlay is not None else None


def _neighbours(node: Node) -> Sequence[Neighbour]:
    return node.host.neighbours if node.host is not None else ()


def neigh_facts(model: Model, home: Home = None) -> Collection:
    """Neighbour entries on each node's VXLAN device, with the peer whose VTEP address
    (its pod CIDR's network address) they resolve."""
    owners = _vtep_owners(model)
    unknown = ("", "")
    device = _overlay_device(model)

    def facts_of(entry: Neighbour) -> Fact | None:
        if device is None or entry.dev != device:
            return None
        peer, peer_mac = owners.get(entry.dst, unknown)
        return {
            "dev": device,
            "dst": entry.dst,
            "lladdr": (entry.lladdr or "").lower(),
            "state": list(entry.state),
            "peer": peer,
            "peer_vtep_mac": peer_mac,
        }

    return _entry_collection(model, home, _neighbours, facts_of, "neighbours")


E = TypeVar("E", FdbEntry, Neighbour)


def _entry_collection(
    model: Model,
    home: Home,
    entries: Callable[[Node], Sequence[E]],
    facts_of: Callable[[E], Fact | None],
    kind: str,
) -> Collection:
    """One item per entry that `facts_of` keeps (None: not an entry rules check). Every
    node holds the same entry per peer, parsed into one shared record
    (parsers/elements.py): its facts are worked out once per record, and each node
    lists which it holds (SharedFacts: 10^6 entries, ~10^3 records)."""
    # by the entry's id: the index of its facts (-1: none); the entries are kept, so
    # their ids stay their own
    known: dict[int, int] = {}
    kept: list[E] = []
    facts: list[Fact] = []
    held: list[tuple[str, str, list[int]]] = []
    for node in _nodes(model, home):
        indexes: list[int] = []
        for entry in entries(node):
            index = known.get(id(entry))
            if index is None:
                found = facts_of(entry)
                kept.append(entry)
                index = known[id(entry)] = -1 if found is None else len(facts)
                if found is not None:
                    facts.append(found)
            if index >= 0:
                indexes.append(index)
        # the evidence: the node's table
        held.append((node.name, node.outputs.get(kind, ""), indexes))
    return Collection("entry", shared=SharedFacts(facts, held))


# Builders of the collections other than nodes, by for_each name. Built when a rule first
# needs one and dropped after the last (10^6 FDB and neighbour facts at 1,000 nodes).
COLLECTION_BUILDERS: dict[str, Callable[[Model, Home], Collection]] = {
    "pods": pod_facts,
    "veths": veth_facts,
    "vtep_fdb": fdb_facts,
    "vtep_neighbours": neigh_facts,
}


def _fdb_inputs(model: Model, home: Home = None) -> object:
    parses = []
    for node in _nodes(model, home):
        node.fdb  # noqa: B018 - reads the FDB, recording the parse it came from
        parses.append((node.name, node.sources.get("fdb")))
    return _mac_owners(model), parses


def _neigh_inputs(model: Model, home: Home = None) -> object:
    parses = []
    for node in _nodes(model, home):
        _neighbours(node)  # reads them, recording the parse they came from
        parses.append((node.name, node.host.sources.get("neighbours") if node.host else None))
    return _vtep_owners(model), parses


# For the entry collections: everything their items are made of, cheap to work out and
# to compare. Two models built with one ParseCache (a diff's) hold the same parse for
# the same bytes, so equal inputs (== finds the very same parse at once) mean equal
# items, and a diff's second snapshot can take the first one's collection as it is.
COLLECTION_INPUTS: dict[str, Callable[[Model, Home], object]] = {
    "vtep_fdb": _fdb_inputs,
    "vtep_neighbours": _neigh_inputs,
}


def node_facts(model: Model) -> Collection:
    items = [node_fact(model, node) for node in _nodes(model)]
    overlaps = _pod_cidr_overlaps(items)
    backend = backend_of(model)
    nodes = list(model.nodes.values())
    off_segment = off_segment_peers(nodes, backend) if backend.needs_one_segment else {}
    with_ip = sum(1 for node in nodes if node_ip(node))
    for item in items:
        item["off_segment_peers"] = off_segment.get(item["name"], [])
        item["peers_with_ip"] = with_ip - (1 if item["public_ip"] or item["internal_ip"] else 0)
        network = _network(item["pod_cidr"])
        item["pod_cidr_network"] = str(network.network_address) if network else ""
        item["pod_cidr_overlaps"] = overlaps.get(item["name"], [])
    return Collection("node", items, [item["name"] for item in items])


def _network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(cidr, strict=False) if cidr else None
    except ValueError:
        return None


def _pod_cidr_overlaps(items: list[Fact]) -> dict[str, list[str]]:
    """Per node, the other nodes whose pod CIDR overlaps its own: worked out once by a
    sweep over the sorted CIDRs, so pair rules need no CIDR call per pair (10^6 pairs)."""
    spans = []
    for item in items:
        network = _network(item["pod_cidr"])
        if network is not None:
            first = int(network.network_address)
            spans.append((network.version, first, first + network.num_addresses - 1, item["name"]))
    spans.sort()
    overlaps: dict[str, list[str]] = {}
    active: list[tuple[int, int, str]] = []  # (version, last address, name), still open
    for version, first, last, name in spans:
        active = [a for a in active if a[0] == version and a[1] >= first]
        for _, _, other in active:
            overlaps.setdefault(name, []).append(other)
            overlaps.setdefault(other, []).append(name)
        active.append((version, last, name))
    return {name: sorted(others) for name, others in overlaps.items()}


def netconf_fact(model: Model) -> Fact:
    conf = model.net_conf
    overlay = _overlay(model)
    return {
        "present": conf is not None,
        "network": (conf.network or "") if conf else "",
        "backend_type": (conf.backend_type or "").lower() if conf else "",
        "vni": overlay.vni if overlay is not None and overlay.vni is not None else -1,
        "port": overlay.port if overlay is not None and overlay.port is not None else -1,
    }
