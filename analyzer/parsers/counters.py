"""Parsers for the counters read at the start and at the end of the collection window,
and the deltas between the two readings:

- ``ip -s -s -j link`` (``stats64``: rx/tx packets, bytes, errors, dropped, over_errors,
  ...) and its text form (``RX:  bytes packets errors dropped  missed   mcast``);
- ``nstat -az`` in its text (``#kernel`` then ``IpInReceives  123  0.0``) and ``-j``
  forms, and ``/proc/net/snmp`` / ``/proc/net/netstat`` (header and value lines per
  protocol), all as ``Counter`` records named as nstat names them (``UdpNoPorts``);
- ``/proc/net/softnet_stat``: one line of hex columns per CPU.

``link_deltas``, ``counter_deltas`` and ``softnet_deltas`` give end - start. A counter
that went down (its device was recreated, the kernel reset it) is reported as a reset
with no delta, never as a negative number; a device whose ifindex changed between the
readings is a recreated device.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from needle.analyzer.parsers.common import (
    Parsed,
    lines_of,
    looks_like_json,
    records_from_json,
    records_from_lines,
    to_int,
    to_str,
)


@dataclass(frozen=True, slots=True)
class LinkCounters:
    """One interface's statistics; ``counters`` keys are ``rx_<name>`` and ``tx_<name>``
    with the stats64 names (rx_packets, rx_dropped, rx_over_errors, tx_carrier_errors)."""

    ifname: str
    ifindex: int | None
    counters: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class Counter:
    """One protocol counter, named as nstat names it: the group then the field
    (``UdpNoPorts``, ``IpFragFails``, ``TcpExtListenDrops``)."""

    name: str
    group: str | None
    value: int


@dataclass(frozen=True, slots=True)
class SoftnetCpu:
    """One CPU's line of /proc/net/softnet_stat (columns a kernel does not print are None)."""

    cpu: int
    processed: int
    dropped: int
    time_squeeze: int
    cpu_collision: int | None
    received_rps: int | None
    flow_limit_count: int | None
    backlog_len: int | None


@dataclass(frozen=True, slots=True)
class CounterDelta:
    name: str
    start: int
    end: int
    delta: int | None
    """end - start; None when the counter went down (``reset``)."""
    reset: bool


@dataclass(frozen=True, slots=True)
class LinkDelta:
    ifname: str
    deltas: tuple[CounterDelta, ...]
    recreated: bool
    """The ifindex changed, or a counter went down: the device was recreated (or reset)."""
    missing: str | None
    """``start`` or ``end`` when the interface is in one reading only (no deltas then)."""

    def delta(self, name: str) -> int | None:
        return next((d.delta for d in self.deltas if d.name == name), None)


# --- ip -s -s link ---------------------------------------------------------------------

# Text column headers of `ip -s -s link` (old and new iproute2) -> stats64 names.
_TEXT_COLUMNS = MappingProxyType(
    {
        "bytes": "bytes",
        "packets": "packets",
        "errors": "errors",
        "dropped": "dropped",
        "missed": "missed_errors",
        "mcast": "multicast",
        "overrun": "over_errors",
        "length": "length_errors",
        "crc": "crc_errors",
        "frame": "frame_errors",
        "fifo": "fifo_errors",
        "nohandler": "nohandler",
        "carrier": "carrier_errors",
        "collsns": "collisions",
        "aborted": "aborted_errors",
        "window": "window_errors",
        "heartbt": "heartbeat_errors",
        "transns": "carrier_changes",
        "otherhost": "otherhost_dropped",
    }
)


def _link_from_json(item: dict[str, Any]) -> LinkCounters | None:
    ifname = to_str(item.get("ifname"))
    stats = item.get("stats64") or item.get("stats")
    if not ifname or not isinstance(stats, dict):
        return None
    counters: dict[str, int] = {}
    for direction in ("rx", "tx"):
        block = stats.get(direction)
        if not isinstance(block, dict):
            continue
        for key, value in block.items():
            number = to_int(value)
            if number is not None and number >= 0:
                counters[f"{direction}_{key}"] = number
    if not counters:
        return None
    return LinkCounters(ifname, to_int(item.get("ifindex")), MappingProxyType(counters))


def parse_link_stats_json(data: bytes) -> Parsed[LinkCounters]:
    return records_from_json(data, _link_from_json)


def _link_head(line: str) -> tuple[int | None, str] | None:
    """``5: ax@if2: <...>`` -> (5, "ax")."""
    index, sep, rest = line.partition(": ")
    name = rest.split(":", 1)[0].split("@", 1)[0].strip()
    if not sep or not index.strip().isdecimal() or not name or " " in name:
        return None
    return int(index), name


