"""needle.redact.pcap: captures rewritten so that no original address, MAC or payload byte
survives, while every checksum stays what it would be on the full packet with the mapped
addresses.

Each packet case is built twice from one recipe: with the original addresses (the input)
and with the mapped ones plus the expected sanitising (the oracle, its checksums computed
from scratch over the whole packet). The rewrite must be exactly the oracle's first
`kept` bytes: that checks mapping at every layer, the cut, and every checksum at once.
"""

from __future__ import annotations

import io
import random
import socket
import struct
import tarfile
from collections.abc import Callable
from pathlib import Path

import dpkt
import dpkt.pcapng
import pytest
from needle.redact.pcap import CaptureRewrite, is_capture, rewrite_capture

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
# In every payload: must never be seen in the output. No header the rewrite keeps can be
# made of it either (a byte-mutated packet can make payload look like a header): "P" is
# no IP version and its 13th byte is no TCP data offset, and no other header kept copies
# 16 bytes in a row.
MARKER = b"PAYLOAD-MUST-GO!"
V4_KEY = 0x5A3C0F11
V6_KEY = 0x3FFE0B00_12345678_9ABCDEF0_0FEDCBA9


class FakeMapper:
    def map_v4(self, address: int) -> int:
        return address ^ V4_KEY

    def map_v6(self, address: int) -> int:
        return address ^ V6_KEY

    def map_mac(self, mac: bytes) -> bytes:
        # keeps the group and local bits (bits 0 and 1 of the first octet)
        return bytes([mac[0] ^ 0xF0]) + bytes(b ^ 0xA5 for b in mac[1:])


MAPPER = FakeMapper()


class Addrs:
    """Addresses as the input has them, or as the rewrite must leave them."""

    def __init__(self, mapped: bool) -> None:
        self.mapped = mapped
        self.seen: set[bytes] = set()

    def v4(self, text: str) -> bytes:
        raw = socket.inet_pton(socket.AF_INET, text)
        self.seen.add(raw)
        return MAPPER.map_v4(int.from_bytes(raw, "big")).to_bytes(4, "big") if self.mapped else raw

    def v6(self, text: str) -> bytes:
        raw = socket.inet_pton(socket.AF_INET6, text)
        self.seen.add(raw)
        if self.mapped:
            return MAPPER.map_v6(int.from_bytes(raw, "big")).to_bytes(16, "big")
        return raw

    def mac(self, text: str) -> bytes:
        raw = bytes.fromhex(text.replace(":", ""))
        self.seen.add(raw)
        return MAPPER.map_mac(raw) if self.mapped else raw

    def hidden(self, raw: bytes, fill: int = 1) -> bytes:
        """Bytes the rewrite must overwrite (options that may hold addresses)."""
        return bytes([fill]) * len(raw) if self.mapped else raw


# -- packet building (dpkt where it builds what we need, struct where it cannot)


def ether(a: Addrs, dst: str, src: str, ethertype: int, data: bytes) -> bytes:
    # by hand: dpkt's Ethernet re-encodes the data it understands (fills in zero
    # checksums, cuts at the IP length), and the cases need their bytes as written
    return a.mac(dst) + a.mac(src) + struct.pack(">H", ethertype) + data


