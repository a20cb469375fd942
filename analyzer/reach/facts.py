"""Each node's signatures, computed by the process that holds the node's pod side."""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field

from needle.analyzer.backends import backend_of
from needle.analyzer.model.entities import Model, Node, Pod
from needle.analyzer.reach.services import Backed, backed
from needle.analyzer.reach.signatures import (
    HostIndex,
    NodeFacts,
    PairShapes,
    PairSigner,
    address_holders,
    nft_lines,
    node_tokens,
    peer_facts,
    pod_cidrs,
    pod_signature,
    profile,
    strict_rp_filter,
)
from needle.analyzer.trace.hops import NftSource


def _backs(
    node: Node, pods: list[Pod], pod_classes: list[tuple[object, list[str]]]
) -> list[tuple[int, str, Backed]]:
    """The node's pods that back a Service port, with their class's index."""
    endpoints = backed(node)
    if not endpoints:
        return []
    by_ip = {pod.ip: pod.ref for pod in pods if pod.ip}
    class_of = {ref: number for number, (_, refs) in enumerate(pod_classes) for ref in refs}
    return [
        (class_of[by_ip[item.pod_ip]], by_ip[item.pod_ip], item)
        for item in endpoints
        if item.pod_ip in by_ip
    ]


# how many pods a chain names; the rest are counted
CHAIN_EXAMPLES = 5


@dataclass
class MtuChain:
    """MTUs a packet meets from a pod's eth0 to the underlay, the same for `count` pods
    of a node (the host veth's own name aside)."""

    # (where: pod, host, overlay or underlay; interface; mtu)
    hops: tuple[tuple[str, str, int | None], ...]
    overhead: int  # what the overlay device adds to each packet (0: no overlay)
    count: int = 0
    pods: list[str] = field(default_factory=list)  # the first CHAIN_EXAMPLES


def chains_of(model: Model, node: Node) -> list[MtuChain]:
    """`node`'s pods' MTU chains, alike ones together, the most common first."""
    backend = backend_of(model)
    overlay = backend.overlay(node)
    device = backend.overlay_interface(node)
    overhead = overlay.overhead if overlay is not None and device is not None else 0
    chains: dict[tuple[tuple[str, str, int | None], ...], MtuChain] = {}
    for label, hops in node.mtu_chains(device, backend.underlay_interface(node)):
        key = tuple(
            (
                "overlay" if device is not None and hop.interface == device.name else hop.where,
                # the host veth's name is the pod's own: alike chains differ only in it
                "veth" if number == 1 else hop.interface,
                hop.mtu,
            )
            for number, hop in enumerate(hops)
        )
        chain = chains.setdefault(key, MtuChain(key, overhead))
        chain.count += 1
        if len(chain.pods) < CHAIN_EXAMPLES:
            chain.pods.append(label)
    return sorted(chains.values(), key=lambda chain: -chain.count)


def collect_facts(
    model: Model,
    home: Iterable[str] | None = None,
    nft: NftSource | None = None,
    mtu_chains: bool = False,
) -> list[NodeFacts]:
    """The facts of the `home` nodes (every node when None); `nft` reads a node's nft
    ruleset, which joins its profile; with `mtu_chains`, each node's MTU chains too."""
    names = sorted(model.nodes)
    # (index in `names`, node, what its pair signatures need) of every node with a host
    peers = [
        (number, model.nodes[name], peer_facts(model, model.nodes[name]))
        for number, name in enumerate(names)
        if model.nodes[name].host is not None
    ]
    holders = address_holders(model)
    cidrs = pod_cidrs(model)
    shapes = PairShapes()  # this call's: it keys shapes by the identity of its records
    wanted = set(names if home is None else home)
    found: list[NodeFacts] = []
    for name in names:
        if name not in wanted:
            continue
        node = model.nodes[name]
        if node.host is None:
            found.append(NodeFacts(name, ("no host namespace",), False))
            continue
        node.ensure_pod_side()
        tokens = node_tokens(node, model)
        pods = [p for p in model.pods_by_node.get(name, []) if p.ip and not p.host_network]
        index = HostIndex(node, pods)
        classes: dict[tuple[object, ...], list[str]] = {}
        for pod in pods:
            classes.setdefault(pod_signature(node, pod, tokens, index), []).append(pod.ref)
        nft_rules = nft_lines(node, nft)
        signer = PairSigner(node, holders, nft_rules, shapes)
        # signatures are shared objects, equal ones the same: grouped by identity, so
        # none of the 10^3 per node is hashed (a nested tuple hashes anew each time)
        grouped: dict[int, tuple[tuple[object, ...], list[int]]] = {}
        sign = signer.sign
        for number, peer, facts in peers:
            if peer is node:
                continue
            signature = sign(peer, facts)
            group = grouped.get(id(signature))
            if group is None:
                group = grouped[id(signature)] = (signature, [])
            group[1].append(number)
        # as arrays: a worker sends 10^5 of them back, pickled as bytes, not int by int
        pairs = {signature: array("I", peers) for signature, peers in grouped.values()}
        pod_classes = list(classes.items())
        found.append(
            NodeFacts(
                name,
                profile(node, model, tokens, nft_rules, cidrs),
                strict_rp_filter(node) or bool(signer.literals),
                pod_classes,
                pairs,
                _backs(node, pods, pod_classes),
                chains_of(model, node) if mtu_chains else [],
            )
        )
    return found
