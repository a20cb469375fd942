"""Reading the records of a capture file: classic pcap (walked here with struct) or
pcapng (through dpkt's reader). Bundles are hostile input: nothing here raises on bad
bytes. A header that cannot be trusted refuses the file; a record that cannot be
trusted stops the walk, and `stopped` says where and why, after the good records
before it were handed out.

Classic pcap is walked by hand rather than with dpkt.pcap.Reader: that reader hands a
truncated last record out as if it were whole, reads whatever caplen a record claims,
and makes nanosecond timestamps through Decimal (slow); the format is 16 bytes a record.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import dpkt
import dpkt.pcapng

# libpcap's own ceiling (MAXIMUM_SNAPLEN): no tcpdump writes a larger snap length
MAX_SNAPLEN = 262_144

LINK_ETHERNET = 1
LINK_RAW = 101  # IPv4/IPv6 without a link header (wireguard, tun)
LINK_IPV4 = 228
LINK_LINUX_SLL = 113  # tcpdump -i any
LINK_LINUX_SLL2 = 276
LINK_NAMES = {
    LINK_ETHERNET: "EN10MB",
    LINK_RAW: "RAW",
    LINK_IPV4: "IPV4",
    LINK_LINUX_SLL: "LINUX_SLL",
    LINK_LINUX_SLL2: "LINUX_SLL2",
}

_MAGICS = {  # magic as read little-endian -> (byte order, fraction of a second)
    0xA1B2C3D4: ("<", 1e-6),
    0xA1B23C4D: ("<", 1e-9),
    0xD4C3B2A1: (">", 1e-6),
    0x4D3CB2A1: (">", 1e-9),
}
_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"


@dataclass(slots=True)
class Container:
    """An opened capture: its header's facts and a walk over its records."""

    format: str
    link_type: int
    snaplen: int | None
    records: Iterator[tuple[float, bytes, int]]  # (timestamp, captured bytes, wire length)
    stopped: str | None = None  # set by the walk when it stops before the end


def open_container(data: bytes) -> Container | str:
    """The capture in `data`, or why it cannot be read at all (one line)."""
    if data[:4] == _PCAPNG_MAGIC:
        return _open_pcapng(data)
    if len(data) < 24:
        return f"not a capture: {len(data)} bytes, shorter than a pcap header (24)"
    (magic,) = struct.unpack_from("<I", data, 0)
    found = _MAGICS.get(magic)
    if found is None:
        return f"not a pcap or pcapng file: magic {data[:4].hex()}"
    order, unit = found
    major, minor, _zone, _sigfigs, snaplen, network = struct.unpack_from(order + "HHiIII", data, 4)
    if major != 2:
        return f"bad pcap header: version {major}.{minor} (only 2.x exists)"
    if not 0 < snaplen <= MAX_SNAPLEN:
        return f"bad pcap header: snap length {snaplen} is outside 1..{MAX_SNAPLEN}"
    link_type = network & 0xFFFF  # the upper bits may carry FCS information
    container = Container("pcap", link_type, snaplen, iter(()))
    container.records = _pcap_records(data, order, unit, snaplen, container)
    return container


def _pcap_records(
    data: bytes, order: str, unit: float, snaplen: int, container: Container
) -> Iterator[tuple[float, bytes, int]]:
    header = struct.Struct(order + "IIII")
    unpack = header.unpack_from
    fraction_limit = round(1 / unit)
    end = len(data)
    offset = 24
    index = 0
    while offset < end:
        if offset + 16 > end:
            container.stopped = (
                f"truncated record {index + 1} at byte {offset}: "
                f"{end - offset} bytes of its 16-byte header"
            )
            return
        seconds, fraction, caplen, wirelen = unpack(data, offset)
        if caplen > snaplen or caplen > wirelen or fraction >= fraction_limit:
            container.stopped = (
                f"garbage at record {index + 1} (byte {offset}): captured length {caplen}, "
                f"wire length {wirelen}, snap length {snaplen}, time fraction {fraction}"
            )
            return
        start = offset + 16
        offset = start + caplen
        if offset > end:
            container.stopped = (
                f"truncated record {index + 1} at byte {start - 16}: "
                f"{end - start} of its {caplen} bytes"
            )
            return
        index += 1
        yield seconds + fraction * unit, data[start:offset], wirelen


def _open_pcapng(data: bytes) -> Container | str:
    try:
        reader = dpkt.pcapng.Reader(io.BytesIO(data))
        link_type = reader.datalink()
        snaplen = reader.snaplen
    except Exception as exc:  # noqa: BLE001 - dpkt raises many kinds on bad bytes
        return f"bad pcapng header: {type(exc).__name__}: {exc}"[:300]
    container = Container("pcapng", link_type, snaplen, iter(()))
    container.records = _pcapng_records(reader, container)
    return container


def _pcapng_records(
    reader: dpkt.pcapng.Reader, container: Container
) -> Iterator[tuple[float, bytes, int]]:
    # dpkt gives no wire length through its iterator: the captured length stands in
    walk = iter(reader)
    index = 0
    while True:
        try:
            ts, frame = next(walk)
        except StopIteration:
            return
        except Exception as exc:  # noqa: BLE001 - dpkt raises many kinds on bad bytes
            container.stopped = f"bad pcapng block after record {index}: {type(exc).__name__}"
            return
        if len(frame) > MAX_SNAPLEN:
            container.stopped = f"garbage at record {index + 1}: {len(frame)} bytes"
            return
        index += 1
        yield float(ts), bytes(frame), len(frame)
