"""Records written relative to their node: what lets 10^6 pairs be judged by a few walks.

A healthy node's tables differ from another's only in the node's own values (its IP, pod
CIDR, gateway, MACs) and its peers' (their pod CIDRs, VTEP addresses, MACs). Written with
those values replaced by the role they play (`NODE`, `PODGW`, `PEERCIDR`, `PEERMAC` ...),
the tables of two nodes that treat a packet alike are equal, and two that do not (a
missing route, another MAC, a link down) are not: the walk of one stands for the other.

Everything the packet walk (analyzer/trace/) reads goes into these forms, and values the
walk does not read (ifindex, counters, neighbour ages) stay out, so that they do not split
classes for nothing. A value left literal is safe (it only makes more classes); a value
the walk reads and the form leaves out would merge classes that differ:
tests/reach/test_classes_agree.py walks every pair of every sample and checks that the
classes find the same causes.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Any

from needle.analyzer.model.entities import Interface, Namespace
from needle.analyzer.parsers.bridge_fdb import FdbEntry
from needle.analyzer.parsers.bridge_link import BridgePort
from needle.analyzer.parsers.ip_neigh import Neighbour
from needle.analyzer.parsers.ip_route import Route
from needle.analyzer.parsers.ip_rule import Rule

Tokens = Mapping[str, str]

# neighbour states the walk treats alike: an answer the kernel holds, however old
RESOLVED = frozenset({"REACHABLE", "STALE", "DELAY", "PROBE", "NONE"})
IPV4 = re.compile(r"(?<![\w.:])(\d{1,3}(?:\.\d{1,3}){3})(/\d{1,2})?(?![\w.:])")


def ipv4_tokens(prefix: str, cidr: str | None) -> dict[str, str]:
    """A pod CIDR's roles: itself, its network address (flannel's VTEP), its first host
    (the bridge's gateway) and its broadcast."""
    if not cidr:
        return {}
    try:
        network = ipaddress.IPv4Network(cidr, strict=False)
    except ValueError:
        return {}
    return {
        str(network): f"{prefix}CIDR",
        cidr: f"{prefix}CIDR",
        str(network.network_address): f"{prefix}NET",
        f"{network.network_address}/32": f"{prefix}NET/32",
        str(network.network_address + 1): f"{prefix}GW",
        str(network.broadcast_address): f"{prefix}BCAST",
    }


def token(value: str | None, tokens: Tokens) -> str | None:
    if value is None:
        return None
    found = tokens.get(value)
    if found is not None:
        return found
    lowered = value.lower()
    return tokens.get(lowered, value)


def mac(value: str | None, tokens: Tokens) -> str | None:
    """A device's MAC by its role; one the walk compares with nothing (an underlay NIC's)
    is just "MAC": it would make every node a class of its own."""
    if value is None:
        return None
    return tokens.get(value.lower(), "MAC")


@functools.lru_cache(maxsize=1 << 18)
def _literals(line: str) -> tuple[tuple[str, str], ...]:
    """(prefix as written, its address) of each IPv4 literal of a line: the same rules
    are on every node, so each distinct line is scanned once a run."""
    return tuple((match.group(0), match.group(1)) for match in IPV4.finditer(line))


def text(line: str, tokens: Tokens) -> str:
    """A free-text line (an iptables rule) with its addresses and prefixes as roles."""
    if not any(whole in tokens or address in tokens for whole, address in _literals(line)):
        return line  # nothing of the node's in it: as written

    def replace(match: re.Match[str]) -> str:
        whole = match.group(0)
        found = tokens.get(whole)
        if found is not None:
            return found
        address = tokens.get(match.group(1))
        return address + (match.group(2) or "") if address is not None else whole

    return IPV4.sub(replace, line)


def interface(item: Interface, tokens: Tokens) -> tuple[Any, ...]:
    link = item.link
    vxlan = link.vxlan
    get = tokens.get
    address = link.address
    return (
        get(link.name, link.name),
        link.kind,
        "UP" in link.flags if link.flags else None,
        link.operstate.upper() if link.operstate else "",
        link.mtu,
        get(link.master, link.master) if link.master else None,
        None if address is None else get(address.lower(), "MAC"),
        None
        if vxlan is None
        else (vxlan.id, vxlan.port, token(vxlan.local, tokens), vxlan.dev, vxlan.external),
        _addresses(item, tokens),
    )


def _addresses(item: Interface, tokens: Tokens) -> tuple[str, ...]:
    # 10^5 pods' interfaces hold one address or none: sorted only when there are more
    found = [tokens.get(a.local, a.local) for a in item.addresses if a.family == "inet"]
    if len(found) > 1:
        found.sort()
    return tuple(found)


def route(item: Route, tokens: Tokens) -> tuple[Any, ...]:
    return (
        token(item.dst, tokens),
        item.type,
        item.table,
        token(item.dev, tokens),
        token(item.gateway, tokens),
        token(item.src, tokens),
        item.metric,
        tuple(sorted(item.flags)),
        tuple((token(hop.dev, tokens), token(hop.gateway, tokens)) for hop in item.nexthops),
    )


@functools.lru_cache(maxsize=256)
def state_class(state: tuple[str, ...]) -> str | tuple[str, ...]:
    """A neighbour's states as the walk tells them apart: every learnt state is one,
    "resolved" (it passes as an absent entry does); the others as they are."""
    states = frozenset(state)
    return "resolved" if states and states <= RESOLVED else tuple(sorted(states))


def neighbour(item: Neighbour | None, tokens: Tokens) -> tuple[Any, ...] | None:
    if item is None:
        return None
    return (
        token(item.dst, tokens),
        token(item.dev, tokens),
        token(item.lladdr.lower() if item.lladdr else None, tokens),
        state_class(tuple(item.state)),
    )


def unresolved_neighbours(items: Iterable[Neighbour], tokens: Tokens) -> tuple[Any, ...]:
    """The entries of a device that resolves by ARP that the walk can fail on: a learnt
    entry passes as an absent one does (resolved when sent), so only the others count."""
    found = (neighbour(item, tokens) for item in items)
    return unordered([item for item in found if item is not None and item[3] != "resolved"])


def unordered(items: list[Any]) -> tuple[Any, ...]:
    """Records whose order means nothing, in one order (most lists here hold 0 or 1)."""
    if len(items) < 2:
        return tuple(items)
    return tuple(sorted(items, key=repr))


def fdb(item: FdbEntry | None, tokens: Tokens) -> tuple[Any, ...] | None:
    if item is None:
        return None
    return (
        token(item.mac.lower(), tokens),
        token(item.dev, tokens),
        token(item.dst, tokens),
        item.port,
        token(item.master, tokens),
        item.state,
    )


def port(item: BridgePort | None) -> tuple[Any, ...] | None:
    return None if item is None else (item.state, item.hairpin, item.isolated)


def rule(item: Rule, tokens: Tokens) -> tuple[Any, ...]:
    return (
        item.priority,
        token(item.src, tokens),
        token(item.dst, tokens),
        item.invert,
        item.table,
        item.action,
        item.iif,
        item.oif,
        item.fwmark,
    )


def namespace(
    space: Namespace,
    tokens: Tokens,
    skip_routes: Iterable[str] = (),
    skip_devices: frozenset[str] | set[str] = frozenset(),
) -> tuple[Any, ...]:
    """A namespace's devices (but `skip_devices`), IPv4 routes (but those to or through
    `skip_routes`: destinations or devices) and rules."""
    skipped = frozenset(skip_routes)
    return (
        tuple(
            sorted(
                (
                    interface(item, tokens)
                    for name, item in space.interfaces.items()
                    if name not in skip_devices
                ),
                key=repr,
            )
        ),
        tuple(
            sorted(
                (
                    route(item, tokens)
                    for item in space.routes
                    if item.dst not in skipped
                    and item.family != "inet6"
                    and item.dev not in skipped
                ),
                key=repr,
            )
        ),
        tuple(rule(item, tokens) for item in space.rules),
    )
