"""Decoding one capture file into a CaptureSummary: the container's records
(container.py) through the header decoder (packets.py), then the decoder's raw tables
turned into rows with dotted addresses. Never raises on bad bytes: what cannot be read
becomes `partial` (decoding stopped there) or a malformed-packet count."""

from __future__ import annotations

import socket
from collections.abc import Callable

from needle.analyzer.backends.base import VXLAN_PORTS
from needle.analyzer.gcpause import paused_gc
from needle.analyzer.observe.container import (
    LINK_ETHERNET,
    LINK_IPV4,
    LINK_LINUX_SLL,
    LINK_LINUX_SLL2,
    LINK_NAMES,
    LINK_RAW,
    open_container,
)
from needle.analyzer.observe.packets import DecodeLimits, FrameDecoder, RawTunnel
from needle.analyzer.observe.summary import (
    CaptureSummary,
    FlowCount,
    FragmentCount,
    IcmpError,
    QuotedPacket,
    RetransmissionCount,
    TunnelCount,
    TunnelKey,
)

# flannel's port (the Linux kernel's historical default) and the IANA one
DEFAULT_VXLAN_PORTS = VXLAN_PORTS


def decode_capture(
    data: bytes,
    vxlan_ports: frozenset[int] = DEFAULT_VXLAN_PORTS,
    limits: DecodeLimits | None = None,
) -> CaptureSummary:
    """What the capture file `data` holds. UDP to one of `vxlan_ports` is read as VXLAN."""
    limits = limits or DecodeLimits()
    summary = CaptureSummary()
    container = open_container(data)
    if isinstance(container, str):
        summary.partial = container
        return summary
    summary.format = container.format
    summary.link_type = container.link_type
    summary.link_name = LINK_NAMES.get(container.link_type)
    summary.snaplen = container.snaplen
    decoder = FrameDecoder(vxlan_ports, limits)
    decode = _frame_decoder(decoder, container.link_type)
    if decode is None:
        summary.partial = (
            f"unsupported link type {container.link_type}: only "
            + ", ".join(f"{name} ({number})" for number, name in sorted(LINK_NAMES.items()))
            + " are decoded"
        )
        return summary
    packets = wire_bytes = 0
    first = last = None
    # the tables are 10^3-10^4 small objects, none of them garbage: no collector passes
    with paused_gc():
        for ts, frame, wirelen in container.records:
            if packets >= limits.max_packets:
                summary.partial = f"stopped after {packets} packets (the decode limit)"
                break
            packets += 1
            wire_bytes += wirelen
            if first is None:
                first = ts
            last = ts
            decode(frame, ts)
    summary.partial = summary.partial or container.stopped
    summary.packets, summary.bytes = packets, wire_bytes
    summary.first_ts, summary.last_ts = first, last
    _fill(summary, decoder)
    return summary


def _frame_decoder(decoder: FrameDecoder, link_type: int) -> Callable[[bytes, float], None] | None:
    if link_type == LINK_ETHERNET:
        return decoder.ethernet
    if link_type in (LINK_RAW, LINK_IPV4):
        return decoder.raw_ip
    if link_type == LINK_LINUX_SLL:
        return lambda frame, ts: decoder.cooked(frame, ts, 14, 16)
    if link_type == LINK_LINUX_SLL2:
        return lambda frame, ts: decoder.cooked(frame, ts, 0, 20)
    return None


class _Names:
    """Dotted addresses and tunnel keys, each made once however many rows share it."""

    def __init__(self) -> None:
        self._tunnels: dict[RawTunnel, TunnelKey] = {}

    @staticmethod
    def pair(addresses: bytes) -> tuple[str, str]:
        return socket.inet_ntoa(addresses[:4]), socket.inet_ntoa(addresses[4:8])

    def tunnel(self, raw: RawTunnel | None) -> TunnelKey | None:
        if raw is None:
            return None
        found = self._tunnels.get(raw)
        if found is None:
            src, dst = self.pair(raw[0])
            found = self._tunnels[raw] = TunnelKey(src, dst, raw[1], raw[2])
        return found


def _fill(summary: CaptureSummary, decoder: FrameDecoder) -> None:
    names = _Names()
    for (tunnel, addresses, proto, sport, dport), (packets, size) in decoder.flows.items():
        row = FlowCount(*names.pair(addresses), proto, sport, dport, packets, size)
        row.tunnel = names.tunnel(tunnel)
        (summary.flows if tunnel is None else summary.inner_flows).append(row)
    for raw, (packets, size) in decoder.tunnels.items():
        summary.tunnels.append(TunnelCount(names.tunnel(raw), packets, size))  # type: ignore[arg-type]
    for key, (count, first_ts) in decoder.icmp_errors.items():
        tunnel, addresses, code, mtu, quoted, proto, sport, dport = key
        sender, to = names.pair(addresses)  # type: ignore[arg-type]
        summary.icmp_errors.append(
            IcmpError(
                sender=sender,
                to=to,
                code=code,  # type: ignore[arg-type]
                mtu=mtu,  # type: ignore[arg-type]
                quoted=QuotedPacket(*names.pair(quoted), proto, sport, dport),  # type: ignore[arg-type]
                packets=int(count),
                first_ts=first_ts,
                tunnel=names.tunnel(tunnel),  # type: ignore[arg-type]
            )
        )
    for (tunnel, addresses, proto), count in decoder.fragments.items():
        summary.fragments.append(
            FragmentCount(*names.pair(addresses), proto, count, names.tunnel(tunnel))
        )
    for (tunnel, addresses, sport, dport), count in decoder.retransmissions.items():
        summary.retransmissions.append(
            RetransmissionCount(*names.pair(addresses), sport, dport, count, names.tunnel(tunnel))
        )
    summary.identities = decoder.identities
    # every VXLAN packet's identity is kept up to the end, unless the table filled
    summary.identities_until = (
        decoder.identities_until if decoder.identities_full else summary.last_ts
    )
    summary.malformed, summary.not_ipv4 = decoder.malformed, decoder.not_ipv4
    summary.capped = sorted(decoder.capped)
