"""Decoding the headers of captured frames into counts: Ethernet (802.1Q tags), IPv4,
UDP, TCP, ICMP, and VXLAN with the Ethernet/IPv4 frame inside it.

Headers are read with precompiled struct formats at offsets into the captured bytes,
never as one object per header: a 1,000-node bundle holds 2,000,000 packets, and dpkt's
object per layer costs ~3x more (bench/pcap_decode.py measures both). The common frame
(Ethernet, IPv4 without options) is read with one unpack for all its headers; anything
else takes the general path, header by header. Tables are keyed by raw address bytes;
dotted strings are made once per table row when decoding ends (pcap.py). Every table
has a bound (DecodeLimits): a hostile capture of distinct flows stops growing a table,
not memory.
"""

from __future__ import annotations

import struct
import zlib
from array import array
from dataclasses import dataclass
from typing import Any

from needle.analyzer.observe.summary import PacketIdentities

ETHERTYPE_IPV4 = 0x0800
VLAN_TAGS = (0x8100, 0x88A8)
UDP, TCP, ICMP = 17, 6, 1
ICMP_UNREACHABLE = 3
VXLAN_HEADER = 8
VXLAN_VNI_VALID = 0x08  # the I flag: the VNI field is valid (RFC 7348)
# how much of the inner frame an identity hashes: inner Ethernet + IPv4 + 14 bytes of
# its payload (ports and sequence numbers, ICMP id and sequence), well inside snaplen 200
IDENTITY_INNER_BYTES = 48

_IPV4 = struct.Struct("!BxHHHxB")  # version/IHL, total length, id, flags/offset, proto
_PORTS = struct.Struct("!HH")
_TCP = struct.Struct("!HHI4xB")  # ports, sequence number, data offset
_IDENTITY = struct.Struct("!HHI")  # IP id, UDP source port, CRC-32 of the inner start
_VXLAN = struct.Struct("!B3xI")  # flags, then VNI << 8 (its low byte is reserved)
# Ethernet + IPv4 (IHL 5) + the first 4 bytes after it, read at the frame's start:
# ethertype, version/IHL, total length, id, flags/offset, proto, src+dst, sport, dport
_FAST = struct.Struct("!12xHBxHHHxB2x8sHH")
_FAST_SIZE = _FAST.size  # 38
_IPV4_IHL5 = 0x45
_TRANSPORTS = frozenset({UDP, TCP})

