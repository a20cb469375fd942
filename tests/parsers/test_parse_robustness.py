"""No parser raises on any input: arbitrary bytes (invalid UTF-8 included), arbitrary text,
tool-shaped noise, JSON of any shape, and files cut off at any byte."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import needle.analyzer.parsers as parsers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from needle.analyzer.parsers.common import Parsed
from needle.analyzer.parsers.ip_route import (
    ROUTE_FLAGS,
    ROUTE_TYPES,
    _general_route,
    _route_from_lines,
    parse_ip_route_text,
)

DATA = Path(__file__).parent / "data"
PARSERS: list[tuple[str, Callable[[bytes], Parsed]]] = [
    (name, getattr(parsers, name)) for name in parsers.__all__ if name.startswith("parse_")
]
FUZZ = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def check(result: Parsed) -> None:
    assert isinstance(result, Parsed)
    assert isinstance(result.records, tuple) and isinstance(result.unparsed, tuple)
    assert all(isinstance(line, str) for line in result.unparsed)
    assert isinstance(result.truncated, bool)


# Words the tools print, so that random lines reach deep into the parsers, not only their
# first "is this a line I know" check.
VOCAB = sorted(
    {
        *ROUTE_TYPES,
        *ROUTE_FLAGS,
        "default",
        "via",
        "dev",
        "table",
        "proto",
        "scope",
        "src",
        "metric",
        "pref",
        "expires",
        "mtu",
        "lock",
        "rtt",
        "advmss",
        "congctl",
        "features",
        "nexthop",
        "weight",
        "cache",
        "nh_info",
        "encap",
        "nhid",
        "from",
        "inet",
        "inet6",
        "realms",
        "tos",
        "10.0.0.0/8",
        "10.1.1.1",
        "fe80::1",
        "::/0",
        "eth0",
        "1024",
        "-1",
        "12sec",
        "1.5s",
        "10ms",
        "<redirected>",
        "[",
        "]",
        "1:",
        "lo:",
        "eth0@if7:",
        "<UP,LOWER_UP>",
        "link/ether",
        "brd",
        "peer",
        "link-netnsid",
        "vxlan",
        "id",
        "dstport",
        "srcport",
        "nolearning",
        "bridge_slave",
        "RX:",
        "TX:",
        "altname",
        "valid_lft",
        "forever",
        "lladdr",
        "PERMANENT",
        "router",
        "aa:bb:cc:dd:ee:ff",
        "self",
        "master",
        "permanent",
        "(incomplete)",
        "?",
        "(10.0.0.1)",
        "at",
        "on",
        "[ether]",
        "Features",
        "for",
        "on:",
        "off",
        "[fixed]",
        "Settings",
        "Speed:",
        "=",
        "FLANNEL_MTU=1450",
        "Destination",
        "Gateway",
        "Next",
        "Hop",
        "Kernel",
        "bridge",
        "name",
        "8000.0242",
        "yes",
        "no",
        "(id:",
        "3)",
        "Iface",
        "0001",
        "00000000",
        "flags=4163<UP>",
        "\u00e9",
        "\x00",
        "\x0c",
    }
)
LINE = st.tuples(
    st.sampled_from(["", "", " ", "    ", "\t", "       "]),
    st.lists(st.one_of(st.sampled_from(VOCAB), st.text(max_size=6)), max_size=14),
).map(lambda parts: parts[0] + " ".join(parts[1]))
TOOLISH = st.lists(LINE, max_size=25).map(lambda lines: "\n".join(lines))


@pytest.mark.parametrize(("name", "parse"), PARSERS, ids=[name for name, _ in PARSERS])
@FUZZ
@given(data=st.binary(max_size=600))
def test_any_bytes(name, parse, data):
    check(parse(data))


@pytest.mark.parametrize(("name", "parse"), PARSERS, ids=[name for name, _ in PARSERS])
@FUZZ
@given(text=TOOLISH, invalid=st.binary(max_size=4))
def test_tool_shaped_noise(name, parse, text, invalid):
    check(parse(text.encode() + b"\xff" + invalid))
    check(parse(text))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["dst", "ifindex", "ifname", "mac", "name", "priority", "type", "encap"]
            )
            | st.text(max_size=6),
            children,
            max_size=6,
        )
    ),
    max_leaves=20,
)


@pytest.mark.parametrize(("name", "parse"), PARSERS, ids=[name for name, _ in PARSERS])
@FUZZ
@given(value=JSON, cut=st.integers(min_value=0, max_value=400))
def test_any_json_whole_or_cut(name, parse, value, cut):
    document = json.dumps([value, value]).encode()
    check(parse(document))
    check(parse(document[:cut]))


# `ip netns list` is collected for people only (the manifest lists the namespaces)
JSON_SAMPLES = sorted(p for p in (DATA / "lab").glob("*.json") if "netns" not in p.name)


@pytest.mark.parametrize("path", JSON_SAMPLES, ids=[p.name for p in JSON_SAMPLES])
def test_every_cut_of_a_real_json_output_keeps_the_records_before_it(path):
    name = path.name
    if "route" in name:
        parse: Callable[[bytes], Parsed] = parsers.parse_ip_route_json
    elif "fdb" in name:
        parse = parsers.parse_bridge_fdb_json
    elif "bridge" in name:
        parse = parsers.parse_bridge_link_json
    elif "addr" in name:
        parse = parsers.parse_ip_addr_json
    elif "link" in name:
        parse = parsers.parse_ip_link_json
    elif "neigh" in name:
        parse = parsers.parse_ip_neigh_json
    else:
        assert "rule" in name, name
        parse = parsers.parse_ip_rule_json
    raw = path.read_bytes()
    whole = parse(raw)
    assert whole.clean and whole.records
    step = max(1, len(raw) // 300)
    for cut in range(0, len(raw.rstrip()), step):
        part = parse(raw[:cut])
        assert part.records == whole.records[: len(part.records)], cut
        if cut:
            assert part.truncated or part.unparsed, cut


# --- the route parser's two readers agree -----------------------------------------------

ROUTE_WORD = st.sampled_from(
    [
        "via",
        "dev",
        "table",
        "proto",
        "scope",
        "src",
        "metric",
        "pref",
        "expires",
        "mtu",
        "lock",
        "rtt",
        "advmss",
        "congctl",
        "features",
        "hoplimit",
        "onlink",
        "linkdown",
        "dead",
        "inet6",
        "10.0.0.1",
        "fe80::1",
        "eth0",
        "main",
        "20",
        "-3",
        "12sec",
        "1.5s",
        "250ms",
        "x9",
        "weight",
        "encap",
        "nhid",
    ]
)
CONT = (
    st.tuples(
        st.sampled_from(
            ["\tnexthop", "    cache", "\tnexthop via", "    cache <redirected>", "\t"]
        ),
        st.lists(ROUTE_WORD, max_size=8),
    )
    .map(lambda parts: " ".join([parts[0], *parts[1]]))
    .filter(str.strip)
)


@settings(max_examples=600, deadline=None)
@given(
    rtype=st.sampled_from(["", "local ", "unreachable "]),
    dst=st.sampled_from(["10.1.0.0/16", "default", "2001:db8::/64"]),
    words=st.lists(ROUTE_WORD, max_size=14),
    conts=st.lists(CONT, max_size=3),
)
def test_fast_reader_agrees_with_general_reader(rtype, dst, words, conts):
    head = f"{rtype}{dst} {' '.join(words)}".split()
    start = 2 if rtype else 1
    expected = _general_route(dst, rtype.strip() or "unicast", head, start, conts or None)
    assert _route_from_lines(head, conts or None) == expected


def test_invalid_utf8_is_replaced_not_fatal():
    (route,) = parse_ip_route_text(b"10.0.0.0/8 dev \xff\xfeeth via 10.1.1.1\n").records
    assert route.dev == "\ufffd\ufffdeth" and route.gateway == "10.1.1.1"


def test_crlf_line_endings():
    (route,) = parse_ip_route_text(
        b"10.0.0.0/8 dev eth0\r\n\tnexthop via 10.1.1.1 dev eth0\r\n"
    ).records
    assert route.dev == "eth0" and route.nexthops[0].gateway == "10.1.1.1"


@pytest.mark.parametrize(
    "data",
    [
        b"[" * 100_000,
        b"[" + b"9" * 5000 + b"]",
        b'[{"dst":' + b"[" * 50_000 + b"]" * 50_000 + b"}]",
        b"\x00" * 1000,
        b"10.0.0.0/8 " + b"dev eth0 " * 20_000,
    ],
    ids=["deep-nesting", "huge-int", "deep-value", "nul-bytes", "very-long-line"],
)
@pytest.mark.parametrize(("name", "parse"), PARSERS, ids=[name for name, _ in PARSERS])
def test_hostile_shapes(name, parse, data):
    check(parse(data))
