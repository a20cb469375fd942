"""Parses ``ip addr`` (``ip address show``; busybox ``ip addr`` too).

Forms: the ``-j`` JSON form (``ip -j addr``) and the text form. One ``InterfaceAddresses``
per interface: the interface as a ``Link`` (the same record ``ip link`` gives, without the
``-d`` details) and its addresses. Lifetimes are seconds; ``None`` means ``forever``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from needle.analyzer.parsers.common import (
    Parsed,
    json_dumps_safe,
    lines_of,
    looks_like_json,
    read_json_arrays,
    to_int,
    to_str,
)
from needle.analyzer.parsers.ip_link import Link, link_from_json, link_from_text_block, split_blocks

FOREVER = 0xFFFFFFFF  # what the kernel (and iproute2's JSON) uses for "forever"

# IFA_F_* flags as iproute2 prints them, plus the JSON-only spelling of a few.
ADDRESS_FLAGS = frozenset(
    {
        "secondary",
        "temporary",
        "nodad",
        "optimistic",
        "dadfailed",
        "homeaddress",
        "deprecated",
        "tentative",
        "permanent",
        "mngtmpaddr",
        "noprefixroute",
        "autojoin",
        "stable-privacy",
        "dynamic",
    }
)


# Not frozen: a frozen dataclass sets each field through object.__setattr__, which on
# a 1,000-node bundle (10^6 records) costs more than parsing. Treat it as read-only.
@dataclass(slots=True)
class Address:
    """One ``inet``/``inet6`` address of an interface."""

    family: str  # "inet" or "inet6"
    local: str
    prefixlen: int | None = None
    peer: str | None = None  # point-to-point peer ("inet A peer B/32")
    broadcast: str | None = None
    scope: str | None = None
    label: str | None = None
    flags: tuple[str, ...] = ()
    valid_lft: int | None = None  # seconds; None: forever or not printed
    preferred_lft: int | None = None
    metric: int | None = None
    extra: tuple[str, ...] = ()


@dataclass(slots=True, eq=False)
class InterfaceAddresses:
    """An interface and its addresses, as one ``ip addr`` block shows them (read-only).

    From the JSON form the link is made on first use (`link`): a model that has the
    interface from ``ip link`` takes only the name and the addresses, and making links
    nobody read cost a third of reading 10^5 pod namespaces."""

    name: str
    addresses: tuple[Address, ...] = ()
    made: Link | None = None  # the link, once made
    # the JSON element the link is made of (checked to make one: _json_link)
    item: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def link(self) -> Link:
        if self.made is None:
            made = link_from_json(self.item or {})
            assert made is not None, "checked when parsed"
            self.made, self.item = made, None
        return self.made

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, InterfaceAddresses):
            return NotImplemented
        return (self.link, self.addresses) == (other.link, other.addresses)


def _json_link(item: dict[str, Any]) -> bool:
    """Whether link_from_json makes a link of `item` (it needs an index and a name)."""
    return to_int(item.get("ifindex")) is not None and isinstance(item.get("ifname"), str)


def parse_ip_addr(data: bytes) -> Parsed[InterfaceAddresses]:
    """Either form: JSON when the output starts with ``[``, text otherwise."""
    if looks_like_json(data):
        return parse_ip_addr_json(data)
    return parse_ip_addr_text(data)


# --- JSON form -------------------------------------------------------------------------

_JSON_ADDR_KNOWN = frozenset(
    {
        "family",
        "local",
        "prefixlen",
        "address",
        "broadcast",
        "scope",
        "label",
        "valid_life_time",
        "preferred_life_time",
        "metric",
    }
)


def parse_ip_addr_json(data: bytes) -> Parsed[InterfaceAddresses]:
    """The ``-j`` form. A cut-off file yields the interfaces before the cut."""
    arrays = read_json_arrays(data)
    records: list[InterfaceAddresses] = []
    unparsed = list(arrays.unparsed)
    for item in arrays.items:
        if not isinstance(item, dict) or not _json_link(item):
            unparsed.append(json_dumps_safe(item))
            continue
        addresses: list[Address] = []
        infos = item.get("addr_info")
        for info in infos if isinstance(infos, list) else []:
            address = _address_from_json(info) if isinstance(info, dict) else None
            if address is None:
                unparsed.append(json_dumps_safe(info))
            else:
                addresses.append(address)
        records.append(InterfaceAddresses(str(item["ifname"]), tuple(addresses), item=item))
    return Parsed(tuple(records), tuple(unparsed), arrays.truncated)


def _address_from_json(obj: dict[str, Any]) -> Address | None:
    family = to_str(obj.get("family"))
    local = to_str(obj.get("local"))
    if family is None or local is None:
        return None
    flags = []
    extra = []
    for key, value in obj.items():
        if key in _JSON_ADDR_KNOWN:
            continue
        if value is True:
            flags.append(key)
        else:
            extra.append(f"{key}={json_dumps_safe(value)}")
    return Address(
        family=family,
        local=local,
        prefixlen=to_int(obj.get("prefixlen")),
        peer=to_str(obj.get("address")),
        broadcast=to_str(obj.get("broadcast")),
        scope=to_str(obj.get("scope")),
        label=to_str(obj.get("label")),
        flags=tuple(flags),
        valid_lft=_lifetime(obj.get("valid_life_time")),
        preferred_lft=_lifetime(obj.get("preferred_life_time")),
        metric=to_int(obj.get("metric")),
        extra=tuple(extra),
    )


def _lifetime(value: object) -> int | None:
    if isinstance(value, str):
        if value == "forever":
            return None
        value = value[:-3] if value.endswith("sec") else value
    number = to_int(value)
    return None if number is None or number == FOREVER else number


# --- text form -------------------------------------------------------------------------


def parse_ip_addr_text(data: bytes) -> Parsed[InterfaceAddresses]:
    """The text form: an ``ip link`` block plus ``inet``/``inet6`` and lifetime lines."""
    records: list[InterfaceAddresses] = []
    unparsed: list[str] = []
    for block in split_blocks(lines_of(data), unparsed):
        link, rest = link_from_text_block(block)
        if link is None:
            unparsed.extend(block)
            continue
        addresses: list[Address] = []
        for line in rest:
            tokens = line.split()
            lead = tokens[0]
            if lead in ("inet", "inet6") and len(tokens) > 1:
                addresses.append(_address_from_text(tokens))
            elif lead == "valid_lft" and addresses:
                addresses[-1] = _with_lifetimes(addresses[-1], tokens)
            else:
                unparsed.append(line)
        records.append(InterfaceAddresses(link.name, tuple(addresses), link))
    return Parsed(tuple(records), tuple(unparsed))


def _address_from_text(tokens: list[str]) -> Address:
    family = tokens[0]
    local, _, plen = tokens[1].partition("/")
    fields: dict[str, Any] = {"family": family, "local": local, "prefixlen": to_int(plen)}
    flags: list[str] = []
    extra: list[str] = []
    i = 2
    n = len(tokens)
    while i < n:
        tok = tokens[i]
        if tok in ("peer", "brd", "scope", "metric", "flags") and i + 1 < n:
            value = tokens[i + 1]
            if tok == "peer":
                peer, _, peer_plen = value.partition("/")
                fields["peer"] = peer
                if peer_plen:
                    fields["prefixlen"] = to_int(peer_plen)
            elif tok == "brd":
                fields["broadcast"] = value
            elif tok == "scope":
                fields["scope"] = value
            elif tok == "metric":
                fields["metric"] = to_int(value)
            else:
                extra.extend((tok, value))  # busybox prints raw "flags 02"
            i += 2
            continue
        if tok in ADDRESS_FLAGS:
            flags.append(tok)
        elif family == "inet" and i == n - 1:
            fields["label"] = tok  # IPv4 lines end with the label (eth0, eth0:1)
        else:
            extra.append(tok)
        i += 1
    fields["flags"] = tuple(flags)
    fields["extra"] = tuple(extra)
    return Address(**fields)


def _with_lifetimes(address: Address, tokens: list[str]) -> Address:
    lifetimes: dict[str, int | None] = {}
    leftover: list[str] = []
    for i in range(0, len(tokens), 2):
        key = tokens[i]
        value = tokens[i + 1] if i + 1 < len(tokens) else None
        if key in ("valid_lft", "preferred_lft") and value is not None:
            lifetimes[key] = _lifetime(value)
        else:
            leftover.extend(t for t in (key, value) if t is not None)
    return replace(
        address,
        valid_lft=lifetimes.get("valid_lft"),
        preferred_lft=lifetimes.get("preferred_lft"),
        extra=address.extra + tuple(leftover),
    )
