"""A model flattened into comparable facts, keyed so the same thing has the same key in
two snapshots: pods by namespace/name, or by owner and node where a controller
generated the name (never by their random veth names or namespace inodes), host devices
by role, routes by table, type and destination, overlay entries by address, or by the
node whose VTEP MAC they hold (identity.py pairs, a Relabel names the old side alike).

What churns without meaning is left out: counters, ages, timestamps, neighbour states
(REACHABLE/STALE), pcap contents, IPv6 link-local addresses the kernel derives from
random MACs. Per-boot identifiers (MACs, ifindexes, veth names, namespace ids, generated
pod names) are kept as fields, so `--all` can show them; compare.py leaves them out of
the default view.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from needle.analyzer.backends import Backend, backend_of
from needle.analyzer.diff.identity import NO_RELABEL, Relabel, device_roles, vtep_owners
from needle.analyzer.model.dataplane import same_unread_details
from needle.analyzer.model.entities import HOST, Interface, Model, Namespace, Node
from needle.analyzer.parsers.ip_route import Route
from needle.analyzer.rules.facts import pod_facts as rule_pod_facts

Key = tuple[str, ...]
Facts = dict[Key, Any]


@dataclass
class Snapshot:
    kinds: dict[str, Facts] = field(default_factory=lambda: defaultdict(dict))
    # per node, which kinds of data the bundle held (so absent is not "removed")
    present: dict[str, set[str]] = field(default_factory=dict)
    missing_cluster: set[str] = field(default_factory=set)
    # per node, the labels of its pod namespaces and host devices, whether their facts
    # were taken or not: facts of a namespace or veth on one side only are implied by
    # the pod that came or went (compare.py folds them into it)
    scopes: dict[str, set[str]] = field(default_factory=dict)


# ethtool in the default view: host veths are compared as one role, not by random name
VETH_ROLE = "host veths"

Aliases = dict[tuple[str, int], str]  # (node, namespace inode) -> label to use


def _own_label(namespace: Namespace, relabel: Relabel = NO_RELABEL) -> str:
    if namespace.is_host:
        return HOST
    if namespace.pod is not None:
        return f"pod {relabel.pod(namespace.pod.ref)}"
    if namespace.name:
        return f"netns {namespace.name}"
    return f"netns #{namespace.inode}" if namespace.inode else f"netns {namespace.id}"


def namespace_labels(
    model: Model, nodes: Collection[str] | None = None, relabel: Relabel = NO_RELABEL
) -> Aliases:
    """Each pod namespace's label, by (node, inode): the inode is what stays the same
    when a namespace outlives its pod object (or gains one) between two snapshots."""
    return {
        (node.name, namespace.inode): _own_label(namespace, relabel)
        for node in model.nodes.values()
        if nodes is None or node.name in nodes
        for namespace in node.pods_netns.values()
        if namespace.inode is not None
    }


def aliases_for(this: Aliases, other: Aliases) -> Aliases:
    """Where a namespace is labelled by a pod in the other snapshot but not in this one,
    use the other's label, so its interfaces and routes compare as the same thing."""
    return {
        key: other[key]
        for key, label in this.items()
        if key in other and other[key] != label and not label.startswith("pod ")
    }


def _interface_label(
    interface: Interface, node: Node, relabel: Relabel, roles: Mapping[str, str]
) -> str:
    """Host veths are named after the namespace they lead to: their own names are random.
    A device renamed in a role (`roles`: old name -> new) takes the other side's name."""
    if interface.kind == "veth" and interface.netns == HOST and interface.peer is not None:
        namespace = node.pods_netns.get(interface.peer.netns)
        if namespace is not None:
            return f"veth to {_own_label(namespace, relabel).removeprefix('pod ')}"
    return roles.get(interface.name, interface.name)


def _device_labels(node: Node, relabel: Relabel = NO_RELABEL) -> dict[str, str]:
    if node.host is None:
        return {}
    roles = relabel.devices.get(node.name, {})
    return {
        name: _interface_label(i, node, relabel, roles) for name, i in node.host.interfaces.items()
    }


def _link_local(address: str) -> bool:
    return address.lower().startswith("fe80:")


