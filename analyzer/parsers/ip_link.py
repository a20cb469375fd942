"""Parses ``ip -d link`` (also ``ip link``, ``ip -d -s link``, busybox ``ip link``).

Forms: the ``-j`` JSON form (``ip -d -j link``) and the text form. One ``Link`` per
interface, keeping what the model joins on: ifindex, name, kind (``linkinfo.info_kind``),
mtu, operstate, flags, MAC, master, the ``@ifNN`` peer (``link_index`` + ``link_netnsid``,
or ``link`` when the peer is in the same namespace), and the VXLAN parameters (VNI, port,
local, underlay device, learning). The text form of a recent iproute2 names the peer's
namespace (``link-netns NAME``) where JSON gives its id; both are kept.

Beware: busybox ``ip`` and iproute2's ``bridge link`` resolve ``@ifNN`` in the *current*
namespace, so they print a wrong peer name (``eth0@eth0``) for cross-namespace veths.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from needle.analyzer.parsers.common import (
    Parsed,
    lines_of,
    looks_like_json,
    records_from_json,
    to_int,
    to_str,
)

# Attributes printed after the kind-specific part of a -d line (and on the link/ line).
COMMON_KEYS = frozenset(
    {
        "promiscuity",
        "allmulti",
        "minmtu",
        "maxmtu",
        "addrgenmode",
        "numtxqueues",
        "numrxqueues",
        "gso_max_size",
        "gso_max_segs",
        "tso_max_size",
        "tso_max_segs",
        "gro_max_size",
        "gso_ipv4_max_size",
        "gro_ipv4_max_size",
        "parentbus",
        "parentdev",
        "portid",
        "portname",
        "switchid",
        "link-netnsid",
        "link-netns",
        "permaddr",
        "new-netnsid",
        "new-ifindex",
    }
)
_NOT_KIND_LINES = frozenset(
    {"altname", "alias", "vf", "prop", "inet", "inet6", "valid_lft", "RX:", "TX:", "RX", "TX"}
)


@dataclass(frozen=True, slots=True)
class Vxlan:
    """A VXLAN device's parameters (``vxlan ...`` text line or ``info_data`` JSON)."""

    id: int | None = None  # the VNI
    port: int | None = None  # destination UDP port (dstport)
    local: str | None = None
    remote: str | None = None  # unicast remote or multicast group
    dev: str | None = None  # underlay device
    learning: bool | None = None
    external: bool = False  # collect-metadata device (OVS's vxlan_sys_4789): no fixed VNI
    ttl: int | None = None  # 0 means "auto"/inherit
    ageing: int | None = None
    srcport: tuple[int, int] | None = None
    options: tuple[str, ...] = ()  # other words as printed (proxy, l2miss, udpcsum, ...)


# Not frozen: a frozen dataclass sets each field through object.__setattr__, which on
# a 1,000-node bundle (10^6 records) costs more than parsing. Treat it as read-only.
@dataclass(slots=True)
class Link:
    """One network interface as ``ip link`` shows it."""

    ifindex: int
    name: str
    kind: str | None = None  # veth, bridge, vxlan, bond ... (None: no linkinfo / no -d)
    slave_kind: str | None = None  # bridge, bond, openvswitch when enslaved
    mtu: int | None = None
    operstate: str | None = None
    flags: tuple[str, ...] = ()
    link_type: str | None = None  # ether, loopback, none, ipip, gre, "[65534]" ...
    address: str | None = None
    broadcast: str | None = None
    peer_address: str | None = None  # point-to-point links print "peer" instead of "brd"
    permaddr: str | None = None
    master: str | None = None
    link: str | None = None  # "@name": the peer/parent in this namespace
    link_index: int | None = None  # "@ifNN": the peer's ifindex, usually in another netns
    link_netnsid: int | None = None
    link_netns: str | None = None
    qdisc: str | None = None
    group: str | None = None
    txqlen: int | None = None
    promiscuity: int | None = None
    min_mtu: int | None = None
    max_mtu: int | None = None
    vxlan: Vxlan | None = None
    info_data: dict[str, Any] = field(default_factory=dict)
    slave_data: dict[str, Any] = field(default_factory=dict)
    altnames: tuple[str, ...] = ()
    alias: str | None = None
    stats: dict[str, dict[str, int]] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)
    extra: tuple[str, ...] = ()


def parse_ip_link(data: bytes, memo: LinkMemo | None = None) -> Parsed[Link]:
    """Either form: JSON when the output starts with ``[``, text otherwise. A caller that
    parses many outputs alike passes its `memo`."""
    if looks_like_json(data):
        return parse_ip_link_json(data, memo)
    return parse_ip_link_text(data)