def ip4(src: bytes, dst: bytes, proto: int, data: bytes, opts: bytes = b"", **kw: int) -> bytes:
    # dpkt fills in the total length and the header checksum
    ip = dpkt.ip.IP(src=src, dst=dst, p=proto, hl=5 + len(opts) // 4, opts=opts, data=data, **kw)
    return bytes(ip)


def ip6(src: bytes, dst: bytes, nxt: int, data: bytes) -> bytes:
    return struct.pack(">IHBB", 0x6000_0000, len(data), nxt, 64) + src + dst + data


def pseudo4(src: bytes, dst: bytes, proto: int, length: int) -> bytes:
    return src + dst + struct.pack(">xBH", proto, length)


def pseudo6(src: bytes, dst: bytes, nxt: int, length: int) -> bytes:
    return src + dst + struct.pack(">I3xB", length, nxt)


def summed(segment: bytes, at: int, pseudo: bytes = b"", udp: bool = False) -> bytes:
    value = dpkt.in_cksum(pseudo + segment[:at] + b"\0\0" + segment[at + 2 :])
    if udp and value == 0:
        value = 0xFFFF
    return segment[:at] + struct.pack(">H", value) + segment[at + 2 :]


def udp(sport: int, dport: int, data: bytes, pseudo: Callable[[int], bytes] | None) -> bytes:
    segment = struct.pack(">HHHH", sport, dport, 8 + len(data), 0) + data
    return segment if pseudo is None else summed(segment, 6, pseudo(len(segment)), udp=True)


def tcp(sport: int, dport: int, opts: bytes, data: bytes, pseudo: Callable[[int], bytes]) -> bytes:
    header = struct.pack(
        ">HHIIBBHHH", sport, dport, 1000, 2000, (5 + len(opts) // 4) << 4, 0x18, 512, 0, 0
    )
    segment = header + opts + data
    return summed(segment, 16, pseudo(len(segment)))


def icmp(kind: int, code: int, rest: bytes, data: bytes) -> bytes:
    return summed(struct.pack(">BBH", kind, code, 0) + rest + data, 2)


def icmp6(kind: int, code: int, body: bytes, src: bytes, dst: bytes) -> bytes:
    message = struct.pack(">BBH", kind, code, 0) + body
    return summed(message, 2, pseudo6(src, dst, 58, len(message)))


def vxlan(data: bytes, vni: int = 1) -> bytes:
    return struct.pack(">II", 0x0800_0000, vni << 8) + data


# -- the cases: recipe(a) -> (frame, headers kept)

Recipe = Callable[[Addrs], tuple[bytes, int]]


def vxlan_icmp(a: Addrs) -> tuple[bytes, int]:
    record_route = b"\x07\x07\x04" + a.v4("10.244.1.1") + b"\x00"
    inner_ip = ip4(
        a.v4("10.244.1.5"),
        a.v4("10.244.2.7"),
        1,
        icmp(8, 0, struct.pack(">HH", 7, 1), MARKER * 4),
        opts=a.hidden(record_route),
        ttl=63,
    )
    inner = ether(a, "0a:58:0a:f4:02:07", "0a:58:0a:f4:01:05", 0x0800, inner_ip)
    src, dst = a.v4("192.0.2.11"), a.v4("192.0.2.12")
    outer = udp(51000, 8472, vxlan(inner), lambda n: pseudo4(src, dst, 17, n))
    frame = ether(a, "52:54:00:aa:00:12", "52:54:00:aa:00:11", 0x0800, ip4(src, dst, 17, outer))
    return frame, 14 + 20 + 8 + 8 + 14 + 28 + 8


def vlan_tcp(a: Addrs) -> tuple[bytes, int]:
    src, dst = a.v4("172.16.5.1"), a.v4("172.16.9.200")
    # MSS, NOP, then an MPTCP ADD_ADDR-like option at an odd offset (it holds an address
    # and must become NOPs), then window scale
    mptcp = b"\x1e\x08\x30\x01" + a.v4("172.16.5.99")
    opts = b"\x02\x04\x05\xb4" + b"\x01" + a.hidden(mptcp) + b"\x03\x03\x07"
    segment = tcp(40000, 443, opts, MARKER * 3, lambda n: pseudo4(src, dst, 6, n))
    tagged = struct.pack(">HH", 0x0064, 0x0800) + ip4(src, dst, 6, segment)
    return ether(a, "02:42:ac:10:00:02", "02:42:ac:10:00:01", 0x8100, tagged), 14 + 4 + 20 + 36


def udp_no_checksum(a: Addrs) -> tuple[bytes, int]:
    datagram = udp(5353, 53, MARKER, None)
    ip = ip4(a.v4("10.0.0.1"), a.v4("10.0.0.53"), 17, datagram)
    return ether(a, "aa:bb:cc:00:00:01", "aa:bb:cc:00:00:02", 0x0800, ip), 42


def arp_reply(a: Addrs) -> tuple[bytes, int]:
    body = dpkt.arp.ARP(
        op=2,
        sha=a.mac("0a:58:0a:f4:01:01"),
        spa=a.v4("10.244.1.1"),
        tha=a.mac("0a:58:0a:f4:01:09"),
        tpa=a.v4("10.244.1.9"),
    )
    padding = MARKER[:18]
    return ether(a, "0a:58:0a:f4:01:09", "0a:58:0a:f4:01:01", 0x0806, bytes(body) + padding), 42


def icmp_unreachable(a: Addrs) -> tuple[bytes, int]:
    qsrc, qdst = a.v4("10.244.3.4"), a.v4("10.96.0.10")
    timestamps = b"\x44\x0c\x05\x01" + a.v4("10.244.3.1") + b"\0\0\0\x09"
    quoted_udp = udp(33000, 53, MARKER * 2, lambda n: pseudo4(qsrc, qdst, 17, n))
    quoted = ip4(qsrc, qdst, 17, quoted_udp, opts=a.hidden(timestamps))
    message = icmp(3, 4, struct.pack(">HH", 0, 1450), quoted[:70])  # the quote: 70 bytes
    outer = ip4(a.v4("192.0.2.1"), a.v4("10.244.3.4"), 1, message)
    frame = ether(a, "52:54:00:00:00:03", "52:54:00:00:00:01", 0x0800, outer)
    return frame, 14 + 20 + 8 + 32 + 8


def icmp_redirect(a: Addrs) -> tuple[bytes, int]:
    echo = icmp(8, 0, struct.pack(">HH", 1, 2), MARKER)
    quoted = ip4(a.v4("10.1.1.2"), a.v4("10.9.9.9"), 1, echo)
    message = icmp(5, 1, a.v4("10.1.1.254"), quoted)
    outer = ip4(a.v4("10.1.1.1"), a.v4("10.1.1.2"), 1, message)
    return ether(a, "52:54:00:00:01:02", "52:54:00:00:01:01", 0x0800, outer), 14 + 20 + 8 + 28


def redirect_cut(a: Addrs) -> tuple[bytes, int]:
    """The capture cut the quote 3 bytes into its TCP header, so the ICMP message kept
    has an odd length, and the mapped gateway changes its sum (a quoted header's own
    changes cancel out in it: its checksum is recomputed). The quoted TCP checksum is
    cut, so the rewrite cannot change it: the oracle keeps it as the original has it."""
    qsrc, qdst = a.v4("10.5.0.1"), a.v4("10.6.0.1")
    unmapped = Addrs(mapped=False)
    osrc, odst = unmapped.v4("10.5.0.1"), unmapped.v4("10.6.0.1")
    segment = tcp(1234, 80, b"", MARKER, lambda n: pseudo4(osrc, odst, 6, n))
    message = icmp(5, 1, a.v4("10.5.0.253"), ip4(qsrc, qdst, 6, segment))
    outer = ip4(a.v4("10.5.0.254"), a.v4("10.5.0.1"), 1, message)
    return ether(a, "52:54:00:00:02:02", "52:54:00:00:02:01", 0x0800, outer), 14 + 20 + 8 + 23


def neighbour_solicitation(a: Addrs) -> tuple[bytes, int]:
    src, dst = a.v6("fd00:10:244:1::5"), a.v6("ff02::1:ff00:7")
    body = b"\0\0\0\0" + a.v6("fd00:10:244:1::7") + b"\x01\x01" + a.mac("0a:58:0a:f4:01:05")
    frame = ip6(src, dst, 58, icmp6(135, 0, body, src, dst))
    return ether(a, "33:33:ff:00:00:07", "0a:58:0a:f4:01:05", 0x86DD, frame), 14 + 40 + 32


def neighbour_advertisement(a: Addrs) -> tuple[bytes, int]:
    src, dst = a.v6("fd00:10:244:1::7"), a.v6("fd00:10:244:1::5")
    body = b"\x60\0\0\0" + a.v6("fd00:10:244:1::7") + b"\x02\x01" + a.mac("0a:58:0a:f4:01:07")
    frame = ip6(src, dst, 58, icmp6(136, 0, body, src, dst))
    return ether(a, "0a:58:0a:f4:01:05", "0a:58:0a:f4:01:07", 0x86DD, frame), 14 + 40 + 32


def router_advertisement(a: Addrs) -> tuple[bytes, int]:
    src, dst = a.v6("fe80::1"), a.v6("ff02::1")
    slla = b"\x01\x01" + a.mac("52:54:00:00:00:fe")
    mtu = b"\x05\x01\0\0" + struct.pack(">I", 1450)
    # a prefix information option ends the packet; dropped unmapped, it is payload to
    # the rewrite (and to the checksum the oracle computes)
    prefix = b"\x03\x04\x40\xc0" + bytes(12) + bytes.fromhex("20010db8007700000000000000000000")
    body = struct.pack(">BBHII", 64, 0, 1800, 0, 0) + slla + mtu + prefix
    frame = ip6(src, dst, 58, icmp6(134, 0, body, src, dst))
    return ether(a, "33:33:00:00:00:01", "52:54:00:00:00:fe", 0x86DD, frame), 14 + 40 + 16 + 16


def nd_redirect(a: Addrs) -> tuple[bytes, int]:
    src, dst = a.v6("fe80::1"), a.v6("fd00::5")
    tlla = b"\x02\x01" + a.mac("52:54:00:00:00:aa")
    redirected = b"\x04\x02" + bytes(6) + MARKER  # a redirected header: ends the packet
    body = b"\0\0\0\0" + a.v6("fe80::aa") + a.v6("fd00:99::1") + tlla + redirected
    frame = ip6(src, dst, 58, icmp6(137, 0, body, src, dst))
    return ether(a, "52:54:00:00:00:05", "52:54:00:00:00:01", 0x86DD, frame), 14 + 40 + 48


def icmp6_unreachable(a: Addrs) -> tuple[bytes, int]:
    qsrc, qdst = a.v6("fd00:1::10"), a.v6("fd00:2::20")
    quoted = ip6(qsrc, qdst, 17, udp(5000, 53, MARKER, lambda n: pseudo6(qsrc, qdst, 17, n)))
    src, dst = a.v6("fd00:1::1"), a.v6("fd00:1::10")
    frame = ip6(src, dst, 58, icmp6(1, 3, b"\0\0\0\0" + quoted, src, dst))
    return ether(a, "52:54:00:00:03:10", "52:54:00:00:03:01", 0x86DD, frame), 14 + 40 + 8 + 48


def hop_by_hop_tcp(a: Addrs) -> tuple[bytes, int]:
    src, dst = a.v6("fd00:3::1"), a.v6("fd00:3::2")
    # router alert (kept), then a PadN holding junk (zeroed), then an unknown option
    options = b"\x05\x02\0\0" + a.hidden(b"\x01\x02ab", 0) + a.hidden(b"\x3e\x04wxyz", 0)
    hop = bytes([6, 1]) + options
    segment = tcp(2000, 3000, b"", MARKER, lambda n: pseudo6(src, dst, 6, n))
    frame = ip6(src, dst, 0, hop + segment)
    return ether(a, "52:54:00:00:04:02", "52:54:00:00:04:01", 0x86DD, frame), 14 + 40 + 16 + 20


def routing_header(a: Addrs) -> tuple[bytes, int]:
    src, dst = a.v6("fd00:4::1"), a.v6("fd00:4::2")
    routing = bytes([17, 2, 0, 1, 0, 0, 0, 0]) + a.v6("fd00:4::99")
    frame = ip6(src, dst, 43, routing + udp(1, 2, MARKER, None))
    return ether(a, "52:54:00:00:05:02", "52:54:00:00:05:01", 0x86DD, frame), 14 + 40


def first_fragment_v6(a: Addrs) -> tuple[bytes, int]:
    src, dst = a.v6("fd00:5::1"), a.v6("fd00:5::2")
    datagram = udp(7000, 8000, MARKER * 10, lambda n: pseudo6(src, dst, 17, n))
    fragment = struct.pack(">BBHI", 17, 0, 0x0001, 0xABCD)  # offset 0, more fragments
    frame = ip6(src, dst, 44, fragment + datagram[:64])
    return ether(a, "52:54:00:00:06:02", "52:54:00:00:06:01", 0x86DD, frame), 14 + 40 + 8 + 8


def later_fragment_v6(a: Addrs) -> tuple[bytes, int]:
    src, dst = a.v6("fd00:5::1"), a.v6("fd00:5::2")
    fragment = struct.pack(">BBHI", 17, 0, 64 << 3, 0xABCD)
    frame = ip6(src, dst, 44, fragment + MARKER * 2)
    return ether(a, "52:54:00:00:06:02", "52:54:00:00:06:01", 0x86DD, frame), 14 + 40 + 8


def later_fragment_v4(a: Addrs) -> tuple[bytes, int]:
    ip = ip4(a.v4("10.7.0.1"), a.v4("10.7.0.2"), 17, MARKER * 2, offset=185)
    return ether(a, "52:54:00:00:07:02", "52:54:00:00:07:01", 0x0800, ip), 34


def vxlan_v6(a: Addrs) -> tuple[bytes, int]:
    isrc, idst = a.v6("fd00:10:244:1::5"), a.v6("fd00:10:244:2::7")
    echo = icmp6(128, 0, struct.pack(">HH", 9, 9) + MARKER, isrc, idst)
    inner = ether(a, "0a:58:00:00:02:07", "0a:58:00:00:01:05", 0x86DD, ip6(isrc, idst, 58, echo))
    src, dst = a.v6("2001:db8:100::11"), a.v6("2001:db8:100::12")
    outer = udp(40001, 4789, vxlan(inner, 7), lambda n: pseudo6(src, dst, 17, n))
    frame = ether(a, "52:54:00:00:08:12", "52:54:00:00:08:11", 0x86DD, ip6(src, dst, 17, outer))
    return frame, 14 + 40 + 8 + 8 + 14 + 40 + 8


def vxlan_in_vxlan(a: Addrs) -> tuple[bytes, int]:
    isrc, idst = a.v4("10.244.9.1"), a.v4("10.244.9.2")
    # payload to the rewrite, so the same in the input and the oracle
    deepest = bytes.fromhex("0a5800000902 0a5800000901 0800") + MARKER * 3
    inner_udp = udp(1111, 4789, vxlan(deepest), lambda n: pseudo4(isrc, idst, 17, n))
    inner = ether(
        a, "0a:58:00:00:0a:02", "0a:58:00:00:0a:01", 0x0800, ip4(isrc, idst, 17, inner_udp)
    )
    src, dst = a.v4("192.0.2.21"), a.v4("192.0.2.22")
    outer = udp(2222, 4789, vxlan(inner), lambda n: pseudo4(src, dst, 17, n))
    frame = ether(a, "52:54:00:00:09:12", "52:54:00:00:09:11", 0x0800, ip4(src, dst, 17, outer))
    return frame, 14 + 20 + 8 + 8 + 14 + 20 + 8


def lldp(a: Addrs) -> tuple[bytes, int]:
    return ether(a, "01:80:c2:00:00:0e", "52:54:00:00:0b:01", 0x88CC, MARKER * 2), 14


def ipip_tcp(a: Addrs) -> tuple[bytes, int]:
    isrc, idst = a.v4("10.244.5.6"), a.v4("10.244.7.8")
    segment = tcp(5555, 6666, b"\x02\x04\x05\x8c", MARKER, lambda n: pseudo4(isrc, idst, 6, n))
    outer = ip4(a.v4("192.0.2.31"), a.v4("192.0.2.32"), 4, ip4(isrc, idst, 6, segment))
    return ether(a, "52:54:00:00:0d:02", "52:54:00:00:0d:01", 0x0800, outer), 14 + 20 + 20 + 24


def ipip_in_ipip(a: Addrs) -> tuple[bytes, int]:
    """One level of encapsulation is followed, not two."""
    deepest = bytes.fromhex("4500001c000000004011") + bytes(10) + MARKER
    middle = ip4(a.v4("10.244.5.6"), a.v4("10.244.7.8"), 4, deepest)
    outer = ip4(a.v4("192.0.2.31"), a.v4("192.0.2.32"), 4, middle)
    return ether(a, "52:54:00:00:0d:02", "52:54:00:00:0d:01", 0x0800, outer), 14 + 20 + 20


def icmp_unknown_type(a: Addrs) -> tuple[bytes, int]:
    """An ICMP type whose second word is not known to be harmless (here an extended echo
    request, whose later bytes name an interface): type, code and checksum are kept."""
    message = icmp(42, 0, struct.pack(">HBB", 7, 1, 1), MARKER)
    ip = ip4(a.v4("10.9.0.1"), a.v4("10.9.0.2"), 1, message)
    return ether(a, "52:54:00:00:0e:02", "52:54:00:00:0e:01", 0x0800, ip), 14 + 20 + 4


def icmp6_unknown_type(a: Addrs) -> tuple[bytes, int]:
    src, dst = a.v6("fd00:9::1"), a.v6("fd00:9::2")
    frame = ip6(src, dst, 58, icmp6(160, 0, struct.pack(">HBB", 7, 1, 1) + MARKER, src, dst))
    return ether(a, "52:54:00:00:0e:02", "52:54:00:00:0e:01", 0x86DD, frame), 14 + 40 + 4


def igmp(a: Addrs) -> tuple[bytes, int]:
    ip = ip4(a.v4("10.8.0.1"), a.v4("224.0.0.22"), 2, b"\x22\0\0\0" + MARKER)
    return ether(a, "01:00:5e:00:00:16", "52:54:00:00:0c:01", 0x0800, ip), 34


ETHERNET_CASES: dict[str, Recipe] = {
    recipe.__name__: recipe
    for recipe in (
        vxlan_icmp,
        vlan_tcp,
        udp_no_checksum,
        arp_reply,
        icmp_unreachable,
        icmp_redirect,
        neighbour_solicitation,
        neighbour_advertisement,
        router_advertisement,
        nd_redirect,
        icmp6_unreachable,
        hop_by_hop_tcp,
        routing_header,
        first_fragment_v6,
        later_fragment_v6,
        later_fragment_v4,
        vxlan_v6,
        vxlan_in_vxlan,
        lldp,
        igmp,
        ipip_tcp,
        ipip_in_ipip,
        icmp_unknown_type,
        icmp6_unknown_type,
    )
}


# -- containers, written and read by hand so the module is not checked against itself


def pcap(packets: list[bytes], link: int = 1, order: str = "<", nano: bool = False) -> bytes:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 262144, link)]
    for i, packet in enumerate(packets):
        out.append(
            struct.pack(order + "IIII", 1700000000 + i, 1000 * i, len(packet), len(packet) + 100)
        )
        out.append(packet)
    return b"".join(out)


