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
it. At the host's netfilter hooks the node's iptables rules decide (hooks.py), and a nat
rewrite is followed: a DNAT that chooses among a Service's endpoints makes one run of
the walk per endpoint (Walker.walk joins them), and `Walker.trace` walks the reply the
way conntrack undoes the rewrites. What the engine does not model is listed as such in
the result, never passed off as checked.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import replace

from needle.analyzer.model.entities import HOST, Interface, Namespace, Node
from needle.analyzer.trace.endpoints import Endpoint
from needle.analyzer.trace.handover import HandOver
from needle.analyzer.trace.hops import (
    Branch,
    Hop,
    Packet,
    Path,
    Stop,
    Translation,
    is_up,
    namespace_of,
    netns_label,
    route_leg,
    settle,
)
from needle.analyzer.trace.routing import decide, local_addresses, source_address

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
# nftables rules are evaluated through their iptables translation, which some lack
NOT_MODELLED = ("nftables expressions without an iptables equivalent",)
MAX_NAMESPACES = 16  # a path longer than this is a loop
MAX_ENDPOINTS = 64  # a Service's endpoints traced one by one


class Walker(HandOver):
    """One packet's way through a model (its pod sides loaded as the walk needs)."""

    def walk(self, source: Endpoint, target: Endpoint) -> Path:
        node = self.model.nodes.get(source.node)
        namespace = source.namespace
        if node is None or namespace is None:
            self._begin()
            self._no_namespace(source)
            return settle(self._path)
        self._target = target.namespace if target.kind == "pod" else None
        self._from_node = source.kind == "node"
        return self._each_endpoint(
            lambda: self._run(node, namespace, source.ip, target.ip, target.kind == "service")
        )

    def trace(self, source: Endpoint, target: Endpoint) -> tuple[Path, Path]:
        """The packet's path there and its reply's. When nat rewrote the packet (a
        Service's DNAT, an SNAT), each reply starts where its packet arrived, goes to
        the address the packet came from and is restored by conntrack where it was
        rewritten; otherwise the reply is a walk from TO to FROM."""
        forward = self.walk(source, target)
        with self._replying():
            return forward, self._back(forward, source, target)

    @contextlib.contextmanager
    def _replying(self) -> Iterator[None]:
        """The reply's packet: an ICMP echo reply leaves without DF (the kernel's ICMP
        socket does no path-MTU discovery: a reply too large is fragmented)."""
        sent = self.packet
        if sent.proto == "icmp":
            self.packet = replace(sent, df=False)
        try:
            yield
        finally:
            self.packet = sent

    def _back(self, forward: Path, source: Endpoint, target: Endpoint) -> Path:
        runs = [b.path for b in forward.endpoints] or [forward]
        if target.kind != "service" and not any(run.translations for run in runs):
            back_to = replace(source, ip=forward.source or source.ip)
            if forward.verdict != "delivered" or forward.end is None:
                return self.walk(target, back_to)  # no connection: a packet of its own
            node, namespace, address = forward.end
            # conntrack knows the connection: no nat rules for the reply, filter sees it
            # ESTABLISHED
            return self._one_run(
                lambda: self._answer(node, namespace, address, forward, back_to), ()
            )
        branches = []
        for branch, run in zip(forward.endpoints or [None], runs, strict=True):
            if run.end is None or run.verdict != "delivered":
                continue  # no packet arrived to answer
            node, namespace, address = run.end
            back = self._one_run(
                lambda n=node, ns=namespace, a=address, r=run: self._answer(n, ns, a, r, source),
                run.translations,
            )
            branches.append(Branch(branch.address if branch else address, back))
        if not branches:
            return Path(verdict="unknown")
        if forward.endpoints:
            return _joined(branches)
        return branches[0].path

    def _answer(
        self, node: Node, namespace: Namespace, address: str, run: Path, source: Endpoint
    ) -> None:
        """The reply from where the packet arrived to where it came from (its source as
        it arrived there, after any SNAT)."""
        self._answering = source.ip
        self._target = source.namespace if source.kind == "pod" else None
        self._walk(node, namespace, address, _replied_to(run, source.ip))

    def _misdelivered(
        self, node: Node, namespace: Namespace, dst: str, device: Interface, links: str
    ) -> None:
        """A packet for one pod that arrives in another pod's namespace: both hold the
        address, and the neighbour entry that resolved it (or the sender's own address)
        took it to the other."""
        target = self._target
        if (
            target is None
            or target.is_host
            or namespace.is_host
            or (target.node, target.id) == (namespace.node, namespace.id)
        ):
            return
        label, wanted = netns_label(namespace), netns_label(target)
        shared = self._shared_address
        holders = shared[1] if shared is not None and shared[0] == dst else f"{wanted}, {label}"
        self._add(
            node.name,
            label,
            "deliver",
            device.name,
            "drop",
            f"{dst} is held by more than one pod on {node.name} ({holders}): a packet for "
            "one of them arrives in the other's namespace (here netns "
            f"{namespace.name or namespace.id}, eth0 {device.mac or '?'}); nothing in a bundle "
            "says which pod is in which namespace",
            (links, f"{device.name}: {', '.join(device.ipv4)}"),
        )

    def _no_namespace(self, source: Endpoint) -> None:
        with contextlib.suppress(Stop):
            self._add(
                source.node,
                "-",
                "link",
                None,
                "unknown",
                f"the bundle holds no network namespace for {source.name}",
            )

    def _run(self, node: Node, namespace: Namespace, src: str, dst: str, service: bool) -> Path:
        def body() -> None:
            self._to_service = service
            self._walk(node, namespace, src, dst)

        return self._one_run(body, None)

    def _one_run(self, body: Callable[[], None], reply: tuple[Translation, ...] | None) -> Path:
        choices = self._choices
        self._begin(reply)
        self._choices = choices
        with contextlib.suppress(Stop):  # the hop that stopped it is recorded
            body()
        self._path.translations = tuple(self._translations)
        return settle(self._path)

    def _each_endpoint(self, run: Callable[[], Path]) -> Path:
        """`run` once per combination of the endpoints DNATs chose among (once when
        none did); one path whose verdict is delivered only if every endpoint's is."""
        self._choices = []
        branches: list[Branch] = []
        while True:
            path = run()
            forks = self._forks
            if not forks:
                return path
            branches.append(Branch(" then ".join(f[2] for f in forks), path))
            i = next(
                (k for k in reversed(range(len(forks))) if forks[k][0] + 1 < forks[k][1]), None
            )
            if i is None:
                break
            if len(branches) >= MAX_ENDPOINTS:
                cut = Path([], "unknown")
                cut.hops.append(
                    Hop(
                        next((h.node for h in path.hops if h.step == "nat"), "-"),
                        HOST,
                        "nat",
                        None,
                        "unknown",
                        f"more than {MAX_ENDPOINTS} endpoints: the others are not traced",
                    )
                )
                branches.append(Branch("...", cut))
                break
            self._choices = [f[0] for f in forks[:i]] + [forks[i][0] + 1]
        self._choices = []
        return _joined(branches)

    def _walk(self, node: Node, namespace: Namespace, src: str, dst: str) -> None:
        iif: str | None = None
        size = self.packet.size
        here: Node | None = None
        for _ in range(MAX_NAMESPACES):
            node.ensure_pod_side()
            if node is not here:  # the mark is the skb's: a new node's packet has none
                here, self._mark = node, 0
            label = netns_label(namespace)
            links = self._file(node, namespace, "links")
            locals_ = local_addresses(namespace)
            arrived = dst
            picked_source = False
            if iif is None and namespace.is_host and self._from_node and self._reply is None:
                # the socket's source comes from the route to the address it connects
                # to, before any OUTPUT DNAT (a ClusterIP's route is the default one)
                first = decide(namespace, src, dst).route
                picked = (
                    source_address(namespace, first.src, route_leg(first)[0]) if first else None
                )
                if picked is not None and picked != src:
                    src = self._path.source = picked
                    picked_source = True
            if namespace.is_host and self._reply is not None and iif is not None:
                dst = self._conntrack_reply(node, dst, iif)
            elif namespace.is_host:
                dst = self._dnat_at(node, "OUTPUT" if iif is None else "PREROUTING", src, dst, iif)
            # br_netfilter rewrote it on the bridge: to a pod behind that bridge it is
            # bridged back, not routed (and by the port it came in on, it needs hairpin)
            came_in = self._port_in if dst != arrived and _bridged(node) else None
            if dst in locals_:
                if namespace.is_host and iif is not None:
                    src = self._conntrack_source(node, src)
                    self._hook(node, "filter", "INPUT", src, dst, iif, None)
                self._path.end = (node, namespace, dst)
                device = namespace.interfaces[locals_[dst]]
                if self._answering not in (None, dst):
                    self._add(
                        node.name,
                        label,
                        "deliver",
                        device.name,
                        "drop",
                        f"the reply is for {dst}, {node.name}'s own address, not for "
                        f"{self._answering}: no conntrack entry here gives it back to the "
                        "sender (its SNAT address is another node's)",
                        (links, f"{device.name}: {', '.join(device.ipv4)}"),
                    )
                self._misdelivered(node, namespace, dst, device, links)
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
            chosen = f", from {src}" if picked_source else ""
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
                + (f" (table {decision.table})" if decision.table != "main" else "")
                + chosen,
                (routes, f"route {route.dst}"),
            )
            if namespace.is_host:
                if iif is None:
                    self._hook(node, "filter", "OUTPUT", src, dst, None, dev)
                else:
                    self._hook(node, "filter", "FORWARD", src, dst, iif, dev)
                if self._reply is None:
                    src = self._snat_at(node, namespace, src, dst, iif, dev)
                else:
                    src = self._conntrack_source(node, src)
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
                size = out.mtu  # fragmented (no DF): its largest piece goes on
            self._port_in = None
            if out.kind == "vxlan":
                node, namespace, iif = self._overlay(node, namespace, out, nexthop, size)
                continue
            if out.kind == "bridge":
                back = came_in if came_in is not None and came_in.master == out.name else None
                node, namespace, iif = self._bridge_out(node, namespace, out, nexthop, back)
                continue
            peer = out.peer
            peer_namespace = namespace_of(node, peer) if peer is not None else None
            if out.kind == "veth" and peer is not None and peer_namespace is not None:
                node, namespace, iif = self._veth(
                    node, namespace, out, peer, peer_namespace, nexthop
                )
                continue
            node, namespace, iif = self._underlay(node, namespace, out, nexthop, dst, size)
        self._add(
            node.name,
            netns_label(namespace),
            "route",
            None,
            "unknown",
            f"more than {MAX_NAMESPACES} namespaces on the way: a loop",
        )


def _replied_to(run: Path, source: str) -> str:
    """Where the reply goes: the packet's source as it arrived (after any SNAT)."""
    address = source
    for t in run.translations:
        if t.kind == "SNAT" and t.original == address:
            address = t.translated
    return address


def _joined(branches: list[Branch]) -> Path:
    """One path of several endpoints': its hops are the first failing one's."""
    verdicts = {b.path.verdict for b in branches}
    verdict = (
        "delivered"
        if verdicts == {"delivered"}
        else "dropped"
        if "dropped" in verdicts
        else "unknown"
    )
    shown = next(
        (b for want in ("dropped", "unknown") for b in branches if b.path.verdict == want),
        branches[0],
    )
    return Path(
        list(shown.path.hops),
        verdict,
        endpoints=branches,
        endpoint=shown.address if shown.path.verdict != "delivered" else None,
    )


def _bridged(node: Node) -> bool:
    """Whether the node's bridges hand their packets to iptables (br_netfilter on)."""
    return (node.sysctls.get("net.bridge.bridge-nf-call-iptables") or "").strip() == "1"