class LinkMemo:
    """The last JSON element of each interface name a caller parsed more than once, and
    its link: 10^5 pod namespaces print the same `lo`, and an equal element makes an
    equal link (links are read-only), so each one after the first costs a comparison.
    A name seen once (each host veth's) is kept as a name only: holding every element
    of 1,000 hosts' ip link would cost ~100 MB."""

    __slots__ = ("last", "seen")
    NAMES = 256  # past this many names it starts again

    def __init__(self) -> None:
        self.last: dict[str, tuple[dict[str, Any], Link]] = {}
        self.seen: set[str] = set()

    def link(self, obj: dict[str, Any]) -> Link | None:
        name = obj.get("ifname")
        held = self.last.get(name) if isinstance(name, str) else None
        if held is not None and _equal(held[0], obj):
            return held[1]
        made = link_from_json(obj)
        if made is not None:
            if made.name in self.seen:
                if len(self.last) >= self.NAMES:
                    self.last.clear()
                self.last[made.name] = (obj, made)
            else:
                if len(self.seen) >= 16 * self.NAMES:
                    self.seen.clear()
                self.seen.add(made.name)
        return made


# --- JSON form -------------------------------------------------------------------------

_JSON_LINK_HANDLED = frozenset(
    {
        "ifindex",
        "ifname",
        "flags",
        "mtu",
        "operstate",
        "link_type",
        "address",
        "broadcast",
        "permaddr",
        "master",
        "link",
        "link_index",
        "link_netnsid",
        "qdisc",
        "group",
        "txqlen",
        "promiscuity",
        "min_mtu",
        "max_mtu",
        "linkinfo",
        "altnames",
        "ifalias",
        "stats64",
        "stats",
        "link_pointtopoint",
        "addr_info",
    }
)


def _equal(a: dict[str, Any], b: dict[str, Any]) -> bool:
    try:
        return a == b
    except RecursionError:  # a hostile element nested ~10^3 deep: no memo for it
        return False


def parse_ip_link_json(data: bytes, memo: LinkMemo | None = None) -> Parsed[Link]:
    """The ``-j`` form. A cut-off file yields the links before the cut, ``truncated`` set."""
    return records_from_json(data, link_from_json if memo is None else memo.link)


_LINK_TEXT = (
    ("operstate", "operstate"),
    ("link_type", "link_type"),
    ("address", "address"),
    ("permaddr", "permaddr"),
    ("master", "master"),
    ("link", "link"),
    ("qdisc", "qdisc"),
    ("group", "group"),
    ("ifalias", "alias"),
)
_LINK_NUMBERS = ("mtu", "link_index", "link_netnsid", "txqlen", "promiscuity", "min_mtu", "max_mtu")


def link_from_json(obj: dict[str, Any]) -> Link | None:
    """A Link from one element of ``ip -j link`` / ``ip -j addr``; None without index+name."""
    ifindex = to_int(obj.get("ifindex"))
    name = obj.get("ifname")
    if ifindex is None or not isinstance(name, str):
        return None
    fields: dict[str, Any] = {"ifindex": ifindex, "name": name}
    for key, attr in _LINK_TEXT:
        value = obj.get(key)
        if value is not None:
            # most values are already text; to_str only for the odd number or bool
            value = value if type(value) is str else to_str(value)
            if value is not None:
                fields[attr] = value
    if obj.get("link_pointtopoint"):
        fields["peer_address"] = to_str(obj.get("broadcast"))
    else:
        fields["broadcast"] = to_str(obj.get("broadcast"))
    for key in _LINK_NUMBERS:
        number = obj.get(key)
        if number is not None:
            number = number if type(number) is int else to_int(number)
            if number is not None:
                fields[key] = number
    flags = obj.get("flags")
    if isinstance(flags, list):
        fields["flags"] = tuple(str(f) for f in flags)
    altnames = obj.get("altnames")
    if isinstance(altnames, list):
        fields["altnames"] = tuple(str(a) for a in altnames)
    _json_linkinfo(obj.get("linkinfo"), fields)
    stats = obj.get("stats64", obj.get("stats"))
    if isinstance(stats, dict):
        fields["stats"] = {
            direction: {k: v for k, v in counters.items() if isinstance(v, int)}
            for direction, counters in stats.items()
            if isinstance(counters, dict)
        }
    fields["attrs"] = {k: v for k, v in obj.items() if k not in _JSON_LINK_HANDLED}
    return Link(**fields)


