"""Reads the text form of ``ip route show table all`` (any iproute2, with or without
``-d``; busybox ``ip route`` too) into ``Route`` records.

A route is its first line plus the indented lines after it (``nexthop`` legs of a
multipath route, ``cache`` lines, ``nh_info``). The first line is ``[TYPE] DST`` and then
keyword/value pairs and bare flag words, in any order. Words this reader does not know
land in ``Route.extra`` in the order printed; a line that is not a route lands in
``Parsed.unparsed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from needle.analyzer.parsers.common import Parsed, lines_of, to_int
from needle.analyzer.parsers.ip_route_fast import quick_text_route
from needle.analyzer.parsers.ip_route_record import (
    METRIC_NAMES,
    ROUTE_FLAGS,
    ROUTE_TYPES,
    Nexthop,
    Route,
    make_route,
    metric_value,
)

_INDENT = (" ", "\t")
_ADDRESS_CHARS = "0123456789abcdefABCDEF:./"


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
            words = head.split()
            route = route_from_lines(words, conts) if words else None
            if route is not None:
                records.append(route)
            elif words:  # (a line of other whitespace, a form feed, is not worth a report)
                unparsed.append(head)
                unparsed.extend(conts or ())
            conts = None
        head = line or None
    return Parsed(tuple(records), tuple(unparsed))


def route_from_lines(head: list[str], conts: list[str] | None) -> Route | None:
    """A route from its first line's words and its continuation lines; None when the
    first line is not a route."""
    first = head[0]
    if first in ROUTE_TYPES:
        if len(head) < 2:
            return None
        rtype, dst, start = first, head[1], 2
    else:
        rtype, dst, start = "unicast", first, 1
    if not _is_destination(dst):
        return None
    # The everyday shapes have a quicker reader that gives the same Route, or None
    # when the route is not one of them (ip_route_fast.py).
    quick = quick_text_route(dst, rtype, head, start, conts)
    return quick if quick is not None else read_route(dst, rtype, head, start, conts)


def _is_destination(word: str) -> bool:
    """``default``, or address characters with a separator: rejects ``Error:`` and such."""
    if word == "default":
        return True
    return not word.strip(_ADDRESS_CHARS) and ("." in word or ":" in word)


# --- the keyword reader: every keyword iproute2 prints ---------------------------------

# What each keyword is, so that one dictionary lookup per word decides how to read it.
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
# Keywords that belong to the current nexthop leg, once a "nexthop" word has started one.
_NEXTHOP_KEYS = frozenset({"via", "dev", "weight", "encap", "realm", "realms"}) | ROUTE_FLAGS
# Where an encap's own words end: the route keywords printed after it.
_ENCAP_END = frozenset(
    {"via", "dev", "table", "proto", "scope", "metric", "pref", "expires", "nexthop", "weight"}
    | ROUTE_FLAGS
)


def read_route(
    dst: str,
    rtype: str,
    head: list[str],
    start: int,
    conts: list[str] | None,
) -> Route:
    """The route whose first line's words are `head` (keywords from `start` on) and whose
    continuation lines are `conts`. Unknown words are kept in ``extra``."""
    fields: dict[str, Any] = {"dst": dst, "type": rtype}
    acc = _Accumulator()
    _scan(head, start, fields, acc)
    for line in conts or ():
        words = line.split()
        if words[0] == "nh_info":
            acc.nh_info.extend(words[1:])
        else:
            # nexthop and cache lines, and anything else indented: same keywords apply.
            _scan(words, 0, fields, acc)
    acc.finish(fields)
    return make_route(fields)


class _Accumulator:
    """What one route's lines add up to while they are read (never escapes a call)."""

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
        self.nexthop: dict[str, Any] | None = None  # the leg being read
        self.cached = False
        self.cache_flags: list[str] = []
        self.nh_info: list[str] = []
        self.extra: list[str] = []

    def finish(self, fields: dict[str, Any]) -> None:
        """Moves what was gathered into the route's fields."""
        self.finish_nexthop()
        if self.flags:
            fields["flags"] = tuple(self.flags)
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

    def keep(self, word: str, value: str | None) -> None:
        """A word (and its value) this reader cannot place: kept as printed."""
        extra = self.nexthop.setdefault("extra", []) if self.nexthop is not None else self.extra
        extra.append(word)
        if value is not None:
            extra.append(value)


def _scan(words: list[str], i: int, fields: dict[str, Any], acc: _Accumulator) -> None:
    """Reads keywords from position i into the route (or its current nexthop leg)."""
    n = len(words)
    while i < n:
        word = words[i]
        kind = _KINDS.get(word)
        if kind is None:
            acc.keep(word, None)
            i += 1
            continue
        if kind == _NEXTHOP:
            acc.finish_nexthop()
            acc.nexthop = {}
            i += 1
            continue
        target = fields
        if acc.nexthop is not None and word in _NEXTHOP_KEYS:
            target = acc.nexthop
        if kind == _FLAG:
            if target is fields:
                acc.flags.append(word)
            else:
                target["flags"] = (*target.get("flags", ()), word)
            i += 1
            continue
        if kind == _CACHE:
            acc.cached = True
            i += 1
            if i < n and words[i][:1] == "<" and words[i][-1:] == ">":
                acc.cache_flags.extend(f for f in words[i][1:-1].split(",") if f)
                i += 1
            continue
        if kind == _ENCAP:
            i = _scan_encap(words, i + 1, target, acc)
            continue
        if i + 1 >= n:
            # A keyword with its value cut off: keep the word rather than guess.
            acc.keep(word, None)
            return
        value = words[i + 1]
        if kind == _STR:
            target[_FIELD_OF.get(word, word)] = value
            i += 2
        elif kind == _INT:
            number = to_int(value)
            if number is None or (word == "weight" and target is fields):
                acc.keep(word, value)
            else:
                target[word] = number
            i += 2
        elif kind == _VIA:
            if value in ("inet", "inet6") and i + 2 < n:
                target["via_family"] = value
                target["gateway"] = words[i + 2]
                i += 3
            else:
                target["gateway"] = value
                i += 2
        elif kind == _METRIC:
            i = _scan_metric(words, i, acc)
        elif kind == _EXPIRES:
            seconds = to_int(value[:-3] if value.endswith("sec") else value)
            if seconds is None:
                acc.keep(word, value)
            else:
                fields["expires"] = seconds
            i += 2
        else:  # _REALM
            target["realms"] = value
            i += 2


def _scan_metric(words: list[str], i: int, acc: _Accumulator) -> int:
    """``NAME [lock] VALUE``; the position after it."""
    name = words[i]
    j = i + 1
    if words[j] == "lock":
        acc.locked.append(name)
        j += 1
        if j >= len(words):
            return j
    raw = words[j]
    value = metric_value(name, raw)
    acc.metrics[name] = raw if value is None else value
    return j + 1


def _scan_encap(words: list[str], i: int, target: dict[str, Any], acc: _Accumulator) -> int:
    """``encap TYPE ...``: its words up to the next route keyword; the position there."""
    n = len(words)
    collected: list[str] = []
    while i < n and words[i] not in _ENCAP_END:
        collected.append(words[i])
        i += 1
    if target is acc.nexthop:
        target["encap"] = tuple(collected)
    else:
        acc.encap.extend(collected)
    return i
