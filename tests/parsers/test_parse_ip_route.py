"""ip route: both forms, every route type and attribute, nothing dropped."""

from __future__ import annotations

from pathlib import Path

import pytest
from needle.analyzer.parsers.ip_route import (
    Nexthop,
    Route,
    parse_ip_route,
    parse_ip_route_json,
    parse_ip_route_text,
)

DATA = Path(__file__).parent / "data"


def lab(name: str) -> bytes:
    return (DATA / "lab" / name).read_bytes()


def by_dst(
    routes: tuple[Route, ...], dst: str, table: str = "main", family: str | None = None
) -> Route:
    found = [
        r
        for r in routes
        if r.dst == dst and r.table == table and (family is None or r.family == family)
    ]
    assert len(found) == 1, found
    return found[0]


@pytest.fixture(scope="module")
def lab_json() -> tuple[Route, ...]:
    parsed = parse_ip_route_json(lab("a__ip-d-j-route-show-table-all.json"))
    assert parsed.clean
    return parsed.records


@pytest.fixture(scope="module")
def lab_text() -> tuple[Route, ...]:
    parsed = parse_ip_route_text(lab("a__ip-route-show-table-all.txt"))
    assert parsed.clean
    return parsed.records


def test_text_and_json_forms_give_the_same_records(lab_json, lab_text):
    assert len(lab_json) == len(lab_text) == 68
    differences = {r.dst: (r, t) for r, t in zip(lab_json, lab_text, strict=True) if r != t}
    # What one form prints and the other does not: JSON drops "lock", only -d prints nh_info.
    assert set(differences) == {"10.94.0.0/16", "10.85.0.0/24", "10.86.0.0/24"}
    json_route, text_route = differences["10.94.0.0/16"]
    assert text_route.locked == ("mtu",) and json_route.locked == ()
    assert json_route.metrics == text_route.metrics


def test_detailed_text_form_matches_json_but_for_lock(lab_json):
    parsed = parse_ip_route(lab("a__ip-d-route-show-table-all.txt"))
    assert parsed.clean
    different = [r.dst for r, t in zip(lab_json, parsed.records, strict=True) if r != t]
    assert different == ["10.94.0.0/16"]


@pytest.mark.parametrize("form", ["lab_json", "lab_text"])
def test_every_route_type_and_attribute_survives(form, request):
    routes = request.getfixturevalue(form)
    types = {r.type for r in routes}
    assert types == {
        "unicast",
        "local",
        "broadcast",
        "multicast",
        "anycast",
        "blackhole",
        "unreachable",
        "prohibit",
        "throw",
    }
    flannel = by_dst(routes, "10.244.2.0/24")
    assert (flannel.gateway, flannel.dev, flannel.flags) == ("10.244.2.0", "flannel.1", ("onlink",))
    assert flannel.proto == "boot" and flannel.scope == "global" and flannel.family == "inet"
    default = by_dst(routes, "default", family="inet")
    assert (default.gateway, default.proto, default.metric) == ("192.168.50.1", "static", 100)
    assert by_dst(routes, "10.98.0.0/16").type == "unreachable"
    assert by_dst(routes, "10.98.0.0/16").metric == 7
    assert by_dst(routes, "10.96.0.0/16", table="100").type == "throw"
    assert by_dst(routes, "10.93.0.0/16", table="200").proto == "bird"
    local = by_dst(routes, "10.244.1.1", table="local")
    assert (local.type, local.scope, local.src, local.proto) == (
        "local",
        "host",
        "10.244.1.1",
        "kernel",
    )
    assert by_dst(routes, "10.78.0.0/24").flags == ("linkdown",)
    metrics = by_dst(routes, "10.94.0.0/16")
    assert metrics.metrics == {"mtu": 1400, "rtt": 10, "advmss": 1360, "initcwnd": 10}
    assert metrics.src == "192.168.50.10"
    features = by_dst(routes, "10.87.0.0/24")
    assert features.metrics == {"features": "ecn", "quickack": 1, "congctl": "bbr"}
    assert by_dst(routes, "10.90.0.0/24").realms == "5"
    assert by_dst(routes, "10.89.0.0/24").tos == "0x10"


@pytest.mark.parametrize("form", ["lab_json", "lab_text"])
def test_multipath_nexthops_with_dead_leg(form, request):
    routes = request.getfixturevalue(form)
    route = by_dst(routes, "10.76.0.0/24")
    assert route.gateway is None and route.dev is None
    assert route.nexthops == (
        Nexthop(gateway="10.77.0.2", dev="vdead", weight=1, flags=("dead", "linkdown")),
        Nexthop(gateway="192.168.50.11", dev="eth0", weight=1),
    )
    weighted = by_dst(routes, "10.95.0.0/16", table="100")
    assert [n.weight for n in weighted.nexthops] == [1, 3]
    ipv6 = by_dst(routes, "2001:db8:3::/64")
    assert ipv6.family == "inet6" and [n.gateway for n in ipv6.nexthops] == [
        "fd00:50::11",
        "fd00:50::12",
    ]