def records(data: bytes) -> list[tuple[int, int, int, bytes]]:
    """(seconds, fraction, wire length, bytes) of each record of a classic pcap."""
    order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    off, found = 24, []
    while off < len(data):
        seconds, fraction, caplen, wirelen = struct.unpack_from(order + "IIII", data, off)
        found.append((seconds, fraction, wirelen, data[off + 16 : off + 16 + caplen]))
        off += 16 + caplen
    assert off == len(data)
    return found


def rewrite(data: bytes) -> CaptureRewrite:
    result = rewrite_capture(data, MAPPER)
    assert isinstance(result.data, bytes)
    return result


def one(packet: bytes, link: int = 1) -> bytes:
    result = rewrite(pcap([packet], link))
    assert (result.packets, result.dropped, result.problem) == (1, 0, None)
    return records(result.data)[0][3]


# -- packets


@pytest.mark.parametrize("name", sorted(ETHERNET_CASES))
def test_each_case_is_its_mapped_oracle_cut_after_the_headers(name: str) -> None:
    recipe = ETHERNET_CASES[name]
    frame, kept = recipe(Addrs(mapped=False))
    expected, same = recipe(Addrs(mapped=True))
    assert same == kept and len(expected) == len(frame) >= kept
    assert one(frame) == expected[:kept]