def _json_linkinfo(info: object, fields: dict[str, Any]) -> None:
    if not isinstance(info, dict):
        return
    kind = to_str(info.get("info_kind"))
    if kind is not None:
        fields["kind"] = kind
    slave_kind = to_str(info.get("info_slave_kind"))
    if slave_kind is not None:
        fields["slave_kind"] = slave_kind
    data = info.get("info_data")
    if isinstance(data, dict):
        fields["info_data"] = data
        if kind == "vxlan":
            fields["vxlan"] = _vxlan_from_json(data)
    slave_data = info.get("info_slave_data")
    if isinstance(slave_data, dict):
        fields["slave_data"] = slave_data


_VXLAN_JSON_KNOWN = frozenset(
    {"id", "port", "local", "local6", "remote", "remote6", "group", "group6", "link"}
    | {"learning", "external", "collect_metadata", "ttl", "ageing", "port_range"}
)


def _vxlan_from_json(data: dict[str, Any]) -> Vxlan:
    remote = None
    for key in ("remote", "remote6", "group", "group6"):
        remote = remote or to_str(data.get(key))
    srcport = None
    port_range = data.get("port_range")
    if isinstance(port_range, dict):
        low, high = to_int(port_range.get("low")), to_int(port_range.get("high"))
        if low is not None and high is not None:
            srcport = (low, high)
    learning = data.get("learning")
    options = tuple(
        key for key, value in data.items() if key not in _VXLAN_JSON_KNOWN and value is True
    )
    if data.get("udp_csum") is False:  # the text form's word for it: rules ask for either
        options += ("noudpcsum",)
    return Vxlan(
        id=to_int(data.get("id")),
        port=to_int(data.get("port")),
        local=to_str(data.get("local")) or to_str(data.get("local6")),
        remote=remote,
        dev=to_str(data.get("link")),
        learning=learning if isinstance(learning, bool) else None,
        external=bool(data.get("external") or data.get("collect_metadata")),
        ttl=to_int(data.get("ttl")),
        ageing=to_int(data.get("ageing")),
        srcport=srcport,
        options=options,
    )


# --- text form -------------------------------------------------------------------------


def parse_ip_link_text(data: bytes) -> Parsed[Link]:
    """The text form: a ``N: name: <FLAGS> ...`` line, then indented lines per interface."""
    records: list[Link] = []
    unparsed: list[str] = []
    for block in split_blocks(lines_of(data), unparsed):
        link, rest = link_from_text_block(block)
        if link is None:
            unparsed.extend(block)
            continue
        unparsed.extend(rest)
        records.append(link)
    return Parsed(tuple(records), tuple(unparsed))


def is_header(line: str) -> bool:
    """``12: name: ...``: the first line of an interface block."""
    colon = line.find(": ")
    return 0 < colon < 12 and line[:colon].isdecimal() and line[0] not in " \t"


def split_blocks(lines: list[str], unparsed: list[str]) -> list[list[str]]:
    """Interface blocks (header + its indented lines); stray lines go to ``unparsed``."""
    blocks: list[list[str]] = []
    current: list[str] | None = None
    for line in lines:
        if not line.strip():
            continue
        if is_header(line):
            current = [line]
            blocks.append(current)
        elif line[0] in " \t" and current is not None:
            current.append(line)
        else:
            current = None if line[0] not in " \t" else current
            unparsed.append(line)
    return blocks


class _TextLink:
    """Mutable scratch for one text block; turned into a frozen Link at the end."""

    __slots__ = ("altnames", "extra", "fields", "info_data", "slave_data", "stats", "vxlan")

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields
        self.info_data: dict[str, Any] = {}
        self.slave_data: dict[str, Any] = {}
        self.stats: dict[str, dict[str, int]] = {}
        self.altnames: list[str] = []
        self.extra: list[str] = []
        self.vxlan: Vxlan | None = None


