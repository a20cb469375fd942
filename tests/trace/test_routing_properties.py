"""The routing decision on arbitrary tables: whatever a bundle's routes and rules say,
decide() answers (a route, a drop with its reason, or local delivery) and never raises;
and it agrees with the kernel's order on what it can be checked against."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from needle.analyzer.model.entities import Interface, Namespace
from needle.analyzer.parsers.ip_addr import Address
from needle.analyzer.parsers.ip_link import Link
from needle.analyzer.parsers.ip_route import Route
from needle.analyzer.parsers.ip_rule import Rule
from needle.analyzer.trace.routing import decide

addresses = st.sampled_from(["10.0.0.1", "10.0.0.9", "10.0.1.5", "192.168.1.1", "0.0.0.0"])
prefixes = st.sampled_from(
    ["default", "10.0.0.0/8", "10.0.0.0/24", "10.0.1.0/24", "10.0.1.5", "bad/99", "::/0", ""]
)
route_types = st.sampled_from(["unicast", "blackhole", "unreachable", "throw", "local", "prohibit"])
tables = st.sampled_from(["main", "local", "100", "default"])


@st.composite
def routes(draw):
    return Route(
        dst=draw(prefixes),
        type=draw(route_types),
        table=draw(tables),
        dev=draw(st.sampled_from(["eth0", "eth1", None])),
        gateway=draw(st.one_of(st.none(), addresses)),
        metric=draw(st.one_of(st.none(), st.integers(0, 1000))),
    )


@st.composite
def rules(draw):
    return Rule(
        priority=draw(st.integers(0, 40000)),
        src=draw(st.sampled_from(["all", "10.0.0.0/8", "bogus"])),
        dst=draw(st.sampled_from([None, "10.0.1.0/24", "bogus"])),
        table=draw(st.one_of(st.none(), tables)),
        action=draw(st.sampled_from(["lookup", "blackhole", "unreachable", "goto", "nop"])),
        invert=draw(st.booleans()),
        fwmark=draw(st.sampled_from([None, "0x1"])),
    )


def namespace(route_list, rule_list) -> Namespace:
    host = Namespace(node="n", id="host", dir="nodes/n/host")
    link = Link(ifindex=2, name="eth0", flags=("UP",))
    interface = Interface("n", "host", link)
    interface.addresses.append(Address(family="inet", local="10.0.0.1", prefixlen=24))
    host.add(interface)
    host.loaded_routes.extend(route_list)
    host.rules.extend(rule_list)
    return host


@settings(max_examples=300, deadline=None)
@given(st.lists(routes(), max_size=12), st.lists(rules(), max_size=6), addresses, addresses)
def test_any_table_gives_an_answer(route_list, rule_list, src, dst):
    decision = decide(namespace(route_list, rule_list), src, dst)
    assert decision.local or decision.drop is not None or decision.route is not None
    if decision.route is not None and decision.drop is None:
        assert decision.route.type not in ("blackhole", "unreachable", "prohibit", "throw")


def test_the_longest_prefix_wins_then_the_lowest_metric():
    table = [
        Route(dst="default", dev="eth0", gateway="10.0.0.254"),
        Route(dst="10.0.1.0/24", dev="eth0", gateway="10.0.0.2", metric=200),
        Route(dst="10.0.1.0/24", dev="eth0", gateway="10.0.0.3", metric=100),
    ]
    decision = decide(namespace(table, []), "10.0.0.1", "10.0.1.5")
    assert decision.route is not None and decision.route.gateway == "10.0.0.3"


def test_a_policy_rule_before_main_decides_and_throw_falls_through():
    table = [
        Route(dst="10.0.1.0/24", dev="eth0", gateway="10.0.0.2"),
        Route(dst="10.0.1.0/24", type="unreachable", table="52"),
        Route(dst="10.0.0.0/8", type="throw", table="60"),
    ]
    blocked = [Rule(priority=5270, table="52"), Rule(priority=32766, table="main")]
    decision = decide(namespace(table, blocked), "10.0.0.1", "10.0.1.5")
    assert decision.drop == "an unreachable route" and decision.table == "52"
    thrown = [Rule(priority=100, table="60"), Rule(priority=32766, table="main")]
    decision = decide(namespace(table, thrown), "10.0.0.1", "10.0.1.5")
    assert decision.drop is None and decision.route is not None and decision.table == "main"
