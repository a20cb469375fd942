"""What the configuration says a probe should have met: the probe walked as `needle
trace` walks a packet (same sender namespace, same target address, same size and DF),
so what was observed can be set against what was inferred."""

from __future__ import annotations

from needle.analyzer.backends.base import node_ip
from needle.analyzer.model.entities import Model, Namespace
from needle.analyzer.observe.probes import ProbeResult
from needle.analyzer.trace.endpoints import Endpoint
from needle.analyzer.trace.hops import Hop, NftSource, Packet, Path
from needle.analyzer.trace.walk import Walker


class Expectations:
    """Walks probes, one walker per packet size (a node's nft ruleset parsed once)."""

    def __init__(self, model: Model, nft: NftSource | None = None) -> None:
        self.model = model
        self.nft = nft
        self.nft_parsed: dict[str, object] = {}
        self.walkers: dict[tuple[int, bool], Walker] = {}

    def failing(self, probe: ProbeResult) -> tuple[bool, Hop | None]:
        """(whether the bundle places the probe's sender and target, the hop where its
        request or else its reply stops: an echo needs both ways; None when both are
        delivered)."""
        walked = self.paths(probe)
        if walked is None:
            return False, None
        forward, back = walked
        return True, forward.failing or back.failing

    def paths(self, probe: ProbeResult) -> tuple[Path, Path] | None:
        """The walks of an echo probe's request and reply; None when the bundle cannot
        place its sender or its target (the probe is then judged by what it saw)."""
        if not probe.echo or probe.packet is None:
            return None
        source, target = self._source(probe), self._target(probe)
        if source is None or target is None:
            return None
        key = (probe.packet, probe.df)
        walker = self.walkers.get(key)
        if walker is None:
            packet = Packet(proto="icmp", size=probe.packet, df=probe.df)
            walker = Walker(self.model, packet, self.nft, self.nft_parsed)  # type: ignore[arg-type]
            self.walkers[key] = walker
        return walker.trace(source, target)

    def _source(self, probe: ProbeResult) -> Endpoint | None:
        node = self.model.nodes.get(probe.node)
        if node is None:
            return None
        if probe.source == "host":
            return Endpoint("node", node.name, node.name, node_ip(node) or "", node.host)
        node.ensure_pod_side()
        space = node.pods_netns.get(probe.netns or "")
        address = _pod_address(space)
        if space is None or address is None:
            return None
        name = space.pod.ref if space.pod is not None else space.name or space.id
        return Endpoint("pod", name, node.name, address, space)

    def _target(self, probe: ProbeResult) -> Endpoint | None:
        if probe.kind == "pod":
            pods = [p for p in self.model.pods_by_ip.get(probe.target, []) if not p.host_network]
            if not pods or not pods[0].node:
                return None
            owner = self.model.nodes.get(pods[0].node)
            if owner is not None:
                owner.ensure_pod_side()
            return Endpoint("pod", pods[0].ref, pods[0].node, probe.target, pods[0].netns)
        peer = self.model.nodes.get(probe.peer_node or "")
        if peer is None:
            return None
        # a peer's gateway (its pod bridge's address) is the peer's host namespace
        return Endpoint("node", peer.name, peer.name, probe.target, peer.host)


def _pod_address(space: Namespace | None) -> str | None:
    if space is None:
        return None
    if space.pod is not None and space.pod.ip:
        return space.pod.ip
    for interface in space.interfaces.values():
        for address in interface.ipv4:
            if not address.startswith("127."):
                return address
    return None
