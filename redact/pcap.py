"""Packet captures redacted: classic pcap and pcapng in, the same container and byte
order out, every packet cut down to its rewritten headers (needle.redact.packets).

A capture is hostile input: nothing here raises on bad bytes. A header that cannot be
read gives an empty capture; a record that cannot be trusted ends the walk, after the
packets before it were kept; `problem` says which, in one sentence. Nothing is copied
through unparsed: pcapng options (comments, host names, interface addresses and MACs)
go, but for the few that change how the data is read, and so do name resolution,
decryption secrets, custom and unknown blocks.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from needle.redact.packets import (
    LINK_ETHERNET,
    LINK_NAMES,
    Frame,
    PacketMapper,
    PacketRewriter,
)

__all__ = ["CaptureRewrite", "PacketMapper", "is_capture", "rewrite_capture"]

DEFAULT_VXLAN_PORTS = frozenset({4789, 8472})
# libpcap's MAXIMUM_SNAPLEN: a record claiming more than this and more than the file's
# snap length is garbage, not a packet.
MAX_SNAPLEN = 262_144

_CLASSIC_ORDERS = {  # magic as it appears in the file -> byte order
    b"\xd4\xc3\xb2\xa1": "<",  # microseconds
    b"\x4d\x3c\xb2\xa1": "<",  # nanoseconds
    b"\xa1\xb2\xc3\xd4": ">",
    b"\xa1\xb2\x3c\x4d": ">",
}
_CLASSIC_HEADER = 24

_SHB = 0x0A0D0D0A
_SHB_TYPE = b"\x0a\x0d\x0d\x0a"  # the same in either byte order
_BYTE_ORDER_MAGIC = 0x1A2B3C4D
_IDB, _OBSOLETE_PB, _SPB, _ISB, _EPB = 1, 2, 3, 5, 6
_IF_TSRESOL, _IF_FCSLEN, _IF_TSOFFSET = 9, 13, 14
_PADS = (b"", b"\0", b"\0\0", b"\0\0\0")


@dataclass(frozen=True)
class CaptureRewrite:
    data: bytes  # the redacted capture file
    packets: int  # packets written
    dropped: int  # packets dropped (unparseable / unsupported)
    problem: str | None  # why the file could not be read whole, in one sentence


def is_capture(head: bytes) -> bool:
    """Whether a file starting with `head` is a pcap or pcapng capture, by its magic."""
    return head[:4] == _SHB_TYPE or head[:4] in _CLASSIC_ORDERS


def rewrite_capture(
    data: bytes, mapper: PacketMapper, vxlan_ports: frozenset[int] = DEFAULT_VXLAN_PORTS
) -> CaptureRewrite:
    """`data` (a pcap or pcapng file) with every packet's addresses and MACs mapped and
    everything after its last understood header dropped."""
    rewriter = PacketRewriter(mapper, vxlan_ports)
    if data[:4] == _SHB_TYPE:
        return _Pcapng(data, rewriter).run()
    if data[:4] in _CLASSIC_ORDERS:
        return _classic(data, rewriter)
    return CaptureRewrite(
        _empty_classic(b"\xd4\xc3\xb2\xa1"), 0, 0, "not a pcap or pcapng capture (unknown magic)"
    )


def _empty_classic(magic: bytes) -> bytes:
    order = _CLASSIC_ORDERS[magic]
    return magic + struct.pack(order + "HHiIII", 2, 4, 0, 0, MAX_SNAPLEN, LINK_ETHERNET)


def _link_name(link: int) -> str:
    return f"link type {link}" + (f" ({LINK_NAMES[link]})" if link in LINK_NAMES else "")


def _join(*parts: str | None) -> str | None:
    said = [part for part in parts if part]
    return "; ".join(said) if said else None


def _unsupported(dropped_by_link: dict[int, int]) -> str | None:
    if not dropped_by_link:
        return None
    return ", ".join(
        f"{_link_name(link)} is not supported ({count} packets dropped)"
        for link, count in dropped_by_link.items()
    )


def _classic(data: bytes, rewriter: PacketRewriter) -> CaptureRewrite:
    magic = data[:4]
    order = _CLASSIC_ORDERS[magic]
    if len(data) < _CLASSIC_HEADER:
        problem = f"truncated global header ({len(data)} of {_CLASSIC_HEADER} bytes)"
        return CaptureRewrite(_empty_classic(magic), 0, 0, problem)
    major, minor, zone, _sigfigs, snaplen, link_field = struct.unpack_from(
        order + "HHiIII", data, 4
    )
    # The upper bits of the link field may say frames end in an FCS; no FCS survives
    # the cut, so only the link type is written back.
    link = link_field & 0xFFFF
    out: list[bytes | bytearray] = [
        magic + struct.pack(order + "HHiIII", major, minor, zone, 0, snaplen, link)
    ]
    frame = rewriter.for_link(link)
    record = struct.Struct(order + "IIII")
    ceiling = max(snaplen, MAX_SNAPLEN)
    packets = dropped = 0
    problem = None
    off, size = _CLASSIC_HEADER, len(data)
    while off < size:
        if off + 16 > size:
            problem = f"truncated record header at byte {off}: {packets} packets kept"
            break
        seconds, fraction, caplen, wirelen = record.unpack_from(data, off)
        if caplen > ceiling:
            problem = f"record at byte {off} claims {caplen} bytes: {packets} packets kept"
            break
        start = off + 16
        off = start + caplen
        if off > size:
            problem = f"truncated record at byte {start - 16}: {packets} packets kept"
            break
        rewritten = frame(data[start:off]) if frame is not None else None
        if rewritten is None:
            dropped += 1
            continue
        out.append(record.pack(seconds, fraction, len(rewritten), wirelen))
        out.append(rewritten)
        packets += 1
    unsupported = _unsupported({link: dropped}) if frame is None and dropped else None
    return CaptureRewrite(b"".join(out), packets, dropped, _join(unsupported, problem))


class _Pcapng:
    """One pass over the blocks of a pcapng file, section by section (each section has
    its own byte order and its own interfaces)."""

    def __init__(self, data: bytes, rewriter: PacketRewriter) -> None:
        self.data = data
        self.rewriter = rewriter
        self.out: list[bytes | bytearray] = []
        self._set_order("<")
        self.interfaces: list[tuple[int, int]] = []  # (link type, snap length)
        self.frames: list[Frame | None] = []
        self.packets = 0
        self.dropped = 0
        self.unsupported: dict[int, int] = {}

    def run(self) -> CaptureRewrite:
        problem = self._walk()
        if not self.out:  # the first section header could not be read
            self.out.append(self._shb())
        data = b"".join(self.out)
        return CaptureRewrite(
            data, self.packets, self.dropped, _join(_unsupported(self.unsupported), problem)
        )

    def _walk(self) -> str | None:
        data, off, size = self.data, 0, len(self.data)
        while off < size:
            if off + 12 > size:
                return f"truncated block header at byte {off}: {self.packets} packets kept"
            if data[off : off + 4] == _SHB_TYPE:
                said = self._section(off)
                if said:
                    return f"{said} at byte {off}: {self.packets} packets kept"
            kind, length = struct.unpack_from(self.order + "II", data, off)
            if length < 12 or length % 4 or off + length > size:
                return f"bad block length at byte {off}: {self.packets} packets kept"
            (trailer,) = struct.unpack_from(self.order + "I", data, off + length - 4)
            if trailer != length:
                return f"block lengths disagree at byte {off}: {self.packets} packets kept"
            body, end = off + 8, off + length - 4
            if kind == _SHB:
                self.out.append(self._shb())
            elif kind == _IDB:
                if end - body < 8:
                    # every later interface would take its number: packets would be
                    # read with another interface's link type
                    return f"unreadable interface block at byte {off}: {self.packets} packets kept"
                self._interface(body, end)
            elif kind in (_EPB, _OBSOLETE_PB):
                self._enhanced(body, end, kind == _OBSOLETE_PB)
            elif kind == _SPB:
                self._simple(body, end)
            elif kind == _ISB and end - body >= 12:
                (interface,) = struct.unpack_from(self.order + "I", data, body)
                if interface < len(self.interfaces):
                    self._block(_ISB, data[body : body + 12])  # statistics are options
            # Name resolution, decryption secrets, custom and unknown blocks are dropped.
            off += length
        return None

    def _section(self, off: int) -> str | None:
        """Read a section header's byte order; why it cannot be read, if it cannot."""
        if off + 28 > len(self.data):
            return "truncated section header"
        for order in "<>":
            (magic,) = struct.unpack_from(order + "I", self.data, off + 8)
            if magic == _BYTE_ORDER_MAGIC:
                break
        else:
            return "section header with no byte-order magic"
        (major,) = struct.unpack_from(order + "H", self.data, off + 12)
        self._set_order(order)
        if major != 1:
            return f"pcapng version {major} not supported"
        self.interfaces = []
        self.frames = []
        return None

    def _set_order(self, order: str) -> None:
        self.order = order
        self._u32 = struct.Struct(order + "I")
        self._epb = struct.Struct(order + "IIIIIII")

    def _shb(self) -> bytes:
        # version 1.0, section length unknown (-1): the blocks changed size
        body = struct.pack(self.order + "IHHq", _BYTE_ORDER_MAGIC, 1, 0, -1)
        return self._packed(_SHB, body)

    def _packed(self, kind: int, body: bytes | bytearray) -> bytes:
        length = 12 + len(body)
        return b"".join(
            (
                struct.pack(self.order + "II", kind, length),
                body,
                struct.pack(self.order + "I", length),
            )
        )

    def _block(self, kind: int, body: bytes | bytearray) -> None:
        self.out.append(self._packed(kind, body))

    def _interface(self, body: int, end: int) -> None:
        order, data = self.order, self.data
        link, snaplen = struct.unpack_from(order + "HxxI", data, body)
        kept = []
        p = body + 8
        while p + 4 <= end:
            code, length = struct.unpack_from(order + "HH", data, p)
            value = p + 4
            if code == 0 or value + length > end:
                break
            if code == _IF_TSRESOL and length == 1:
                kept.append(struct.pack(order + "HHB3x", code, 1, data[value]))
            elif code == _IF_FCSLEN and length == 1:
                # packets are cut before their FCS: none has one any more
                kept.append(struct.pack(order + "HHB3x", code, 1, 0))
            elif code == _IF_TSOFFSET and length == 8:
                # seconds added to every timestamp: dropping it would move them all
                kept.append(struct.pack(order + "HH", code, 8) + data[value : value + 8])
            p = value + ((length + 3) & ~3)
        if kept:
            kept.append(b"\0\0\0\0")  # opt_endofopt
        self._block(_IDB, struct.pack(order + "HHI", link, 0, snaplen) + b"".join(kept))
        self.interfaces.append((link, snaplen))
        self.frames.append(self.rewriter.for_link(link))

    def _enhanced(self, body: int, end: int, obsolete: bool) -> None:
        data, order = self.data, self.order
        if end - body < 20:
            self.dropped += 1
            return
        if obsolete:  # 16-bit interface and drop count where EPB has a 32-bit interface
            interface, _drops, high, low, caplen, wirelen = struct.unpack_from(
                order + "HHIIII", data, body
            )
        else:
            interface, high, low, caplen, wirelen = struct.unpack_from(order + "IIIII", data, body)
        start = body + 20
        if start + caplen > end:
            self.dropped += 1
            return
        self._packet(interface, high, low, data[start : start + caplen], wirelen)

    def _simple(self, body: int, end: int) -> None:
        if end - body < 4 or not self.interfaces:
            self.dropped += 1
            return
        (wirelen,) = struct.unpack_from(self.order + "I", self.data, body)
        snaplen = self.interfaces[0][1]
        caplen = min(wirelen, end - body - 4, snaplen or wirelen)
        # Written back as an EPB: an SPB's captured length is min(wire length, snap
        # length) to most readers, which a cut packet no longer is. It has no timestamp.
        self._packet(0, 0, 0, self.data[body + 4 : body + 4 + caplen], wirelen)

    def _packet(self, interface: int, high: int, low: int, packet: bytes, wirelen: int) -> None:
        if interface >= len(self.frames):
            self.dropped += 1
            return
        frame = self.frames[interface]
        if frame is None:
            link = self.interfaces[interface][0]
            self.unsupported[link] = self.unsupported.get(link, 0) + 1
            self.dropped += 1
            return
        rewritten = frame(packet)
        if rewritten is None:
            self.dropped += 1
            return
        size = len(rewritten)
        pad = -size % 4
        length = 32 + size + pad
        self.out.append(self._epb.pack(_EPB, length, interface, high, low, size, wirelen))
        self.out.append(rewritten)
        self.out.append(_PADS[pad] + self._u32.pack(length))
        self.packets += 1
