"""The host's netfilter hooks (iptables, table by table) and the sysctls that decide
whether it forwards a packet that came in on one of its devices."""

from __future__ import annotations

from needle.analyzer.model.entities import HOST, Namespace, Node
from needle.analyzer.netfilter import Packet as NetfilterPacket
from needle.analyzer.trace.hops import Recorder, route_leg
from needle.analyzer.trace.routing import decide, local_addresses


class Hooks(Recorder):
    """What the host's netfilter and forwarding sysctls do with a packet."""

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
        if verdict.verdict in ("drop", "unknown"):
            self._add(
                node.name,
                HOST,
                step,
                iif or oif,
                verdict.verdict,
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
        back_dev = route_leg(back.route)[0] if back.route is not None else None
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
