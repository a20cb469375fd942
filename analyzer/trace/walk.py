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
from dataclasses import dataclass, field
from typing import Any

from needle.analyzer.backends import backend_of
from needle.analyzer.backends.flannel import VXLAN_OVERHEAD
from needle.analyzer.model.entities import HOST, Interface, Model, Namespace, Node
from needle.analyzer.netfilter import Packet as NetfilterPacket
from needle.analyzer.parsers.ip_route import Route
from needle.analyzer.rules.helpers import cidr_contains
from needle.analyzer.trace.endpoints import Endpoint
from needle.analyzer.trace.routing import decide, local_addresses

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
# neighbour states in which the kernel has no usable address for the next hop
UNRESOLVED = frozenset({"FAILED", "INCOMPLETE"})
ALL_ZEROS = "00:00:00:00:00:00"


@dataclass(frozen=True)
class Packet:
    proto: str = "icmp"
    size: int = 84  # the IP packet's length: ping's default 56-byte payload
    df: bool = True
    port: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"proto": self.proto, "size": self.size, "df": self.df, "port": self.port}


@dataclass(frozen=True)
class Hop:
    node: str
    netns: str
    step: str
    interface: str | None
    verdict: str  # pass | drop | unknown
    detail: str
    evidence: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "netns": self.netns,
            "step": self.step,
            "interface": self.interface,
            "verdict": self.verdict,
            "detail": self.detail,
            "evidence": [{"file": file, "detail": detail} for file, detail in self.evidence],
        }


@dataclass
class Path:
    hops: list[Hop] = field(default_factory=list)
    verdict: str = "unknown"  # delivered | dropped | unknown

    @property
    def failing(self) -> Hop | None:
        return next((hop for hop in self.hops if hop.verdict != "pass"), None)

    def to_json(self) -> dict[str, Any]:
        failing = self.failing
        return {
            "verdict": self.verdict,
            "hops": [hop.to_json() for hop in self.hops],
            "drop": None
            if failing is None or failing.verdict != "drop"
            else {
                "node": failing.node,
                "netns": failing.netns,
                "step": failing.step,
                "reason": failing.detail,
            },
        }


class _Stop(Exception):
    """The walk ends at the hop just recorded."""


def _label(namespace: Namespace) -> str:
    return (
        HOST
        if namespace.is_host
        else (namespace.pod.ref if namespace.pod else None) or (namespace.name or namespace.id)
    )


def _namespace_of(node: Node, interface: Interface) -> Namespace | None:
    return node.host if interface.netns == HOST else node.pods_netns.get(interface.netns)


def _is_up(interface: Interface) -> tuple[bool, str]:
    flags, state = interface.link.flags, (interface.link.operstate or "").upper()
    if flags and "UP" not in flags:
        return False, f"{interface.name} is administratively down"
    if state in ("DOWN", "LOWERLAYERDOWN", "NOTPRESENT"):
        peer = interface.peer
        if peer is not None and peer.link.flags and "UP" not in peer.link.flags:
            return False, (
                f"{interface.name} has no carrier: its peer {peer.name} is administratively down"
            )
        return False, f"{interface.name} is {state.lower()} (no carrier)"
    return True, f"{interface.name} is up"


def _leg(route: Route) -> tuple[str | None, str | None, bool]:
    """(device, gateway, onlink) of a route, or of its first nexthop when multipath."""
    if route.dev is None and route.nexthops:
        first = route.nexthops[0]
        return first.dev, first.gateway, "onlink" in first.flags or "onlink" in route.flags
    return route.dev, route.gateway, "onlink" in route.flags


