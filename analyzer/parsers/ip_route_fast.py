"""Speed for ``ip route``: quicker readers for the everyday shapes of a route.

Why: a 1,000-node bundle holds ~3*10^6 routes, and the general readers
(``ip_route_text.read_route``, ``ip_route_json.route_from_json``) build each through a
dict of fields. The readers here build the common route directly, and share its strings.

The interface is two functions that return the same ``Route`` the general reader would,
or None for anything they do not know, and then the general reader reads it. So they only
have to be right on what they accept, never complete; property tests hold each to its
general reader (tests/parsers/test_parse_robustness.py, test_parse_fast_paths.py).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from needle.analyzer.parsers.elements import all_text, shared, shared_text, shared_tuple
from needle.analyzer.parsers.ip_route_record import (
    METRIC_NAMES,
    NO_DETAIL,
    NO_METRICS,
    ROUTE_FLAGS,
    Nexthop,
    Route,
    RouteDetail,
    metric_value,
)

_FAMILY_WORDS = ("inet", "inet6")
# Shared one-flag tuples: a route's flags are usually one word (onlink, linkdown), and a
# shared constant costs no allocation per route.
_ONE_FLAG = MappingProxyType({flag: (flag,) for flag in ROUTE_FLAGS})


# --- text form -------------------------------------------------------------------------


def quick_text_route(
    dst: str, rtype: str, head: list[str], start: int, conts: list[str] | None
) -> Route | None:
    """The route of a first line's words (keywords from `start` on) and its continuation
    lines, when every word is one of the usual ones; None otherwise.

    Each word is read into a local by one comparison chain, with no scratch objects."""
    table, proto, scope = "main", "boot", "global"
    dev = gateway = src = pref = None
    metric: int | None = None
    expires: int | None = None
    # Tuples grown only when needed: most routes have no flags, so no allocation at all.
    flags: tuple[str, ...] = ()
    locked: tuple[str, ...] = ()
    metrics: dict[str, int | str] | None = None
    i = start
    n = len(head)
    while i < n:
        word = head[i]
        if i + 1 == n:
            if word in ROUTE_FLAGS:
                flags = (*flags, word) if flags else _ONE_FLAG[word]
                i += 1
                continue
            return None
        value = head[i + 1]
        # Most frequent first: nearly every route has a dev, most a gateway.
        if word == "dev":
            dev = value
        elif word == "via":
            if value in _FAMILY_WORDS:
                return None
            gateway = value
        elif word == "proto":
            proto = value
        elif word == "scope":
            scope = value
        elif word == "src":
            src = value
        elif word == "metric":
            if not (value.isascii() and value.isdigit()):
                return None
            metric = int(value)
        elif word == "table":
            table = value
        elif word in ROUTE_FLAGS:
            flags = (*flags, word) if flags else _ONE_FLAG[word]
            i += 1
            continue
        elif word == "pref":
            pref = value
        elif word == "expires":
            expires = _seconds(value)
            if expires is None:
                return None
        elif word in METRIC_NAMES:
            if value == "lock":
                if i + 2 == n:
                    return None
                locked += (word,)
                i += 1
                value = head[i + 1]
            number = metric_value(word, value)
            if number is None:
                return None
            if metrics is None:
                metrics = {}
            metrics[word] = number
        else:
            return None
        i += 2
    nexthops: tuple[Nexthop, ...] = ()
    cached = False
    cache_flags: tuple[str, ...] = ()
    if conts is not None:
        legs: list[Nexthop] = []
        for line in conts:
            words = line.split()
            lead = words[0]
            if lead == "nexthop":
                nexthop = _quick_nexthop(words)
                if nexthop is None:
                    return None
                legs.append(nexthop)
                continue
            cache = _quick_cache(words) if lead == "cache" else None
            if cache is None:
                return None
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


def _quick_nexthop(words: list[str]) -> Nexthop | None:
    """``nexthop via X dev Y weight N [flags]``, the usual shape; None for anything else
    (encap, realms, ``via inet6``)."""
    gateway = dev = None
    weight: int | None = None
    flags: list[str] = []
    n = len(words)
    i = 1
    while i < n:
        word = words[i]
        if word in ROUTE_FLAGS:
            flags.append(word)
            i += 1
            continue
        if i + 1 == n:
            return None
        value = words[i + 1]
        if word == "via" and value not in _FAMILY_WORDS:
            gateway = value
        elif word == "dev":
            dev = value
        elif word == "weight" and value.isascii() and value.isdigit():
            weight = int(value)
        else:
            return None
        i += 2
    return Nexthop(gateway, dev, weight, tuple(flags))


def _quick_cache(
    words: list[str],
) -> tuple[tuple[str, ...], int | None, dict[str, int | str]] | None:
    """``cache [<flags>] [expires Nsec] [mtu N ...]``: its flags, expiry and metrics;
    None for anything else."""
    cache_flags: tuple[str, ...] = ()
    expires: int | None = None
    metrics: dict[str, int | str] = {}
    n = len(words)
    i = 1
    if i < n and words[i][:1] == "<" and words[i][-1:] == ">":
        cache_flags = tuple(f for f in words[i][1:-1].split(",") if f)
        i += 1
    while i + 1 < n:
        word, value = words[i], words[i + 1]
        if word == "expires":
            expires = _seconds(value)
            if expires is None:
                return None
        elif word in METRIC_NAMES and value != "lock":
            number = metric_value(word, value)
            if number is None:
                return None
            metrics[word] = number
        else:
            return None
        i += 2
    if i != n:
        return None
    return cache_flags, expires, metrics


# --- JSON form -------------------------------------------------------------------------

# The keys of an everyday route (a node of a 1,000-node cluster has a route per peer).
_JSON_PLAIN = frozenset(
    {"type", "dst", "gateway", "dev", "table", "protocol", "scope", "prefsrc", "metric"}
    | {"flags", "pref"}
)
_PLAIN_TEXT = ("type", "gateway", "dev", "table", "protocol", "scope", "prefsrc", "pref")


def quick_json_route(obj: dict[str, Any]) -> Route | None:
    """The route of a ``-j`` element that has only the everyday keys, each of the usual
    JSON type; None otherwise. Its strings are shared (``elements.shared``): 10^6 routes
    name a few thousand devices, gateways and tables."""
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
        dst=shared_text(dst),
        type=shared_text(get("type") or "unicast"),
        table=shared_text(get("table") or "main"),
        dev=shared(get("dev")),
        gateway=shared(get("gateway")),
        src=shared(get("prefsrc")),
        proto=shared_text(get("protocol") or "boot"),
        scope=shared_text(get("scope") or "global"),
        metric=metric,
        flags=shared_tuple(flags),
        pref=shared(get("pref")),
    )