def _interface_facts(interface: Interface, devices: dict[str, str]) -> dict[str, Any]:
    link = interface.link
    facts: dict[str, Any] = {
        "kind": link.kind,
        "mtu": link.mtu,
        # UNKNOWN is what drivers without carrier reporting (bridges, lo, tun) say while
        # passing traffic; a bridge flips UNKNOWN -> UP as its first port comes up
        "state": "UP" if link.operstate == "UNKNOWN" else link.operstate,
        "master": devices.get(link.master or "", link.master),
        "addresses": sorted(
            f"{a.local}/{a.prefixlen}" for a in interface.addresses if not _link_local(a.local)
        ),
    }
    if link.vxlan is not None:
        facts.update(
            vni=link.vxlan.id,
            port=link.vxlan.port,
            local=link.vxlan.local,
            underlay=devices.get(link.vxlan.dev or "", link.vxlan.dev),
            learning=link.vxlan.learning,
        )
    # a re-created device gets another MAC and ifindex, a pod's host veth another name:
    # compare.py leaves those out unless --all (a role device's new name is a change)
    facts.update(mac=link.address, ifindex=link.ifindex, name=link.name)
    return facts


def _route_facts(
    namespace: Namespace, devices: dict[str, str], wanted: set[Key] | None = None
) -> dict[Key, Any]:
    """The namespace's routes as facts by key (only the `wanted` keys, when given)."""
    grouped: dict[Key, list[tuple[Any, ...]]] = defaultdict(list)
    for route in namespace.routes:
        if wanted is not None and (route.table, route.type, route.dst) not in wanted:
            continue
        if _link_local(route.dst) or route.cached:
            continue
        devs = [route.dev] if route.dev else [n.dev for n in route.nexthops if n.dev]
        gateways = (
            [route.gateway] if route.gateway else [n.gateway for n in route.nexthops if n.gateway]
        )
        flags = sorted(
            f
            for f in (*route.flags, *(f for n in route.nexthops for f in n.flags))
            if f in {"onlink", "linkdown", "dead"}
        )
        grouped[(route.table, route.type, route.dst)].append(
            (
                ",".join(g or "" for g in gateways) or None,
                ",".join(devices.get(d or "", d or "") for d in devs) or None,
                ",".join(flags) or None,
                route.proto,
                route.scope,
                route.metric,
                route.src,
            )
        )
    # tuples, not dicts: a 1,000-node snapshot holds ~10^6 routes; rendered only if changed
    facts: dict[Key, Any] = {}
    for key, values in grouped.items():
        metrics = {value[5] for value in values}
        if len(values) == 1 or len(metrics) == 1:
            facts[key] = tuple(values) if len(values) == 1 else tuple(sorted(values, key=str))
            continue
        # the kernel tells routes to one destination apart by their metric (two default
        # routes, a backup one at a higher metric): one fact each, never one overwriting
        by_metric: dict[Any, list[tuple[Any, ...]]] = defaultdict(list)
        for value in values:
            by_metric[value[5]].append(value)
        # the preferred (lowest metric) keeps the plain key, so it pairs with a lone route
        first, *others = sorted(by_metric, key=lambda metric: metric or 0)
        facts[key] = tuple(sorted(by_metric[first], key=str))
        for metric in others:
            facts[(*key, f"metric {metric}")] = tuple(sorted(by_metric[metric], key=str))
    return facts


ROUTE_FIELDS = ("via", "dev", "flags", "proto", "scope", "metric", "src")


def render_route(values: tuple[tuple[Any, ...], ...]) -> Any:
    """A route's facts as a reader sees them: field names, no empty fields."""
    rendered = [
        {k: v for k, v in zip(ROUTE_FIELDS, value, strict=True) if v is not None}
        for value in values
    ]
    if len(rendered) == 1:
        return rendered[0]
    # several routes under one key (one per device, e.g. IPv6 multicast): one field each,
    # their values side by side, so every renderer gets the one shape it knows
    return {
        field: "; ".join(str(r.get(field, "-")) for r in rendered)
        for field in ROUTE_FIELDS
        if any(field in r for r in rendered)
    }


def _vtep_mac_is_own(node: Node, backend: Backend) -> bool | None:
    """Whether the VtepMAC annotation is the node's own overlay device's MAC; None when
    the bundle has no overlay device of the node to tell."""
    device = backend.overlay_interface(node)
    if device is None or not device.mac or node.api is None:
        return None
    return (node.api.vtep_mac or "").lower() == device.mac.lower()


