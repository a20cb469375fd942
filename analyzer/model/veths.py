"""Resolves veth pairs across one node's namespaces.

A host-side veth names its peer by (link_netnsid, link_index): the nsid its namespace
knows the peer namespace by, and the peer's ifindex there. Named namespaces come with
that nsid in the manifest; for unnamed ones (found through a process) the pair is
recognised by both ends pointing at each other's ifindex, when exactly one namespace
fits. A peer that cannot be found is a state of its own ("missing"), not an error.
"""

from __future__ import annotations

from needle.analyzer.model.entities import Interface, Namespace, Node


def _mutual(host_side: Interface, candidate: Interface | None) -> bool:
    return (
        candidate is not None
        and candidate.link.link_index == host_side.link.ifindex
        and host_side.link.link_index == candidate.link.ifindex
    )


def _pair(a: Interface, b: Interface) -> None:
    a.peer, b.peer = b, a
    a.peer_state = b.peer_state = "resolved"


def resolve_veths(node: Node) -> None:
    host = node.host
    if host is None:
        return
    pods = list(node.pods_netns.values())
    by_nsid: dict[int, Namespace] = {ns.nsid: ns for ns in pods if ns.nsid is not None}
    for namespace in node.namespaces():
        for interface in namespace.interfaces.values():
            if interface.kind == "veth" and interface.peer is None:
                interface.peer_state = "missing"
    for veth in host.interfaces.values():
        if veth.kind != "veth" or veth.peer is not None or veth.link.link_index is None:
            continue
        if veth.link.link_netnsid is None:
            # both ends in the host namespace (link names the peer directly)
            peer = host.interfaces.get(veth.link.link or "")
            if peer is not None and peer is not veth:
                _pair(veth, peer)
            continue
        namespace = by_nsid.get(veth.link.link_netnsid)
        if namespace is not None:
            candidate = namespace.by_ifindex.get(veth.link.link_index)
            if _mutual(veth, candidate):
                _pair(veth, candidate)  # type: ignore[arg-type]
            continue
        fits = [
            candidate
            for ns in pods
            if ns.nsid is None
            if _mutual(veth, candidate := ns.by_ifindex.get(veth.link.link_index))
        ]
        if len(fits) == 1:
            _pair(veth, fits[0])