@pytest.mark.parametrize("form", ["lab_json", "lab_text"])
def test_encap_and_nexthop_objects(form, request):
    routes = request.getfixturevalue(form)
    encap = by_dst(routes, "10.84.0.0/24")
    assert encap.dev == "flannel.1"
    assert encap.encap == (
        "ip",
        "id",
        "100",
        "src",
        "0.0.0.0",
        "dst",
        "192.168.50.99",
        "ttl",
        "0",
        "tos",
        "0",
    )
    assert by_dst(routes, "10.85.0.0/24").nhid == 10
    group = by_dst(routes, "10.86.0.0/24")
    assert group.nhid == 12 and len(group.nexthops) == 2


def test_json_encap_does_not_overwrite_the_route_destination():
    # iproute2 writes the encap's "dst" into the route object: a second "dst" key.
    raw = lab("a__ip-d-j-route-show-table-all.json")
    assert raw.count(b'"dst":"192.168.50.99"') == 1
    routes = parse_ip_route_json(raw).records
    assert not [r for r in routes if r.dst == "192.168.50.99"]


def test_nh_info_lines_of_the_detailed_form():
    routes = parse_ip_route_text(lab("a__ip-d-route-show-table-all.txt")).records
    group = by_dst(routes, "10.86.0.0/24")
    assert group.nh_info == ("id", "12", "group", "10/11", "scope", "global", "proto", "unspec")


def test_ipv6_routes_pref_expires_and_types():
    parsed = parse_ip_route(lab("a__ip-6-route-show-table-all.txt"))
    assert parsed.clean and len(parsed.records) == 29
    routes = parsed.records
    assert {r.family for r in routes} == {"inet6"}
    assert by_dst(routes, "2001:db8:1::/64").pref == "high"
    assert by_dst(routes, "2001:db8:2::/64").expires is not None
    assert by_dst(routes, "2001:db8:4::/64", table="100").metrics == {"mtu": 1280}
    assert by_dst(routes, "2001:db8:dead::/48").type == "blackhole"
    assert {r.metric for r in routes if r.dst == "fe80::/64"} == {256}
    linkdown = [r for r in routes if r.dst == "fe80::/64" and r.dev == "vdead-p"]
    assert linkdown[0].flags == ("linkdown",)


def test_json_ipv6_equals_text_ipv6():
    text = parse_ip_route(lab("a__ip-6-route-show-table-all.txt")).records
    json_ = parse_ip_route(lab("a__ip-d-j-6-route-show-table-all.json")).records
    assert text == json_


def test_ipv4_route_cache_lines():
    parsed = parse_ip_route(lab("a__ip-route-show-cache.txt"))
    assert parsed.clean and len(parsed.records) == 2
    cached = parsed.records[0]
    assert (cached.dst, cached.gateway, cached.cached) == ("192.168.60.2", "192.168.50.1", True)
    assert cached.metrics == {"mtu": 1280} and cached.expires == 598


def test_ipv6_exception_route_of_a_new_kernel():
    (route,) = parse_ip_route(lab("a__ip-6-route-show-cache.txt")).records
    assert route.metrics == {"mtu": 1280} and route.expires == 597 and route.metric == 1024


def test_pod_namespace_routes():
    routes = parse_ip_route(lab("b__ip-route-show-table-all.txt")).records
    assert by_dst(routes, "default", family="inet").gateway == "10.244.1.1"
    assert routes == parse_ip_route(lab("b__ip-d-j-route-show-table-all.json")).records


def test_busybox_ip_route_keeps_what_busybox_prints():
    parsed = parse_ip_route(lab("a__busybox-ip-route.txt"))
    assert parsed.clean and len(parsed.records) == 23
    routes = parsed.records
    # busybox prints no nexthops for multipath routes, and no proto: both are simply absent.
    multipath = next(r for r in routes if r.dst == "10.76.0.0/24")
    assert multipath.nexthops == () and multipath.dev is None
    assert [r.dst for r in routes].count("192.168.60.2") == 2
    assert next(r for r in routes if r.dst == "10.98.0.0/16").metric == 7


SYNTHETIC = b"""\
nat 10.91.0.0/16 via 192.168.50.1 table 7
10.1.0.0/16 via 10.0.0.1 dev eth0 mtu lock 1400 advmss lock 1360 rtt 1.5s rttvar 250ms
default proto zebra metric 20 pervasive
\tnexthop via 10.0.0.1 dev eth0 weight 1 onlink pervasive
\tnexthop via inet6 fe80::1 dev eth1 weight 2 dead
10.2.0.0/16 dev eth0 frobnicate 3 proto static newfield
2001:db8::/64 from 2001:db8:1::/64 via fe80::1 dev eth0 metric 1024 pref low
10.3.0.0/16 proto 196 scope 253 table 1234 dev eth0
10.4.0.0/16 nexthop via 10.0.0.1 dev eth0 weight 1 nexthop via 10.0.0.2 dev eth1 weight 1
10.5.0.0/24 via 10.0.0.1 dev eth0 ttl-propagate enabled
10.6.0.0/24 encap mpls 200/300 via 10.0.0.1 dev eth0
10.7.0.0/24 encap seg6 mode encap segs 2 [ fc00::1 fc00::2 ] dev eth0
    cache <redirected> expires 12sec mtu 1400
    cache  mtu 1492 hoplimit 255
10.8.0.0/24 dev eth0 metric
"""