def cluster_snapshot(model: Model) -> Snapshot:
    """What the API says about nodes, and what the bundle lacks cluster-wide."""
    snap = Snapshot()
    backend = backend_of(model)
    snap.missing_cluster = set(model.missing)
    for node in model.nodes.values():
        if node.api is not None:
            api = node.api
            snap.kinds["node"][(node.name,)] = {
                "pod_cidr": api.pod_cidr,
                "internal_ip": api.internal_ip,
                "public_ip": api.public_ip,
                "vtep_mac": api.vtep_mac,
                "backend_type": api.backend_type,
                # what the MAC means, which outlives a re-created flannel.1 (the MAC not)
                "vtep_mac_is_own": _vtep_mac_is_own(node, backend),
            }
        elif node.collected:
            snap.kinds["node"][(node.name,)] = {"in_api": False}
    return snap


def pod_facts(
    model: Model, nodes: Collection[str] | None = None, relabel: Relabel = NO_RELABEL
) -> Facts:
    """Each pod (on `nodes`, all when None) and whether its namespace and veth were found,
    from the facts rules read of it (rules/facts.py): read after the pod's node's pod
    side is loaded. Keyed by the ref of the pod it is paired with (`relabel`), so a pod
    re-created under a generated name is one pod."""
    return {
        (relabel.pod(item["ref"]),): {
            "node": item["node"] or None,
            "ip": item["ip"] or None,
            "host_network": item["host_network"],
            "netns": item["netns_found"],
            "host_veth": bool(item["host_veth"]),
            # per-boot
            "name": item["name"],
            "netns_id": item["netns_id"] or None,
            "host_veth_name": item["host_veth"] or None,
        }
        for item in rule_pod_facts(model, frozenset(nodes) if nodes is not None else None).items
    }


@dataclass
class Unchanged:
    """What need not be compared. `same`: (node, namespace id or "host", kind of facts)
    the two models hold from the same bytes, under the same labels. `route_keys`: per
    node whose host routes differ, the only route keys (table, type, destination) whose
    routes are not the very same records in both (a route changed on a 1,000-node
    cluster leaves the other 999 routes of each node the same records)."""

    same: set[tuple[str, str, str]] = field(default_factory=set)
    route_keys: dict[str, set[Key]] = field(default_factory=dict)


def _same(a: dict[str, object], b: dict[str, object], kinds: tuple[str, ...]) -> bool:
    return all(a.get(kind) is b.get(kind) for kind in kinds)


def _same_routes(a: Namespace, b: Namespace) -> bool:
    """Whether two namespaces' routes come from the same bytes. Compared as bytes while
    still unread: a cluster has 10^5 pod namespaces, and most are the same in both."""
    same = same_unread_details(a, b, ("routes", "routes6"))
    if same is not None:
        return same
    a.routes, b.routes  # noqa: B018 - reads the details, recording their sources
    return _same(a.sources, b.sources, ("routes", "routes6"))


def unchanged_between(
    old: Model, new: Model, nodes: Collection[str], relabel: Relabel = NO_RELABEL
) -> Unchanged:
    """What two models built with one ParseCache hold identically, per node: found by
    object identity (the same bytes parse into the same records), never by comparing
    10^6 facts. `relabel` names the old side's things as the new side does."""
    unchanged = Unchanged()
    same = unchanged.same
    for name in nodes:
        before, after = old.nodes.get(name), new.nodes.get(name)
        if before is None or after is None or before.host is None or after.host is None:
            continue
        labels_same = _device_labels(before, relabel) == _device_labels(after)
        host_old, host_new = before.host, after.host
        host_old.routes, host_new.routes  # noqa: B018 - reads the details, recording sources
        if labels_same and _same(host_old.sources, host_new.sources, ("links", "addresses")):
            same.add((name, HOST, "interface"))
        if labels_same and _same(host_old.sources, host_new.sources, ("routes", "routes6")):
            same.add((name, HOST, "route"))
        elif labels_same:
            unchanged.route_keys[name] = _touched_route_keys(host_old.routes, host_new.routes)
        if _same(host_old.sources, host_new.sources, ("neighbours",)):
            same.add((name, HOST, "neighbour"))
        before.fdb, after.fdb  # noqa: B018 - as above
        if _same(before.sources, after.sources, ("fdb",)):
            same.add((name, HOST, "fdb"))
        if labels_same and _same(before.sources, after.sources, ("sysctl",)):
            same.add((name, HOST, "sysctl"))
        for netns, namespace in before.pods_netns.items():
            other = after.pods_netns.get(netns)
            if other is None or _own_label(namespace, relabel) != _own_label(other):
                continue
            if _same(namespace.sources, other.sources, ("links", "addresses")):
                same.add((name, netns, "interface"))
            if _same_routes(namespace, other):
                same.add((name, netns, "route"))
    return unchanged


