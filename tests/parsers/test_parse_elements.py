"""Element-by-element parsing of -j arrays gives exactly what parsing the whole array
gives, for any array, and shares one record per distinct element."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from needle.analyzer.parsers import elements
from needle.analyzer.parsers.bridge_fdb import _entry_from_json, parse_bridge_fdb
from needle.analyzer.parsers.common import records_from_json
from needle.analyzer.parsers.elements import ElementMemo
from needle.analyzer.parsers.ip_neigh import _neighbor_from_json, parse_ip_neigh
from needle.analyzer.parsers.ip_route import _route_from_json, parse_ip_route

# strings that look like the split point, or break JSON when cut there
tricky = st.sampled_from(["}, {", "},{", '"}, {"', "}]", "[{", "\\", '"', "a}  ,\n{b"])
scalar = st.one_of(
    st.text(max_size=8),
    tricky,
    st.integers(-5, 5),
    st.booleans(),
    st.none(),
    st.sampled_from(["10.244.1.0/24", "flannel.1", "onlink", "PERMANENT", "main"]),
)
value = st.recursive(
    scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["a", "mtu"]), inner)
    ),
    max_leaves=6,
)
KEYS = "dst dev gateway flags type table mac ifname lladdr state metrics nexthops protocol scope x"
keys = st.sampled_from(KEYS.split())
word = st.one_of(tricky, st.sampled_from(["10.244.1.0/24", "10.244.1.0", "0a:58:0a:f4:01:00"]))
everyday = st.fixed_dictionaries(
    {"dst": word, "dev": word, "mac": word, "ifname": word, "lladdr": word},
    optional={"flags": st.lists(word, max_size=2), "state": st.sampled_from(["permanent"])},
)
element = st.one_of(
    st.dictionaries(keys, value, max_size=6),
    everyday,
    st.builds(lambda a, b: {**a, **b}, everyday, st.dictionaries(keys, value, max_size=2)),
)
separators = st.sampled_from([(",", ":"), (", ", ": "), (",\n  ", ": ")])

CONVERTERS = [_route_from_json, _entry_from_json, _neighbor_from_json]


@settings(max_examples=300, deadline=None)
@given(
    items=st.lists(element, max_size=6),
    separator=separators,
    converter=st.sampled_from(CONVERTERS),
    indent=st.sampled_from([None, 1]),
)
def test_element_parse_equals_whole_parse(items, separator, converter, indent) -> None:
    data = json.dumps(items, separators=separator, indent=indent).encode()
    memo = ElementMemo(converter)
    for _ in range(2):  # a second time from the memo
        remembered = memo.parse(data)
        if remembered is not None:
            assert remembered == records_from_json(data, converter)


def test_flat_arrays_take_the_element_path_and_share_records() -> None:
    route = {"dst": "10.244.7.0/24", "gateway": "10.244.7.0", "dev": "flannel.1"}
    own = {"dst": "10.244.1.0/24", "dev": "cni0", "protocol": "kernel", "scope": "link"}
    first = json.dumps([own, route]).encode()
    second = json.dumps([route, {**own, "dst": "10.244.2.0/24"}]).encode()
    memo = ElementMemo(_route_from_json)
    a, b = memo.parse(first), memo.parse(second)
    assert a is not None and b is not None
    assert a.records[1] is b.records[0]  # one record for the route both nodes hold
    assert [r.dst for r in b.records] == ["10.244.7.0/24", "10.244.2.0/24"]


def test_nested_objects_and_damage_fall_back_to_the_whole_parse() -> None:
    memo = ElementMemo(_route_from_json)
    multipath = [
        {"dst": "default", "nexthops": [{"gateway": "10.0.0.1"}, {"gateway": "10.0.0.2"}]},
        {"dst": "10.0.1.0/24", "dev": "eth0"},
    ]
    assert memo.parse(json.dumps(multipath).encode()) is None
    assert memo.parse(b'[{"dst": "10.0.1.0/24"}, {"dst": "10.0') is None  # cut off
    assert memo.parse(b'Error: oops\n[{"dst": "10.0.1.0/24"}]') is None
    assert memo.parse(b"[]") is None
    # and the public parsers still read them all
    parsed = parse_ip_route(json.dumps(multipath).encode())
    assert [r.dst for r in parsed.records] == ["default", "10.0.1.0/24"]
    assert parse_ip_route(b'[{"dst": "10.0.1.0/24"}, {"dst": "10.0').truncated


def test_unconvertible_elements_stay_unparsed() -> None:
    data = b'[{"dst": "10.0.1.0/24", "dev": "eth0"}, {"dev": "no destination"}]'
    for _ in range(2):
        parsed = parse_ip_route(data)
        assert [r.dst for r in parsed.records] == ["10.0.1.0/24"]
        assert len(parsed.unparsed) == 1 and "no destination" in parsed.unparsed[0]


def test_memo_stops_growing_at_its_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(elements, "MAX_REMEMBERED", 3)
    memo = ElementMemo(_neighbor_from_json)
    rows = [
        {"dst": f"10.0.0.{i}", "dev": "flannel.1", "lladdr": "aa:bb:cc:dd:ee:ff"} for i in range(10)
    ]
    parsed = memo.parse(json.dumps(rows).encode())
    assert parsed is not None and len(parsed.records) == 10
    assert len(memo.done) == 3


def test_public_parsers_agree_with_whole_parse_on_everyday_output() -> None:
    mac = "0a:58:0a:f4:01:00"
    fdb = json.dumps(
        [{"mac": mac, "ifname": "flannel.1", "dst": "172.16.0.2", "flags": ["self"]}]
    ).encode()
    neigh = json.dumps(
        [{"dst": "10.244.1.0", "dev": "flannel.1", "lladdr": mac, "state": ["PERMANENT"]}]
    ).encode()
    assert parse_bridge_fdb(fdb) == records_from_json(fdb, _entry_from_json)
    assert parse_ip_neigh(neigh) == records_from_json(neigh, _neighbor_from_json)
    assert parse_bridge_fdb(fdb).records[0].dst == "172.16.0.2"
