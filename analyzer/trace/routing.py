"""Linux's IPv4 routing decision in one namespace, from the collected tables.

Policy rules in priority order (a namespace whose rules were not collected has the
kernel's three: local, main, default), then the longest matching prefix of the rule's
table, the lowest metric among equals; `throw` goes on to the next rule, `blackhole`,
`unreachable` and `prohibit` end the lookup with a drop. The packet's firewall mark is
0 (no mangle rule is modelled), so a rule on `fwmark` matches only when inverted.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass

from needle.analyzer.model.entities import Namespace
from needle.analyzer.parsers.ip_route import Route
from needle.analyzer.parsers.ip_rule import Rule

# What the kernel has when nobody added a rule.
DEFAULT_RULES = (
    Rule(priority=0, table="local"),
    Rule(priority=32766, table="main"),
    Rule(priority=32767, table="default"),
)
DROPPING = frozenset({"blackhole", "unreachable", "prohibit"})


@dataclass(frozen=True)
class Decision:
    """Where the kernel sends a packet: `route` is the one chosen (None: no route), with
    `table` and the policy rule that led there; `drop` says why it is dropped, if so."""

    route: Route | None
    table: str
    rule: str
    drop: str | None = None
    local: bool = False  # the destination is an address of this namespace


def _int(address: str) -> int | None:
    try:
        return int(ipaddress.IPv4Address(address))
    except ValueError:
        return None


@functools.lru_cache(maxsize=1 << 16)
def _span(prefix: str) -> tuple[int, int] | None:
    """(network, prefix length) of an IPv4 prefix or bare address; None otherwise.
    Cached: a decision reads every route's prefix, and analyze decides thousands of
    times over tables of 10^3 routes."""
    if prefix == "default":
        return 0, 0
    try:
        network = ipaddress.IPv4Network(prefix, strict=False)
    except ValueError:
        return None
    return int(network.network_address), network.prefixlen


def _contains(prefix: str | None, address: int) -> bool:
    if prefix is None or prefix == "all":
        return True
    span = _span(prefix)
    if span is None:
        return False
    network, length = span
    mask = (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF if length else 0
    return address & mask == network


def local_addresses(namespace: Namespace) -> dict[str, str]:
    """Each IPv4 address of the namespace and the interface holding it."""
    return {
        address: interface.name
        for interface in namespace.interfaces.values()
        for address in interface.ipv4
    }


def _rule_matches(rule: Rule, src: int, dst: int, iif: str | None) -> bool:
    matched = _contains(rule.src, src) and _contains(rule.dst, dst)
    if rule.iif is not None:
        matched = matched and rule.iif == (iif or "lo")
    if rule.fwmark is not None:
        matched = matched and False  # the mark is 0: a rule on a mark does not match
    return not matched if rule.invert else matched


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _describe(rule: Rule) -> str:
    words = [f"{rule.priority}:"]
    words += ["not"] if rule.invert else []
    words += ["from", rule.src or "all"]
    words += ["to", rule.dst] if rule.dst else []
    words += ["iif", rule.iif] if rule.iif else []
    words += ["fwmark", rule.fwmark] if rule.fwmark else []
    words += [rule.action if rule.action != "lookup" else "lookup", rule.table or ""]
    return " ".join(word for word in words if word)


def _best(routes: list[Route], table: str, dst: int) -> Route | None:
    best: tuple[int, int, Route] | None = None
    for route in routes:
        if route.table != table or route.family == "inet6" or route.cached:
            continue
        if route.type in ("broadcast", "multicast", "anycast", "local", "nat"):
            continue
        span = _span(route.dst)
        if span is None:
            continue
        network, length = span
        mask = (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF if length else 0
        if dst & mask != network:
            continue
        key = (length, -(route.metric or 0))
        if best is None or key > best[:2]:
            best = (*key, route)
    return best[2] if best is not None else None


def decide(namespace: Namespace, src: str, dst: str, iif: str | None = None) -> Decision:
    """The routing decision for a packet src -> dst entering through `iif` (None: sent
    from this namespace)."""
    locals_ = local_addresses(namespace)
    if dst in locals_:
        return Decision(None, "local", "0: from all lookup local", local=True)
    src_int, dst_int = _int(src), _int(dst)
    if src_int is None or dst_int is None:
        return Decision(None, "", "", drop=f"{src} -> {dst} is not IPv4")
    rules = sorted(namespace.rules, key=lambda r: r.priority) or list(DEFAULT_RULES)
    routes = namespace.routes
    for rule in rules:
        if not _rule_matches(rule, src_int, dst_int, iif):
            continue
        described = _describe(rule)
        if rule.action in DROPPING:
            return Decision(None, "", described, drop=f"policy rule `{described}`")
        if rule.action != "lookup" or rule.table in (None, "local"):
            continue  # goto/nop, and the local table (handled above) decide nothing here
        route = _best(routes, rule.table, dst_int)
        if route is None:
            continue
        if route.type == "throw":
            continue
        if route.type in DROPPING:
            kind = f"{_article(route.type)} {route.type} route"
            return Decision(route, rule.table, described, drop=kind)
        return Decision(route, rule.table, described)
    return Decision(None, "", "", drop=f"no route to {dst}")


def source_address(namespace: Namespace, preferred: str | None, dev: str | None) -> str | None:
    """The source address Linux gives a packet a namespace sends itself (no socket bound
    to one): the route's preferred source, else the first address of the outgoing
    device (flannel.1's 10.244.1.0 for a node's packet to another node's pod, cni0's
    for one to its own pod); None when the device has none (the caller keeps its own)."""
    if preferred:
        return preferred
    device = namespace.interfaces.get(dev or "")
    return device.ipv4[0] if device is not None and device.ipv4 else None
