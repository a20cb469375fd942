"""Hand-made frames and pcap files, built with dpkt (an encoder independent of the
decoder under test)."""

from __future__ import annotations

import io
import socket
import struct

import dpkt


def ip(src: str, dst: str, payload: dpkt.Packet | bytes, **fields) -> dpkt.ip.IP:
    proto = fields.pop(
        "p",
        dpkt.ip.IP_PROTO_UDP
        if isinstance(payload, dpkt.udp.UDP)
        else dpkt.ip.IP_PROTO_TCP
        if isinstance(payload, dpkt.tcp.TCP)
        else dpkt.ip.IP_PROTO_ICMP,
    )
    packet = dpkt.ip.IP(
        src=socket.inet_aton(src), dst=socket.inet_aton(dst), p=proto, data=payload, **fields
    )
    packet.len = len(bytes(packet))  # dpkt fills len only when packing
    return packet


def ether(payload: dpkt.Packet) -> bytes:
    return bytes(
        dpkt.ethernet.Ethernet(
            src=b"\x0a\x00\x00\x00\x00\x01",
            dst=b"\x0a\x00\x00\x00\x00\x02",
            type=dpkt.ethernet.ETH_TYPE_IP,
            data=payload,
        )
    )


def tcp(sport: int, dport: int, seq: int, data: bytes = b"") -> dpkt.tcp.TCP:
    return dpkt.tcp.TCP(sport=sport, dport=dport, seq=seq, flags=dpkt.tcp.TH_ACK, data=data)


def echo(ident: int, seq: int) -> dpkt.icmp.ICMP:
    return dpkt.icmp.ICMP(type=8, data=dpkt.icmp.ICMP.Echo(id=ident, seq=seq, data=b"x" * 56))


def vxlan(
    outer_src: str, outer_dst: str, inner: bytes, vni: int = 1, port: int = 8472, ip_id: int = 0
) -> bytes:
    header = struct.pack("!B3xI", 0x08, vni << 8)
    return ether(
        ip(
            outer_src,
            outer_dst,
            dpkt.udp.UDP(sport=40000, dport=port, data=header + inner),
            id=ip_id,
        )
    )


def unreachable(sender: str, to: str, code: int, quoted: dpkt.ip.IP, mtu: int = 0) -> bytes:
    """ICMP destination unreachable from `sender`, quoting the first 28 bytes of `quoted`."""
    body = struct.pack("!HH", 0, mtu) + bytes(quoted)[:28]
    return ether(ip(sender, to, dpkt.icmp.ICMP(type=3, code=code, data=body)))


def pcap(frames: list[tuple[float, bytes]], snaplen: int = 200, linktype: int = 1) -> bytes:
    out = io.BytesIO()
    writer = dpkt.pcap.Writer(out, snaplen=snaplen, linktype=linktype)
    for ts, frame in frames:
        writer.writepkt(frame[:snaplen], ts=ts)
    return out.getvalue()
