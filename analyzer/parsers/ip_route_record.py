"""The record both forms of ``ip route`` give: ``Route`` and its ``Nexthop`` legs, the
words iproute2 prints for routes, and iproute2's defaults for what the text form leaves
out (type ``unicast``, table ``main``, proto ``boot``, scope ``global``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from needle.analyzer.parsers.common import to_int

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
# Printed as durations ("10ms", "1.5s"), kept as milliseconds.
TIME_METRICS = frozenset({"rtt", "rttvar", "rto_min"})
# Printed as words, kept as words.
WORD_METRICS = frozenset({"congctl", "features"})

# Most routes have no metrics: one shared read-only mapping rather than a dict each, on
# tables of 100,000 routes.
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
    extra: tuple[str, ...] = ()  # words the parser does not know, in printed order


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
    routes as read-only all the same: equal routes of many nodes are one shared record.
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
        detail = self.detail
        gateway = None if detail.via_family else self.gateway
        for value in (self.dst, gateway, self.src, detail.from_prefix):
            if value and value != "default":
                if ":" in value:
                    return "inet6"
                if "." in value:
                    return "inet"
        for nexthop in self.nexthops:
            if nexthop.gateway and not nexthop.via_family:
                return "inet6" if ":" in nexthop.gateway else "inet"
        return None

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


def make_route(fields: dict[str, Any]) -> Route:
    """A Route from a flat mapping of field names, the detail ones included (consumes
    the mapping)."""
    detail = {name: fields.pop(name) for name in list(fields) if name in DETAIL_FIELDS}
    if detail:
        fields["detail"] = RouteDetail(**detail)
    return Route(**fields)


# --- metric values as the text form prints them ---------------------------------------


def milliseconds(raw: str) -> int | None:
    """An rtt-like metric: iproute2 prints ``10ms``, or ``1.5s`` from one second on."""
    try:
        if raw.endswith("ms"):
            return int(raw[:-2])
        if raw.endswith("s"):
            return round(float(raw[:-1]) * 1000)
    except (ValueError, OverflowError):
        return None
    return to_int(raw)


def metric_value(name: str, raw: str) -> int | str | None:
    """The value of metric `name` as printed; None when it is not one."""
    if name in TIME_METRICS:
        return milliseconds(raw)
    if name in WORD_METRICS:
        return raw
    return int(raw) if raw.isascii() and raw.isdigit() else None