def parse_link_stats_text(data: bytes) -> Parsed[LinkCounters]:
    records: list[LinkCounters] = []
    unparsed: list[str] = []
    current: tuple[int | None, str] | None = None
    counters: dict[str, int] = {}
    header: tuple[str, list[str]] | None = None

    def close() -> None:
        if current is not None and counters:
            records.append(LinkCounters(current[1], current[0], MappingProxyType(dict(counters))))

    for line in lines_of(data):
        stripped = line.strip()
        if not stripped:
            continue
        if not line[:1].isspace():
            close()
            current, counters, header = _link_head(line), {}, None
            if current is None:
                unparsed.append(line)
            continue
        words = stripped.split()
        if words[0] in ("RX:", "TX:", "RX", "TX") and current is not None:
            direction = words[0].rstrip(":").lower()
            names = [w for w in words[1:] if w not in ("errors:",)]
            header = (direction, names)
            continue
        values = [to_int(word) for word in words]
        if header is not None and values and all(v is not None for v in values):
            direction, names = header
            for name, value in zip(names, values, strict=False):
                key = _TEXT_COLUMNS.get(name)
                if key is not None and value is not None and value >= 0:
                    counters[f"{direction}_{key}"] = value
            header = None
        elif not stripped.startswith(("link/", "alias", "altname", "vf ", "prop")):
            unparsed.append(line)
    close()
    return Parsed(tuple(records), tuple(unparsed))


def parse_link_stats(data: bytes) -> Parsed[LinkCounters]:
    """``ip -s -s link`` in either form, picked by its first character."""
    if looks_like_json(data):
        return parse_link_stats_json(data)
    return parse_link_stats_text(data)


# --- nstat, /proc/net/snmp, /proc/net/netstat ------------------------------------------

# Longest first: "IcmpMsgInType3" is IcmpMsg's, "Udp6InErrors" Udp6's.
_GROUPS = (
    "MPTcpExt",
    "UdpLite6",
    "IcmpMsg",
    "UdpLite",
    "TcpExt",
    "Icmp6",
    "IpExt",
    "Udp6",
    "Icmp",
    "Sctp",
    "Ip6",
    "Tcp",
    "Udp",
    "Ip",
)


def counter_group(name: str) -> str | None:
    return next((group for group in _GROUPS if name.startswith(group)), None)


def _counter(name: str, value: object) -> Counter | None:
    number = to_int(value)
    if not name or number is None or not name.isascii() or not name.replace("_", "").isalnum():
        return None
    return Counter(name, counter_group(name), number)


def parse_nstat_text(data: bytes) -> Parsed[Counter]:
    """``#kernel`` (the table's name), then ``IpInReceives  490379  0.0`` lines."""
    counted = "\n".join(line for line in lines_of(data) if not line.lstrip().startswith("#"))
    return records_from_lines(
        counted.encode(), lambda words: _counter(words[0], words[1]) if len(words) > 1 else None
    )


def parse_nstat_json(data: bytes) -> Parsed[Counter]:
    """``nstat -j``: {"kernel": {"IpInReceives": 1, ...}}."""
    text = lines_of(data)
    try:
        document = json.loads("\n".join(text))
    except (ValueError, RecursionError):
        return Parsed((), tuple(line for line in text if line.strip()), truncated=True)
    records: list[Counter] = []
    unparsed: list[str] = []
    tables = document.values() if isinstance(document, dict) else [document]
    for table in tables:
        if not isinstance(table, dict):
            unparsed.append(str(table)[:200])
            continue
        for name, value in table.items():
            record = _counter(str(name), value)
            if record is None:
                unparsed.append(f"{name}: {value!s:.200}")
            else:
                records.append(record)
    return Parsed(tuple(records), tuple(unparsed))


def parse_nstat(data: bytes) -> Parsed[Counter]:
    if looks_like_json(data):
        return parse_nstat_json(data)
    return parse_nstat_text(data)


def parse_proc_snmp(data: bytes) -> Parsed[Counter]:
    """/proc/net/snmp or /proc/net/netstat: ``Udp: InDatagrams NoPorts ...`` then
    ``Udp: 12 3 ...``; a header without its values line is unparsed."""
    records: list[Counter] = []
    unparsed: list[str] = []
    header: tuple[str, list[str], str] | None = None
    for line in lines_of(data):
        group, sep, rest = line.partition(":")
        words = rest.split()
        if not sep or not words or " " in group.strip() or not group.strip():
            if line.strip():
                unparsed.append(line)
            continue
        group = group.strip()
        if header is not None and header[0] == group and all(to_int(w) is not None for w in words):
            for name, value in zip(header[1], words, strict=False):
                record = _counter(group + name, value)
                if record is not None:
                    records.append(record)
            if len(words) != len(header[1]):
                unparsed.append(line)
            header = None
            continue
        if header is not None:
            unparsed.append(header[2])
        header = (group, words, line)
    if header is not None:
        unparsed.append(header[2])
    return Parsed(tuple(records), tuple(unparsed), truncated=header is not None)


def protocol_counters(
    nstat: bytes | None, snmp: bytes | None = None, netstat: bytes | None = None
) -> Parsed[Counter]:
    """One reading's protocol counters: nstat's when the node had nstat, else those of
    /proc/net/snmp and /proc/net/netstat (the same names either way)."""
    if nstat:
        parsed = parse_nstat(nstat)
        if parsed.records:
            return parsed
    found = [parse_proc_snmp(data) for data in (snmp, netstat) if data]
    return Parsed(
        tuple(record for parsed in found for record in parsed.records),
        tuple(line for parsed in found for line in parsed.unparsed),
        any(parsed.truncated for parsed in found),
    )