def link_from_text_block(block: list[str]) -> tuple[Link | None, list[str]]:
    """A Link from a block, and the block's lines it left to the caller (``inet`` lines,
    which ``ip addr`` reads). ``(None, ...)`` when the header is unreadable."""
    fields = _header(block[0])
    if fields is None:
        return None, block
    scratch = _TextLink(fields)
    leftover: list[str] = []
    pending_stats: tuple[str, list[str]] | None = None
    for line in block[1:]:
        tokens = line.split()
        lead = tokens[0]
        if pending_stats is not None:
            if all(t.isdecimal() for t in tokens):
                direction, names = pending_stats
                scratch.stats.setdefault(direction, {}).update(
                    zip(names, (int(t) for t in tokens), strict=False)
                )
                pending_stats = None
                continue
            pending_stats = None
        if lead.startswith("link/"):
            _link_line(tokens, scratch)
        elif lead in ("RX:", "TX:", "RX", "TX"):
            pending_stats = _stats_header(tokens)
        elif lead == "altname" and len(tokens) > 1:
            scratch.altnames.append(tokens[1])
        elif lead == "alias":
            fields["alias"] = line.split("alias", 1)[1].strip()
        elif lead in ("inet", "inet6", "valid_lft") or lead in _NOT_KIND_LINES:
            leftover.append(line)
        else:
            _kind_line(tokens, scratch)
    if scratch.altnames:
        fields["altnames"] = tuple(scratch.altnames)
    if scratch.info_data:
        fields["info_data"] = scratch.info_data
    if scratch.slave_data:
        fields["slave_data"] = scratch.slave_data
    if scratch.stats:
        fields["stats"] = scratch.stats
    if scratch.extra:
        fields["extra"] = tuple(scratch.extra)
    if scratch.vxlan is not None:
        fields["vxlan"] = scratch.vxlan
    return Link(**fields), leftover


_HEADER_STR = MappingProxyType(
    {"qdisc": "qdisc", "master": "master", "state": "operstate", "group": "group"}
)
_HEADER_INT = MappingProxyType({"mtu": "mtu", "qlen": "txqlen"})


def _header(line: str) -> dict[str, Any] | None:
    tokens = line.split()
    if len(tokens) < 2 or not tokens[0].endswith(":"):
        return None
    ifindex = to_int(tokens[0][:-1])
    name_token = tokens[1]
    if ifindex is None or not name_token.endswith(":") or len(name_token) < 2:
        return None
    name, _, peer = name_token[:-1].partition("@")
    if not name:
        return None
    fields: dict[str, Any] = {"ifindex": ifindex, "name": name}
    if peer:
        # iproute2 prints "ifNN" when it cannot name the peer (another namespace).
        if peer.startswith("if") and peer[2:].isdecimal():
            fields["link_index"] = int(peer[2:])
        elif peer != "NONE":
            fields["link"] = peer
    i = 2
    if i < len(tokens) and tokens[i].startswith("<") and tokens[i].endswith(">"):
        fields["flags"] = tuple(f for f in tokens[i][1:-1].split(",") if f)
        i += 1
    attrs: dict[str, Any] = {}
    extra: list[str] = []
    while i < len(tokens):
        key = tokens[i]
        value = tokens[i + 1] if i + 1 < len(tokens) else None
        if value is None:
            extra.append(key)
            break
        if key in _HEADER_STR:
            fields[_HEADER_STR[key]] = value
        elif key in _HEADER_INT and to_int(value) is not None:
            fields[_HEADER_INT[key]] = int(value)
        else:
            attrs[key] = value
        i += 2
    if attrs:
        fields["attrs"] = attrs
    if extra:
        fields["extra"] = tuple(extra)
    return fields


def _link_line(tokens: list[str], scratch: _TextLink) -> None:
    fields = scratch.fields
    fields["link_type"] = tokens[0][5:]
    i = 1
    if i < len(tokens) and tokens[i] not in ("brd", "peer") and tokens[i] not in COMMON_KEYS:
        fields["address"] = tokens[i]
        i += 1
    while i < len(tokens):
        key = tokens[i]
        if key in ("brd", "peer") and i + 1 < len(tokens):
            fields["broadcast" if key == "brd" else "peer_address"] = tokens[i + 1]
            i += 2
            continue
        i = _common_pair(tokens, i, scratch)


def _common_pair(tokens: list[str], i: int, scratch: _TextLink) -> int:
    key = tokens[i]
    if i + 1 >= len(tokens):
        scratch.extra.append(key)
        return i + 1
    value = tokens[i + 1]
    fields = scratch.fields
    if key == "link-netnsid" and to_int(value) is not None:
        fields["link_netnsid"] = int(value)
    elif key == "link-netns":
        fields["link_netns"] = value
    elif key == "permaddr":
        fields["permaddr"] = value
    elif key in ("promiscuity", "minmtu", "maxmtu") and to_int(value) is not None:
        attr = {"promiscuity": "promiscuity", "minmtu": "min_mtu", "maxmtu": "max_mtu"}[key]
        fields[attr] = int(value)
    else:
        fields.setdefault("attrs", {})[key] = value
    return i + 2


