"""The host's netfilter hooks (iptables, table by table), the rewrites its nat table and
conntrack make to the packet, and the sysctls that decide whether it forwards a packet
that came in on one of its devices."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

from needle.analyzer.model.entities import HOST, Namespace, Node
from needle.analyzer.netfilter import Packet as NetfilterPacket
from needle.analyzer.netfilter import Verdict
from needle.analyzer.netfilter.services import services
from needle.analyzer.trace.hops import Recorder, Translation, Traversable, route_leg
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
    ) -> Verdict | None:
        """What the node's iptables ruleset does with the packet at one hook: filter's
        verdict, or nat's rewrite (the verdict, its random choice taken). `proto` and
        `port`: another packet than the walked one (the encapsulated UDP), with a mark
        of its own. None when the node filters nothing."""
        step = "filter" if table == "filter" else "nat"
        file = node.outputs.get("netfilter", "")

        def hop(verdict: str, detail: str, *evidence: tuple[str, str]) -> None:
            self._add(node.name, HOST, step, iif or oif, verdict, detail, *evidence)

        if "netfilter" not in node.present:
            if table == "filter":
                hop(
                    "unknown",
                    f"{node.name}'s iptables rules were not collected: {chain} not checked",
                )
            return None
        rulesets = self._rulesets(node)
        if not rulesets:
            return None  # iptables-save printed nothing and nft holds no other rules
        outer = proto is not None
        packet = NetfilterPacket(
            src,
            dst,
            proto or self.packet.proto,
            dport=port if outer else self._dport,
            iif=iif,
            oif=oif,
            state="NEW" if outer or self._reply is None else "ESTABLISHED",
            mark=0 if outer else self._mark,
            length=self.packet.size,
        )
        local = frozenset(local_addresses(node.host)) if node.host is not None else frozenset()
        verdict, file = _traverse(rulesets, table, chain, packet, local)
        where = f"{table} {chain}"
        verdict, choice = self._choose(verdict) if table == "nat" else (verdict, "")
        if not outer:
            self._mark = verdict.mark
        if verdict.verdict in ("drop", "unknown"):
            hop(
                verdict.verdict,
                f"{where}: {verdict.reason}",
                (file, verdict.rule or where),
            )
        if table == "nat" and not verdict.nat:
            return verdict  # nothing rewritten: no hop to show
        for rewrite in verdict.nat:
            kind, _, target = rewrite.partition(" ")
            if kind in ("REDIRECT", "NETMAP"):
                hop(
                    "unknown",
                    f"{where}: {rewrite}: a rewrite the trace does not follow",
                    (file, verdict.rule or where),
                )
            address = target.rsplit(":", 1)[0] if target.count(":") == 1 else target
            if kind == "SNAT" and address and self._node_at(address) is None:
                hop(
                    "drop",
                    f"{where}: SNAT to {address}, which no node holds: the replies go to "
                    f"{address} and never come back",
                    (file, verdict.rule or where),
                )
        detail = f"{where}: " + (", ".join(verdict.nat) + choice if verdict.nat else verdict.reason)
        hop("pass", detail, (file, verdict.rule or where))
        return verdict

    def _choose(self, verdict: Verdict) -> tuple[Verdict, str]:
        """The alternative this run follows when a DNAT chooses at random among
        endpoints (walk.Walker runs once per endpoint), and words saying which."""
        options = [v for v in verdict.alternatives] or [verdict]
        if not any(_dnat(v) for v in options):
            return verdict, ""
        k = len(self._forks)
        taken = self._choices[k] if k < len(self._choices) else 0
        chosen = options[taken]
        target = _dnat(chosen) or "no DNAT"
        self._forks.append((taken, len(options), target))
        if len(options) == 1:
            return chosen, f" (followed; rule {chosen.rule})" if chosen.rule else " (followed)"
        return chosen, (
            f" (endpoint {taken + 1} of {len(options)}, chosen at random in "
            f"{verdict.decided_in}; each is traced)"
        )

    def _dnat_at(self, node: Node, chain: str, src: str, dst: str, iif: str | None) -> str:
        """The destination after nat `chain` (PREROUTING, OUTPUT) on `node`, the rewrite
        (kube-proxy's Service DNAT) followed; a Service left without one drops here."""
        verdict = self._hook(node, "nat", chain, src, dst, iif, None)
        rewrite = _dnat(verdict) if verdict is not None else None
        if rewrite is None:
            if self._to_service and verdict is not None:
                self._no_endpoint(node, chain, dst, iif)
            return dst
        assert verdict is not None  # a rewrite comes from a verdict
        address, _, port = rewrite.partition(":")
        address = address.split("-", 1)[0]
        if not _is_ipv4(address):
            self._add(
                node.name,
                HOST,
                "nat",
                iif,
                "unknown",
                f"nat {chain}: DNAT {rewrite}: no IPv4 address the trace can follow",
                (node.outputs.get("netfilter", ""), verdict.rule or f"nat {chain}"),
            )
        if port:
            first = port.split("-", 1)[0]
            self._dport = int(first) if first.isdigit() else self._dport
        self._translations.append(Translation(node.name, "DNAT", dst, address))
        self._to_service = False
        return address

    def _no_endpoint(self, node: Node, chain: str, dst: str, iif: str | None) -> None:
        """A packet still for a Service ClusterIP after nat: kube-proxy has a chain for the
        Service that DNATs to no endpoint (one without any has a filter REJECT instead)."""
        ruleset = node.netfilter
        if ruleset is None:
            return
        found = services(ruleset).get((dst, self.packet.proto, self._dport or 0))  # type: ignore[arg-type]
        if found is None or found.chain is None:
            return
        self._add(
            node.name,
            HOST,
            "nat",
            iif,
            "drop",
            f"nat {chain}: Service {found.name} ({found.address}/{found.proto}) has no "
            f"endpoint: its chain {found.chain} DNATs to none",
            (node.outputs.get("netfilter", ""), found.rule),
        )

    def _snat_at(
        self, node: Node, namespace: Namespace, src: str, dst: str, iif: str | None, oif: str | None
    ) -> str:
        """The source after nat POSTROUTING on `node` (SNAT, MASQUERADE followed)."""
        verdict = self._hook(node, "nat", "POSTROUTING", src, dst, iif, oif)
        rewrite = next(
            (n for n in (verdict.nat if verdict else ()) if n.startswith(("SNAT", "MASQ"))), None
        )
        if rewrite is None:
            return src
        kind, _, target = rewrite.partition(" ")
        if kind == "SNAT":
            address = target.split(":", 1)[0].split("-", 1)[0]
        else:
            address = _masquerade_address(namespace, oif) or src
        if not _is_ipv4(address):
            return src  # an SNAT to no address: _hook has dropped it (no node holds it)
        if address != src:
            self._translations.append(Translation(node.name, "SNAT", src, address))
        return address

    def _conntrack_reply(self, node: Node, dst: str, iif: str | None) -> str:
        """The reply's destination once conntrack has undone this node's SNAT of the
        connection (at PREROUTING, before routing)."""
        return self._undo(node, "SNAT", dst, iif, "the reply to {} is for {}")

    def _conntrack_source(self, node: Node, src: str) -> str:
        """The reply's source once conntrack has undone this node's DNAT (a Service's
        endpoint answers as the ClusterIP)."""
        return self._undo(node, "DNAT", src, None, "the reply from {} is from {} again")

    def _undo(self, node: Node, kind: str, address: str, iif: str | None, words: str) -> str:
        for t in self._reply or ():
            if t.node == node.name and t.kind == kind and t.translated == address:
                self._add(
                    node.name,
                    HOST,
                    "nat",
                    iif,
                    "pass",
                    f"conntrack: {words.format(address, t.original)} (the connection's "
                    f"{kind} undone)",
                    (node.outputs.get("netfilter", ""), f"{kind} {t.original} -> {address}"),
                )
                return t.original
        return address

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


def _traverse(
    rulesets: list[tuple[Traversable, str]],
    table: str,
    chain: str,
    packet: NetfilterPacket,
    local: frozenset[str],
) -> tuple[Verdict, str]:
    """What the node's iptables rules, then its nftables rules (both see the packet at
    the hook), do with it, and the file of the one that decides: the first that drops
    or cannot tell, else the first that rewrites, else the last."""
    passed: list[tuple[Verdict, str]] = []
    mark = packet.mark
    for ruleset, file in rulesets:
        verdict = ruleset.traverse(table, chain, replace(packet, mark=mark), local_addresses=local)
        if verdict.verdict != "accept" or verdict.alternatives:
            return verdict, file
        mark = verdict.mark
        passed.append((verdict, file))
    chosen = next(((v, f) for v, f in passed if v.nat), passed[-1])
    return replace(chosen[0], mark=mark), chosen[1]


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def _dnat(verdict: Verdict) -> str | None:
    """The `ip[:port]` a nat verdict sends the packet to, if it rewrites the destination."""
    for rewrite in verdict.nat:
        kind, _, target = rewrite.partition(" ")
        if kind == "DNAT" and target:
            return target
    return None


def _masquerade_address(namespace: Namespace, oif: str | None) -> str | None:
    """The address MASQUERADE gives the packet: the outgoing device's (its first, as the
    kernel's primary address is)."""
    device = namespace.interfaces.get(oif or "")
    return device.ipv4[0] if device is not None and device.ipv4 else None