def test_a_cut_short_quote_keeps_an_odd_length_and_its_checksum_right() -> None:
    frame, kept = redirect_cut(Addrs(mapped=False))
    expected, _ = redirect_cut(Addrs(mapped=True))
    out = one(frame[:kept])  # the capture's snap length cut it there
    assert out == expected[:kept]
    assert (len(out) - 34) % 2 == 1  # the ICMP message kept has an odd length


def test_the_checksums_read_back_by_dpkt() -> None:
    frame, _ = vxlan_icmp(Addrs(mapped=False))
    out = dpkt.ethernet.Ethernet(one(frame))
    for ip in (out.data, dpkt.ethernet.Ethernet(out.data.data.data[8:]).data):
        header = bytes(ip)[: ip.hl * 4]
        assert dpkt.in_cksum(header) == 0
    inner = dpkt.ethernet.Ethernet(out.data.data.data[8:])
    assert inner.data.opts == b"\x01" * 8  # the record route is gone
    assert inner.src == Addrs(mapped=True).mac("0a:58:0a:f4:01:05")
    assert inner.data.src == Addrs(mapped=True).v4("10.244.1.5")


def udp_with_word(a: Addrs, word: int) -> bytes:
    src, dst = a.v4("10.20.30.40"), a.v4("10.20.30.41")
    datagram = udp(999, 53, struct.pack(">H", word) + MARKER, lambda n: pseudo4(src, dst, 17, n))
    return ether(a, "aa:bb:cc:00:00:01", "aa:bb:cc:00:00:02", 0x0800, ip4(src, dst, 17, datagram))


def tcp_with_word(a: Addrs, word: int) -> bytes:
    src, dst = a.v4("10.20.30.40"), a.v4("10.20.30.41")
    segment = tcp(999, 80, b"", struct.pack(">H", word) + MARKER, lambda n: pseudo4(src, dst, 6, n))
    return ether(a, "aa:bb:cc:00:00:01", "aa:bb:cc:00:00:02", 0x0800, ip4(src, dst, 6, segment))


