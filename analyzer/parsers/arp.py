"""Parses ``arp -n`` / ``arp`` (net-tools table) and ``arp -a`` (BSD style, which is also
what busybox prints for ``arp -n``).

Form: text only; each line is recognised on its own, so the two styles may even be mixed.
Table form: ``Address HWtype HWaddress Flags Mask Iface``, ``(incomplete)`` rows.
BSD form: ``host (1.2.3.4) at MAC [ether] [PERM|PUB] on IFACE``, ``<incomplete>``.
"""

from __future__ import annotations

from dataclasses import dataclass

from needle.analyzer.parsers.common import Parsed, lines_of


@dataclass(frozen=True, slots=True)
class ArpEntry:
    """One ARP cache entry."""

    address: str  # the IP, or the hostname when the table form was not run with -n
    hostname: str | None = None
    hwtype: str | None = None
    hwaddress: str | None = None  # None when incomplete
    flags: tuple[str, ...] = ()  # table form: letters (C, M, P); BSD form: PERM, PUB
    mask: str | None = None
    iface: str | None = None
    incomplete: bool = False


def parse_arp(data: bytes) -> Parsed[ArpEntry]:
    """Either style, line by line."""
    records: list[ArpEntry] = []
    unparsed: list[str] = []
    for line in lines_of(data):
        tokens = line.split()
        if not tokens or tokens[0] == "Address":
            continue
        if len(tokens) > 2 and tokens[2] == "at" and tokens[1][:1] == "(" and tokens[1][-1:] == ")":
            entry = _bsd(tokens)
        else:
            entry = _table(tokens)
        if entry is None:
            unparsed.append(line)
        else:
            records.append(entry)
    return Parsed(tuple(records), tuple(unparsed))


def _bsd(tokens: list[str]) -> ArpEntry | None:
    address = tokens[1][1:-1]
    if not address:
        return None
    hostname = None if tokens[0] == "?" else tokens[0]
    hwaddress = None
    hwtype = None
    mask = None
    iface = None
    flags: list[str] = []
    incomplete = False
    i = 2
    n = len(tokens)
    while i < n:
        tok = tokens[i]
        if tok == "at" and i + 1 < n:
            value = tokens[i + 1]
            if value == "<incomplete>":
                incomplete = True
            else:
                hwaddress = value
            i += 2
        elif tok == "on" and i + 1 < n:
            iface = tokens[i + 1]
            i += 2
        elif tok == "netmask" and i + 1 < n:
            mask = tokens[i + 1]
            i += 2
        elif tok.startswith("[") and tok.endswith("]"):
            hwtype = tok[1:-1]
            i += 1
        else:
            flags.append(tok)
            i += 1
    return ArpEntry(address, hostname, hwtype, hwaddress, tuple(flags), mask, iface, incomplete)


def _table(tokens: list[str]) -> ArpEntry | None:
    address = tokens[0]
    if len(tokens) == 3 and tokens[1] == "(incomplete)":
        return ArpEntry(address, iface=tokens[2], incomplete=True)
    if len(tokens) not in (5, 6) or tokens[2].count(":") != 5:
        return None
    hostname = None if _is_ip(address) else address
    mask = tokens[4] if len(tokens) == 6 else None
    return ArpEntry(
        address=address,
        hostname=hostname,
        hwtype=tokens[1],
        hwaddress=tokens[2],
        flags=tuple(tokens[3]),
        mask=mask,
        iface=tokens[-1],
    )


def _is_ip(token: str) -> bool:
    return ":" in token or (token.count(".") == 3 and token.replace(".", "").isdecimal())
