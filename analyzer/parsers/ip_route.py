"""Parses ``ip route show table all`` / ``ip -6 route show table all`` (also ``show cache``).

Forms: the text form of any iproute2 (with or without ``-d``; busybox's ``ip route`` too)
and the ``-j`` JSON form (``ip -d -j route show table all``). Both give the same ``Route``
record, with iproute2's own defaults filled in where the text form leaves a value out
(type ``unicast``, table ``main``, proto ``boot``, scope ``global``), so the model does not
care which form a bundle holds.

Nothing is dropped: every route type (unicast, local, broadcast, multicast, anycast,
blackhole, unreachable, prohibit, throw, nat, xresolve), multipath ``nexthop`` lines,
IPv6/IPv4 ``cache`` lines, ``nh_info`` lines, flags, metrics with ``lock``, ``encap``.
Tokens the parser does not know land in ``Route.extra`` in the order printed; lines it
cannot place land in ``Parsed.unparsed``.

The work is split by job: ``ip_route_record`` (the records and their defaults),
``ip_route_text`` and ``ip_route_json`` (one reader per form), ``ip_route_fast`` (quicker
readers for the everyday routes, for bundles of 10^6 routes) and ``elements`` (one shared
record per distinct JSON element). This module is the entry point callers import.
"""

from __future__ import annotations

from needle.analyzer.parsers.common import Parsed, looks_like_json
from needle.analyzer.parsers.ip_route_fast import quick_json_route
from needle.analyzer.parsers.ip_route_json import _ELEMENTS as _ELEMENTS
from needle.analyzer.parsers.ip_route_json import _route_from_json as _route_from_json
from needle.analyzer.parsers.ip_route_json import parse_ip_route_json, route_from_json
from needle.analyzer.parsers.ip_route_record import (
    METRIC_NAMES,
    NO_DETAIL,
    NO_METRICS,
    ROUTE_FLAGS,
    ROUTE_TYPES,
    Nexthop,
    Route,
    RouteDetail,
    make_route,
)
from needle.analyzer.parsers.ip_route_text import parse_ip_route_text, read_route, route_from_lines

__all__ = [
    "METRIC_NAMES",
    "NO_DETAIL",
    "NO_METRICS",
    "ROUTE_FLAGS",
    "ROUTE_TYPES",
    "Nexthop",
    "Route",
    "RouteDetail",
    "make_route",
    "parse_ip_route",
    "parse_ip_route_json",
    "parse_ip_route_text",
]


def parse_ip_route(data: bytes) -> Parsed[Route]:
    """Either form: JSON when the output starts with ``[``, text otherwise."""
    if looks_like_json(data):
        return parse_ip_route_json(data)
    return parse_ip_route_text(data)


# The names these readers had when they all lived here, kept (with _ELEMENTS and
# _route_from_json above) because tests reach for them: tests/parsers holds each quick
# reader to its general one, and tests/analyzer/test_diff_shards.py empties the memo.
_general_route = read_route
_route_from_lines = route_from_lines
_plain_route = quick_json_route
_full_route = route_from_json