@pytest.mark.parametrize(
    ("build", "at", "zero", "kept"),
    [(udp_with_word, 40, 0xFFFF, 42), (tcp_with_word, 50, 0, 54)],
)
def test_a_checksum_whose_sum_becomes_zero(
    build: Callable[[Addrs, int], bytes], at: int, zero: int, kept: int
) -> None:
    """A payload word is chosen so that, mapped, the sum is 0: TCP then says 0x0000 and
    UDP 0xFFFF (its 0 means "no checksum")."""
    word = struct.unpack_from(">H", build(Addrs(mapped=True), 0), at)[0]
    if zero == 0xFFFF and word == 0xFFFF:
        word = 0
    expected = build(Addrs(mapped=True), word)
    assert struct.unpack_from(">H", expected, at)[0] == zero
    out = one(build(Addrs(mapped=False), word))
    assert out == expected[:kept]


def test_a_udp_checksum_of_zero_stays_zero() -> None:
    frame, kept = udp_no_checksum(Addrs(mapped=False))
    assert one(frame)[kept - 2 : kept] == b"\0\0"


def test_a_wrong_checksum_stays_exactly_as_wrong() -> None:
    """Checksum offload leaves wrong L4 checksums in a sender's capture; a rewrite must
    not make them right (or differently wrong)."""
    frame, kept = vlan_tcp(Addrs(mapped=False))
    expected, _ = vlan_tcp(Addrs(mapped=True))
    at = 14 + 4 + 20 + 16
    broken = frame[:at] + bytes([frame[at] ^ 0x12, frame[at + 1]]) + frame[at + 2 :]
    out = one(broken)
    assert out[:at] == expected[:at] and out[at + 2 :] == expected[at + 2 : kept]
    value = struct.unpack_from(">H", out, at)[0]
    error = struct.unpack_from(">H", broken, at)[0] - struct.unpack_from(">H", frame, at)[0]
    assert (value - struct.unpack_from(">H", expected, at)[0]) % 0xFFFF == error % 0xFFFF != 0


COOKED_MAC = bytes.fromhex("525400aa0011")


def sll(mac: bytes) -> bytes:
    return struct.pack(">HHH", 0, 1, 6) + mac + b"\0\0" + b"\x08\x00"


def sll2(mac: bytes) -> bytes:
    # the reserved field must be zero; the rewrite makes it so
    reserved = b"\0\0" if mac == MAPPER.map_mac(COOKED_MAC) else b"\xbe\xef"
    return b"\x08\x00" + reserved + struct.pack(">IHBB", 3, 1, 0, 6) + mac + b"\0\0"


@pytest.mark.parametrize(("link", "cooked"), [(113, sll), (276, sll2)])
def test_linux_cooked_captures_map_their_link_address(
    link: int, cooked: Callable[[bytes], bytes]
) -> None:
    frame, kept = vxlan_icmp(Addrs(mapped=False))
    expected, _ = vxlan_icmp(Addrs(mapped=True))
    out = one(cooked(COOKED_MAC) + frame[14:], link)
    assert out == cooked(MAPPER.map_mac(COOKED_MAC)) + expected[14:kept]


def test_a_cooked_link_address_that_is_not_a_mac_is_zeroed() -> None:
    tunnel_address = socket.inet_pton(socket.AF_INET, "198.51.100.7")
    cooked = struct.pack(">HHH", 0, 768, 4) + tunnel_address + bytes(4) + b"\x08\x00"
    frame, _ = igmp(Addrs(mapped=False))
    out = one(cooked + frame[14:], 113)
    assert out[6:14] == bytes(8) and len(out) == 16 + 20


@pytest.mark.parametrize(
    ("link", "recipe"), [(101, vxlan_icmp), (101, vxlan_v6), (228, vxlan_icmp), (229, vxlan_v6)]
)
def test_raw_ip_link_types(link: int, recipe: Recipe) -> None:
    frame, kept = recipe(Addrs(mapped=False))
    expected, _ = recipe(Addrs(mapped=True))
    assert one(frame[14:], link) == expected[14:kept]


def test_unknown_protocols_end_after_the_last_header_understood() -> None:
    assert len(one(lldp(Addrs(mapped=False))[0])) == 14
    assert len(one(igmp(Addrs(mapped=False))[0])) == 34


# -- containers


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_classic_pcap_keeps_byte_order_magic_timestamps_and_wire_length(
    order: str, nano: bool
) -> None:
    frames = [recipe(Addrs(mapped=False))[0] for recipe in ETHERNET_CASES.values()]
    data = pcap(frames, order=order, nano=nano)
    result = rewrite(data)
    assert (result.packets, result.dropped, result.problem) == (len(frames), 0, None)
    assert result.data[:4] == data[:4]
    assert result.data[4:20] == data[4:20]
    before, after = records(data), records(result.data)
    assert [r[:3] for r in after] == [r[:3] for r in before]
    reader = dpkt.pcap.Reader(io.BytesIO(result.data))
    assert reader.datalink() == 1
    assert [bytes(buf) for _, buf in reader] == [r[3] for r in after]


def test_a_classic_link_field_with_fcs_bits_comes_back_bare() -> None:
    data = bytearray(pcap([lldp(Addrs(mapped=False))[0]]))
    data[20:24] = struct.pack("<I", 0x1000_0000 | 0x0400_0000 | 1)
    result = rewrite(bytes(data))
    assert struct.unpack_from("<I", result.data, 20)[0] == 1 and result.packets == 1


