"""Parses ``bridge link`` (``bridge -d link``): the ports of every Linux bridge.

Forms: the ``-j`` JSON form (``bridge -d -j link``) and the text form. One ``BridgePort``
per enslaved interface, naming its bridge (``master``) and its STP state. Note that
``bridge`` resolves a veth's ``@ifNN`` peer in its own namespace, so a cross-namespace
peer shows under a wrong name (``vethpod1@eth0``): ``link`` is what was printed, no more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from needle.analyzer.parsers.common import (
    Parsed,
    lines_of,
    looks_like_json,
    records_from_json,
    to_int,
    to_str,
)
from needle.analyzer.parsers.ip_link import is_header, split_blocks


@dataclass(frozen=True, slots=True)
class BridgePort:
    """One bridge port."""

    ifindex: int
    name: str
    master: str | None = None
    state: str | None = None  # forwarding, blocking, disabled, learning, listening
    mtu: int | None = None
    flags: tuple[str, ...] = ()
    link: str | None = None
    link_index: int | None = None
    priority: int | None = None
    cost: int | None = None
    hairpin: bool | None = None
    learning: bool | None = None
    flood: bool | None = None
    isolated: bool | None = None
    neigh_suppress: bool | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    extra: tuple[str, ...] = ()


_BOOLS = ("hairpin", "learning", "flood", "isolated", "neigh_suppress")


def parse_bridge_link(data: bytes) -> Parsed[BridgePort]:
    """Either form: JSON when the output starts with ``[``, text otherwise."""
    if looks_like_json(data):
        return parse_bridge_link_json(data)
    return parse_bridge_link_text(data)


def parse_bridge_link_text(data: bytes) -> Parsed[BridgePort]:
    """The text form: ``N: name@peer: <FLAGS> mtu M master BR state S ...`` plus, with
    ``-d``, an indented line of ``key on|off`` port options."""
    records: list[BridgePort] = []
    unparsed: list[str] = []
    for block in split_blocks(lines_of(data), unparsed):
        port = _port_from_block(block)
        if port is None:
            unparsed.extend(block)
        else:
            records.append(port)
    return Parsed(tuple(records), tuple(unparsed))


def _port_from_block(block: list[str]) -> BridgePort | None:
    if not is_header(block[0]):
        return None
    tokens = block[0].split()
    ifindex = to_int(tokens[0][:-1])
    if ifindex is None or len(tokens) < 2 or not tokens[1].endswith(":"):
        return None
    name, _, peer = tokens[1][:-1].partition("@")
    fields: dict[str, Any] = {"ifindex": ifindex, "name": name}
    if peer.startswith("if") and peer[2:].isdecimal():
        fields["link_index"] = int(peer[2:])
    elif peer:
        fields["link"] = peer
    rest = tokens[2:]
    if rest and rest[0].startswith("<") and rest[0].endswith(">"):
        fields["flags"] = tuple(f for f in rest[0][1:-1].split(",") if f)
        rest = rest[1:]
    for line in block[1:]:
        rest.extend(line.split())
    attrs: dict[str, Any] = {}
    extra: list[str] = []
    for i in range(0, len(rest) - 1, 2):
        key, value = rest[i], rest[i + 1]
        if key in ("master", "state"):
            fields[key] = value
        elif key in ("mtu", "priority", "cost") and to_int(value) is not None:
            fields[key] = int(value)
        elif key in _BOOLS and value in ("on", "off"):
            fields[key] = value == "on"
        else:
            attrs[key] = value
    if len(rest) % 2:
        extra.append(rest[-1])
    return BridgePort(**fields, attrs=attrs, extra=tuple(extra))


def parse_bridge_link_json(data: bytes) -> Parsed[BridgePort]:
    """The ``-j`` form."""
    return records_from_json(data, _port_from_json)


_JSON_HANDLED = frozenset(
    {"ifindex", "ifname", "master", "state", "mtu", "flags", "link", "priority", "cost"}
    | set(_BOOLS)
)


def _port_from_json(obj: dict[str, Any]) -> BridgePort | None:
    ifindex = to_int(obj.get("ifindex"))
    name = to_str(obj.get("ifname"))
    if ifindex is None or not name:
        return None
    raw_flags = obj.get("flags")
    link = obj.get("link")
    return BridgePort(
        ifindex=ifindex,
        name=name,
        master=to_str(obj.get("master")),
        state=to_str(obj.get("state")),
        mtu=to_int(obj.get("mtu")),
        flags=tuple(str(f) for f in raw_flags) if isinstance(raw_flags, list) else (),
        link=link if isinstance(link, str) else None,
        link_index=link if isinstance(link, int) and not isinstance(link, bool) else None,
        priority=to_int(obj.get("priority")),
        cost=to_int(obj.get("cost")),
        **{k: obj[k] for k in _BOOLS if isinstance(obj.get(k), bool)},
        attrs={k: v for k, v in obj.items() if k not in _JSON_HANDLED},
    )
