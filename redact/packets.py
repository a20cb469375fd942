"""Packet headers rewritten in place: addresses and MACs mapped, everything after the last
header understood dropped.

A packet is copied into a bytearray and walked from the link header inwards. Every
address met is replaced by its mapping; every header is kept only whole and only when
its format is known, and the packet ends where the walk stops, so no byte that was not
parsed (payload, an unknown header, an option that may carry an address) leaves.

Checksums. An IPv4 header checksum covers only what is kept, so it is computed afresh.
An L4 checksum covers a payload that is dropped, so it is updated incrementally (RFC
1624) by the difference between the rewritten and the original bytes it covers: it then
stays exactly as right, or as wrong (checksum offload), as it was for the full packet,
now with mapped addresses. The one's-complement sum of 16-bit words is the big-endian
integer of the bytes modulo 0xFFFF (2**16 == 1 mod 0xFFFF), which lets int.from_bytes do
the summing in C; a region of odd length is padded with a zero byte, and every region
summed starts at an even offset from the start of what its checksum covers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class PacketMapper(Protocol):
    def map_v4(self, address: int) -> int: ...

    def map_v6(self, address: int) -> int: ...

    def map_mac(self, mac: bytes) -> bytes: ...


LINK_ETHERNET = 1
LINK_RAW = 101
LINK_LINUX_SLL = 113
LINK_IPV4 = 228
LINK_IPV6 = 229
LINK_LINUX_SLL2 = 276
LINK_NAMES = {
    LINK_ETHERNET: "EN10MB",
    LINK_RAW: "RAW",
    LINK_LINUX_SLL: "LINUX_SLL",
    LINK_IPV4: "IPV4",
    LINK_IPV6: "IPV6",
    LINK_LINUX_SLL2: "LINUX_SLL2",
}

# One rewritten packet (a bytearray the caller may keep), or None when not even its link
# header could be read.
Frame = Callable[[bytes], bytearray | None]

_VLAN_TPIDS = frozenset({0x8100, 0x88A8, 0x9100})
_MAX_VLAN_TAGS = 4
_MAX_IPV6_EXTENSIONS = 8
_ICMP_ERRORS = frozenset({3, 4, 5, 11, 12})
_ICMP_REDIRECT = 5
# ICMP types whose second header word is known to hold no address (identifier and
# sequence, router advertisement counts, reserved); of any other type only the first word
# (type, code, checksum) is kept. Errors are handled apart.
_ICMP_PLAIN = frozenset({0, 8, 9, 10, 13, 14, 15, 16, 17, 18})
# The same for ICMPv6: echo, MLD (max response delay or record count).
_ICMP6_PLAIN = frozenset({128, 129, 130, 131, 132, 143})
# Protocols whose first 8 bytes (ports, sequence, type/code) an ICMP error may quote.
_QUOTED_V4 = frozenset({1, 6, 17, 132})
_QUOTED_V6 = frozenset({6, 17, 58, 132})
# TCP options that cannot hold an address: MSS, window scale, SACK-permitted, SACK,
# timestamps. Others (MPTCP's ADD_ADDR, fast-open cookies, ...) become NOPs.
_TCP_KEPT_OPTIONS = frozenset({2, 3, 4, 5, 8})
# IPv6 hop-by-hop / destination options kept, by type -> whole length: tunnel encapsulation
# limit, router alert, jumbo payload. Others are zeroed (a run of Pad1 options).
_IPV6_KEPT_OPTIONS = {4: 3, 5: 4, 0xC2: 6}
_HOME_ADDRESS_OPTION = 0xC9
_NOPS = b"\x01" * 40
_ZEROS = bytes(2048)


def _delta(orig: bytes, buf: bytearray, start: int, end: int) -> int:
    """How much the one's-complement sum over [start, end) grew, up to a multiple of
    0xFFFF; `start` must lie an even number of bytes into what the checksum covers."""
    grown = int.from_bytes(buf[start:end], "big") - int.from_bytes(orig[start:end], "big")
    return grown << 8 if (end - start) & 1 else grown


def _patch(buf: bytearray, at: int, delta: int, udp: bool) -> None:
    """Update the checksum at `at` for data whose sum grew by `delta` (RFC 1624, eqn 3)."""
    delta %= 0xFFFF
    if not delta:
        return  # the sum is unchanged: keep the field as the sender wrote it
    old = (buf[at] << 8) | buf[at + 1]
    total = (0xFFFF - old + delta) % 0xFFFF
    # A sum of 0 mod 0xFFFF over data that is not all zero folds to 0xFFFF: checksum 0,
    # which UDP sends as 0xFFFF since 0 there means "no checksum".
    new = 0xFFFF - total if total else (0xFFFF if udp else 0)
    buf[at] = new >> 8
    buf[at + 1] = new & 0xFF


def _ipv4_checksum(buf: bytearray, start: int, end: int) -> None:
    buf[start + 10] = 0
    buf[start + 11] = 0
    total = int.from_bytes(buf[start:end], "big") % 0xFFFF
    new = 0xFFFF - total if total else 0
    buf[start + 10] = new >> 8
    buf[start + 11] = new & 0xFF


def _tcp_options(buf: bytearray, p: int, end: int) -> None:
    while p < end:
        kind = buf[p]
        if kind == 1:
            p += 1
            continue
        if kind == 0:  # end of options: what follows is padding, made zero
            buf[p:end] = _ZEROS[: end - p]
            return
        if p + 2 > end:
            break
        size = buf[p + 1]
        if size < 2 or p + size > end:
            break
        if kind not in _TCP_KEPT_OPTIONS:
            buf[p : p + size] = _NOPS[:size]
        p += size
    buf[p:end] = _NOPS[: end - p]  # a malformed tail cannot be trusted to hold no address


class PacketRewriter:
    """Rewrites the packets of one capture with one mapper. Mappings are cached by their
    original bytes (a capture repeats the same few addresses thousands of times)."""

    def __init__(self, mapper: PacketMapper, vxlan_ports: frozenset[int]) -> None:
        self._mapper = mapper
        self._vxlan_ports = vxlan_ports
        self._v4: dict[bytes, bytes] = {}
        self._v6: dict[bytes, bytes] = {}
        self._mac: dict[bytes, bytes] = {}
        self._v4_pairs: dict[bytes, bytes] = {}
        self._v6_pairs: dict[bytes, bytes] = {}
        self._mac_pairs: dict[bytes, bytes] = {}

    def for_link(self, link: int) -> Frame | None:
        """The rewriter of packets of this link type, or None when it is not supported."""
        walk = {
            LINK_ETHERNET: self._ethernet_frame,
            LINK_RAW: self._raw_frame,
            LINK_LINUX_SLL: self._sll_frame,
            LINK_IPV4: self._ipv4_frame,
            LINK_IPV6: self._ipv6_frame,
            LINK_LINUX_SLL2: self._sll2_frame,
        }.get(link)
        if walk is None:
            return None

        def frame(packet: bytes) -> bytearray | None:
            buf = bytearray(packet)
            try:
                end = walk(packet, buf)
            except IndexError:  # a bounds check missed: drop the packet, never copy it
                return None
            if end <= 0:
                return None
            del buf[end:]
            return buf

        return frame

    # -- link layers: each returns where the packet ends, 0 when nothing was understood

    def _ethernet_frame(self, orig: bytes, buf: bytearray) -> int:
        return self._ethernet(orig, buf, 0, len(buf), 0)

    def _raw_frame(self, orig: bytes, buf: bytearray) -> int:
        version = buf[0] >> 4 if buf else 0
        if version == 4:
            return self._ipv4(orig, buf, 0, len(buf), 0)
        if version == 6:
            return self._ipv6(orig, buf, 0, len(buf), 0)
        return 0

    def _ipv4_frame(self, orig: bytes, buf: bytearray) -> int:
        return self._ipv4(orig, buf, 0, len(buf), 0)

    def _ipv6_frame(self, orig: bytes, buf: bytearray) -> int:
        return self._ipv6(orig, buf, 0, len(buf), 0)

    def _sll_frame(self, orig: bytes, buf: bytearray) -> int:
        # packet type, ARPHRD type, address length, address (8 bytes), protocol
        if len(buf) < 16:
            return 0
        self._link_address(orig, buf, 6, (buf[4] << 8) | buf[5])
        return self._ethertype(orig, buf, 16, len(buf), (buf[14] << 8) | buf[15], 0)

    def _sll2_frame(self, orig: bytes, buf: bytearray) -> int:
        # protocol, reserved, interface index, ARPHRD type, packet type, address length,
        # address (8 bytes)
        if len(buf) < 20:
            return 0
        buf[2] = buf[3] = 0
        self._link_address(orig, buf, 12, buf[11])
        return self._ethertype(orig, buf, 20, len(buf), (buf[0] << 8) | buf[1], 0)

    def _link_address(self, orig: bytes, buf: bytearray, at: int, size: int) -> None:
        if size == 6:
            buf[at : at + 6] = self._map_mac(orig[at : at + 6])
            buf[at + 6 : at + 8] = b"\0\0"
        else:  # a tunnel's IPv4 address, an InfiniBand GUID, ...: not ours to keep
            buf[at : at + 8] = _ZEROS[:8]

    def _ethernet(self, orig: bytes, buf: bytearray, off: int, lim: int, depth: int) -> int:
        if off + 14 > lim:
            return off
        pair = orig[off : off + 12]
        mapped = self._mac_pairs.get(pair)
        if mapped is None:
            mapped = self._map_mac(pair[:6]) + self._map_mac(pair[6:])
            self._mac_pairs[pair] = mapped
        buf[off : off + 12] = mapped
        ethertype = (buf[off + 12] << 8) | buf[off + 13]
        p = off + 14
        tags = 0
        while ethertype in _VLAN_TPIDS:
            if tags == _MAX_VLAN_TAGS or p + 4 > lim:
                return p
            ethertype = (buf[p + 2] << 8) | buf[p + 3]
            p += 4
            tags += 1
        return self._ethertype(orig, buf, p, lim, ethertype, depth)

    def _ethertype(
        self, orig: bytes, buf: bytearray, off: int, lim: int, ethertype: int, depth: int
    ) -> int:
        if ethertype == 0x0800:
            return self._ipv4(orig, buf, off, lim, depth)
        if ethertype == 0x86DD:
            return self._ipv6(orig, buf, off, lim, depth)
        if ethertype == 0x0806:
            return self._arp(orig, buf, off, lim)
        return off

    def _arp(self, orig: bytes, buf: bytearray, off: int, lim: int) -> int:
        if off + 8 > lim:
            return off
        # protocol IPv4, hardware address 6 bytes, protocol address 4 bytes
        if buf[off + 2 : off + 6] != b"\x08\x00\x06\x04" or off + 28 > lim:
            return off + 8  # the fixed part holds no address; the rest is not understood
        buf[off + 8 : off + 14] = self._map_mac(orig[off + 8 : off + 14])
        self._map_v4(orig, buf, off + 14)
        buf[off + 18 : off + 24] = self._map_mac(orig[off + 18 : off + 24])
        self._map_v4(orig, buf, off + 24)
        return off + 28

    # -- IPv4

    def _ipv4(self, orig: bytes, buf: bytearray, off: int, lim: int, depth: int) -> int:
        if off + 20 > lim:
            return off
        first = buf[off]
        ihl = (first & 0x0F) << 2
        if first >> 4 != 4 or ihl < 20 or off + ihl > lim:
            return off
        total = (buf[off + 2] << 8) | buf[off + 3]
        if total >= ihl and off + total < lim:
            lim = off + total  # Ethernet padding is not a header
        pair = orig[off + 12 : off + 20]
        mapped = self._v4_pairs.get(pair)
        if mapped is None:
            mapped = self._v4_bytes(pair[:4]) + self._v4_bytes(pair[4:])
            self._v4_pairs[pair] = mapped
        buf[off + 12 : off + 20] = mapped
        l4 = off + ihl
        if ihl > 20:  # record route, timestamps, ...: addresses, so NOPs
            buf[off + 20 : l4] = _NOPS[: ihl - 20]
        _ipv4_checksum(buf, off, l4)
        if buf[off + 6] & 0x1F or buf[off + 7]:
            return l4  # a later fragment: what follows the IP header is payload
        proto = buf[off + 9]
        if proto == 17:
            if l4 + 8 > lim:
                return l4
            end = l4 + 8
            if depth == 0 and (
                ((buf[l4 + 2] << 8) | buf[l4 + 3]) in self._vxlan_ports
                or ((buf[l4] << 8) | buf[l4 + 1]) in self._vxlan_ports
            ):
                end = self._vxlan(orig, buf, end, lim)
            if buf[l4 + 6] or buf[l4 + 7]:  # 0: the sender computed no checksum
                delta = _delta(orig, buf, off + 12, off + 20) + _delta(orig, buf, l4, end)
                _patch(buf, l4 + 6, delta, True)
            return end
        if proto == 6:
            end = self._tcp(buf, l4, lim)
            if end > l4:
                delta = _delta(orig, buf, off + 12, off + 20) + _delta(orig, buf, l4, end)
                _patch(buf, l4 + 16, delta, False)
            return end
        if proto == 1:
            end = self._icmp(orig, buf, l4, lim)
            if end > l4:
                _patch(buf, l4 + 2, _delta(orig, buf, l4, end), False)
            return end
        return self._other_l4(orig, buf, l4, lim, proto, depth)

    def _other_l4(
        self, orig: bytes, buf: bytearray, l4: int, lim: int, proto: int, depth: int
    ) -> int:
        if proto == 132:  # SCTP: ports, verification tag, CRC32c (over no address)
            return l4 + 12 if l4 + 12 <= lim else l4
        if depth == 0 and proto == 4:  # IP in IP (Calico's IPIP)
            return self._ipv4(orig, buf, l4, lim, 1)
        if depth == 0 and proto == 41:
            return self._ipv6(orig, buf, l4, lim, 1)
        return l4

    def _tcp(self, buf: bytearray, l4: int, lim: int) -> int:
        if l4 + 20 > lim:
            return l4
        size = (buf[l4 + 12] >> 4) << 2
        if size < 20 or l4 + size > lim:
            return l4
        if size > 20:
            _tcp_options(buf, l4 + 20, l4 + size)
        return l4 + size

    def _vxlan(self, orig: bytes, buf: bytearray, off: int, lim: int) -> int:
        if off + 8 > lim or not buf[off] & 0x08:  # no valid-VNI flag: not VXLAN after all
            return off
        return self._ethernet(orig, buf, off + 8, lim, 1)

    def _icmp(self, orig: bytes, buf: bytearray, off: int, lim: int) -> int:
        if off + 8 > lim:
            return off
        kind = buf[off]
        if kind not in _ICMP_ERRORS:
            return off + 8 if kind in _ICMP_PLAIN else off + 4
        if kind == _ICMP_REDIRECT:
            self._map_v4(orig, buf, off + 4)  # the gateway
        return self._quoted_v4(orig, buf, off + 8, lim)

    def _quoted_v4(self, orig: bytes, buf: bytearray, off: int, lim: int) -> int:
        """The datagram an ICMP error quotes: its IP header and first 8 bytes. Its total
        length is the original datagram's, not the quote's, so it sets no limit."""
        if off + 20 > lim:
            return off
        first = buf[off]
        ihl = (first & 0x0F) << 2
        if first >> 4 != 4 or ihl < 20 or off + ihl > lim:
            return off
        self._map_v4(orig, buf, off + 12)
        self._map_v4(orig, buf, off + 16)
        l4 = off + ihl
        if ihl > 20:
            buf[off + 20 : l4] = _NOPS[: ihl - 20]
        _ipv4_checksum(buf, off, l4)
        proto = buf[off + 9]
        if buf[off + 6] & 0x1F or buf[off + 7] or proto not in _QUOTED_V4:
            return l4
        if l4 + 8 > lim:
            # ports or type/code/checksum; the rest of a cut-short quote may be half an
            # address (a quoted redirect's gateway)
            return min(l4 + 4, lim)
        if proto == 17 and (buf[l4 + 6] or buf[l4 + 7]):
            _patch(buf, l4 + 6, _delta(orig, buf, off + 12, off + 20), True)
        elif proto == 1:
            kind = buf[l4]
            if kind == _ICMP_REDIRECT:
                self._map_v4(orig, buf, l4 + 4)
                _patch(buf, l4 + 2, _delta(orig, buf, l4, l4 + 8), False)
            elif kind not in _ICMP_PLAIN and kind not in _ICMP_ERRORS:
                return l4 + 4
        return l4 + 8

    # -- IPv6

    def _ipv6(self, orig: bytes, buf: bytearray, off: int, lim: int, depth: int) -> int:
        if off + 40 > lim or buf[off] >> 4 != 6:
            return off
        payload = (buf[off + 4] << 8) | buf[off + 5]
        if payload and off + 40 + payload < lim:
            lim = off + 40 + payload  # 0: a jumbogram, or GSO; no limit known
        pair = orig[off + 8 : off + 40]
        mapped = self._v6_pairs.get(pair)
        if mapped is None:
            mapped = self._v6_bytes(pair[:16]) + self._v6_bytes(pair[16:])
            self._v6_pairs[pair] = mapped
        buf[off + 8 : off + 40] = mapped
        proto = buf[off + 6]
        p = off + 40
        home = -1  # a home address option stands in for the source in the pseudo-header
        for _ in range(_MAX_IPV6_EXTENSIONS):
            if proto in (0, 60):  # hop-by-hop, destination options
                if p + 8 > lim:
                    return p
                size = (buf[p + 1] + 1) << 3
                if p + size > lim:
                    return p
                found = self._ipv6_options(orig, buf, p + 2, p + size)
                if found >= 0:
                    home = found
                proto = buf[p]
                p += size
            elif proto == 44:  # fragment
                if p + 8 > lim:
                    return p
                proto = buf[p]
                later = ((buf[p + 2] << 8) | buf[p + 3]) >> 3
                p += 8
                if later:
                    return p
            else:
                break
        else:
            return p
        # Routing headers (43) carry addresses and change the pseudo-header's destination:
        # the packet ends before them, as before any header not understood.
        if proto == 17:
            if p + 8 > lim:
                return p
            end = p + 8
            if depth == 0 and (
                ((buf[p + 2] << 8) | buf[p + 3]) in self._vxlan_ports
                or ((buf[p] << 8) | buf[p + 1]) in self._vxlan_ports
            ):
                end = self._vxlan(orig, buf, end, lim)
            if buf[p + 6] or buf[p + 7]:
                delta = self._pseudo_v6(orig, buf, off, home) + _delta(orig, buf, p, end)
                _patch(buf, p + 6, delta, True)
            return end
        if proto == 6:
            end = self._tcp(buf, p, lim)
            if end > p:
                delta = self._pseudo_v6(orig, buf, off, home) + _delta(orig, buf, p, end)
                _patch(buf, p + 16, delta, False)
            return end
        if proto == 58:
            end = self._icmp6(orig, buf, p, lim)
            if end > p:
                delta = self._pseudo_v6(orig, buf, off, home) + _delta(orig, buf, p, end)
                _patch(buf, p + 2, delta, False)
            return end
        return self._other_l4(orig, buf, p, lim, proto, depth)

    @staticmethod
    def _pseudo_v6(orig: bytes, buf: bytearray, off: int, home: int) -> int:
        if home < 0:
            return _delta(orig, buf, off + 8, off + 40)
        return _delta(orig, buf, home, home + 16) + _delta(orig, buf, off + 24, off + 40)

    def _ipv6_options(self, orig: bytes, buf: bytearray, p: int, end: int) -> int:
        """Sanitise a hop-by-hop / destination options area; where its home address is."""
        home = -1
        while p < end:
            kind = buf[p]
            if kind == 0:  # Pad1
                p += 1
                continue
            if p + 2 > end:
                break
            size = buf[p + 1] + 2
            if p + size > end:
                break
            if kind == _HOME_ADDRESS_OPTION and size == 18:
                self._map_v6(orig, buf, p + 2)
                home = p + 2
            elif _IPV6_KEPT_OPTIONS.get(kind) != size:
                buf[p : p + size] = _ZEROS[:size]
            p += size
        buf[p:end] = _ZEROS[: end - p]
        return home

    def _icmp6(self, orig: bytes, buf: bytearray, off: int, lim: int) -> int:
        if off + 8 > lim:
            return off
        kind = buf[off]
        if 1 <= kind <= 4:
            return self._quoted_v6(orig, buf, off + 8, lim)
        if kind == 133:  # router solicitation
            return self._nd_options(orig, buf, off + 8, lim)
        if kind == 134:  # router advertisement: hop limit, flags, lifetime, timers
            return self._nd_options(orig, buf, off + 16, lim) if off + 16 <= lim else off + 8
        if kind in (135, 136):  # neighbour solicitation / advertisement: the target
            if off + 24 > lim:
                return off + 8
            self._map_v6(orig, buf, off + 8)
            return self._nd_options(orig, buf, off + 24, lim)
        if kind == 137:  # redirect: the target, the destination
            if off + 40 > lim:
                return off + 8
            self._map_v6(orig, buf, off + 8)
            self._map_v6(orig, buf, off + 24)
            return self._nd_options(orig, buf, off + 40, lim)
        return off + 8 if kind in _ICMP6_PLAIN else off + 4

    def _nd_options(self, orig: bytes, buf: bytearray, p: int, lim: int) -> int:
        """Link-layer address options mapped, MTU kept; the packet ends at any other
        (prefixes, a redirected header, DNS servers: addresses or worse)."""
        while p + 8 <= lim:
            kind = buf[p]
            size = buf[p + 1] << 3
            if size != 8:
                break
            if kind in (1, 2):
                buf[p + 2 : p + 8] = self._map_mac(orig[p + 2 : p + 8])
            elif kind != 5:
                break
            p += 8
        return p

    def _quoted_v6(self, orig: bytes, buf: bytearray, off: int, lim: int) -> int:
        if off + 40 > lim or buf[off] >> 4 != 6:
            return off
        self._map_v6(orig, buf, off + 8)
        self._map_v6(orig, buf, off + 24)
        l4 = off + 40
        proto = buf[off + 6]
        if proto not in _QUOTED_V6:
            return l4
        if l4 + 8 > lim:
            return min(l4 + 4, lim)
        if proto == 17 and (buf[l4 + 6] or buf[l4 + 7]):
            _patch(buf, l4 + 6, _delta(orig, buf, off + 8, off + 40), True)
        elif proto == 58:
            _patch(buf, l4 + 2, _delta(orig, buf, off + 8, off + 40), False)
            kind = buf[l4]
            if kind not in _ICMP6_PLAIN and not 1 <= kind <= 4 and not 133 <= kind <= 137:
                return l4 + 4
        return l4 + 8

    # -- mappings

    def _map_v4(self, orig: bytes, buf: bytearray, at: int) -> None:
        buf[at : at + 4] = self._v4_bytes(orig[at : at + 4])

    def _map_v6(self, orig: bytes, buf: bytearray, at: int) -> None:
        buf[at : at + 16] = self._v6_bytes(orig[at : at + 16])

    def _v4_bytes(self, raw: bytes) -> bytes:
        mapped = self._v4.get(raw)
        if mapped is None:
            mapped = self._mapper.map_v4(int.from_bytes(raw, "big")).to_bytes(4, "big")
            self._v4[raw] = mapped
        return mapped

    def _v6_bytes(self, raw: bytes) -> bytes:
        mapped = self._v6.get(raw)
        if mapped is None:
            mapped = self._mapper.map_v6(int.from_bytes(raw, "big")).to_bytes(16, "big")
            self._v6[raw] = mapped
        return mapped

    def _map_mac(self, raw: bytes) -> bytes:
        mapped = self._mac.get(raw)
        if mapped is None:
            mapped = bytes(self._mapper.map_mac(raw))
            if len(mapped) != 6:  # a wrong length would shift every byte after it
                raise ValueError(f"map_mac returned {len(mapped)} bytes, not 6")
            self._mac[raw] = mapped
        return mapped