@pytest.fixture(scope="module")
def synthetic() -> tuple[Route, ...]:
    parsed = parse_ip_route_text(SYNTHETIC)
    assert parsed.unparsed == ()
    return parsed.records


def test_nat_route_type(synthetic):
    nat = synthetic[0]
    assert (nat.type, nat.dst, nat.gateway, nat.table) == (
        "nat",
        "10.91.0.0/16",
        "192.168.50.1",
        "7",
    )


def test_locked_metrics_and_time_units(synthetic):
    route = synthetic[1]
    assert route.locked == ("mtu", "advmss")
    assert route.metrics == {"mtu": 1400, "advmss": 1360, "rtt": 1500, "rttvar": 250}


def test_multipath_flags_and_ipv6_gateway_of_an_ipv4_route(synthetic):
    route = synthetic[2]
    assert (route.dst, route.proto, route.metric, route.flags) == (
        "default",
        "zebra",
        20,
        ("pervasive",),
    )
    assert route.nexthops == (
        Nexthop(gateway="10.0.0.1", dev="eth0", weight=1, flags=("onlink", "pervasive")),
        Nexthop(gateway="fe80::1", dev="eth1", weight=2, flags=("dead",), via_family="inet6"),
    )
    assert route.family == "inet"


def test_unknown_tokens_are_kept_in_order(synthetic):
    route = synthetic[3]
    assert route.extra == ("frobnicate", "3", "newfield") and route.proto == "static"
    assert synthetic[7].extra == ("ttl-propagate", "enabled")


def test_source_specific_ipv6_route(synthetic):
    route = synthetic[4]
    assert (route.from_prefix, route.pref, route.gateway) == ("2001:db8:1::/64", "low", "fe80::1")


def test_numeric_proto_scope_and_table(synthetic):
    route = synthetic[5]
    assert (route.proto, route.scope, route.table) == ("196", "253", "1234")


def test_nexthops_on_one_line(synthetic):
    route = synthetic[6]
    assert [(n.gateway, n.dev) for n in route.nexthops] == [
        ("10.0.0.1", "eth0"),
        ("10.0.0.2", "eth1"),
    ]


def test_other_encaps_and_cache_continuations(synthetic):
    assert synthetic[8].encap == ("mpls", "200/300") and synthetic[8].gateway == "10.0.0.1"
    seg6 = synthetic[9]
    assert seg6.encap == ("seg6", "mode", "encap", "segs", "2", "[", "fc00::1", "fc00::2", "]")
    assert seg6.dev == "eth0" and seg6.cached and seg6.cache_flags == ("redirected",)
    assert seg6.metrics == {"mtu": 1492, "hoplimit": 255} and seg6.expires == 12


def test_a_keyword_cut_off_at_the_end_is_kept(synthetic):
    assert synthetic[10].extra == ("metric",) and synthetic[10].metric is None


def test_lines_it_cannot_place_are_reported_not_dropped():
    parsed = parse_ip_route_text(
        b"Error: ipv4: FIB table does not exist.\n"
        b"\tnexthop via 10.0.0.1 dev eth0\n"
        b"10.0.0.0/8 dev eth0\n"
        b"garbage words here\n"
        b"unreachable\n"
    )
    assert [r.dst for r in parsed.records] == ["10.0.0.0/8"]
    assert parsed.unparsed == (
        "Error: ipv4: FIB table does not exist.",
        "\tnexthop via 10.0.0.1 dev eth0",
        "garbage words here",
        "unreachable",
    )


def test_truncated_json_keeps_the_routes_before_the_cut():
    raw = lab("a__ip-d-j-route-show-table-all.json")
    whole = parse_ip_route_json(raw).records
    cut = raw[: raw.index(b'"dst":"10.244.1.0/24"') + 10]
    parsed = parse_ip_route_json(cut)
    assert parsed.truncated
    assert parsed.records == whole[: len(parsed.records)]
    assert parsed.records[-1].dst == "10.99.0.0/16"
    assert parsed.unparsed  # the partial element is reported


def test_json_error_output_and_non_route_elements():
    parsed = parse_ip_route_json(b'Warning: something\n[{"dst":"10.0.0.0/8"},{"no":"dst"},7]\n')
    assert [r.dst for r in parsed.records] == ["10.0.0.0/8"]
    assert parsed.unparsed == ("Warning: something", '{"no": "dst"}', "7")
    assert not parsed.truncated


def test_concatenated_json_documents():
    parsed = parse_ip_route(b'[{"dst":"10.0.0.0/8"}]\n[{"dst":"fd00::/8"}]\n')
    assert [r.family for r in parsed.records] == ["inet", "inet6"] and parsed.clean