def _touched_route_keys(old: Sequence[Route], new: Sequence[Route]) -> set[Key]:
    """The keys of routes that are in one list and not, as the same record, in the
    other. (Equal routes parsed from equal elements are one record: parsers/elements.py;
    routes equal but not shared are compared as facts, so this never misses a change.)"""
    old_ids, new_ids = set(map(id, old)), set(map(id, new))
    return {
        (route.table, route.type, route.dst)
        for routes, other in ((old, new_ids), (new, old_ids))
        for route in routes
        if id(route) not in other
    }


def node_snapshot(
    model: Model,
    nodes: Collection[str] | None = None,
    unchanged: Unchanged | None = None,
    relabel: Relabel = NO_RELABEL,
    ethtool_by_interface: bool = False,
) -> Snapshot:
    """Each node's data-plane facts (of `nodes`, all when None) under its own labels
    (or the other side's, through `relabel`), leaving out what `unchanged` says is the
    same in the other snapshot; rename_namespaces() aligns podless namespaces. ethtool
    features are taken per device, host veths as one role unless `ethtool_by_interface`."""
    snap = Snapshot()
    kinds = snap.kinds
    skip = unchanged.same if unchanged is not None else set()
    only_routes = unchanged.route_keys if unchanged is not None else {}
    owners: dict[str, str] | None = None  # VTEP MAC -> node: only if a table is compared
    backend = backend_of(model)
    for node in model.nodes.values():
        overlay = backend.overlay(node)
        overlay_device = overlay.device if overlay is not None else None
        if nodes is not None and node.name not in nodes:
            continue
        if node.host is None or not node.collected:
            continue
        present = set(node.present) | set(node.host.present)
        snap.present[node.name] = present
        devices = _device_labels(node, relabel)
        scopes = snap.scopes[node.name] = set(devices.values())
        for namespace in node.namespaces():
            label = _own_label(namespace, relabel)
            if not namespace.is_host:
                scopes.add(label)
            local = devices if namespace.is_host else {}
            if (node.name, namespace.id, "interface") not in skip:
                for interface in namespace.interfaces.values():
                    name = (
                        devices.get(interface.name, interface.name)
                        if namespace.is_host
                        else interface.name
                    )
                    kinds["interface"][(node.name, label, name)] = _interface_facts(
                        interface, local
                    )
            if (node.name, namespace.id, "route") not in skip:
                wanted = only_routes.get(node.name) if namespace.is_host else None
                for key, values in _route_facts(namespace, local, wanted).items():
                    kinds["route"][(node.name, label, *map(str, key))] = values
        if (node.name, HOST, "neighbour") not in skip:
            for entry in node.host.neighbours:
                if overlay_device is not None and entry.dev == overlay_device:
                    if owners is None:
                        owners = vtep_owners(model)
                    lladdr = (entry.lladdr or "").lower()
                    key = (node.name, entry.dst)
                    if key in kinds["neighbour"]:  # a second entry for one address: both
                        key = (node.name, f"{entry.dst} lladdr {lladdr or '-'}")
                    kinds["neighbour"][key] = {
                        "lladdr": lladdr,
                        "permanent": "PERMANENT" in entry.state,
                        # whose VTEP the entry points at outlives the MAC (per-boot)
                        "vtep_of": owners.get(lladdr, lladdr),
                    }
        if (node.name, HOST, "fdb") not in skip:
            fdb: dict[str, list[str]] = defaultdict(list)
            for entry in node.fdb:
                if overlay_device is not None and entry.dev == overlay_device and entry.dst:
                    fdb[entry.mac.lower()].append(entry.dst)
            for mac, destinations in fdb.items():
                # an entry for a peer whose VTEP MAC changed is the same entry, under
                # the other side's MAC (unless that MAC has an entry of its own here)
                shown = relabel.macs.get(mac, mac)
                if shown in fdb:
                    shown = mac
                kinds["fdb"][(node.name, shown)] = {"dst": sorted(destinations), "mac": mac}
        if (node.name, HOST, "sysctl") not in skip:
            for sysctl_key, value in node.sysctls.items():
                kinds["sysctl"][(node.name, _sysctl_label(sysctl_key, devices))] = value
        _ethtool_facts(node, backend, devices, kinds["ethtool"], ethtool_by_interface)
    return snap


