"""Parses ``ip route show table all`` / ``ip -6 route show table all`` (also ``show cache``).

Forms: the text form of any iproute2 (with or without ``-d``; busybox's ``ip route`` too)
and the ``-j`` JSON form (``ip -d -j route show table all``). Both give the same ``Route``
record, with iproute2's own defaults filled in where the text form leaves a value out
(type ``unicast``, table ``main``, proto ``boot``, scope ``global``), so the model does not
care which form a bundle holds.

Nothing is dropped: every route type (unicast, local, broadcast, multicast, anycast,
blackhole, unreachable, prohibit, throw, nat, xresolve), multipath ``nexthop`` lines,
IPv6/IPv4 ``cache`` lines, ``nh_info`` lines, flags, metrics with ``lock``, ``encap``.
Tokens this parser does not know land in ``Route.extra`` in the order printed; lines it
cannot place land in ``Parsed.unparsed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from sys import intern
from types import MappingProxyType
from typing import Any

from needle.analyzer.parsers.common import (
    Parsed,
    all_text,
    json_dumps_safe,
    lines_of,
    looks_like_json,
    read_json_arrays,
    shared,
    shared_tuple,
    to_int,
    to_str,
)
from needle.analyzer.parsers.elements import ElementMemo

ROUTE_TYPES = frozenset(
    {
        "unicast",
        "local",
        "broadcast",
        "multicast",
        "anycast",
        "blackhole",
        "unreachable",
        "prohibit",
        "throw",
        "nat",
        "xresolve",
        "unspec",
    }
)

# Flags iproute2 prints as bare words (RTNH_F_* and RTM_F_*), on routes and on nexthops.
ROUTE_FLAGS = frozenset(
    {
        "dead",
        "onlink",
        "pervasive",
        "offload",
        "trap",
        "notify",
        "linkdown",
        "unresolved",
        "rt_offload",
        "rt_trap",
        "rt_offload_failed",
    }
)

# RTAX_* metrics, by the name the text form prints.
METRIC_NAMES = frozenset(
    {
        "mtu",
        "window",
        "rtt",
        "rttvar",
        "ssthresh",
        "cwnd",
        "advmss",
        "reordering",
        "hoplimit",
        "initcwnd",
        "features",
        "rto_min",
        "initrwnd",
        "quickack",
        "congctl",
        "fastopen_no_cookie",
    }
)
_TIME_METRICS = frozenset({"rtt", "rttvar", "rto_min"})

# Where an encap's own tokens end in the text form: the route keywords printed after it.
_ENCAP_END = frozenset(
    {"via", "dev", "table", "proto", "scope", "metric", "pref", "expires", "nexthop", "weight"}
    | ROUTE_FLAGS
)
# Same for the JSON form, where iproute2 writes the encap's keys into the route object.
_JSON_ENCAP_END = frozenset(
    {
        "gateway",
        "via",
        "dev",
        "table",
        "protocol",
        "scope",
        "prefsrc",
        "metric",
        "flags",
        "metrics",
        "pref",
        "expires",
        "nexthops",
        "nh_info",
        "flow",
        "cache",
        "weight",
    }
)


# One shared, read-only empty mapping: most routes have no metrics, and a fresh dict per
# route would cost an allocation each on tables of 100,000 routes.
NO_METRICS: Mapping[str, int | str] = MappingProxyType({})


@dataclass(slots=True)
class Nexthop:
    """One leg of a multipath route (a ``nexthop`` line or a JSON ``nexthops`` element)."""

    gateway: str | None = None
    dev: str | None = None
    weight: int | None = None
    flags: tuple[str, ...] = ()
    via_family: str | None = None  # "inet6" for an IPv6 gateway of an IPv4 route (RTA_VIA)
    encap: tuple[str, ...] = ()
    realms: str | None = None
    extra: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RouteDetail:
    """The attributes few routes carry. Kept out of Route itself so that the common route
    costs less to build and to keep alive (fewer slots for the cyclic GC to walk, on
    tables of 100,000 routes); Route exposes each of them as a property of the same name."""

    via_family: str | None = None  # "inet6" for an IPv6 gateway of an IPv4 route (RTA_VIA)
    from_prefix: str | None = None  # IPv6 source-specific routing (text "from")
    tos: str | None = None
    locked: tuple[str, ...] = ()  # metrics printed with "lock"
    error: int | None = None
    realms: str | None = None
    nhid: int | None = None
    encap: tuple[str, ...] = ()  # encap type first, then its words as printed
    cache_flags: tuple[str, ...] = ()
    nh_info: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()  # words this parser does not know, in printed order


NO_DETAIL = RouteDetail()
DETAIL_FIELDS = frozenset(RouteDetail.__dataclass_fields__)


@dataclass(slots=True)
class Route:
    """One route as ``ip route`` prints it, whichever form it came from.

    ``dst`` is as printed: ``default``, a prefix, or a bare address (a host route).
    ``metric`` is the route priority; ``metrics`` the RTAX values (``mtu``, ``advmss``,
    ``rtt`` in ms, ``congctl``, ``features`` ...). Absent values take iproute2's defaults.

    Not frozen, unlike most records here: a frozen dataclass sets each field through
    ``object.__setattr__``, which made building a route cost more than parsing it. Treat
    routes as read-only all the same.
    """

    dst: str
    type: str = "unicast"
    table: str = "main"
    dev: str | None = None
    gateway: str | None = None
    src: str | None = None  # preferred source (text "src", JSON "prefsrc")
    proto: str = "boot"
    scope: str = "global"
    metric: int | None = None
    flags: tuple[str, ...] = ()  # onlink, linkdown, dead, pervasive, offload ...
    metrics: Mapping[str, int | str] = field(default_factory=lambda: NO_METRICS)
    pref: str | None = None
    expires: int | None = None  # seconds
    nexthops: tuple[Nexthop, ...] = ()
    cached: bool = False  # a route-cache / PMTU exception entry
    detail: RouteDetail = NO_DETAIL

    @property
    def family(self) -> str | None:
        """``inet`` or ``inet6``, from the addresses; None when nothing tells (a
        ``default`` route with neither gateway nor source)."""
        return _family(self.dst, self.gateway, self.src, self.detail, self.nexthops)

    @property
    def via_family(self) -> str | None:
        return self.detail.via_family

    @property
    def from_prefix(self) -> str | None:
        return self.detail.from_prefix

    @property
    def tos(self) -> str | None:
        return self.detail.tos

    @property
    def locked(self) -> tuple[str, ...]:
        return self.detail.locked

    @property
    def error(self) -> int | None:
        return self.detail.error

    @property
    def realms(self) -> str | None:
        return self.detail.realms

    @property
    def nhid(self) -> int | None:
        return self.detail.nhid

    @property
    def encap(self) -> tuple[str, ...]:
        return self.detail.encap

    @property
    def cache_flags(self) -> tuple[str, ...]:
        return self.detail.cache_flags

    @property
    def nh_info(self) -> tuple[str, ...]:
        return self.detail.nh_info

    @property
    def extra(self) -> tuple[str, ...]:
        return self.detail.extra


def _family(
    dst: str,
    gateway: str | None,
    src: str | None,
    detail: RouteDetail,
    nexthops: tuple[Nexthop, ...],
) -> str | None:
    for value in (dst, None if detail.via_family else gateway, src, detail.from_prefix):
        if value and value != "default":
            if ":" in value:
                return "inet6"
            if "." in value:
                return "inet"
    for nexthop in nexthops:
        if nexthop.gateway and not nexthop.via_family:
            return "inet6" if ":" in nexthop.gateway else "inet"
    return None


def make_route(fields: dict[str, Any]) -> Route:
    """A Route from a flat mapping of field names (the detail ones included)."""
    detail = {name: fields.pop(name) for name in list(fields) if name in DETAIL_FIELDS}
    if detail:
        fields["detail"] = RouteDetail(**detail)
    return Route(**fields)


def parse_ip_route(data: bytes) -> Parsed[Route]:
    """Either form: JSON when the output starts with ``[``, text otherwise."""
    if looks_like_json(data):
        return parse_ip_route_json(data)
    return parse_ip_route_text(data)


# --- text form -------------------------------------------------------------------------

# Token kinds for the one-pass scanner (a dict lookup per token, no regular expressions).
_STR, _INT, _FLAG, _METRIC, _VIA, _ENCAP, _CACHE, _NEXTHOP, _EXPIRES, _REALM = range(10)
_KINDS: Mapping[str, int] = MappingProxyType(
    {
        "dev": _STR,
        "table": _STR,
        "proto": _STR,
        "scope": _STR,
        "src": _STR,
        "from": _STR,
        "tos": _STR,
        "dsfield": _STR,
        "pref": _STR,
        "metric": _INT,
        "error": _INT,
        "nhid": _INT,
        "weight": _INT,
        "via": _VIA,
        "encap": _ENCAP,
        "cache": _CACHE,
        "nexthop": _NEXTHOP,
        "expires": _EXPIRES,
        "realm": _REALM,
        "realms": _REALM,
        **dict.fromkeys(ROUTE_FLAGS, _FLAG),
        **dict.fromkeys(METRIC_NAMES, _METRIC),
    }
)
_FIELD_OF = MappingProxyType({"from": "from_prefix", "dsfield": "tos"})
_NEXTHOP_KEYS = frozenset({"via", "dev", "weight", "encap", "realm", "realms"}) | ROUTE_FLAGS


def parse_ip_route_text(data: bytes) -> Parsed[Route]:
    """The text form: one route per line, continuation lines start with whitespace."""
    records: list[Route] = []
    unparsed: list[str] = []
    head: str | None = None  # the pending route's first line
    conts: list[str] | None = None  # and its continuation lines, when it has any
    for line in [*lines_of(data), ""]:  # the empty line at the end flushes the last route
        if line[:1] in _INDENT:
            if line.isspace():
                continue
            if head is None:
                unparsed.append(line)
            elif conts is None:
                conts = [line]
            else:
                conts.append(line)
            continue
        if head is not None:
            tokens = head.split()
            route = _route_from_lines(tokens, conts) if tokens else None
            if route is not None:
                records.append(route)
            elif tokens:  # (a line of other whitespace, a form feed, is not worth a report)
                unparsed.append(head)
                unparsed.extend(conts or ())
            conts = None
        head = line or None
    return Parsed(tuple(records), tuple(unparsed))


_INDENT = (" ", "\t")
_ADDRESS_CHARS = "0123456789abcdefABCDEF:./"
_FAMILY_WORDS = ("inet", "inet6")
# Shared one-flag tuples: a route's flags are usually one word (onlink, linkdown), and a
# shared constant costs no allocation per route.
_ONE_FLAG = MappingProxyType({flag: (flag,) for flag in ROUTE_FLAGS})


def _route_from_lines(head: list[str], conts: list[str] | None) -> Route | None:
    """A route from its first line's words and its continuation lines; None when the first
    line is not a route.

    The words most routes are made of are read here, into locals, with one comparison
    chain per word and no scratch objects. At the first thing this fast reader does not
    know it gives up, and _general_route reads the whole route again: so the fast reader
    only has to be right on what it accepts, never complete (a property test holds the two
    readers to the same result)."""
    first = head[0]
    if first in ROUTE_TYPES:
        if len(head) < 2:
            return None
        rtype, dst, i = first, head[1], 2
    else:
        rtype, dst, i = "unicast", first, 1
    if dst != "default" and (dst.strip(_ADDRESS_CHARS) or ("." not in dst and ":" not in dst)):
        return None  # only address characters and a separator: rejects "Error:" and such
    start = i
    table, proto, scope = "main", "boot", "global"
    dev = gateway = src = pref = None
    metric: int | None = None
    expires: int | None = None
    # Tuples grown only when needed: most routes have no flags, so no allocation at all.
    flags: tuple[str, ...] = ()
    locked: tuple[str, ...] = ()
    metrics: dict[str, int | str] | None = None
    n = len(head)
    while i < n:
        tok = head[i]
        if i + 1 == n:
            if tok in ROUTE_FLAGS:
                flags = (*flags, tok) if flags else _ONE_FLAG[tok]
                i += 1
                continue
            break
        value = head[i + 1]
        # Most frequent first: nearly every route has a dev, most a gateway.
        if tok == "dev":
            dev = value
        elif tok == "via":
            if value in _FAMILY_WORDS:
                break
            gateway = value
        elif tok == "proto":
            proto = value
        elif tok == "scope":
            scope = value
        elif tok == "src":
            src = value
        elif tok == "metric":
            if not (value.isascii() and value.isdigit()):
                break
            metric = int(value)
        elif tok == "table":
            table = value
        elif tok in ROUTE_FLAGS:
            flags = (*flags, tok) if flags else _ONE_FLAG[tok]
            i += 1
            continue
        elif tok == "pref":
            pref = value
        elif tok == "expires":
            expires = _seconds(value)
            if expires is None:
                break
        elif tok in METRIC_NAMES:
            if value == "lock":
                if i + 2 == n:
                    break
                locked += (tok,)
                i += 1
                value = head[i + 1]
            number = _metric_value(tok, value)
            if number is None:
                break
            if metrics is None:
                metrics = {}
            metrics[tok] = number
        else:
            break
        i += 2
    if i < n:
        return _general_route(dst, rtype, head, start, conts)
    nexthops: tuple[Nexthop, ...] = ()
    cached = False
    cache_flags: tuple[str, ...] = ()
    if conts is not None:
        legs: list[Nexthop] = []
        for line in conts:
            tokens = line.split()
            lead = tokens[0]
            if lead == "nexthop":
                nexthop = _fast_nexthop(tokens)
                if nexthop is None:
                    return _general_route(dst, rtype, head, start, conts)
                legs.append(nexthop)
                continue
            cache = _fast_cache(tokens) if lead == "cache" else None
            if cache is None:
                return _general_route(dst, rtype, head, start, conts)
            cached = True
            more_flags, cache_expires, cache_metrics = cache
            cache_flags += more_flags
            expires = cache_expires if cache_expires is not None else expires
            if cache_metrics:
                metrics = {**(metrics or {}), **cache_metrics}
        nexthops = tuple(legs)
    # Positional: half the cost of keywords, which shows on 100,000-route tables.
    # The order is Route's field order.
    return Route(
        dst, rtype, table, dev, gateway, src, proto, scope, metric, flags,
        NO_METRICS if metrics is None else metrics, pref, expires, nexthops, cached,
        NO_DETAIL if not (locked or cache_flags) else RouteDetail(
            locked=locked, cache_flags=cache_flags
        ),
    )  # fmt: skip


def _seconds(value: str) -> int | None:
    digits = value[:-3] if value.endswith("sec") else value
    return int(digits) if digits.isascii() and digits.isdigit() else None


def _metric_value(name: str, raw: str) -> int | str | None:
    if name in _TIME_METRICS:
        return _milliseconds(raw)
    if name in ("congctl", "features"):
        return raw
    return int(raw) if raw.isascii() and raw.isdigit() else None


def _fast_nexthop(tokens: list[str]) -> Nexthop | None:
    """``nexthop via X dev Y weight N [flags]``, the usual shape; None for anything else
    (encap, realms, ``via inet6``), which the general reader handles."""
    gateway = dev = None
    weight: int | None = None
    flags: list[str] = []
    n = len(tokens)
    i = 1
    while i < n:
        tok = tokens[i]
        if tok in ROUTE_FLAGS:
            flags.append(tok)
            i += 1
            continue
        if i + 1 == n:
            return None
        value = tokens[i + 1]
        if tok == "via" and value not in _FAMILY_WORDS:
            gateway = value
        elif tok == "dev":
            dev = value
        elif tok == "weight" and value.isascii() and value.isdigit():
            weight = int(value)
        else:
            return None
        i += 2
    return Nexthop(gateway, dev, weight, tuple(flags))


def _fast_cache(
    tokens: list[str],
) -> tuple[tuple[str, ...], int | None, dict[str, int | str]] | None:
    """``cache [<flags>] [expires Nsec] [mtu N ...]``; None for anything else."""
    cache_flags: tuple[str, ...] = ()
    expires: int | None = None
    metrics: dict[str, int | str] = {}
    n = len(tokens)
    i = 1
    if i < n and tokens[i][:1] == "<" and tokens[i][-1:] == ">":
        cache_flags = tuple(f for f in tokens[i][1:-1].split(",") if f)
        i += 1
    while i + 1 < n:
        tok, value = tokens[i], tokens[i + 1]
        if tok == "expires":
            expires = _seconds(value)
            if expires is None:
                return None
        elif tok in METRIC_NAMES and value != "lock":
            number = _metric_value(tok, value)
            if number is None:
                return None
            metrics[tok] = number
        else:
            return None
        i += 2
    if i != n:
        return None
    return cache_flags, expires, metrics


def _general_route(
    dst: str,
    rtype: str,
    head: list[str],
    start: int,
    conts: list[str] | None,
) -> Route:
    """Every keyword iproute2 prints, and unknown words kept in ``extra``."""
    fields: dict[str, Any] = {"dst": dst, "type": rtype}
    acc = _Accumulator()
    _scan(head, start, fields, acc)
    for line in conts or ():
        tokens = line.split()
        if tokens[0] == "nh_info":
            acc.nh_info.extend(tokens[1:])
        else:
            # nexthop and cache lines, and anything else indented: same keywords apply.
            _scan(tokens, 0, fields, acc)
    acc.finish(fields, [])
    return make_route(fields)


class _Accumulator:
    """Per-route scratch state while its lines are scanned (mutable, never escapes)."""

    __slots__ = (
        "cache_flags",
        "cached",
        "encap",
        "extra",
        "flags",
        "locked",
        "metrics",
        "nexthop",
        "nexthops",
        "nh_info",
    )

    def __init__(self) -> None:
        self.flags: list[str] = []
        self.metrics: dict[str, int | str] = {}
        self.locked: list[str] = []
        self.encap: list[str] = []
        self.nexthops: list[Nexthop] = []
        self.nexthop: dict[str, Any] | None = None
        self.cached = False
        self.cache_flags: list[str] = []
        self.nh_info: list[str] = []
        self.extra: list[str] = []

    def finish(self, fields: dict[str, Any], flags: list[str]) -> None:
        """Moves what was gathered into the route's fields."""
        self.finish_nexthop()
        flags.extend(self.flags)
        if flags:
            fields["flags"] = tuple(flags)
        if self.metrics:
            fields["metrics"] = self.metrics
        if self.locked:
            fields["locked"] = tuple(self.locked)
        if self.encap:
            fields["encap"] = tuple(self.encap)
        if self.nexthops:
            fields["nexthops"] = tuple(self.nexthops)
        if self.cached:
            fields["cached"] = True
        if self.cache_flags:
            fields["cache_flags"] = tuple(self.cache_flags)
        if self.nh_info:
            fields["nh_info"] = tuple(self.nh_info)
        if self.extra:
            fields["extra"] = tuple(self.extra)

    def finish_nexthop(self) -> None:
        if self.nexthop is not None:
            extra = self.nexthop.get("extra")
            if extra is not None:
                self.nexthop["extra"] = tuple(extra)
            self.nexthops.append(Nexthop(**self.nexthop))
            self.nexthop = None


def _scan(tokens: list[str], i: int, fields: dict[str, Any], acc: _Accumulator) -> None:
    """Reads keyword tokens from position i into the route (or its current nexthop)."""
    n = len(tokens)
    while i < n:
        tok = tokens[i]
        kind = _KINDS.get(tok)
        if kind is None:
            if acc.nexthop is not None:
                acc.nexthop.setdefault("extra", []).append(tok)
            else:
                acc.extra.append(tok)
            i += 1
            continue
        if kind == _NEXTHOP:
            acc.finish_nexthop()
            acc.nexthop = {}
            i += 1
            continue
        target = fields
        nexthop = acc.nexthop
        if nexthop is not None and tok in _NEXTHOP_KEYS:
            target = nexthop
        if kind == _FLAG:
            if target is fields:
                acc.flags.append(tok)
            else:
                target["flags"] = (*target.get("flags", ()), tok)
            i += 1
            continue
        if kind == _CACHE:
            acc.cached = True
            i += 1
            if i < n and tokens[i][:1] == "<" and tokens[i][-1:] == ">":
                acc.cache_flags.extend(f for f in tokens[i][1:-1].split(",") if f)
                i += 1
            continue
        if kind == _ENCAP:
            i = _scan_encap(tokens, i + 1, target, acc)
            continue
        if i + 1 >= n:
            # A keyword with its value cut off: keep the word rather than guess.
            _keep(tok, None, acc)
            return
        value = tokens[i + 1]
        if kind == _STR:
            target[_FIELD_OF.get(tok, tok)] = value
            i += 2
        elif kind == _INT:
            number = to_int(value)
            if number is None or (tok == "weight" and target is fields):
                _keep(tok, value, acc)
            else:
                target[tok] = number
            i += 2
        elif kind == _VIA:
            if value in ("inet", "inet6") and i + 2 < n:
                target["via_family"] = value
                target["gateway"] = tokens[i + 2]
                i += 3
            else:
                target["gateway"] = value
                i += 2
        elif kind == _METRIC:
            i = _scan_metric(tokens, i, acc)
        elif kind == _EXPIRES:
            seconds = to_int(value[:-3] if value.endswith("sec") else value)
            if seconds is None:
                _keep(tok, value, acc)
            else:
                fields["expires"] = seconds
            i += 2
        else:  # _REALM
            target["realms"] = value
            i += 2


def _keep(tok: str, value: str | None, acc: _Accumulator) -> None:
    extra = acc.nexthop.setdefault("extra", []) if acc.nexthop is not None else acc.extra
    extra.append(tok)
    if value is not None:
        extra.append(value)


def _scan_metric(tokens: list[str], i: int, acc: _Accumulator) -> int:
    name = tokens[i]
    j = i + 1
    n = len(tokens)
    if tokens[j] == "lock":
        acc.locked.append(name)
        j += 1
        if j >= n:
            return j
    raw = tokens[j]
    value = _metric_value(name, raw)
    acc.metrics[name] = raw if value is None else value
    return j + 1


def _milliseconds(raw: str) -> int | None:
    # iproute2 prints rtt-like metrics as "10ms", or "1.5s" from one second on.
    try:
        if raw.endswith("ms"):
            return int(raw[:-2])
        if raw.endswith("s"):
            return round(float(raw[:-1]) * 1000)
    except (ValueError, OverflowError):
        return None
    return to_int(raw)


def _scan_encap(tokens: list[str], i: int, target: dict[str, Any], acc: _Accumulator) -> int:
    n = len(tokens)
    collected: list[str] = []
    while i < n and tokens[i] not in _ENCAP_END:
        collected.append(tokens[i])
        i += 1
    if target is acc.nexthop:
        target["encap"] = tuple(collected)
    else:
        acc.encap.extend(collected)
    return i


# --- JSON form -------------------------------------------------------------------------


def _route_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Object hook for route JSON: iproute2 writes an encap's keys (``dst``, ``src``, ...)
    straight into the route object, so a plain dict would let the encap's ``dst`` overwrite
    the route's. Keys after ``encap`` are kept apart until a route key comes back."""
    out: dict[str, Any] = {}
    encap: list[tuple[str, Any]] | None = None
    inside = False
    for key, value in pairs:
        if key == "encap" and encap is None and isinstance(value, str):
            encap = [("type", value)]
            inside = True
            continue
        if inside:
            if key not in _JSON_ENCAP_END:
                encap.append((key, value))  # type: ignore[union-attr]
                continue
            inside = False
        out[key] = value
    if encap is not None:
        out["\x00encap"] = encap
    return out


def parse_ip_route_json(data: bytes) -> Parsed[Route]:
    """The ``-j`` form. A cut-off file yields the routes before the cut, ``truncated`` set."""
    raw = data if isinstance(data, str) else bytes(data)
    needs_hook = ('"encap"' if isinstance(raw, str) else b'"encap"') in raw
    if not needs_hook and type(raw) is bytes:
        remembered = _ELEMENTS.parse(raw)
        if remembered is not None:
            return remembered
    arrays = read_json_arrays(raw, _route_pairs if needs_hook else None)
    records: list[Route] = []
    unparsed = list(arrays.unparsed)
    for item in arrays.items:
        route = _route_from_json(item) if isinstance(item, dict) else None
        if route is None:
            unparsed.append(json_dumps_safe(item))
        else:
            records.append(route)
    return Parsed(tuple(records), tuple(unparsed), arrays.truncated)


_JSON_STR_FIELDS = MappingProxyType(
    {
        "dev": "dev",
        "table": "table",
        "protocol": "proto",
        "scope": "scope",
        "prefsrc": "src",
        "from": "from_prefix",
        "tos": "tos",
        "dsfield": "tos",
        "pref": "pref",
    }
)
_JSON_INT_FIELDS = ("metric", "expires", "error", "nhid")
_JSON_HANDLED = frozenset(
    {"type", "dst", "gateway", "via", "flags", "metrics", "nexthops", "nh_info", "flow"}
    | set(_JSON_STR_FIELDS)
    | set(_JSON_INT_FIELDS)
    | {"\x00encap", "cache"}
)


# The keys of an everyday route; a route with nothing else, all of the usual types,
# is built directly (a node of a 1,000-node cluster has a route per peer).
_JSON_PLAIN = frozenset(
    {"type", "dst", "gateway", "dev", "table", "protocol", "scope", "prefsrc", "metric"}
    | {"flags", "pref"}
)
_PLAIN_TEXT = ("type", "gateway", "dev", "table", "protocol", "scope", "prefsrc", "pref")


def _plain_route(obj: dict[str, Any]) -> Route | None:
    if not obj.keys() <= _JSON_PLAIN:
        return None
    get = obj.get
    dst, flags, metric = get("dst"), get("flags", ()), get("metric")
    if type(dst) is not str or not dst or type(flags) not in (list, tuple):
        return None
    if metric is not None and type(metric) is not int:
        return None
    for key in _PLAIN_TEXT:
        value = get(key)
        if value is not None and type(value) is not str:
            return None
    if not all_text(flags):
        return None
    return Route(
        dst=intern(dst),
        type=intern(get("type") or "unicast"),
        table=intern(get("table") or "main"),
        dev=shared(get("dev")),
        gateway=shared(get("gateway")),
        src=shared(get("prefsrc")),
        proto=intern(get("protocol") or "boot"),
        scope=intern(get("scope") or "global"),
        metric=metric,
        flags=shared_tuple(flags),
        pref=shared(get("pref")),
    )


def _route_from_json(obj: dict[str, Any]) -> Route | None:
    return _plain_route(obj) or _full_route(obj)


# every node routes each peer's pod CIDR the same way: one record per distinct route
_ELEMENTS = ElementMemo(_route_from_json)


def _full_route(obj: dict[str, Any]) -> Route | None:
    dst = obj.get("dst")
    if not isinstance(dst, str) or not dst:
        return None
    fields: dict[str, Any] = {"dst": dst}
    rtype = obj.get("type")
    if isinstance(rtype, str):
        fields["type"] = rtype
    for key, name in _JSON_STR_FIELDS.items():
        value = to_str(obj.get(key))
        if value is not None:
            fields[name] = value
    for key in _JSON_INT_FIELDS:
        number = to_int(obj.get(key))
        if number is not None:
            fields[key] = number
    _json_gateway(obj, fields)
    fields["flags"] = _json_flags(obj.get("flags"))
    metrics, locked = _json_metrics(obj.get("metrics"))
    if metrics:
        fields["metrics"] = metrics
    if locked:
        fields["locked"] = locked
    flow = obj.get("flow")
    if isinstance(flow, dict):
        parts = [to_str(flow.get(k)) for k in ("from", "to") if flow.get(k) is not None]
        fields["realms"] = "/".join(p for p in parts if p)
    encap = obj.get("\x00encap")
    if isinstance(encap, list):
        fields["encap"] = _json_encap(encap)
    nexthops = obj.get("nexthops")
    if isinstance(nexthops, list):
        fields["nexthops"] = tuple(_nexthop_from_json(n) for n in nexthops if isinstance(n, dict))
    nh_info = obj.get("nh_info")
    if isinstance(nh_info, dict):
        fields["nh_info"] = _json_nh_info(nh_info)
    cache = obj.get("cache")
    if cache is not None:
        fields["cached"] = True
        if isinstance(cache, list):
            fields["cache_flags"] = tuple(str(f) for f in cache)
    extra: list[str] = []
    for key, value in obj.items():
        if key not in _JSON_HANDLED:
            extra.append(key)
            if value is not None:
                extra.append(to_str(value) or json_dumps_safe(value))
    if extra:
        fields["extra"] = tuple(extra)
    return make_route(fields)


def _json_gateway(obj: dict[str, Any], fields: dict[str, Any]) -> None:
    gateway = to_str(obj.get("gateway"))
    if gateway is not None:
        fields["gateway"] = gateway
    via = obj.get("via")
    if isinstance(via, dict):
        fields["gateway"] = to_str(via.get("host"))
        fields["via_family"] = to_str(via.get("family"))


def _json_flags(value: object) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(str(f) for f in value)
    return ()


def _json_metrics(value: object) -> tuple[dict[str, int | str], tuple[str, ...]]:
    metrics: dict[str, int | str] = {}
    locked: list[str] = []
    blocks = value if isinstance(value, list) else [value]
    for block in blocks:
        if not isinstance(block, dict):
            continue
        for key, raw in block.items():
            # JSON drops the text form's "features"/"congctl" words: map back to them.
            if raw is None:
                metrics["features"] = key
            elif key == "congestion":
                metrics["congctl"] = str(raw)
            elif key == "lock" and isinstance(raw, list):
                locked.extend(str(x) for x in raw)
            else:
                number = to_int(raw)
                metrics[key] = number if number is not None else str(raw)
    return metrics, tuple(locked)


def _json_encap(pairs: list[tuple[str, Any]]) -> tuple[str, ...]:
    tokens: list[str] = []
    for key, value in pairs:
        if key != "type":
            tokens.append(key)
        text = to_str(value)
        if text is not None and not (isinstance(value, bool) and value):
            tokens.append(text)
        elif isinstance(value, list):
            tokens.extend(str(v) for v in value)
    return tuple(tokens)


def _nexthop_from_json(obj: dict[str, Any]) -> Nexthop:
    fields: dict[str, Any] = {}
    _json_gateway(obj, fields)
    dev = to_str(obj.get("dev"))
    if dev is not None:
        fields["dev"] = dev
    weight = to_int(obj.get("weight"))
    if weight is not None:
        fields["weight"] = weight
    fields["flags"] = _json_flags(obj.get("flags"))
    encap = obj.get("\x00encap")
    if isinstance(encap, list):
        fields["encap"] = _json_encap(encap)
    flow = obj.get("flow")
    if isinstance(flow, dict):
        fields["realms"] = "/".join(str(flow[k]) for k in ("from", "to") if flow.get(k) is not None)
    known = {"gateway", "via", "dev", "weight", "flags", "\x00encap", "flow"}
    extra = [f"{k}={json_dumps_safe(v)}" for k, v in obj.items() if k not in known]
    if extra:
        fields["extra"] = tuple(extra)
    return Nexthop(**fields)


def _json_nh_info(obj: dict[str, Any]) -> tuple[str, ...]:
    # Spelled as the text form's "nh_info" line prints it, so both forms compare equal.
    tokens: list[str] = []
    for key, value in obj.items():
        if key == "flags":
            if isinstance(value, list):
                tokens.extend(str(f) for f in value)
            continue
        name = {"protocol": "proto", "gateway": "via"}.get(key, key)
        if key == "group" and isinstance(value, list):
            text = "/".join(
                str(g.get("id")) + (f",{g['weight']}" if "weight" in g else "")
                for g in value
                if isinstance(g, dict)
            )
        else:
            text = to_str(value) or json_dumps_safe(value)
        tokens.extend((name, text))
    return tuple(tokens)
