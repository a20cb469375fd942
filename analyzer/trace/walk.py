"""Following one packet through the snapshot, namespace by namespace, as Linux would.

In each namespace: is the destination local (deliver), else the routing decision
(routing.py), the outgoing link's state and MTU, and what the device does with the
packet: a veth hands it to its peer (through a bridge port, or to a routed veth that
must answer ARP for the gateway by proxy), a bridge to the port that leads to the
next hop, a VXLAN device encapsulates it (neighbour entry -> MAC, FDB entry -> the
remote node, the underlay route and MTU) for the node that holds the outer address,
which must have a VXLAN device with the same VNI and port and the inner MAC; an
underlay device hands it to the node that holds the next hop. Forwarding needs
ip_forward, and a strict rp_filter the way back through the same device.

Every hop names its node, namespace, step and device, with the bundle file that shows
it. What the engine does not model yet (iptables and nftables: the `filter` and `nat`
steps) is listed as such in the result, never passed off as checked.
"""

from __future__ import annotations

import contextlib

from needle.analyzer.model.entities import Namespace, Node
from needle.analyzer.trace.endpoints import Endpoint
from needle.analyzer.trace.handover import HandOver
from needle.analyzer.trace.hops import (
    Hop,
    Packet,
    Path,
    Stop,
    is_up,
    namespace_of,
    netns_label,
    route_leg,
)
from needle.analyzer.trace.routing import decide, local_addresses

__all__ = ["NOT_MODELLED", "STEPS", "Hop", "Packet", "Path", "Walker"]

STEPS = (
    "link",
    "route",
    "neigh",
    "fdb",
    "bridge",
    "filter",
    "nat",
    "encap",
    "underlay",
    "decap",
    "mtu",
    "sysctl",
    "deliver",
)
# nftables rules are not evaluated, and a nat rewrite is shown but not followed
NOT_MODELLED = ("nftables", "nat rewrites")
MAX_NAMESPACES = 16  # a path longer than this is a loop


class Walker(HandOver):
    """One packet's way through a model (its pod sides loaded as the walk needs)."""

    def walk(self, source: Endpoint, target: Endpoint) -> Path:
        path = Path()
        self._path = path
        node = self.model.nodes.get(source.node)
        namespace = source.namespace
        if node is None or namespace is None:
            self._add(
                source.node,
                "-",
                "link",
                None,
                "unknown",
                f"the bundle holds no network namespace for {source.name}",
            )
            path.verdict = "unknown"
            return path
        with contextlib.suppress(Stop):  # the hop that stopped it is recorded
            self._walk(node, namespace, source.ip, target.ip)
        failing = path.failing
        path.verdict = (
            "delivered"
            if failing is None
            else "dropped"
            if failing.verdict == "drop"
            else "unknown"
        )
        return path

    def _walk(self, node: Node, namespace: Namespace, src: str, dst: str) -> None:
        iif: str | None = None
        size = self.packet.size
        for _ in range(MAX_NAMESPACES):
            node.ensure_pod_side()
            label = netns_label(namespace)
            links = self._file(node, namespace, "links")
            locals_ = local_addresses(namespace)
            if namespace.is_host and iif is not None:
                self._hook(node, "nat", "PREROUTING", src, dst, iif, None)
            if dst in locals_:
                if namespace.is_host and iif is not None:
                    self._hook(node, "filter", "INPUT", src, dst, iif, None)
                device = namespace.interfaces[locals_[dst]]
                up, why = is_up(device)
                self._add(
                    node.name,
                    label,
                    "deliver",
                    device.name,
                    "pass" if up else "drop",
                    f"{dst} is {device.name}'s address: delivered" if up else why,
                    (links, f"{device.name}: {', '.join(device.ipv4)}"),
                )
                return
            if iif is not None and namespace.is_host:
                self._forwarding(node, namespace, iif, src, dst)
            decision = decide(namespace, src, dst, iif)
            routes = self._file(node, namespace, "routes")
            if decision.drop is not None or decision.route is None:
                self._down_device(node, namespace, links)
                self._add(
                    node.name,
                    label,
                    "route",
                    None,
                    "drop",
                    f"{decision.drop or 'no route'} for {dst}"
                    + (
                        f" (table {decision.table}, rule `{decision.rule}`)"
                        if decision.rule
                        else ""
                    ),
                    (routes, f"routes for {dst}"),
                )
            route = decision.route
            assert route is not None
            dev, gateway, onlink = route_leg(route)
            nexthop = gateway or dst
            self._add(
                node.name,
                label,
                "route",
                dev,
                "pass",
                f"{route.dst}"
                + (f" via {gateway}" if gateway else "")
                + f" dev {dev}"
                + (" onlink" if onlink else "")
                + (f" (table {decision.table})" if decision.table != "main" else ""),
                (routes, f"route {route.dst}"),
            )
            if namespace.is_host:
                if iif is None:
                    self._hook(node, "filter", "OUTPUT", src, dst, None, dev)
                else:
                    self._hook(node, "filter", "FORWARD", src, dst, iif, dev)
                self._hook(node, "nat", "POSTROUTING", src, dst, iif, dev)
            out = namespace.interfaces.get(dev or "")
            if out is None:
                self._add(
                    node.name,
                    label,
                    "link",
                    dev,
                    "drop",
                    f"the route's device {dev} does not exist",
                    (links, f"no {dev}"),
                )
            assert out is not None
            self._link(node, out)
            if out.mtu and size > out.mtu:
                self._mtu(node, label, out, size, links)
            if out.kind == "vxlan":
                node, namespace, iif = self._overlay(node, namespace, out, nexthop, size)
                continue
            if out.kind == "bridge":
                node, namespace, iif = self._bridge_out(node, namespace, out, nexthop)
                continue
            peer = out.peer
            peer_namespace = namespace_of(node, peer) if peer is not None else None
            if out.kind == "veth" and peer is not None and peer_namespace is not None:
                node, namespace, iif = self._veth(
                    node, namespace, out, peer, peer_namespace, nexthop
                )
                continue
            node, namespace, iif = self._underlay(node, namespace, out, nexthop, dst)
        self._add(
            node.name,
            netns_label(namespace),
            "route",
            None,
            "unknown",
            f"more than {MAX_NAMESPACES} namespaces on the way: a loop",
        )