def _ethtool_facts(
    node: Node, backend: Backend, devices: dict[str, str], facts: Facts, by_interface: bool
) -> None:
    """ethtool -k per device; pods' host veths as one role (a feature "on", "off" or
    "mixed" over all of them) unless `by_interface`: their names are random, and a pod's
    veth has the features every veth of its node has. A veth in a role of its own (the
    underlay of a VM or of the lab is often one) stays a device of its own."""
    assert node.host is not None
    veths: dict[str, set[bool]] = defaultdict(set)
    roles = set(device_roles(node, backend).values()) if not by_interface else set()
    for name, interface in node.host.interfaces.items():
        if interface.features is None:
            continue
        if not by_interface and interface.kind == "veth" and name not in roles:
            for feature in interface.features.features.values():
                veths[feature.name].add(feature.enabled)
            continue
        label = devices.get(name, name)
        for feature in interface.features.features.values():
            facts[(node.name, label, feature.name)] = "on" if feature.enabled else "off"
    for feature_name, states in veths.items():
        value = "mixed" if len(states) > 1 else ("on" if True in states else "off")
        facts[(node.name, VETH_ROLE, feature_name)] = value


def take_snapshot(
    model: Model, relabel: Relabel = NO_RELABEL, ethtool_by_interface: bool = False
) -> Snapshot:
    """Everything of one model (its pod side loaded), under its own labels (or the
    other side's, through `relabel`)."""
    model.load_nodes()
    snap = node_snapshot(model, relabel=relabel, ethtool_by_interface=ethtool_by_interface)
    cluster = cluster_snapshot(model)
    snap.kinds["node"] = cluster.kinds["node"]
    snap.kinds["pod"] = pod_facts(model, relabel=relabel)
    snap.missing_cluster = cluster.missing_cluster
    return snap


def _sysctl_label(key: str, devices: dict[str, str]) -> str:
    parts = key.split(".")
    # net.ipv4.conf.<iface>.x: name the interface like the interface facts do
    if len(parts) > 4 and parts[2] == "conf":
        iface = parts[3].replace("/", ".")
        if iface in devices:
            parts[3] = devices[iface]
    return ".".join(parts)


def rename_namespaces(snap: Snapshot, renames: dict[str, dict[str, str]]) -> None:
    """Relabel podless namespaces (and the veths and routes that name them) per node, so a
    namespace matched across snapshots by inode compares under one label."""
    if not renames:
        return

    def fix(text: str, table: dict[str, str]) -> str:
        # longest first: "veth to netns #X" must not be caught by "netns #X"
        for old, new in sorted(table.items(), key=lambda item: -len(item[0])):
            if old in text:
                text = text.replace(old, new)
        return text

    for kind, facts in snap.kinds.items():
        if kind in {"node", "pod"}:
            continue
        for key in [k for k in facts if k[0] in renames]:
            table = renames[key[0]]
            value = facts[key]
            new_key = tuple(fix(part, table) if "netns " in part else part for part in key)
            if kind == "route":
                rows = (
                    tuple(fix(v, table) if isinstance(v, str) and "netns " in v else v for v in row)
                    for row in value
                )
                value = tuple(sorted(rows, key=str))  # same order as an unrenamed snapshot
            if new_key != key or value is not facts[key]:
                del facts[key]
                facts[new_key] = value
    for node, table in renames.items():
        if node in snap.scopes:
            snap.scopes[node] = {
                fix(scope, table) if "netns " in scope else scope for scope in snap.scopes[node]
            }


def renames_for(aliases: Aliases, own: Aliases) -> dict[str, dict[str, str]]:
    """The string renames per node that `aliases` implies for labels in `own`."""
    renames: dict[str, dict[str, str]] = defaultdict(dict)
    for (node, inode), label in aliases.items():
        mine = own.get((node, inode))
        if mine is None or mine == label:
            continue
        renames[node][mine] = label
        renames[node][f"veth to {mine}"] = f"veth to {label.removeprefix('pod ')}"
    return dict(renames)