def _stats_header(tokens: list[str]) -> tuple[str, list[str]]:
    # "RX:  bytes packets ..." or, with -s -s, "RX errors: length crc ...".
    direction = tokens[0].rstrip(":").lower()
    names = tokens[1:]
    if names and names[0].endswith(":"):
        direction = f"{direction}_{names[0].rstrip(':')}"
        names = names[1:]
    return direction, names


def _kind_line(tokens: list[str], scratch: _TextLink) -> None:
    lead = tokens[0]
    if lead in COMMON_KEYS:
        i = 0
        while i < len(tokens):
            i = _common_pair(tokens, i, scratch)
        return
    end = len(tokens)
    for j, tok in enumerate(tokens):
        if j and tok in COMMON_KEYS:
            end = j
            break
    specific = tokens[1:end]
    fields = scratch.fields
    if lead.endswith("_slave"):
        fields["slave_kind"] = lead[: -len("_slave")]
        scratch.slave_data.update(_pairs(specific))
    elif "kind" not in fields:
        fields["kind"] = lead
        scratch.info_data.update(_pairs(specific))
        if lead == "vxlan":
            scratch.vxlan = _vxlan_from_text(specific)
    else:
        scratch.extra.extend(tokens[:end])
    i = end
    while i < len(tokens):
        i = _common_pair(tokens, i, scratch)


# Words iproute2 prints alone on kind lines (tunnel and VXLAN switches); every other word
# on those lines is a key followed by its value.
_LONE_WORDS = frozenset(
    {
        "nolearning",
        "learning",
        "proxy",
        "rsc",
        "l2miss",
        "l3miss",
        "udpcsum",
        "noudpcsum",
        "udp6zerocsumtx",
        "noudp6zerocsumtx",
        "udp6zerocsumrx",
        "noudp6zerocsumrx",
        "remcsumtx",
        "noremcsumtx",
        "remcsumrx",
        "noremcsumrx",
        "external",
        "gbp",
        "gpe",
        "vnifilter",
        "localbypass",
        "nolocalbypass",
        "nopmtudisc",
        "pmtudisc",
        "icsum",
        "ocsum",
        "iseq",
        "oseq",
        "ignore-df",
        "noignore-df",
        "encap-csum",
        "noencap-csum",
        "encap-udp6-csum",
        "noencap-udp6-csum",
        "encap-remcsum",
        "noencap-remcsum",
        "nopromisc",
    }
)


def _pairs(tokens: list[str]) -> dict[str, Any]:
    """Key/value reading of a kind line; lone switch words map to True."""
    out: dict[str, Any] = {}
    i = 0
    n = len(tokens)
    while i < n:
        key = tokens[i]
        if key == "srcport" and i + 2 < n:
            out[key] = f"{tokens[i + 1]} {tokens[i + 2]}"
            i += 3
        elif key in _LONE_WORDS or i + 1 >= n:
            out[key] = True
            i += 1
        else:
            out[key] = tokens[i + 1]
            i += 2
    return out


_VXLAN_VALUE_KEYS = frozenset(
    {"id", "local", "remote", "group", "dev", "dstport", "ttl", "tos", "ageing", "maxaddr"}
    | {"df", "flowlabel", "hoplimit", "label"}
)


def _vxlan_from_text(tokens: list[str]) -> Vxlan:
    values: dict[str, str] = {}
    options: list[str] = []
    srcport: tuple[int, int] | None = None
    learning: bool | None = True  # iproute2 prints only "nolearning"
    external = False
    i = 0
    n = len(tokens)
    while i < n:
        tok = tokens[i]
        if tok in _VXLAN_VALUE_KEYS and i + 1 < n:
            values[tok] = tokens[i + 1]
            i += 2
        elif tok == "srcport" and i + 2 < n:
            low, high = to_int(tokens[i + 1]), to_int(tokens[i + 2])
            if low is not None and high is not None:
                srcport = (low, high)
            i += 3
        else:
            if tok == "nolearning":
                learning = False
            elif tok == "learning":
                learning = True
            elif tok == "external":
                external = True
            else:
                options.append(tok)
            i += 1
    ttl_text = values.get("ttl") or values.get("hoplimit")
    ttl = 0 if ttl_text in ("auto", "inherit") else to_int(ttl_text)
    return Vxlan(
        id=to_int(values.get("id")),
        port=to_int(values.get("dstport")),
        local=values.get("local"),
        remote=values.get("remote") or values.get("group"),
        dev=values.get("dev"),
        learning=learning,
        external=external,
        ttl=ttl,
        ageing=to_int(values.get("ageing")),
        srcport=srcport,
        options=tuple(options),
    )