# A raw tunnel key: (outer src+dst as 8 bytes, UDP destination port, VNI)
RawTunnel = tuple[bytes, int, int]


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Bounds on what one capture may make. The collector's captures hold 200-2,000
    packets; these leave ample room and still bound a hostile 256 MB member."""

    max_packets: int = 500_000  # records decoded; the rest are left (partial)
    max_rows: int = 20_000  # rows of each table (flows, tunnels, ICMP errors, ...)
    max_identities: int = 200_000  # VXLAN packet identities kept for correlation
    max_segments: int = 200_000  # TCP (flow, sequence) pairs remembered for retransmissions


class FrameDecoder:
    """Counts what the frames of one capture hold; pcap.py feeds it and reads its tables."""

    __slots__ = (
        "capped",
        "flows",
        "fragments",
        "icmp_errors",
        "identities",
        "identities_full",
        "identities_until",
        "limits",
        "malformed",
        "not_ipv4",
        "retransmissions",
        "segments",
        "tunnels",
        "vxlan_ports",
    )

    def __init__(self, vxlan_ports: frozenset[int], limits: DecodeLimits) -> None:
        self.vxlan_ports = vxlan_ports
        self.limits = limits
        self.malformed = 0
        self.not_ipv4 = 0
        # (tunnel or None, src+dst, proto, sport, dport) -> [packets, bytes]
        self.flows: dict[tuple[RawTunnel | None, bytes, int, int, int], list[int]] = {}
        self.tunnels: dict[RawTunnel, list[int]] = {}
        # (tunnel, icmp src+dst, code, mtu, quoted src+dst, proto, sport, dport) -> [n, ts]
        self.icmp_errors: dict[tuple[object, ...], list[float]] = {}
        self.fragments: dict[tuple[RawTunnel | None, bytes, int], int] = {}
        self.retransmissions: dict[tuple[RawTunnel | None, bytes, int, int], int] = {}
        self.segments: set[tuple[RawTunnel | None, bytes, int, int, int]] = set()
        self.identities = PacketIdentities()
        self.identities_full = False
        self.identities_until: float | None = None
        self.capped: set[str] = set()

    # -- link layers -------------------------------------------------------------------

    def ethernet(
        self, frame: bytes, ts: float, tunnel: RawTunnel | None = None, base: int = 0
    ) -> None:
        """The Ethernet frame starting at `base` of `frame` (a VXLAN packet's inner frame
        is read in place: no copy)."""
        if len(frame) >= base + _FAST_SIZE:
            ethertype, version_ihl, total, ident, flags_offset, proto, addresses, sport, dport = (
                _FAST.unpack_from(frame, base)
            )
            # the common frame: IPv4 without options, not a fragment, UDP or TCP
            if (
                ethertype == ETHERTYPE_IPV4
                and version_ihl == _IPV4_IHL5
                and not flags_offset & 0x3FFF
                and total >= 20
                and proto in _TRANSPORTS
            ):
                self._count(self.flows, (tunnel, addresses, proto, sport, dport), total, "flows")
                if proto == UDP:
                    if tunnel is None and dport in self.vxlan_ports:
                        self._vxlan(frame, base + 34, ts, addresses, ident, sport, dport, total)
                elif len(frame) >= base + 47:
                    self._tcp(frame, base + 34, total - 20, tunnel, addresses)
                return
        self._ethernet_header(frame[base:] if base else frame, ts, tunnel)

    def _ethernet_header(self, frame: bytes, ts: float, tunnel: RawTunnel | None) -> None:
        if len(frame) < 14:
            self.malformed += 1
            return
        ethertype = frame[12] << 8 | frame[13]
        offset = 14
        if ethertype in VLAN_TAGS and len(frame) >= 18:
            ethertype = frame[16] << 8 | frame[17]
            offset = 18
            if ethertype in VLAN_TAGS and len(frame) >= 22:  # QinQ: two tags at most
                ethertype = frame[20] << 8 | frame[21]
                offset = 22
        if ethertype != ETHERTYPE_IPV4:
            self.not_ipv4 += 1
            return
        self.ipv4(frame, offset, ts, tunnel)

    def raw_ip(self, frame: bytes, ts: float) -> None:
        if frame[:1] and frame[0] >> 4 == 4:
            self.ipv4(frame, 0, ts, None)
        else:
            self.not_ipv4 += 1

    def cooked(self, frame: bytes, ts: float, protocol_at: int, header: int) -> None:
        """Linux "cooked" captures (-i any): SLL (protocol at 14, 16-byte header) and
        SLL2 (protocol at 0, 20-byte header)."""
        if len(frame) < header:
            self.malformed += 1
            return
        if (frame[protocol_at] << 8 | frame[protocol_at + 1]) != ETHERTYPE_IPV4:
            self.not_ipv4 += 1
            return
        self.ipv4(frame, header, ts, None)

    # -- IPv4 and what it carries ------------------------------------------------------

    def ipv4(self, frame: bytes, offset: int, ts: float, tunnel: RawTunnel | None) -> None:
        size = len(frame)
        if size < offset + 20:
            self.malformed += 1
            return
        version_ihl, total, ident, flags_offset, proto = _IPV4.unpack_from(frame, offset)
        ihl = (version_ihl & 15) * 4
        if version_ihl >> 4 != 4 or ihl < 20 or total < ihl:
            self.malformed += 1
            return
        addresses = frame[offset + 12 : offset + 20]
        l4 = offset + ihl
        fragment_offset = flags_offset & 0x1FFF
        if fragment_offset or flags_offset & 0x2000:
            key = (tunnel, addresses, proto)
            found = self.fragments.get(key)
            if found is not None:
                self.fragments[key] = found + 1
            elif self._room(self.fragments, "fragments"):
                self.fragments[key] = 1
        if fragment_offset or size < l4 + 4 or proto not in (UDP, TCP):
            # no transport header here (a later fragment, ICMP, other protocols, cut short)
            self._count(self.flows, (tunnel, addresses, proto, 0, 0), total, "flows")
            if proto == ICMP and not fragment_offset:
                self._icmp(frame, l4, ts, tunnel, addresses)
            return
        sport, dport = _PORTS.unpack_from(frame, l4)
        self._count(self.flows, (tunnel, addresses, proto, sport, dport), total, "flows")
        if proto == UDP:
            if tunnel is None and dport in self.vxlan_ports:
                self._vxlan(frame, l4, ts, addresses, ident, sport, dport, total)
        elif size >= l4 + 13:
            self._tcp(frame, l4, total - ihl, tunnel, addresses)

    def _count(self, table: dict[Any, list[int]], key: Any, size: int, name: str) -> None:
        """One more packet of `size` bytes for the row `key` of `table` (flows, tunnels)."""
        found = table.get(key)
        if found is not None:
            found[0] += 1
            found[1] += size
        elif self._room(table, name):
            table[key] = [1, size]

    def _room(self, table: dict[object, object] | set[object], name: str) -> bool:
        if len(table) < self.limits.max_rows:
            return True
        self.capped.add(name)
        return False

    def _vxlan(
        self,
        frame: bytes,
        udp: int,
        ts: float,
        addresses: bytes,
        ident: int,
        sport: int,
        port: int,
        total: int,
    ) -> None:
        """The VXLAN header after the UDP one at `udp`, then the frame inside it. `ident`
        is the outer IP id, `sport` the UDP source port (already read by the caller)."""
        inner = udp + 8 + VXLAN_HEADER
        if len(frame) < inner:
            self.malformed += 1
            return
        flags, vni = _VXLAN.unpack_from(frame, udp + 8)
        if not flags & VXLAN_VNI_VALID:
            self.malformed += 1  # a VXLAN port with no valid VXLAN header behind it
            return
        tunnel = (addresses, port, vni >> 8)
        self._count(self.tunnels, tunnel, total, "tunnels")
        if not self.identities_full:
            identities = self.identities
            if identities.count < self.limits.max_identities:
                # this runs once per VXLAN packet: no method calls but C ones
                slot = identities.pairs.get(addresses)
                if slot is None:
                    slot = identities.pairs[addresses] = (bytearray(), array("d"))
                crc = zlib.crc32(frame[inner : inner + IDENTITY_INNER_BYTES])
                slot[0].extend(_IDENTITY.pack(ident, sport, crc))
                slot[1].append(ts)
                identities.count += 1
                self.identities_until = ts
            else:
                self.identities_full = True
                self.capped.add("identities")
        self.ethernet(frame, ts, tunnel, inner)

    def _tcp(
        self, frame: bytes, l4: int, segment: int, tunnel: RawTunnel | None, addresses: bytes
    ) -> None:
        sport, dport, seq, data_offset = _TCP.unpack_from(frame, l4)
        if segment - (data_offset >> 4) * 4 <= 0:
            return  # no payload: pure ACKs repeat sequence numbers legitimately
        key = (tunnel, addresses, sport, dport, seq)
        if key not in self.segments:
            if len(self.segments) < self.limits.max_segments:
                self.segments.add(key)
            else:
                self.capped.add("retransmissions")
            return
        flow = (tunnel, addresses, sport, dport)
        found = self.retransmissions.get(flow)
        if found is not None:
            self.retransmissions[flow] = found + 1
        elif self._room(self.retransmissions, "retransmissions"):
            self.retransmissions[flow] = 1

    def _icmp(
        self, frame: bytes, l4: int, ts: float, tunnel: RawTunnel | None, addresses: bytes
    ) -> None:
        quote = l4 + 8
        if len(frame) < quote + 20 or frame[l4] != ICMP_UNREACHABLE:
            return
        code = frame[l4 + 1]
        mtu = (frame[l4 + 6] << 8 | frame[l4 + 7]) if code == 4 else None
        quoted_ihl = (frame[quote] & 15) * 4
        quoted_proto = frame[quote + 9]
        sport = dport = None
        if quoted_ihl >= 20 and len(frame) >= quote + quoted_ihl + 4 and quoted_proto in (UDP, TCP):
            sport, dport = _PORTS.unpack_from(frame, quote + quoted_ihl)
        key = (
            tunnel,
            addresses,
            code,
            mtu,
            frame[quote + 12 : quote + 20],
            quoted_proto,
            sport,
            dport,
        )
        found = self.icmp_errors.get(key)
        if found is not None:
            found[0] += 1
        elif self._room(self.icmp_errors, "icmp_errors"):
            self.icmp_errors[key] = [1, ts]