# --- /proc/net/softnet_stat ------------------------------------------------------------


def _hex(word: str) -> int | None:
    if not word or len(word) > 16 or any(c not in "0123456789abcdefABCDEF" for c in word):
        return None
    return int(word, 16)


def _softnet_line(words: list[str]) -> SoftnetCpu | None:
    values = [_hex(word) for word in words]
    numbers = [value for value in values if value is not None]
    if len(numbers) < 3 or len(numbers) != len(values):
        return None

    def column(index: int) -> int | None:
        return numbers[index] if len(numbers) > index else None

    cpu = column(12)
    return SoftnetCpu(
        cpu=-1 if cpu is None else cpu,
        processed=numbers[0],
        dropped=numbers[1],
        time_squeeze=numbers[2],
        cpu_collision=column(8),
        received_rps=column(9),
        flow_limit_count=column(10),
        backlog_len=column(11),
    )


def parse_softnet_stat(data: bytes) -> Parsed[SoftnetCpu]:
    """Columns: processed, dropped, time_squeeze, five zeros, cpu_collision, received_rps,
    flow_limit_count, then (kernels from 5.10) backlog length and the CPU's index; older
    kernels print no index, and a line's place is its CPU then."""
    parsed = records_from_lines(data, _softnet_line)
    numbered = tuple(
        dataclasses.replace(cpu, cpu=index) if cpu.cpu < 0 else cpu
        for index, cpu in enumerate(parsed.records)
    )
    return Parsed(numbered, parsed.unparsed, parsed.truncated)


# --- deltas ------------------------------------------------------------------------------


def _delta(name: str, start: int, end: int) -> CounterDelta:
    if end < start:
        return CounterDelta(name, start, end, None, True)
    return CounterDelta(name, start, end, end - start, False)


def link_deltas(
    start: Iterable[LinkCounters], end: Iterable[LinkCounters]
) -> tuple[LinkDelta, ...]:
    """end - start per interface (by name), in the end reading's order, then the
    interfaces that were only in the start reading."""
    before = {link.ifname: link for link in start}
    after = {link.ifname: link for link in end}
    found: list[LinkDelta] = []
    for name, link in after.items():
        old = before.get(name)
        if old is None:
            found.append(LinkDelta(name, (), False, "start"))
            continue
        deltas = tuple(
            _delta(key, old.counters[key], value)
            for key, value in link.counters.items()
            if key in old.counters
        )
        recreated = (
            old.ifindex is not None and link.ifindex is not None and old.ifindex != link.ifindex
        ) or any(d.reset for d in deltas)
        found.append(LinkDelta(name, deltas, recreated, None))
    found += [LinkDelta(name, (), False, "end") for name in before if name not in after]
    return tuple(found)


WATCHED_COUNTERS = frozenset(
    {
        "IpInDiscards",
        "IpOutDiscards",
        "IpInHdrErrors",
        "IpInAddrErrors",
        "IpOutNoRoutes",
        "IpFragFails",
        "IpReasmFails",
        "IcmpInErrors",
        "IcmpOutErrors",
        "IcmpInDestUnreachs",
        "IcmpOutDestUnreachs",
        "IcmpMsgInType3",
        "IcmpMsgOutType3",
        "UdpNoPorts",
        "UdpInErrors",
        "UdpRcvbufErrors",
        "UdpSndbufErrors",
        "UdpInCsumErrors",
        "TcpRetransSegs",
        "TcpInErrs",
        "TcpExtListenDrops",
        "TcpExtListenOverflows",
    }
)
"""Drops, errors, unreachable ports and fragmentation failures: what a broken path leaves."""


def counter_deltas(
    start: Iterable[Counter], end: Iterable[Counter], names: Sequence[str] | None = None
) -> tuple[CounterDelta, ...]:
    """end - start of each counter in both readings (only `names`, when given), in the
    end reading's order."""
    before = {counter.name: counter.value for counter in start}
    wanted = None if names is None else frozenset(names)
    return tuple(
        _delta(counter.name, before[counter.name], counter.value)
        for counter in end
        if counter.name in before and (wanted is None or counter.name in wanted)
    )


def softnet_deltas(
    start: Iterable[SoftnetCpu], end: Iterable[SoftnetCpu]
) -> tuple[tuple[int, tuple[CounterDelta, ...]], ...]:
    """Per CPU: processed, dropped and time_squeeze, end - start."""
    before = {cpu.cpu: cpu for cpu in start}
    found = []
    for cpu in end:
        old = before.get(cpu.cpu)
        if old is None:
            continue
        found.append(
            (
                cpu.cpu,
                tuple(
                    _delta(name, getattr(old, name), getattr(cpu, name))
                    for name in ("processed", "dropped", "time_squeeze")
                ),
            )
        )
    return tuple(found)
