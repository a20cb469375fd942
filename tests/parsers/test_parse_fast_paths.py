"""The direct builders for everyday JSON records give exactly what the full converters
give (they exist only for speed: 10^6 routes, neighbours and FDB entries per bundle)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from needle.analyzer.parsers.bridge_fdb import _full_entry, _plain_entry
from needle.analyzer.parsers.ip_neigh import _full_neighbor, _plain_neighbor
from needle.analyzer.parsers.ip_route import _full_route, _plain_route

text = st.one_of(
    st.text(min_size=1, max_size=12),
    st.sampled_from(
        [
            "10.244.1.0/24",
            "default",
            "fe80::/64",
            "flannel.1",
            "main",
            "local",
            "kernel",
            "link",
            "onlink",
            "PERMANENT",
            "permanent",
            "self",
            "0a:bc:00:11:22:33",
        ]
    ),
)
weird = st.one_of(st.none(), st.integers(), st.booleans(), st.lists(st.integers(), max_size=2))


def records(keys: list[str], numbers: tuple[str, ...] = (), lists: tuple[str, ...] = ()):
    values = {key: st.one_of(text, weird) for key in keys}
    for key in numbers:
        values[key] = st.one_of(st.integers(0, 1 << 20), weird, text)
    for key in lists:
        values[key] = st.one_of(st.lists(text, max_size=3), weird)
    return st.fixed_dictionaries({}, optional=values)


ROUTE_KEYS = ["type", "dst", "gateway", "dev", "table", "protocol", "scope", "prefsrc", "pref"]


@settings(max_examples=2000, deadline=None)
@given(records(ROUTE_KEYS, numbers=("metric",), lists=("flags",)))
def test_plain_route_equals_full(obj):
    plain = _plain_route(obj)
    if plain is not None:
        assert plain == _full_route(obj)


@settings(max_examples=2000, deadline=None)
@given(records(["dst", "dev", "lladdr"], lists=("state",)))
def test_plain_neighbor_equals_full(obj):
    plain = _plain_neighbor(obj)
    if plain is not None:
        assert plain == _full_neighbor(obj)


@settings(max_examples=2000, deadline=None)
@given(records(["mac", "ifname", "dst", "master", "state"], lists=("flags",)))
def test_plain_fdb_entry_equals_full(obj):
    plain = _plain_entry(obj)
    if plain is not None:
        assert plain == _full_entry(obj)


def test_the_fast_paths_take_everyday_records():
    assert (
        _plain_route(
            {
                "type": "unicast",
                "dst": "10.244.2.0/24",
                "gateway": "10.244.2.0",
                "dev": "flannel.1",
                "table": "main",
                "protocol": "boot",
                "scope": "global",
                "flags": ["onlink"],
            }
        )
        is not None
    )
    assert (
        _plain_neighbor(
            {
                "dst": "10.244.2.0",
                "dev": "flannel.1",
                "lladdr": "0a:bc:00:11:22:33",
                "state": ["PERMANENT"],
            }
        )
        is not None
    )
    assert (
        _plain_entry(
            {
                "mac": "0a:bc:00:11:22:33",
                "ifname": "flannel.1",
                "dst": "192.168.122.12",
                "flags": ["self"],
                "state": "permanent",
            }
        )
        is not None
    )
