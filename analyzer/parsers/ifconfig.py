"""Parses ``ifconfig`` / ``ifconfig -a`` (net-tools 2.x, and the older ``Link encap`` layout
that net-tools 1.x and busybox print).

Form: text only. One ``IfconfigInterface`` per block; blocks start at column 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from needle.analyzer.parsers.common import Parsed, lines_of, to_int


@dataclass(frozen=True, slots=True)
class IfconfigAddress:
    """An address line (``inet``/``inet6``)."""

    family: str
    address: str
    netmask: str | None = None
    prefixlen: int | None = None
    broadcast: str | None = None
    scope: str | None = None


@dataclass(frozen=True, slots=True)
class IfconfigInterface:
    """One interface block."""

    name: str
    flags: tuple[str, ...] = ()
    mtu: int | None = None
    mac: str | None = None
    txqueuelen: int | None = None
    addresses: tuple[IfconfigAddress, ...] = ()
    stats: dict[str, int] = field(default_factory=dict)  # rx_packets, tx_errors ...
    extra: tuple[str, ...] = ()


def parse_ifconfig(data: bytes) -> Parsed[IfconfigInterface]:
    """Blocks of lines; each block's first line names the interface."""
    records: list[IfconfigInterface] = []
    unparsed: list[str] = []
    block: list[str] = []
    for line in [*lines_of(data), ""]:
        if line.strip() and line[0] not in " \t":
            if block:
                records.append(_interface(block))
            block = [line]
        elif line.strip():
            if block:
                block.append(line)
            else:
                unparsed.append(line)
    if block:
        records.append(_interface(block))
    return Parsed(tuple(records), tuple(unparsed))


def _interface(block: list[str]) -> IfconfigInterface:
    head = block[0].split()
    name = head[0].rstrip(":")
    flags: tuple[str, ...] = ()
    mtu = None
    mac = None
    txqueuelen = None
    addresses: list[IfconfigAddress] = []
    stats: dict[str, int] = {}
    extra: list[str] = []
    for token in head[1:]:
        if token.startswith("flags=") and "<" in token:
            flags = tuple(f for f in token[token.index("<") + 1 : -1].split(",") if f)
    if "mtu" in head:
        mtu = to_int(head[head.index("mtu") + 1]) if head.index("mtu") + 1 < len(head) else None
    if "HWaddr" in head and head.index("HWaddr") + 1 < len(head):
        mac = head[head.index("HWaddr") + 1]
    for line in block[1:]:
        tokens = line.split()
        lead = tokens[0]
        if lead in ("inet", "inet6"):
            addresses.append(_address(tokens))
        elif lead == "ether" and len(tokens) > 1:
            mac = tokens[1]
            if "txqueuelen" in tokens and tokens.index("txqueuelen") + 1 < len(tokens):
                txqueuelen = to_int(tokens[tokens.index("txqueuelen") + 1])
        elif lead in ("RX", "TX"):
            _stats(tokens, stats)
        elif tokens[-1].startswith("Metric:") or any(t.startswith("MTU:") for t in tokens):
            # Old layout: "UP BROADCAST RUNNING MULTICAST  MTU:1500  Metric:1".
            flags = tuple(t for t in tokens if ":" not in t)
            for token in tokens:
                if token.startswith("MTU:"):
                    mtu = to_int(token[4:])
        elif lead == "loop" and "txqueuelen" in tokens:
            txqueuelen = to_int(tokens[tokens.index("txqueuelen") + 1])
        else:
            extra.append(line.strip())
    return IfconfigInterface(
        name, flags, mtu, mac, txqueuelen, tuple(addresses), stats, tuple(extra)
    )


def _address(tokens: list[str]) -> IfconfigAddress:
    family = tokens[0]
    values: dict[str, str] = {}
    address = ""
    i = 1
    while i < len(tokens):
        token = tokens[i]
        if ":" in token and token.split(":", 1)[0] in ("addr", "Bcast", "Mask", "Scope"):
            key, _, value = token.partition(":")
            if key == "addr" and not value and i + 1 < len(tokens):
                value = tokens[i + 1]  # old inet6 layout: "inet6 addr: fe80::1/64 Scope:Link"
                i += 1
            values[key.lower()] = value
        elif i + 1 < len(tokens) and token in ("netmask", "broadcast", "prefixlen", "scopeid"):
            values[token] = tokens[i + 1]
            i += 1
        elif not address:
            address = token
        i += 1
    address = address or values.get("addr", "")
    prefixlen = to_int(values.get("prefixlen"))
    if "/" in address:
        address, _, plen = address.partition("/")
        prefixlen = to_int(plen)
    scope = values.get("scopeid") or values.get("scope")
    if scope and "<" in scope:
        scope = scope[scope.index("<") + 1 : -1]
    return IfconfigAddress(
        family=family,
        address=address,
        netmask=values.get("netmask") or values.get("mask"),
        prefixlen=prefixlen,
        broadcast=values.get("broadcast") or values.get("bcast"),
        scope=scope.lower() if scope else None,
    )


def _stats(tokens: list[str], stats: dict[str, int]) -> None:
    direction = tokens[0].lower()
    i = 1
    while i < len(tokens) - 1:
        key, value = tokens[i], tokens[i + 1]
        if ":" in key and key.endswith(":") is False and key.count(":") == 1:
            name, _, number = key.partition(":")  # old layout "packets:73"
            if to_int(number) is not None:
                stats[f"{direction}_{name}"] = int(number)
            i += 1
            continue
        number = to_int(value)
        if number is not None:
            stats[f"{direction}_{key}"] = number
            i += 2
        else:
            i += 1
