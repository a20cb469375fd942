"""Steps inside one node: a device's link state and MTU, neighbour resolution, and the
hand-over between namespaces by a veth pair or across a bridge (ports, FDB, hairpin)."""

from __future__ import annotations

from needle.analyzer.model.entities import HOST, Interface, Namespace, Node
from needle.analyzer.trace.hops import Recorder, is_up, namespace_of, netns_label
from needle.analyzer.trace.routing import local_addresses

# neighbour states in which the kernel has no usable address for the next hop
UNRESOLVED = frozenset({"FAILED", "INCOMPLETE"})


class Devices(Recorder):
    """The steps of a packet inside one node, from device to device."""

    def _link(
        self, node: Node, interface: Interface, only_if_down: bool = False, prefix: str = ""
    ) -> None:
        """The `link` hop of a device in its own namespace: drops when it is down."""
        namespace = namespace_of(node, interface)
        if namespace is None:
            return
        up, why = is_up(interface)
        if up and only_if_down:
            return
        self._add(
            node.name,
            netns_label(namespace),
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
            up, why = is_up(interface)
            if not up:
                self._add(
                    node.name,
                    netns_label(namespace),
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
        label = netns_label(namespace)
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
        unresolved = bool(states & UNRESOLVED) or not entry.lladdr
        shown = "/".join(sorted(states)) or "unresolved"
        if unresolved and arp and expected is None:
            # nobody the bundle shows would answer: the caller's next check says why
            self._add(
                node.name,
                label,
                "neigh",
                out.name,
                "pass",
                f"{address} is {shown}: ARP asks again when the packet is sent",
                (file, f"{address} {' '.join(entry.state)}"),
            )
            return None
        if unresolved:
            # a device that ARPs asks again for a packet sent to a FAILED entry; that the
            # last ask went unanswered is a symptom whose cause the bundle does not show
            self._add(
                node.name,
                label,
                "neigh",
                out.name,
                "unknown" if arp else "drop",
                f"{address} on {out.name} is {shown}: "
                + (
                    f"the last ARP went unanswered though {expected} holds it; the kernel "
                    "asks again for this packet, and nothing in the bundle says why it was "
                    "not answered"
                    if arp
                    else "no answer to ARP"
                ),
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
        label = netns_label(namespace)
        links = self._file(node, peer_namespace, "links")
        self._link(node, peer, prefix="peer ")
        if peer.master:
            bridge = peer_namespace.interfaces.get(peer.master)
            if bridge is None:
                self._add(
                    node.name,
                    netns_label(peer_namespace),
                    "bridge",
                    peer.master,
                    "drop",
                    f"{peer.name}'s master {peer.master} is not in the bundle",
                    (links, peer.name),
                )
            assert bridge is not None
            owner = self._owner_on_bridge(
                node, peer_namespace, bridge, nexthop, asking=(namespace, out)
            )
            # the next hop's answer (ARP, then every frame) comes back over the bridge: an
            # FDB entry sending the sender's MAC elsewhere loses it
            self._bridge_fdb(node, bridge, out.mac, peer)
            self._neighbour(node, namespace, nexthop, out, owner.mac if owner else None, arp=True)
            self._port(node, peer_namespace, bridge, peer)
            if owner is not None and owner is not bridge:
                # another pod on the same bridge: bridged, not routed
                return self._to_port(node, peer_namespace, bridge, owner, peer)
            up, why = is_up(bridge)
            self._add(
                node.name,
                netns_label(peer_namespace),
                "bridge",
                bridge.name,
                "pass" if up else "drop",
                why if not up else f"up to {bridge.name}'s IP stack",
                (links, bridge.name),
            )
            self._port_in = peer  # a DNAT back behind this bridge is bridged from here
            return node, peer_namespace, bridge.name
        answers = nexthop in local_addresses(peer_namespace)
        if not answers:
            key = f"net.ipv4.conf.{peer.name.replace('.', '/')}"
            proxy = node.sysctls.get(f"{key}.proxy_arp")
            # the kernel answers ARP by proxy only on a device that forwards (arp_process)
            forwarding = node.sysctls.get(f"{key}.forwarding")
            for name, value in (("proxy_arp", proxy), ("forwarding", forwarding)):
                if value is not None and value.strip() != "1":
                    self._add(
                        node.name,
                        label,
                        "neigh",
                        out.name,
                        "drop",
                        f"nobody answers ARP for {nexthop}: {name} is {value} on {peer.name}"
                        + (
                            " (proxy ARP answers only on a device that forwards)"
                            if name == "forwarding"
                            else ""
                        ),
                        (
                            node.outputs.get("sysctl", ""),
                            f"net/ipv4/conf/{peer.name}/{name} = {value}",
                        ),
                    )
        self._neighbour(node, namespace, nexthop, out, peer.mac, arp=True)
        return node, peer_namespace, peer.name

    def _owner_on_bridge(
        self,
        node: Node,
        host: Namespace,
        bridge: Interface,
        address: str,
        asking: tuple[Namespace, Interface] | None = None,
    ) -> Interface | None:
        """The interface behind `bridge` that holds `address`: the bridge itself, or a
        pod's eth0 whose host veth is one of its ports. When two pods hold it (an IPAM
        that lost its allocations hands an address out again), the one whose MAC the
        asking namespace's neighbour entry (on its device) has gets every frame."""
        if address in bridge.ipv4:
            return bridge
        owners = [
            interface.peer
            for interface in host.interfaces.values()
            if interface.master == bridge.name
            and interface.peer is not None
            and address in interface.peer.ipv4
        ]
        if len(owners) < 2:
            return owners[0] if owners else None
        space, device = asking or (host, bridge)
        entry = next(
            (n for n in space.neighbours if n.dst == address and n.dev == device.name), None
        )
        lladdr = (entry.lladdr or "").lower() if entry is not None else ""
        chosen = next((o for o in owners if o.mac and o.mac.lower() == lladdr), None)
        holders = ", ".join(_holder(node, owner) for owner in owners)
        if chosen is None:
            self._add(
                node.name,
                netns_label(space),
                "neigh",
                device.name,
                "unknown",
                f"{len(owners)} pods behind {bridge.name} hold {address} ({holders}) and no "
                "neighbour entry says which of them answers ARP",
                (self._file(node, space, "neighbours"), f"no entry for {address}"),
            )
        assert chosen is not None
        self._shared_address = (address, holders)
        return chosen

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
        owner_namespace = namespace_of(node, owner)
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
        self,
        node: Node,
        namespace: Namespace,
        bridge: Interface,
        nexthop: str,
        came_in: Interface | None = None,
    ) -> tuple[Node, Namespace, str]:
        """Out of the host by a bridge to the pod behind it that holds `nexthop`.
        `came_in`: the port the packet came in by, when it is bridged back (br_netfilter
        rewrote its destination on the bridge: leaving by that port needs hairpin)."""
        owner = self._owner_on_bridge(node, namespace, bridge, nexthop)
        if owner is None or owner is bridge:
            self._neighbour(node, namespace, nexthop, bridge, None, arp=True)
            self._add(
                node.name,
                netns_label(namespace),
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
        return self._to_port(node, namespace, bridge, owner, came_in)


def _holder(node: Node, interface: Interface) -> str:
    """A pod's eth0 as a person names it: the pod, else its namespace."""
    namespace = namespace_of(node, interface)
    return netns_label(namespace) if namespace is not None else interface.netns
