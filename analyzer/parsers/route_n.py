"""Parses ``route -n`` (net-tools or busybox; also ``route -vn``, ``route -ne``, and the
IPv6 table of ``route -n -A inet6``).

Form: text only. Columns are found from the header line, so the ``-e`` (MSS/Window/irtt)
and IPv6 (``Next Hop``/``Flag``/``Met``/``If``) layouts read the same way. Values are kept
as printed: reject routes show ``-`` as gateway and ``*`` or ``-`` as interface.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from needle.analyzer.parsers.common import Parsed, lines_of, to_int

_IPV4_DEFAULT = ("destination", "gateway", "genmask", "flags", "metric", "ref", "use", "iface")
_ALIASES = MappingProxyType(
    {
        "next_hop": "gateway",
        "flag": "flags",
        "met": "metric",
        "if": "iface",
    }
)


@dataclass(frozen=True, slots=True)
class RouteEntry:
    """One row of ``route -n``."""

    destination: str
    gateway: str | None = None
    genmask: str | None = None
    prefixlen: int | None = None  # from the genmask, or the IPv6 destination's /len
    flags: str = ""
    metric: int | None = None
    ref: int | None = None
    use: int | None = None
    iface: str | None = None
    mss: int | None = None
    window: int | None = None
    irtt: int | None = None
    family: str = "inet"


def _prefixlen(genmask: str | None) -> int | None:
    """Bits of a dotted netmask; None unless it is a contiguous mask."""
    if genmask is None:
        return None
    parts = genmask.split(".")
    if len(parts) != 4 or not all(p.isdecimal() and int(p) < 256 for p in parts):
        return None
    value = 0
    for part in parts:
        value = (value << 8) | int(part)
    inverted = ~value & 0xFFFFFFFF
    if inverted & (inverted + 1):
        return None
    return 32 - inverted.bit_length()


def _columns(line: str) -> tuple[str, ...]:
    text = line.replace("Next Hop", "Next_Hop")
    return tuple(_ALIASES.get(c.lower(), c.lower()) for c in text.split())


def parse_route_n(data: bytes) -> Parsed[RouteEntry]:
    """The table ``route -n`` prints."""
    records: list[RouteEntry] = []
    unparsed: list[str] = []
    columns = _IPV4_DEFAULT
    family = "inet"
    for line in lines_of(data):
        tokens = line.split()
        if not tokens:
            continue
        if line.startswith("Kernel IP"):
            family = "inet6" if "IPv6" in line else "inet"
            continue
        if tokens[0] == "Destination":
            columns = _columns(line)
            continue
        row = dict(zip(columns, tokens, strict=False))
        if len(tokens) != len(columns) or not _looks_like_destination(tokens[0]):
            unparsed.append(line)
            continue
        records.append(_entry(row, family))
    return Parsed(tuple(records), tuple(unparsed))


def _looks_like_destination(word: str) -> bool:
    return word[0].isalnum() and ("." in word or ":" in word or word == "default")


def _entry(row: dict[str, str], family: str) -> RouteEntry:
    destination = row["destination"]
    genmask = row.get("genmask")
    if ":" in destination:
        family = "inet6"
    if family == "inet6":
        _, _, plen = destination.partition("/")
        prefixlen = to_int(plen)
    else:
        prefixlen = _prefixlen(genmask)
    return RouteEntry(
        destination=destination,
        gateway=row.get("gateway"),
        genmask=genmask,
        prefixlen=prefixlen,
        flags=row.get("flags", ""),
        metric=to_int(row.get("metric")),
        ref=to_int(row.get("ref")),
        use=to_int(row.get("use")),
        iface=row.get("iface"),
        mss=to_int(row.get("mss")),
        window=to_int(row.get("window")),
        irtt=to_int(row.get("irtt")),
        family=family,
    )