def option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def block(order: str, kind: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    return (
        struct.pack(order + "II", kind, 12 + len(body))
        + body
        + struct.pack(order + "I", 12 + len(body))
    )


SECRETS = [
    b"customer-laptop",
    b"eth0-of-the-customer",
    b"a comment naming bob",
    b"secret.example.com",
]


def pcapng_section(order: str, frames: list[bytes]) -> bytes:
    end = struct.pack(order + "HH", 0, 0)
    shb_opts = option(order, 2, SECRETS[0]) + option(order, 1, SECRETS[2]) + end
    shb = block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1) + shb_opts)
    idb_opts = (
        option(order, 2, SECRETS[1])
        + option(order, 6, bytes.fromhex("5254000000aa"))
        + option(order, 4, socket.inet_pton(socket.AF_INET, "198.51.100.9") + b"\xff\xff\xff\0")
        + option(order, 9, b"\x09")  # nanoseconds
        + option(order, 13, b"\x04")
        + option(order, 14, struct.pack(order + "q", -3600))
        + end
    )
    idb = block(order, 1, struct.pack(order + "HHI", 1, 0, 262144) + idb_opts)
    unsupported_idb = block(order, 1, struct.pack(order + "HHI", 105, 0, 262144))
    record = socket.inet_pton(socket.AF_INET, "198.51.100.9") + SECRETS[3] + b"\0\0"
    nrb = block(order, 4, struct.pack(order + "HH", 1, 4 + 19) + record + end)
    dsb = block(order, 0x0A, struct.pack(order + "II", 0x544C534B, 12) + b"CLIENT_RANDOM")
    custom = block(order, 0x00000BAD, struct.pack(order + "I", 32473) + SECRETS[2])
    unknown = block(order, 0x12345, SECRETS[3])
    blocks = [shb, idb, unsupported_idb, nrb, dsb, custom, unknown]
    for i, frame in enumerate(frames):
        ts = 1_700_000_000_000_000_000 + i * 1_000_000_000 + 5
        epb = struct.pack(order + "IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(frame), len(frame) + 7)
        epb += frame + b"\0" * (-len(frame) % 4) + option(order, 1, SECRETS[2]) + end
        blocks.append(block(order, 6, epb))
    blocks.append(block(order, 3, struct.pack(order + "I", len(frames[0])) + frames[0]))
    blocks.append(
        block(
            order,
            6,
            struct.pack(order + "IIIII", 1, 0, 0, len(frames[0]), len(frames[0])) + frames[0],
        )
    )
    isb_opts = option(order, 1, SECRETS[2]) + option(order, 4, struct.pack(order + "Q", 99)) + end
    blocks.append(block(order, 5, struct.pack(order + "III", 0, 1, 2) + isb_opts))
    return b"".join(blocks)


def walk_blocks(data: bytes) -> list[tuple[str, int, bytes]]:
    off, found, order = 0, [], "<"
    while off < len(data):
        if data[off : off + 4] == b"\x0a\x0d\x0d\x0a":
            order = "<" if data[off + 8 : off + 12] == b"\x4d\x3c\x2b\x1a" else ">"
        kind, length = struct.unpack_from(order + "II", data, off)
        assert struct.unpack_from(order + "I", data, off + length - 4)[0] == length
        found.append((order, kind, data[off + 8 : off + length - 4]))
        off += length
    assert off == len(data)
    return found


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng_drops_options_and_blocks_that_may_name_anything(order: str) -> None:
    original = Addrs(mapped=False)
    frames = [recipe(original)[0] for recipe in ETHERNET_CASES.values()]
    data = pcapng_section(order, frames)
    result = rewrite(data)
    # every EPB, the SPB; the packet on the 802.11 interface is dropped
    assert (result.packets, result.dropped) == (len(frames) + 1, 1)
    assert result.problem is not None and "105" in result.problem
    blocks = walk_blocks(result.data)
    assert {o for o, _, _ in blocks} == {order}
    assert [k for _, k, _ in blocks] == [0x0A0D0D0A, 1, 1] + [6] * (len(frames) + 1) + [5]
    shb, idb, idb2 = (body for _, _, body in blocks[:3])
    assert len(shb) == 16
    # only if_tsresol, if_fcslen (0: no FCS survives the cut) and if_tsoffset are left:
    # they change how the data is read
    assert idb[8:] == (
        option(order, 9, b"\x09")
        + option(order, 13, b"\x00")
        + option(order, 14, struct.pack(order + "q", -3600))
        + b"\0\0\0\0"
    )
    assert len(idb2) == 8
    assert blocks[-1][2] == struct.pack(order + "III", 0, 1, 2)
    idb_addresses = [
        bytes.fromhex("5254000000aa"),
        socket.inet_pton(socket.AF_INET, "198.51.100.9"),
    ]
    for secret in [*SECRETS, *idb_addresses]:
        assert secret not in result.data
    for address in original.seen:
        assert address not in result.data
    reader = dpkt.pcapng.Reader(io.BytesIO(result.data))
    read = list(reader)
    assert len(read) == len(frames) + 1
    assert read[1][0] == pytest.approx(1_700_000_001.0 - 3600, abs=1e-6)  # tsresol, tsoffset
    epbs = [struct.unpack_from(order + "IIIII", body) for _, kind, body in blocks if kind == 6]
    stamps = [1_700_000_000_000_000_000 + i * 1_000_000_000 + 5 for i in range(len(frames))]
    assert [(high << 32) | low for _, high, low, _, _ in epbs] == [*stamps, 0]
    assert [wire for *_, wire in epbs] == [len(f) + 7 for f in frames] + [len(frames[0])]
    assert [bytes(buf) for _, buf in read] == [
        body[20 : 20 + caplen]
        for (_, _, body), (*_, caplen, _) in zip(blocks[3:-1], epbs, strict=True)
    ]


def test_a_simple_packet_block_is_cut_at_the_snap_length() -> None:
    frame = vxlan_icmp(Addrs(mapped=False))[0]
    shb = block("<", 0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = block("<", 1, struct.pack("<HHI", 1, 0, 40))
    spb = block("<", 3, struct.pack("<I", len(frame)) + frame)
    result = rewrite(shb + idb + spb)
    (_, kind, body) = walk_blocks(result.data)[-1]
    assert kind == 6 and struct.unpack_from("<I", body, 12)[0] == 34  # IPv4 header, no UDP


def test_pcapng_options_end_at_the_end_of_options() -> None:
    shb = block("<", 0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    options = option("<", 2, b"eth0") + b"\0\0\0\0" + option("<", 9, b"\x03")
    idb = block("<", 1, struct.pack("<HHI", 1, 0, 0) + options)
    (_, kind, body) = walk_blocks(rewrite(shb + idb).data)[-1]
    assert kind == 1 and body == struct.pack("<HHI", 1, 0, 0)


def test_pcapng_sections_keep_their_own_byte_order() -> None:
    frames = [vxlan_icmp(Addrs(mapped=False))[0]]
    result = rewrite(pcapng_section("<", frames) + pcapng_section(">", frames))
    assert result.packets == 4
    orders = [o for o, _, _ in walk_blocks(result.data)]
    assert orders[0] == "<" and orders[-1] == ">" and orders.count("<") == orders.count(">")


# -- hostile input


GOOD = [
    vxlan_icmp(Addrs(mapped=False))[0],
    arp_reply(Addrs(mapped=False))[0],
    lldp(Addrs(mapped=False))[0],
]


def assert_valid_empty_or_kept(result: CaptureRewrite, packets: int) -> None:
    assert result.packets == packets
    assert len(list(dpkt.pcap.Reader(io.BytesIO(result.data)))) == packets
    assert MARKER not in result.data


@pytest.mark.parametrize("data", [b"", b"hello, world", b"10.0.0.1 is up\n" * 3, bytes(100)])
def test_not_a_capture_gives_an_empty_classic_pcap(data: bytes) -> None:
    result = rewrite(data)
    assert result.problem and result.data[:4] == b"\xd4\xc3\xb2\xa1" and len(result.data) == 24
    assert struct.unpack_from("<I", result.data, 20)[0] == 1
    assert_valid_empty_or_kept(result, 0)


@pytest.mark.parametrize("nanoseconds", [False, True])
@pytest.mark.parametrize("order", ["<", ">"])
def test_is_capture_knows_every_magic_the_rewriter_reads(order: str, nanoseconds: bool) -> None:
    magic = struct.pack(order + "I", 0xA1B23C4D if nanoseconds else 0xA1B2C3D4)
    assert is_capture(magic + bytes(20))
    assert is_capture(b"\x0a\x0d\x0d\x0a" + struct.pack(order + "I", 28))
    assert not any(is_capture(data) for data in (b"", b"\xd4\xc3\xb2", b"hello, world"))


@pytest.mark.parametrize("order", ["<", ">"])
def test_a_truncated_global_header_gives_an_empty_capture_of_that_order(order: str) -> None:
    data = pcap(GOOD, order=order)[:13]
    result = rewrite(data)
    assert result.problem and "header" in result.problem
    assert result.data[:4] == data[:4] and len(result.data) == 24
    assert_valid_empty_or_kept(result, 0)


def test_a_truncated_record_keeps_what_came_before() -> None:
    data = pcap(GOOD)
    result = rewrite(data[:-5])
    assert (
        result.problem
        and "truncated record" in result.problem
        and "2 packets kept" in result.problem
    )
    assert_valid_empty_or_kept(result, 2)
    result = rewrite(data[: len(data) - len(GOOD[-1]) - 7])  # inside the record header
    assert result.problem and "2 packets kept" in result.problem
    assert_valid_empty_or_kept(result, 2)


def test_a_huge_caplen_stops_the_walk() -> None:
    data = bytearray(pcap(GOOD))
    at = 24 + 16 + len(GOOD[0]) + 8
    data[at : at + 4] = struct.pack("<I", 0x7FFF_FFFF)
    result = rewrite(bytes(data) + bytes(1000))
    assert result.problem and "1 packets kept" in result.problem
    assert_valid_empty_or_kept(result, 1)


def test_a_caplen_beyond_any_snap_length_is_garbage_even_with_the_bytes_there() -> None:
    data = pcap(GOOD[:1]) + struct.pack("<IIII", 1, 0, 300_000, 300_000) + MARKER * 18_750
    result = rewrite(data + pcap(GOOD)[24:])
    assert result.problem and "claims 300000 bytes" in result.problem
    assert_valid_empty_or_kept(result, 1)


def test_headers_are_not_read_beyond_the_ip_length() -> None:
    """A frame's padding is no header: a TCP header found there is not one."""
    a = Addrs(mapped=False)
    segment = tcp(1, 2, b"", MARKER, lambda n: pseudo4(bytes(4), bytes(4), 6, n))
    ip = bytearray(ip4(a.v4("10.30.0.1"), a.v4("10.30.0.2"), 6, segment))
    ip[2:4] = struct.pack(">H", 28)  # the datagram: its header and 8 bytes
    macs = a.mac("aa:00:00:00:00:01") + a.mac("aa:00:00:00:00:02")
    # by hand: dpkt would cut the frame at the IP length
    assert len(one(macs + b"\x08\x00" + bytes(ip))) == 34
    datagram = bytearray(ip6(a.v6("fd00::1"), a.v6("fd00::2"), 6, segment))
    datagram[4:6] = struct.pack(">H", 8)
    assert len(one(macs + b"\x86\xdd" + bytes(datagram))) == 54


def test_zero_length_and_runt_packets_are_dropped() -> None:
    result = rewrite(pcap([b"", b"\x01\x02\x03", GOOD[0], bytes(13)]))
    assert (result.packets, result.dropped, result.problem) == (1, 3, None)
    result = rewrite(pcap([b"", b"\x45\x00", b"\x60" + bytes(38), b"\x99" * 60], link=101))
    assert (result.packets, result.dropped) == (0, 4)


def test_an_unsupported_link_type_drops_every_packet_and_says_so() -> None:
    result = rewrite(pcap(GOOD, link=105))
    assert (result.packets, result.dropped) == (0, 3)
    assert result.problem and "link type 105" in result.problem
    assert_valid_empty_or_kept(result, 0)


@pytest.mark.parametrize(
    "inner",
    [
        b"",
        b"\x01\x02\x03\x04\x05",
        bytes.fromhex("0a580af40207 0a580af40105 0800") + b"\x4f" + MARKER,  # IHL 60 > data
        bytes.fromhex("0a580af40207 0a580af40105 0800") + b"\x44" + MARKER,  # IHL 16 < 20
        bytes.fromhex("0a580af40207 0a580af40105 86dd") + MARKER,
        bytes.fromhex("0a580af40207 0a580af40105 8100") + b"\x00",
        bytes.fromhex("0a580af40207 0a580af40105 0806") + b"\x00\x01\x08\x00\x06\x04" + MARKER[:6],
    ],
)
def test_garbage_inner_frames_keep_only_what_parsed(inner: bytes) -> None:
    a = Addrs(mapped=False)
    src, dst = a.v4("192.0.2.11"), a.v4("192.0.2.12")
    outer = udp(51000, 8472, vxlan(inner), lambda n: pseudo4(src, dst, 17, n))
    frame = ether(a, "52:54:00:aa:00:12", "52:54:00:aa:00:11", 0x0800, ip4(src, dst, 17, outer))
    out = one(frame)
    assert 50 <= len(out) <= 50 + 14 + 8
    assert MARKER[:4] not in out and bytes.fromhex("0a580af40207") not in out
    # the outer UDP checksum still matches a recomputation with the mapped inner bytes
    m = Addrs(mapped=True)
    full = out + frame[len(out) :]
    assert full[26:34] == m.v4("192.0.2.11") + m.v4("192.0.2.12")
    segment = full[34:]
    assert dpkt.in_cksum(pseudo4(full[26:30], full[30:34], 17, len(segment)) + segment) == 0


def test_udp_to_a_vxlan_port_without_the_vni_flag_is_not_vxlan() -> None:
    frame, _ = vxlan_icmp(Addrs(mapped=False))
    assert frame[42] == 0x08
    assert len(one(frame[:42] + b"\x00" + frame[43:])) == 42


def test_arp_for_other_hardware_keeps_its_fixed_part_only() -> None:
    a = Addrs(mapped=False)
    body = struct.pack(">HHBBH", 32, 0x0800, 20, 4, 1) + bytes(range(20)) + a.v4("10.1.2.3")
    frame = ether(a, "ff:ff:ff:ff:ff:fe", "52:54:00:00:0f:01", 0x0806, body + bytes(28))
    out = one(frame)
    assert len(out) == 22 and out[14:] == body[:8]


def test_pcapng_hostile_blocks() -> None:
    frames = [GOOD[0]]
    good = pcapng_section("<", frames)
    assert rewrite(good).packets == 2
    cases = {
        "truncated section header": good[:20],
        "no byte-order magic": good[:8] + b"\x00\x11\x22\x33" + good[12:],
        "pcapng version 2": good[:12] + b"\x02" + good[13:],
        "bad block length": good + struct.pack("<II", 6, 0xFFFF_FFF0) + bytes(16),
        "lengths disagree": good + struct.pack("<II", 6, 16) + bytes(4) + struct.pack("<I", 20),
        "truncated block header": good + b"\x06\0\0",
        "unreadable interface block": good + block("<", 1, bytes(4)),
    }
    for said, data in cases.items():
        result = rewrite(data)
        assert result.problem and said in result.problem, said
        blocks = walk_blocks(result.data)
        assert blocks and blocks[0][1] == 0x0A0D0D0A, said
        assert result.packets == (2 if len(data) > len(good) else 0)
    # an EPB whose captured length overruns its block, or naming no interface: dropped
    overrun = block("<", 6, struct.pack("<IIIII", 0, 0, 0, 500, 500) + GOOD[0])
    orphan = block("<", 6, struct.pack("<IIIII", 9, 0, 0, len(GOOD[0]), 99) + GOOD[0])
    result = rewrite(good + overrun + orphan)
    assert result.packets == 2 and result.dropped == 3 and "105" in (result.problem or "")


def test_random_mutations_never_raise_nor_leak() -> None:
    """Mutated copies of every case, under every supported link type: no exception, no
    payload, and no more bytes than came in."""
    rng = random.Random(1624)
    originals = [recipe(Addrs(mapped=False))[0] for recipe in ETHERNET_CASES.values()]
    by_link = {
        1: originals,
        101: [f[14:] for f in originals],
        113: [bytes(14) + f[12:] for f in originals],
    }
    total = 0
    for link, frames in by_link.items():
        mutated = []
        for _ in range(150):
            frame = bytearray(rng.choice(frames))
            for _ in range(rng.randint(1, 4)):
                at = rng.randrange(min(len(frame), 120))
                frame[at] = rng.randrange(256)
            mutated.append(
                bytes(frame[: rng.randint(0, len(frame))]) if rng.random() < 0.3 else bytes(frame)
            )
        result = rewrite(pcap(mutated, link=link))
        assert result.packets + result.dropped == len(mutated) and result.problem is None
        assert MARKER not in result.data
        for seconds, _, _, out in records(result.data):
            assert len(out) <= len(mutated[seconds - 1_700_000_000])
        total += result.packets
    assert total > 300


def test_no_original_address_or_mac_survives_anywhere() -> None:
    original = Addrs(mapped=False)
    frames = [recipe(original)[0] for recipe in ETHERNET_CASES.values()]
    frames.append(redirect_cut(original)[0])
    result = rewrite(pcap(frames))
    assert result.packets == len(frames)
    assert len(original.seen) > 60
    leaked = [address.hex() for address in original.seen if address in result.data]
    assert leaked == []
    assert MARKER[:8] not in result.data


# -- real captures


def sample_capture(tmp_path: Path, bundle: str, member: str) -> bytes:
    with tarfile.open(SAMPLES / bundle) as archive:
        archive.extract(member, tmp_path, filter="data")
    return (tmp_path / member).read_bytes()


def mapped_v4(raw: bytes) -> bytes:
    return MAPPER.map_v4(int.from_bytes(raw, "big")).to_bytes(4, "big")


def mapped_v6(raw: bytes) -> bytes:
    return MAPPER.map_v6(int.from_bytes(raw, "big")).to_bytes(16, "big")


@pytest.mark.parametrize("member", ["underlay-vxlan.pcap", "cni0.pcap"])
def test_real_tcpdump_captures(tmp_path: Path, member: str) -> None:
    data = sample_capture(
        tmp_path, "lab-mtu-underlay.tar.gz", f"nodes/lab-node-1/captures/{member}"
    )
    before = list(dpkt.pcap.Reader(io.BytesIO(data)))
    result = rewrite(data)
    assert (result.packets, result.dropped, result.problem) == (len(before), 0, None)
    after = list(dpkt.pcap.Reader(io.BytesIO(result.data)))
    assert len(after) == len(before) > 30
    assert [wire for *_, wire, _ in records(result.data)] == [wire for *_, wire, _ in records(data)]
    seen_ip = vxlan_seen = 0
    originals: set[bytes] = set()
    for (ts, old_buf), (new_ts, new_buf) in zip(before, after, strict=True):
        assert ts == new_ts and len(new_buf) <= len(old_buf)
        old, new = dpkt.ethernet.Ethernet(old_buf), dpkt.ethernet.Ethernet(new_buf)
        assert (new.src, new.dst) == (MAPPER.map_mac(old.src), MAPPER.map_mac(old.dst))
        originals |= {old.src, old.dst}
        layers = [(old.data, new.data)]
        if (
            isinstance(old.data, dpkt.ip.IP)
            and isinstance(old.data.data, dpkt.udp.UDP)
            and old.data.data.dport == 8472
        ):
            inner_old = dpkt.ethernet.Ethernet(old.data.data.data[8:])
            inner_new = dpkt.ethernet.Ethernet(bytes(new_buf[14 + new.data.hl * 4 + 16 :]))
            assert inner_new.src == MAPPER.map_mac(inner_old.src)
            originals |= {inner_old.src, inner_old.dst}
            layers.append((inner_old.data, inner_new.data))
            vxlan_seen += 1
        for old_ip, new_ip in layers:
            if isinstance(old_ip, dpkt.ip.IP | dpkt.ip6.IP6):
                originals |= {old_ip.src, old_ip.dst}
            if isinstance(old_ip, dpkt.ip.IP):
                assert (new_ip.src, new_ip.dst) == (mapped_v4(old_ip.src), mapped_v4(old_ip.dst))
                assert dpkt.in_cksum(bytes(new_ip)[: new_ip.hl * 4]) == 0
                seen_ip += 1
            elif isinstance(old_ip, dpkt.ip6.IP6):
                assert (new_ip.src, new_ip.dst) == (mapped_v6(old_ip.src), mapped_v6(old_ip.dst))
                seen_ip += 1
    assert seen_ip >= len(before)
    # the fake mapper moves every value, broadcast and zero included: none may remain
    assert len(originals) > 4
    assert [address.hex() for address in originals if address in result.data] == []
    assert (vxlan_seen > 0) == (member == "underlay-vxlan.pcap")
