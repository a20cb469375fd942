"""Counter deltas over the capture window: what each interface (host and pod namespaces)
and each protocol counted between the collector's two readings (docs/bundle-format.md,
Counters), and the counters a finding's hop would make grow."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from needle.analyzer.bundle.reader import Bundle
from needle.analyzer.errors import BundleError
from needle.analyzer.model.entities import HOST, Node
from needle.analyzer.parsers.counters import (
    WATCHED_COUNTERS,
    CounterDelta,
    LinkDelta,
    counter_deltas,
    link_deltas,
    parse_link_stats,
    protocol_counters,
)

# an interface's counters that say packets were lost there
LINK_LOSSES = (
    "rx_dropped",
    "tx_dropped",
    "rx_errors",
    "tx_errors",
    "rx_over_errors",
    "rx_missed_errors",
    "rx_frame_errors",
    "rx_fifo_errors",
    "tx_fifo_errors",
    "tx_carrier_errors",
    "tx_aborted_errors",
)
LINK_TRAFFIC = ("rx_packets", "tx_packets")
# protocol counters that grow where a hop of this step drops packets
STEP_COUNTERS = {
    "mtu": ("IpFragFails", "IcmpOutDestUnreachs", "IcmpInDestUnreachs"),
    "decap": ("UdpNoPorts", "UdpInErrors"),
    "encap": ("UdpSndbufErrors", "IpOutNoRoutes"),
    "underlay": ("IpOutNoRoutes", "IcmpInDestUnreachs"),
    "route": ("IpOutNoRoutes", "IpInAddrErrors", "IcmpOutDestUnreachs"),
    "filter": ("IcmpOutDestUnreachs",),
}


@dataclass(slots=True)
class NodeCounters:
    node: str
    # (namespace: "host" or a pod namespace's id, the interface's deltas)
    links: list[tuple[str, LinkDelta]] = field(default_factory=list)
    protocol: tuple[CounterDelta, ...] = ()
    files: dict[str, str] = field(default_factory=dict)  # what -> the end reading's file

    def link(self, netns: str, name: str) -> LinkDelta | None:
        return next((d for space, d in self.links if space == netns and d.ifname == name), None)

    def losses(self, netns: str, name: str) -> list[tuple[str, int]]:
        """The interface's loss counters that grew, with how much."""
        found = self.link(netns, name)
        if found is None:
            return []
        return [(key, value) for key in LINK_LOSSES if (value := found.delta(key) or 0) > 0]

    def grown(self, names: tuple[str, ...]) -> list[tuple[str, int]]:
        by_name = {d.name: d.delta for d in self.protocol}
        return [(name, value) for name in names if (value := by_name.get(name) or 0) > 0]


def _read(bundle: Bundle, path: str | None) -> bytes | None:
    if path is None:
        return None
    try:
        return bundle.read_bytes(path)
    except BundleError:
        return None  # an unreadable reading is one the node does not have


def node_counters(bundle: Bundle, node: Node) -> NodeCounters | None:
    """The node's counter deltas; None when the bundle has no two readings of it."""
    files = node.counters
    if not files:
        return None
    found = NodeCounters(node.name)
    spaces = sorted({netns for netns, _ in files})
    for netns in spaces:
        for command in ("link-stats", "link-stats-text"):
            start = _read(bundle, files.get((netns, f"{command}.start")))
            end = _read(bundle, files.get((netns, f"{command}.end")))
            if start is not None and end is not None:
                deltas = link_deltas(parse_link_stats(start).records, parse_link_stats(end).records)
                found.links += [(netns, delta) for delta in deltas]
                found.files[f"links:{netns}"] = files[(netns, f"{command}.end")]
                break
    readings = []
    for phase in ("start", "end"):
        nstat, snmp, netstat = (
            _read(bundle, files.get((HOST, f"{command}.{phase}")))
            for command in ("nstat", "proc-snmp", "proc-netstat")
        )
        readings.append(protocol_counters(nstat, snmp, netstat).records)
    if readings[0] and readings[1]:
        found.protocol = counter_deltas(readings[0], readings[1], sorted(WATCHED_COUNTERS))
        end = next(
            (
                files[(HOST, f"{c}.end")]
                for c in ("nstat", "proc-snmp")
                if (HOST, f"{c}.end") in files
            ),
            "",
        )
        found.files["protocol"] = end
    return found


def counter_rows(counters: NodeCounters) -> list[dict[str, Any]]:
    """Rows for `needle show counters`: every interface's traffic and losses that grew,
    every watched protocol counter that grew, resets said as such."""
    rows: list[dict[str, Any]] = []
    for netns, link in counters.links:
        if link.missing is not None:
            rows.append(
                _row(counters.node, netns, link.ifname, "-", None, f"only at the {link.missing}")
            )
            continue
        for delta in link.deltas:
            if delta.name in LINK_TRAFFIC or (
                delta.name in LINK_LOSSES and (delta.delta or delta.reset)
            ):
                rows.append(_row(counters.node, netns, link.ifname, delta.name, delta, None))
    for delta in counters.protocol:
        if delta.delta or delta.reset:
            rows.append(_row(counters.node, HOST, "-", delta.name, delta, None))
    return rows


def _row(
    node: str,
    netns: str,
    interface: str,
    counter: str,
    delta: CounterDelta | None,
    note: str | None,
) -> dict[str, Any]:
    return {
        "node": node,
        "netns": netns,
        "interface": interface,
        "counter": counter,
        "start": None if delta is None else delta.start,
        "end": None if delta is None else delta.end,
        "delta": None if delta is None else delta.delta,
        "note": note or ("reset (the device was recreated)" if delta and delta.reset else None),
    }