class Walker:
    """One packet's way through a model (its pod sides loaded as the walk needs)."""

    def __init__(self, model: Model, packet: Packet) -> None:
        self.model = model
        self.packet = packet
        self.backend = backend_of(model)
        # address -> node, on its host namespace and as the API names it (see _node_at)
        self._holders: tuple[dict[str, Node], dict[str, Node]] | None = None

    # -- evidence -----------------------------------------------------------------------

    def _file(self, node: Node, namespace: Namespace, kind: str) -> str:
        if namespace.is_host:
            return node.outputs.get(kind, "") or namespace.files.get(kind, "")
        return namespace.files.get(kind, "")

    # -- the walk ------------------------------------------------------------------------

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
        with contextlib.suppress(_Stop):  # the hop that stopped it is recorded
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

    def _add(
        self,
        node: str,
        netns: str,
        step: str,
        interface: str | None,
        verdict: str,
        detail: str,
        *evidence: tuple[str, str],
    ) -> None:
        self._path.hops.append(
            Hop(node, netns, step, interface, verdict, detail, tuple(e for e in evidence if e[0]))
        )
        if verdict != "pass":
            raise _Stop

    def _walk(self, node: Node, namespace: Namespace, src: str, dst: str) -> None:
        iif: str | None = None
        size = self.packet.size
        for _ in range(MAX_NAMESPACES):
            node.ensure_pod_side()
            label = _label(namespace)
            links = self._file(node, namespace, "links")
            locals_ = local_addresses(namespace)
            if namespace.is_host and iif is not None:
                self._hook(node, "nat", "PREROUTING", src, dst, iif, None)
            if dst in locals_:
                if namespace.is_host and iif is not None:
                    self._hook(node, "filter", "INPUT", src, dst, iif, None)
                device = namespace.interfaces[locals_[dst]]
                up, why = _is_up(device)
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
            dev, gateway, onlink = _leg(route)
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
            peer_namespace = _namespace_of(node, peer) if peer is not None else None
            if out.kind == "veth" and peer is not None and peer_namespace is not None:
                node, namespace, iif = self._veth(
                    node, namespace, out, peer, peer_namespace, nexthop
                )
                continue
            node, namespace, iif = self._underlay(node, namespace, out, nexthop, dst)
        self._add(
            node.name,
            _label(namespace),
            "route",
            None,
            "unknown",
            f"more than {MAX_NAMESPACES} namespaces on the way: a loop",
        )

    # -- the steps ---------------------------------------------------------------------

    def _hook(
        self,
        node: Node,
        table: str,
        chain: str,
        src: str,
        dst: str,
        iif: str | None,
        oif: str | None,
        proto: str | None = None,
        port: int | None = None,
    ) -> None:
        """What the node's iptables ruleset does with the packet at one hook (filter:
        its verdict; nat: what it rewrites, recorded but not yet followed)."""
        step = "filter" if table == "filter" else "nat"
        file = node.outputs.get("netfilter", "")
        if "netfilter" not in node.present:
            if table == "filter":
                self._add(
                    node.name,
                    HOST,
                    step,
                    iif or oif,
                    "unknown",
                    f"{node.name}'s iptables rules were not collected: {chain} not checked",
                )
            return
        ruleset = node.netfilter
        if ruleset is None:
            return  # iptables-save printed nothing: no tables are loaded, nothing filters
        packet = NetfilterPacket(
            src,
            dst,
            proto or self.packet.proto,
            dport=port if port is not None else self.packet.port,
            iif=iif,
            oif=oif,
            mark=0,
            length=self.packet.size,
        )
        verdict = ruleset.traverse(  # type: ignore[attr-defined]
            table,
            chain,
            packet,
            local_addresses=frozenset(local_addresses(node.host))
            if node.host is not None
            else frozenset(),
        )
        where = f"{table} {chain}"
        if verdict.verdict == "drop":
            self._add(
                node.name,
                HOST,
                step,
                iif or oif,
                "drop",
                f"{where}: {verdict.reason}",
                (file, verdict.rule or where),
            )
        if verdict.verdict == "unknown":
            self._add(
                node.name,
                HOST,
                step,
                iif or oif,
                "unknown",
                f"{where}: {verdict.reason}",
                (file, verdict.rule or where),
            )
        if table == "nat" and not verdict.nat:
            return  # nothing rewritten: no hop to show
        for rewrite in verdict.nat:
            kind, _, target = rewrite.partition(" ")
            address = target.rsplit(":", 1)[0] if target.count(":") == 1 else target
            if kind == "SNAT" and address and self._node_at(address) is None:
                self._add(
                    node.name,
                    HOST,
                    step,
                    iif or oif,
                    "drop",
                    f"{where}: SNAT to {address}, which no node holds: the replies go to "
                    f"{address} and never come back",
                    (file, verdict.rule or where),
                )
        detail = f"{where}: " + (
            ", ".join(verdict.nat) + " (not followed yet)" if verdict.nat else verdict.reason
        )
        self._add(node.name, HOST, step, iif or oif, "pass", detail, (file, verdict.rule or where))

    def _link(
        self, node: Node, interface: Interface, only_if_down: bool = False, prefix: str = ""
    ) -> None:
        """The `link` hop of a device in its own namespace: drops when it is down."""
        namespace = _namespace_of(node, interface)
        if namespace is None:
            return
        up, why = _is_up(interface)
        if up and only_if_down:
            return
        self._add(
            node.name,
            _label(namespace),
            "link",
            interface.name,
            "pass" if up else "drop",
            prefix + why,
            (self._file(node, namespace, "links"), interface.name),
        )

    def _down_device(self, node: Node, namespace: Namespace, links: str) -> None:
        """No route, in a namespace with a device down: the kernel removed the down
        device's routes, so the device is the cause."""
        for interface in namespace.interfaces.values():
            if interface.kind == "loopback" or interface.name == "lo" or not interface.ipv4:
                continue
            up, why = _is_up(interface)
            if not up:
                self._add(
                    node.name,
                    _label(namespace),
                    "link",
                    interface.name,
                    "drop",
                    f"{why}, so the kernel has no route through it",
                    (links, interface.name),
                )

    def _mtu(self, node: Node, label: str, out: Interface, size: int, links: str) -> None:
        if self.packet.df:
            self._add(
                node.name,
                label,
                "mtu",
                out.name,
                "drop",
                f"{size} bytes with DF set do not fit {out.name}'s MTU {out.mtu}",
                (links, f"{out.name} mtu {out.mtu}"),
            )
        self._add(
            node.name,
            label,
            "mtu",
            out.name,
            "pass",
            f"{size} bytes fragmented to {out.name}'s MTU {out.mtu}",
            (links, f"{out.name} mtu {out.mtu}"),
        )

    def _forwarding(self, node: Node, namespace: Namespace, iif: str, src: str, dst: str) -> None:
        """ip_forward and rp_filter for a packet that entered the host through `iif`."""
        sysctl_file = node.outputs.get("sysctl", "")
        if dst in local_addresses(namespace):
            return
        forward = node.sysctls.get("net.ipv4.ip_forward")
        if forward is not None and forward.strip() != "1":
            self._add(
                node.name,
                HOST,
                "sysctl",
                iif,
                "drop",
                f"net.ipv4.ip_forward is {forward}: the node does not forward",
                (sysctl_file, "net/ipv4/ip_forward"),
            )
        device_key = iif.replace(".", "/")
        device_forwarding = node.sysctls.get(f"net.ipv4.conf.{device_key}.forwarding")
        if device_forwarding is not None and device_forwarding.strip() == "0":
            self._add(
                node.name,
                HOST,
                "sysctl",
                iif,
                "drop",
                f"net.ipv4.conf.{iif}.forwarding is 0: packets that come in on {iif} are not "
                "forwarded (ip_forward is on)",
                (sysctl_file, f"net/ipv4/conf/{device_key}/forwarding = 0"),
            )
        values = [
            node.sysctls.get("net.ipv4.conf.all.rp_filter"),
            node.sysctls.get(f"net.ipv4.conf.{device_key}.rp_filter"),
        ]
        strict = max((int(v) for v in values if v and v.strip().isdigit()), default=0) == 1
        if not strict:
            return
        back = decide(namespace, dst, src, None)
        back_dev = _leg(back.route)[0] if back.route is not None else None
        if back_dev != iif:
            self._add(
                node.name,
                HOST,
                "sysctl",
                iif,
                "drop",
                f"rp_filter is strict (1) on {iif}, but the way back to {src} is "
                + (f"dev {back_dev}" if back_dev else "no route"),
                (sysctl_file, f"net/ipv4/conf/{device_key}/rp_filter"),
            )

    def _neighbour(
        self,
        node: Node,
        namespace: Namespace,
        address: str,
        out: Interface,
        expected: str | None,
        arp: bool,
    ) -> str | None:
        """The MAC the next hop resolves to (None when left to ARP at send time). `arp`:
        whether the device resolves addresses itself (a VXLAN device of flannel's does
        not: it needs a PERMANENT entry); `expected`: the MAC the next hop has."""
        label = _label(namespace)
        file = self._file(node, namespace, "neighbours")
        entry = next(
            (n for n in namespace.neighbours if n.dst == address and n.dev == out.name), None
        )
        if entry is None:
            if arp:
                self._add(
                    node.name,
                    label,
                    "neigh",
                    out.name,
                    "pass",
                    f"{address} is resolved by ARP when the packet is sent",
                    (file, f"no entry for {address}"),
                )
                return None
            self._add(
                node.name,
                label,
                "neigh",
                out.name,
                "drop",
                f"no neighbour entry for {address} on {out.name}, which does not ARP",
                (file, f"no entry for {address} on {out.name}"),
            )
        assert entry is not None
        states = set(entry.state)
        if states & UNRESOLVED or not entry.lladdr:
            self._add(
                node.name,
                label,
                "neigh",
                out.name,
                "drop",
                f"{address} on {out.name} is {'/'.join(sorted(states)) or 'unresolved'}: "
                "no answer to ARP",
                (file, f"{address} {' '.join(entry.state)}"),
            )
        lladdr = (entry.lladdr or "").lower()
        if expected is not None and "PERMANENT" in states and lladdr != expected.lower():
            self._add(
                node.name,
                label,
                "neigh",
                out.name,
                "drop",
                f"a PERMANENT entry sends {address} to {lladdr}, but the next hop's MAC is "
                f"{expected.lower()}",
                (file, f"{address} lladdr {lladdr}"),
            )
        self._add(
            node.name,
            label,
            "neigh",
            out.name,
            "pass",
            f"{address} is {lladdr} ({'/'.join(sorted(states))})",
            (file, f"{address} lladdr {lladdr}"),
        )
        return lladdr

    def _veth(
        self,
        node: Node,
        namespace: Namespace,
        out: Interface,
        peer: Interface,
        peer_namespace: Namespace,
        nexthop: str,
    ) -> tuple[Node, Namespace, str]:
        """Out of a veth into its peer's namespace: through a bridge port, or to a
        routed veth that answers ARP for the gateway."""
        label = _label(namespace)
        links = self._file(node, peer_namespace, "links")
        self._link(node, peer, prefix="peer ")
        if peer.master:
            bridge = peer_namespace.interfaces.get(peer.master)
            if bridge is None:
                self._add(
                    node.name,
                    _label(peer_namespace),
                    "bridge",
                    peer.master,
                    "drop",
                    f"{peer.name}'s master {peer.master} is not in the bundle",
                    (links, peer.name),
                )
            assert bridge is not None
            owner = self._owner_on_bridge(node, peer_namespace, bridge, nexthop)
            # the next hop's answer (ARP, then every frame) comes back over the bridge: an
            # FDB entry sending the sender's MAC elsewhere loses it
            self._bridge_fdb(node, bridge, out.mac, peer)
            self._neighbour(node, namespace, nexthop, out, owner.mac if owner else None, arp=True)
            self._port(node, peer_namespace, bridge, peer)
            if owner is not None and owner is not bridge:
                # another pod on the same bridge: bridged, not routed
                return self._to_port(node, peer_namespace, bridge, owner, peer)
            up, why = _is_up(bridge)
            self._add(
                node.name,
                _label(peer_namespace),
                "bridge",
                bridge.name,
                "pass" if up else "drop",
                why if not up else f"up to {bridge.name}'s IP stack",
                (links, bridge.name),
            )
            return node, peer_namespace, bridge.name
        answers = nexthop in local_addresses(peer_namespace)
        if not answers:
            proxy = node.sysctls.get(f"net.ipv4.conf.{peer.name.replace('.', '/')}.proxy_arp")
            if proxy is not None and proxy.strip() != "1":
                self._add(
                    node.name,
                    label,
                    "neigh",
                    out.name,
                    "drop",
                    f"nobody answers ARP for {nexthop}: proxy_arp is {proxy} on {peer.name}",
                    (
                        node.outputs.get("sysctl", ""),
                        f"net/ipv4/conf/{peer.name}/proxy_arp = {proxy}",
                    ),
                )
        self._neighbour(node, namespace, nexthop, out, peer.mac, arp=True)
        return node, peer_namespace, peer.name

    def _owner_on_bridge(
        self, node: Node, host: Namespace, bridge: Interface, address: str
    ) -> Interface | None:
        """The interface behind `bridge` that holds `address`: the bridge itself, or a
        pod's eth0 whose host veth is one of its ports."""
        if address in bridge.ipv4:
            return bridge
        for interface in host.interfaces.values():
            if (
                interface.master == bridge.name
                and interface.peer is not None
                and address in interface.peer.ipv4
            ):
                return interface.peer
        return None

    def _port(self, node: Node, host: Namespace, bridge: Interface, port: Interface) -> None:
        state = node.bridge_ports.get(port.name)
        file = node.outputs.get("bridge_ports", "")
        if state is not None and state.state not in (None, "forwarding"):
            self._add(
                node.name,
                HOST,
                "bridge",
                port.name,
                "drop",
                f"{port.name} is in state {state.state} on {bridge.name}: it does not forward",
                (file, f"{port.name} state {state.state}"),
            )

    def _to_port(
        self,
        node: Node,
        host: Namespace,
        bridge: Interface,
        owner: Interface,
        came_in: Interface | None,
    ) -> tuple[Node, Namespace, str]:
        """Across the bridge to the port leading to `owner` (a pod's eth0)."""
        port = owner.peer
        assert port is not None
        self._link(node, owner, only_if_down=True)  # the cause of a disabled port, if so
        self._port(node, host, bridge, port)
        if came_in is not None and port is came_in:
            entry = node.bridge_ports.get(port.name)
            if entry is not None and entry.hairpin is False:
                self._add(
                    node.name,
                    HOST,
                    "bridge",
                    port.name,
                    "drop",
                    f"the packet would leave {bridge.name} by the port it came in on "
                    f"({port.name}) and hairpin mode is off",
                    (node.outputs.get("bridge_ports", ""), f"{port.name} hairpin off"),
                )
        self._bridge_fdb(node, bridge, owner.mac, port)
        if came_in is not None and came_in is not port:
            entering, leaving = (
                node.bridge_ports.get(came_in.name),
                node.bridge_ports.get(port.name),
            )
            if (
                entering is not None
                and leaving is not None
                and entering.isolated
                and leaving.isolated
            ):
                self._add(
                    node.name,
                    HOST,
                    "bridge",
                    port.name,
                    "drop",
                    f"{came_in.name} and {port.name} are both isolated ports of {bridge.name}: "
                    "it forwards nothing between them",
                    (
                        node.outputs.get("bridge_ports", ""),
                        f"{came_in.name}, {port.name} isolated on",
                    ),
                )
        owner_namespace = _namespace_of(node, owner)
        assert owner_namespace is not None
        self._add(
            node.name,
            HOST,
            "bridge",
            bridge.name,
            "pass",
            f"{bridge.name} forwards to {port.name}",
            (node.outputs.get("bridge_ports", ""), port.name),
        )
        self._link(node, owner)
        return node, owner_namespace, owner.name

    def _bridge_fdb(self, node: Node, bridge: Interface, mac: str | None, port: Interface) -> None:
        """A static or permanent entry of the bridge's FDB that sends `mac` to another port
        than `port`, the one that leads to it, takes every frame for it there."""
        if not mac:
            return
        for entry in node.fdb:
            if entry.mac.lower() != mac.lower() or entry.master != bridge.name:
                continue
            if entry.dev and entry.dev != port.name and entry.state in ("permanent", "static"):
                self._add(
                    node.name,
                    HOST,
                    "fdb",
                    bridge.name,
                    "drop",
                    f"{bridge.name}'s FDB sends {mac.lower()} to {entry.dev} ({entry.state}), "
                    f"but it is behind {port.name}",
                    (
                        node.outputs.get("fdb", ""),
                        f"{entry.mac} dev {entry.dev} master {bridge.name}",
                    ),
                )

    def _bridge_out(
        self, node: Node, namespace: Namespace, bridge: Interface, nexthop: str
    ) -> tuple[Node, Namespace, str]:
        owner = self._owner_on_bridge(node, namespace, bridge, nexthop)
        if owner is None or owner is bridge:
            self._neighbour(node, namespace, nexthop, bridge, None, arp=True)
            self._add(
                node.name,
                _label(namespace),
                "bridge",
                bridge.name,
                "drop",
                f"no port of {bridge.name} leads to {nexthop}",
                (self._file(node, namespace, "links"), f"ports of {bridge.name}"),
            )
        assert owner is not None
        # what keeps the pod from answering ARP is the cause, not the unanswered ARP: its
        # eth0 down (which also disables its bridge port), else the port itself
        self._link(node, owner, only_if_down=True)
        if owner.peer is not None:
            self._port(node, namespace, bridge, owner.peer)
        self._neighbour(node, namespace, nexthop, bridge, owner.mac, arp=True)
        return self._to_port(node, namespace, bridge, owner, None)

    def _overlay(
        self, node: Node, namespace: Namespace, device: Interface, nexthop: str, size: int
    ) -> tuple[Node, Namespace, str]:
        label = _label(namespace)
        links = self._file(node, namespace, "links")
        mac = self._neighbour(node, namespace, nexthop, device, None, arp=False)
        fdb_file = node.outputs.get("fdb", "")
        entries = [e for e in node.fdb if e.dev == device.name and e.dst]
        entry = next((e for e in entries if e.mac.lower() == mac), None) or next(
            (e for e in entries if e.mac == ALL_ZEROS), None
        )
        if entry is None:
            self._add(
                node.name,
                label,
                "fdb",
                device.name,
                "drop",
                f"no FDB entry on {device.name} for {mac}: the VXLAN device has nowhere to send it",
                (fdb_file, f"no entry for {mac}"),
            )
        assert entry is not None and entry.dst is not None
        self._add(
            node.name,
            label,
            "fdb",
            device.name,
            "pass",
            f"{entry.mac} dst {entry.dst}",
            (fdb_file, f"{entry.mac} dst {entry.dst}"),
        )
        details = device.link.vxlan
        overlay = self.backend.overlay(node)
        # a VXLAN device the cluster's backend does not describe: VXLAN's own overhead
        overhead = overlay.overhead if overlay is not None else VXLAN_OVERHEAD
        local = (details.local if details else None) or entry.dst
        vni = details.id if details else None
        # an FDB entry may name its own destination port (`bridge fdb ... port N`)
        port = entry.port or (details.port if details else None)
        if (
            details is not None
            and details.local
            and details.local not in local_addresses(namespace)
        ):
            self._add(
                node.name,
                label,
                "encap",
                device.name,
                "drop",
                f"{device.name} sends from {details.local}, which is no address of {node.name} "
                "any more: the kernel finds no route from it and drops the packet",
                (links, f"{device.name} local {details.local}"),
            )
        outer = size + overhead
        self._add(
            node.name,
            label,
            "encap",
            device.name,
            "pass",
            f"VXLAN VNI {vni} to {entry.dst}:{port} from {local}, "
            f"{size} + {overhead} = {outer} bytes",
            (links, f"{device.name} vxlan id {vni} dstport {port} local {local}"),
        )
        decision = decide(namespace, local, entry.dst, None)
        routes = self._file(node, namespace, "routes")
        if decision.route is None or decision.drop is not None:
            self._add(
                node.name,
                label,
                "underlay",
                None,
                "drop",
                f"{decision.drop or 'no route'} for the outer destination {entry.dst}",
                (routes, f"routes for {entry.dst}"),
            )
        assert decision.route is not None
        under_dev, under_gateway, _ = _leg(decision.route)
        under = namespace.interfaces.get(under_dev or "")
        if under is None:
            self._add(
                node.name,
                label,
                "underlay",
                under_dev,
                "drop",
                f"the underlay route's device {under_dev} does not exist",
                (links, f"no {under_dev}"),
            )
        assert under is not None
        up, why = _is_up(under)
        self._add(
            node.name,
            label,
            "underlay",
            under.name,
            "pass" if up else "drop",
            f"outer {local} -> {entry.dst} via {under_gateway or 'the link'} dev {under.name}"
            if up
            else why,
            (routes, f"route {decision.route.dst}"),
        )
        if under.mtu and outer > under.mtu and self.packet.df:
            self._add(
                node.name,
                label,
                "mtu",
                under.name,
                "drop",
                f"{size} bytes + {overhead} of VXLAN = {outer}, above {under.name}'s MTU "
                f"{under.mtu}: the kernel drops it (DF)",
                (links, f"{under.name} mtu {under.mtu}"),
            )
        outer_port = port or 0
        self._hook(node, "filter", "OUTPUT", local, entry.dst, None, under.name, "udp", outer_port)
        receiver = self._node_at(entry.dst)
        if receiver is None or receiver.host is None:
            self._add(
                node.name,
                label,
                "underlay",
                under.name,
                "unknown",
                f"the outer destination {entry.dst} is no node in the bundle",
                (fdb_file, f"dst {entry.dst}"),
            )
        assert receiver is not None and receiver.host is not None
        ingress = local_addresses(receiver.host).get(entry.dst)
        self._hook(receiver, "filter", "INPUT", local, entry.dst, ingress, None, "udp", outer_port)
        remote = self.backend.overlay_interface(receiver)
        remote_links = receiver.outputs.get("links", "")
        if remote is None or remote.kind != "vxlan":
            self._add(
                receiver.name,
                HOST,
                "decap",
                None,
                "drop",
                f"{receiver.name} has no VXLAN device to take VNI {vni} on port {port}",
                (remote_links, "no VXLAN device"),
            )
        assert remote is not None
        theirs = remote.link.vxlan
        up, why = _is_up(remote)
        if not up:
            self._add(
                receiver.name, HOST, "decap", remote.name, "drop", why, (remote_links, remote.name)
            )
        if theirs is not None and (theirs.id != vni or theirs.port != port):
            self._add(
                receiver.name,
                HOST,
                "decap",
                remote.name,
                "drop",
                f"{remote.name} takes VNI {theirs.id} on port {theirs.port}, the packet is "
                f"VNI {vni} to port {port}",
                (remote_links, f"{remote.name} vxlan id {theirs.id} dstport {theirs.port}"),
            )
        if mac is not None and remote.mac and remote.mac.lower() != mac:
            self._add(
                receiver.name,
                HOST,
                "decap",
                remote.name,
                "drop",
                f"the inner frame is for MAC {mac}, but {receiver.name}'s {remote.name} is "
                f"{remote.mac.lower()}: not taken",
                (remote_links, f"{remote.name} address {remote.mac.lower()}"),
            )
        self._add(
            receiver.name,
            HOST,
            "decap",
            remote.name,
            "pass",
            f"{remote.name} takes VNI {vni} on port {port}",
            (remote_links, remote.name),
        )
        return receiver, receiver.host, remote.name

    def _node_at(self, address: str) -> Node | None:
        """The node holding `address` on its host namespace (its IP, or its VTEP's),
        else the node the API gives that IP."""
        if self._holders is None:  # built once: a walk asks at every hand-over
            local: dict[str, Node] = {}
            named: dict[str, Node] = {}
            for node in self.model.nodes.values():  # the first node holding one wins
                for ip in local_addresses(node.host) if node.host is not None else ():
                    local.setdefault(ip, node)
                api = node.api
                for ip in (api.internal_ip, api.public_ip) if api is not None else ():
                    if ip:
                        named.setdefault(ip, node)
            self._holders = (local, named)
        local, named = self._holders
        return local.get(address) or named.get(address)

    def _underlay(
        self, node: Node, namespace: Namespace, out: Interface, nexthop: str, dst: str
    ) -> tuple[Node, Namespace, str]:
        """Out of the node on the underlay, to the node holding the next hop (host-gw,
        DirectRouting, node to node)."""
        label = _label(namespace)
        routes = self._file(node, namespace, "routes")
        receiver = self._node_at(nexthop) or (self._node_at(dst) if nexthop == dst else None)
        if receiver is None or receiver.host is None or receiver is node:
            owner = self._pod_owner(dst)
            if owner is not None:
                self._add(
                    node.name,
                    label,
                    "route",
                    out.name,
                    "drop",
                    f"{dst} is a pod address of {owner}, but {node.name} sends it via "
                    f"{nexthop} dev {out.name}, which is no node: the network beyond has no "
                    "route to pod addresses",
                    (routes, f"no route for {owner}'s pod CIDR; via {nexthop} dev {out.name}"),
                )
            self._add(
                node.name,
                label,
                "underlay",
                out.name,
                "unknown",
                f"{nexthop} is no node in the bundle: the packet leaves the cluster's view",
                (routes, f"via {nexthop}"),
            )
        assert receiver is not None and receiver.host is not None
        self._neighbour(node, namespace, nexthop, out, None, arp=True)
        locals_ = local_addresses(receiver.host)
        ingress = locals_.get(nexthop) or locals_.get(dst) or next(iter(locals_.values()), "")
        self._add(
            node.name,
            label,
            "underlay",
            out.name,
            "pass",
            f"to {receiver.name} ({nexthop}) over {out.name}",
            (self._file(node, namespace, "links"), out.name),
        )
        device = receiver.host.interfaces.get(ingress)
        if device is not None:
            up, why = _is_up(device)
            if not up:
                self._add(
                    receiver.name,
                    HOST,
                    "link",
                    device.name,
                    "drop",
                    why,
                    (receiver.outputs.get("links", ""), device.name),
                )
        return receiver, receiver.host, ingress

    def _pod_owner(self, address: str) -> str | None:
        """The node whose pods hold `address` (by pod IP, else by pod CIDR)."""
        for pod in self.model.pods_by_ip.get(address, []):
            if not pod.host_network and pod.node:
                return pod.node
        for node in self.model.nodes.values():
            if node.pod_cidr and cidr_contains(node.pod_cidr, address):
                return node.name
        return None
