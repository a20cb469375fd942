"""Leaving a node: a VXLAN device encapsulates the packet for the node that holds the
outer address (neighbour, FDB, underlay route and MTU, the receiver's VXLAN device), an
underlay device hands it to the node that holds the next hop."""

from __future__ import annotations

from needle.analyzer.backends.flannel import VXLAN_OVERHEAD
from needle.analyzer.model.entities import HOST, Interface, Namespace, Node
from needle.analyzer.trace.devices import Devices
from needle.analyzer.trace.hooks import Hooks
from needle.analyzer.trace.hops import is_up, netns_label, route_leg
from needle.analyzer.trace.routing import decide, local_addresses

ALL_ZEROS = "00:00:00:00:00:00"


class HandOver(Devices, Hooks):
    """The steps that take a packet from one node to another."""

    def _overlay(
        self, node: Node, namespace: Namespace, device: Interface, nexthop: str, size: int
    ) -> tuple[Node, Namespace, str]:
        label = netns_label(namespace)
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
        under_dev, under_gateway, _ = route_leg(decision.route)
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
        up, why = is_up(under)
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
        if ingress is None:
            self._not_held(receiver, entry.dst, fdb_file, node.name)
        # without DF the outer packet was fragmented to the underlay's MTU
        self._arriving(receiver, ingress, min(outer, under.mtu) if under.mtu else outer)
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
        up, why = is_up(remote)
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

    def _underlay(
        self,
        node: Node,
        namespace: Namespace,
        out: Interface,
        nexthop: str,
        dst: str,
        size: int | None = None,
    ) -> tuple[Node, Namespace, str]:
        """Out of the node on the underlay, to the node holding the next hop (host-gw,
        DirectRouting, node to node)."""
        label = netns_label(namespace)
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
            up, why = is_up(device)
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
        self._arriving(receiver, ingress, self.packet.size if size is None else size)
        return receiver, receiver.host, ingress

    def _not_held(self, receiver: Node, outer: str, fdb_file: str, sender: str) -> None:
        """The node the outer destination names no longer holds it (its address changed
        under flanneld, which still advertises the old one): nothing takes the packet.
        When its own overlay device still claims the address, the cause is that device's,
        the same the node's own outgoing packets die at."""
        remote = self.backend.overlay_interface(receiver)
        claimed = remote.link.vxlan.local if remote is not None and remote.link.vxlan else None
        links = receiver.outputs.get("links", "")
        if remote is not None and claimed == outer:
            self._add(
                receiver.name,
                HOST,
                "encap",
                remote.name,
                "drop",
                f"{remote.name} is {receiver.name}'s VTEP at {outer}, which is no address of "
                f"{receiver.name} any more: {sender}'s packets to it are taken by nobody",
                (links, f"{remote.name} local {outer}"),
            )
        self._add(
            receiver.name,
            HOST,
            "underlay",
            None,
            "drop",
            f"the outer destination {outer} is no address of {receiver.name} any more: "
            "nothing takes the packet",
            (fdb_file, f"dst {outer}"),
        )

    def _arriving(self, receiver: Node, ingress: str | None, size: int) -> None:
        """A frame larger than the receiving device's MTU is dropped as it arrives (a
        veth's peer, a NIC's giant frames): the sender's larger MTU let it out."""
        host = receiver.host
        device = host.interfaces.get(ingress or "") if host is not None else None
        if device is not None and device.mtu and size > device.mtu:
            self._add(
                receiver.name,
                HOST,
                "mtu",
                device.name,
                "drop",
                f"{size} bytes arrive at {receiver.name}'s {device.name}, above its MTU "
                f"{device.mtu}: dropped as it arrives",
                (receiver.outputs.get("links", ""), f"{device.name} mtu {device.mtu}"),
            )
