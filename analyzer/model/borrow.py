"""A diff's second model borrows a node's pod side from the first one's, where it would
be built from the very same bytes.

A node's pod side (its pod namespaces, their interfaces, the veth pairs and the pods'
joins) is most of what a model holds: 10^5 namespaces at 1,000 nodes. Two snapshots of
a cluster mostly hold it unchanged. Built with one ParseCache, identical files parse
into the same objects, so "the same bytes" is an identity test on the parses. Where a
node's namespace records, every namespace's links and addresses, its host links and
addresses and its pods in the API are all the same, the new model takes:

- new Namespace objects (its own, with its own lazy routes and neighbours, read from
  its own bundle), holding the old namespaces' interfaces: built from the same
  parses, they are equal, and nothing changes an interface once the node is loaded;
- its host veths paired as the old host veths are (a peer on the host side is the
  new model's own interface of that name);
- its pods joined as the old pods are.

What the shared pod-side interfaces point at (`Interface.peer` of a pod's eth0) stays
the old model's host veth. Only the join and `Node.mtu_chains()` read it: a borrowed
node's join is copied, not run, and `show` never meets a diff's models (its MTUs
would be the same anyway: the host links are the same parse). Anything that differs
falls back to building the node as usual.
"""

from __future__ import annotations

from typing import Any

from needle.analyzer.model.build import PodSideLoader
from needle.analyzer.model.dataplane import DETAILS, NodeOutputs, attach_details
from needle.analyzer.model.entities import HOST, Model, Namespace, Node, Pod
from needle.analyzer.parsers.ip_addr import parse_ip_addr
from needle.analyzer.parsers.ip_link import parse_ip_link

_OWN = ("links", "addresses")


def _pod_key(pod: Pod) -> tuple[Any, ...]:
    return (pod.namespace, pod.name, pod.node, pod.ip, pod.host_network, pod.phase)


def _same_record(namespace: Namespace, record: dict[str, Any]) -> bool:
    return (namespace.id, namespace.dir, namespace.inode, namespace.nsid, namespace.name) == (
        record["id"],
        record["dir"],
        record.get("inode"),
        record.get("nsid"),
        record.get("name"),
    ) and namespace.pids == list(record.get("pids", []))


def borrow_pod_side(old: Model, new: Model, name: str) -> bool:
    """Give `new`'s node `name` the pod side of `old`'s (already loaded) if it would be
    built from the same bytes; whether it did. Both models must share a ParseCache."""
    before, after = old.nodes.get(name), new.nodes.get(name)
    if before is None or after is None or before.load_pod_side is not None:
        return False
    loader = after.load_pod_side
    if not isinstance(loader, PodSideLoader) or not loader.pod_details:
        return False
    if before.host is None or after.host is None:
        return False
    if any(before.host.sources.get(k) is not after.host.sources.get(k) for k in _OWN):
        return False
    old_pods, new_pods = old.pods_by_node.get(name, []), new.pods_by_node.get(name, [])
    if list(map(_pod_key, old_pods)) != list(map(_pod_key, new_pods)):
        return False
    if len(before.pods_netns) != len(loader.netns):
        return False
    outputs = loader.outputs
    copies: dict[str, Namespace] = {}
    for namespace, record in zip(before.pods_netns.values(), loader.netns, strict=True):
        if not _same_record(namespace, record):
            return False
        links = outputs.parsed(namespace.id, "links", parse_ip_link)
        if links is not namespace.sources.get("links"):
            return False
        addresses = outputs.parsed(namespace.id, "addresses", parse_ip_addr)
        if addresses is not namespace.sources.get("addresses"):
            return False
        copies[namespace.id] = _renewed(namespace, outputs, links, addresses)
    after.pods_netns.update(copies)
    after.load_pod_side = None
    _pair_as_before(before, after)
    for old_pod, new_pod in zip(old_pods, new_pods, strict=True):
        if old_pod.netns is not None:
            new_pod.netns = copies[old_pod.netns.id]
            new_pod.netns.pod = new_pod
            new_pod.eth0 = old_pod.eth0
            host_veth = old_pod.host_veth
            new_pod.host_veth = after.host.interfaces.get(host_veth.name) if host_veth else None
    return True


def _renewed(
    namespace: Namespace, outputs: NodeOutputs, links: object, addresses: object
) -> Namespace:
    """The namespace for the new model: the same interfaces, its own details."""
    renewed = Namespace(
        node=namespace.node,
        id=namespace.id,
        dir=namespace.dir,
        inode=namespace.inode,
        nsid=namespace.nsid,
        name=namespace.name,
        pids=namespace.pids,
        interfaces=namespace.interfaces,
        by_ifindex=namespace.by_ifindex,
        present={what for what in namespace.present if what not in DETAILS},
        sources={"links": links, "addresses": addresses},
        duplicate_names=namespace.duplicate_names,
        files=dict(namespace.files),
    )
    attach_details(renewed, outputs)
    return renewed


def _pair_as_before(before: Node, after: Node) -> None:
    """The new host's veths paired as the old host's are."""
    assert before.host is not None and after.host is not None
    own = after.host.interfaces
    for interface_name, interface in own.items():
        old = before.host.interfaces.get(interface_name)
        if old is None:
            continue
        peer = old.peer
        if peer is not None and peer.netns == HOST:
            peer = own.get(peer.name)
        interface.peer, interface.peer_state = peer, old.peer_state
