"""Parses ``/proc/net/route`` (what ``route -n`` reads; present even without net-tools).

Form: the kernel's tab-separated table with little-endian hex addresses. Addresses are
converted to dotted quads; flags stay the raw RTF_* integer.
"""

from __future__ import annotations

from dataclasses import dataclass

from needle.analyzer.parsers.common import Parsed, lines_of, to_int

RTF_UP = 0x0001
RTF_GATEWAY = 0x0002
RTF_HOST = 0x0004
RTF_REJECT = 0x0200


@dataclass(frozen=True, slots=True)
class ProcRoute:
    """One row of /proc/net/route."""

    iface: str
    destination: str
    gateway: str
    flags: int
    refcnt: int | None
    use: int | None
    metric: int | None
    mask: str
    prefixlen: int | None
    mtu: int | None
    window: int | None
    irtt: int | None


def _dotted(hex_le: str) -> str | None:
    if len(hex_le) != 8:
        return None
    try:
        raw = bytes.fromhex(hex_le)
    except ValueError:
        return None
    return ".".join(str(b) for b in reversed(raw))


def _prefixlen(mask: str) -> int | None:
    value = int.from_bytes(bytes(int(p) for p in mask.split(".")), "big")
    inverted = ~value & 0xFFFFFFFF
    if inverted & (inverted + 1):
        return None
    return 32 - inverted.bit_length()


def parse_proc_net_route(data: bytes) -> Parsed[ProcRoute]:
    """The table; the ``Iface Destination ...`` header is recognised and skipped."""
    records: list[ProcRoute] = []
    unparsed: list[str] = []
    for line in lines_of(data):
        tokens = line.split()
        if not tokens or tokens[0] == "Iface":
            continue
        route = _row(tokens)
        if route is None:
            unparsed.append(line)
        else:
            records.append(route)
    return Parsed(tuple(records), tuple(unparsed))


def _row(tokens: list[str]) -> ProcRoute | None:
    if len(tokens) != 11:
        return None
    destination, gateway, mask = _dotted(tokens[1]), _dotted(tokens[2]), _dotted(tokens[7])
    try:
        flags = int(tokens[3], 16)
    except ValueError:
        return None
    if destination is None or gateway is None or mask is None:
        return None
    return ProcRoute(
        iface=tokens[0],
        destination=destination,
        gateway=gateway,
        flags=flags,
        refcnt=to_int(tokens[4]),
        use=to_int(tokens[5]),
        metric=to_int(tokens[6]),
        mask=mask,
        prefixlen=_prefixlen(mask),
        mtu=to_int(tokens[8]),
        window=to_int(tokens[9]),
        irtt=to_int(tokens[10]),
    )
