"""Rows for each `needle show` view: plain dicts, the same for tables and JSON, made one
at a time (a generator) so a view of 10^6 routes prints as it goes (show/render.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from needle.analyzer.backends import backend_of
from needle.analyzer.model.entities import HOST, Interface, Model, Namespace, Node

Row = dict[str, object]


def _nodes(model: Model, only: str | None) -> Iterator[Node]:
    for name in sorted(model.nodes):
        if only is None or name == only:
            yield model.nodes[name]


def _netns_label(namespace: Namespace) -> str:
    if namespace.is_host:
        return HOST
    if namespace.pod is not None:
        return namespace.pod.ref
    return namespace.name or namespace.id


def nodes_view(model: Model, only: str | None) -> Iterator[Row]:
    backend = backend_of(model)
    for node in _nodes(model, only):
        api = node.api
        vxlan = backend.overlay_interface(node)
        underlay = backend.underlay_interface(node)
        yield (
            {
                "node": node.name,
                "collected": node.status or "no",
                "pod_cidr": api.pod_cidr if api else None,
                "internal_ip": api.internal_ip if api else None,
                "public_ip": api.public_ip if api else None,
                "vtep_mac_api": api.vtep_mac if api else None,
                "vtep_mac": vxlan.mac if vxlan else None,
                "overlay_mtu": vxlan.mtu if vxlan else None,
                "underlay": f"{underlay.name}/{underlay.mtu}" if underlay else None,
                "pod_netns": len(node.pods_netns),
                "errors": len(node.errors),
            }
        )


def pods_view(model: Model, only: str | None) -> Iterator[Row]:
    for pod in sorted(model.pods, key=lambda p: (p.node or "", p.ref)):
        if only is not None and pod.node != only:
            continue
        if pod.host_network:
            state = "host-network"
        elif pod.netns is None:
            state = (
                "no-netns"
                if model.nodes.get(pod.node or "") and model.nodes[pod.node or ""].collected
                else "not-collected"
            )
        else:
            state = "joined"
        yield (
            {
                "pod": pod.ref,
                "node": pod.node,
                "ip": pod.ip,
                "phase": pod.phase,
                "netns": pod.netns.name or pod.netns.id if pod.netns else None,
                "host_veth": pod.host_veth.name if pod.host_veth else None,
                "state": state,
            }
        )


def _interfaces(model: Model, only: str | None) -> Iterator[tuple[Node, Namespace, Interface]]:
    for node in _nodes(model, only):
        for namespace in node.namespaces():
            for interface in sorted(namespace.interfaces.values(), key=lambda i: i.link.ifindex):
                yield node, namespace, interface


def _peer_label(interface: Interface) -> str | None:
    if interface.peer is None:
        return "(missing)" if interface.peer_state == "missing" else None
    return f"{_netns_label_of(interface.peer)}:{interface.peer.name}"


def _netns_label_of(interface: Interface) -> str:
    return HOST if interface.netns == HOST else interface.netns


def links_view(model: Model, only: str | None) -> Iterator[Row]:
    yield from (
        {
            "node": node.name,
            "netns": _netns_label(namespace),
            "ifindex": interface.link.ifindex,
            "name": interface.name,
            "kind": interface.kind,
            "mtu": interface.mtu,
            "state": interface.link.operstate,
            "mac": interface.mac,
            "master": interface.master,
            "peer": _peer_label(interface),
            "addresses": [f"{a.local}/{a.prefixlen}" for a in interface.addresses],
        }
        for node, namespace, interface in _interfaces(model, only)
    )


def routes_view(model: Model, only: str | None) -> Iterator[Row]:
    for node in _nodes(model, only):
        for namespace in node.namespaces():
            for route in namespace.routes:
                yield (
                    {
                        "node": node.name,
                        "netns": _netns_label(namespace),
                        "table": route.table,
                        "type": route.type,
                        "dst": route.dst,
                        "gateway": route.gateway
                        or ",".join(n.gateway or "" for n in route.nexthops)
                        or None,
                        "dev": route.dev or ",".join(n.dev or "" for n in route.nexthops) or None,
                        "proto": route.proto,
                        "scope": route.scope,
                        "metric": route.metric,
                        "flags": list(route.flags),
                    }
                )


def neigh_view(model: Model, only: str | None) -> Iterator[Row]:
    yield from (
        {
            "node": node.name,
            "netns": _netns_label(namespace),
            "dst": entry.dst,
            "lladdr": entry.lladdr,
            "dev": entry.dev,
            "state": list(entry.state),
        }
        for node in _nodes(model, only)
        for namespace in node.namespaces()
        for entry in namespace.neighbours
    )


def fdb_view(model: Model, only: str | None) -> Iterator[Row]:
    yield from (
        {
            "node": node.name,
            "mac": entry.mac,
            "dev": entry.dev,
            "dst": entry.dst,
            "vlan": entry.vlan,
            "master": entry.master,
            "state": entry.state,
            "flags": list(entry.flags),
        }
        for node in _nodes(model, only)
        for entry in node.fdb
    )


def veths_view(model: Model, only: str | None) -> Iterator[Row]:
    for node in _nodes(model, only):
        if node.host is None:
            continue
        for veth in sorted(node.host.interfaces.values(), key=lambda i: i.name):
            if veth.kind != "veth":
                continue
            peer = veth.peer
            namespace = node.pods_netns.get(peer.netns) if peer else None
            yield (
                {
                    "node": node.name,
                    "host_veth": veth.name,
                    "master": veth.master,
                    "mtu": veth.mtu,
                    "peer_netns": (namespace.name or namespace.id) if namespace else None,
                    "peer": peer.name if peer else None,
                    "peer_mtu": peer.mtu if peer else None,
                    "pod": namespace.pod.ref if namespace and namespace.pod else None,
                    "state": veth.peer_state,
                }
            )


def mtu_view(model: Model, only: str | None) -> Iterator[Row]:
    backend = backend_of(model)
    yield from (
        {
            "node": node.name,
            "pod": label,
            "chain": " -> ".join(f"{hop.interface} {hop.mtu}" for hop in hops),
            "hops": [{"where": h.where, "interface": h.interface, "mtu": h.mtu} for h in hops],
        }
        for node in _nodes(model, only)
        for label, hops in node.mtu_chains(
            backend.overlay_interface(node), backend.underlay_interface(node)
        )
    )


def captures_view(model: Model, only: str | None) -> Iterator[Row]:
    yield from (
        {
            "node": node.name,
            "interface": capture.get("interface"),
            "filter": capture.get("filter"),
            "packets": capture.get("packets_captured"),
            "dropped": capture.get("packets_dropped_by_kernel"),
            "file": capture.get("file"),
            "error": capture.get("error"),
        }
        for node in _nodes(model, only)
        for capture in node.captures
    )


VIEWS: dict[str, Callable[[Model, str | None], Iterator[Row]]] = {
    "nodes": nodes_view,
    "pods": pods_view,
    "links": links_view,
    "routes": routes_view,
    "neigh": neigh_view,
    "fdb": fdb_view,
    "veths": veths_view,
    "mtu": mtu_view,
    "captures": captures_view,
}
# Columns that only JSON carries (too wide or nested for a table).
JSON_ONLY = {"hops"}
