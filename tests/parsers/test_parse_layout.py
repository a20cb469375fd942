"""The parsers keep their speed machinery in its own modules: the readers of each form
stay plain, the quick readers only decline what they do not know, and the memo of shared
records gives exactly what reading the whole output gives."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import needle.analyzer.parsers.ip_route as ip_route
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from needle.analyzer.parsers import ip_route_record
from needle.analyzer.parsers.bridge_fdb import _entry_from_json
from needle.analyzer.parsers.common import records_from_json
from needle.analyzer.parsers.elements import ElementMemo
from needle.analyzer.parsers.ip_neigh import _neighbor_from_json
from needle.analyzer.parsers.ip_route_fast import quick_json_route, quick_text_route
from needle.analyzer.parsers.ip_route_json import _route_from_json, route_from_json
from needle.analyzer.parsers.ip_route_text import read_route

PACKAGE = Path(__file__).resolve().parents[2] / "analyzer" / "parsers"


def imported_names(module: str) -> set[str]:
    """Every module and name a parser module imports (``sys.intern`` as ``sys.intern``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse((PACKAGE / f"{module}.py").read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_strings_are_shared_in_one_place():
    users = {
        path.stem
        for path in PACKAGE.glob("*.py")
        if {"sys.intern", "functools.lru_cache"} & imported_names(path.stem)
    }
    assert users == {"elements"}


@pytest.mark.parametrize("module", ["ip_route_record", "ip_route_fast"])
def test_route_layers_point_one_way(module):
    # The record knows no reader; the quick readers know the record, never the general
    # readers (those call them, not the other way round).
    readers = {"ip_route_text", "ip_route_json", "ip_route"}
    ours = {name.rsplit(".", 1)[-1] for name in imported_names(module) if ".parsers." in name}
    assert not ours & readers


def test_callers_see_one_route_record():
    assert ip_route.Route is ip_route_record.Route
    assert ip_route.Nexthop is ip_route_record.Nexthop
    assert ip_route.make_route is ip_route_record.make_route
    for name in ("parse_ip_route", "parse_ip_route_json", "parse_ip_route_text"):
        assert callable(getattr(ip_route, name))


@pytest.mark.parametrize(
    "line",
    [
        "10.1.0.0/16 via inet6 fe80::1 dev eth0",
        "10.1.0.0/16 dev eth0 weight 3",
        "10.1.0.0/16 dev eth0 realm 7",
        "10.1.0.0/16 encap mpls 100 via 10.0.0.1 dev eth0",
        "10.1.0.0/16 dev eth0 mtu lock",
        "10.1.0.0/16 dev eth0 something-new 1",
    ],
)
def test_quick_text_reader_declines_what_it_does_not_know(line):
    words = line.split()
    assert quick_text_route(words[0], "unicast", words, 1, None) is None
    assert read_route(words[0], "unicast", words, 1, None).dst == "10.1.0.0/16"


@pytest.mark.parametrize(
    "element",
    [
        {"dst": "10.1.0.0/16", "dev": "eth0", "metrics": [{"mtu": 1400}]},
        {"dst": "10.1.0.0/16", "via": {"family": "inet6", "host": "fe80::1"}},
        {"dst": "10.1.0.0/16", "dev": 7},
        {"dst": "10.1.0.0/16", "flags": ["onlink", 3]},
        {"dst": "10.1.0.0/16", "metric": "20"},
    ],
)
def test_quick_json_reader_declines_what_it_does_not_know(element):
    assert quick_json_route(element) is None
    assert route_from_json(element) is not None


word = st.sampled_from(["10.244.1.0/24", "flannel.1", "onlink", "}, {", '"', "0a:58:00:00:00:01"])
scalar = st.one_of(word, st.integers(-3, 3), st.none(), st.booleans())
element = st.dictionaries(
    st.sampled_from(["dst", "dev", "gateway", "flags", "mac", "ifname", "lladdr", "state", "x"]),
    st.one_of(scalar, st.lists(scalar, max_size=2)),
    max_size=5,
)


@settings(max_examples=200, deadline=None)
@given(
    items=st.lists(element, max_size=5),
    convert=st.sampled_from([_route_from_json, _entry_from_json, _neighbor_from_json]),
    as_text=st.booleans(),
)
def test_memo_records_equal_the_whole_parse(items, convert, as_text):
    data: bytes | str = json.dumps(items)
    data = data if as_text else data.encode()
    memo = ElementMemo(convert)
    for _ in range(2):  # the second time from what the memo remembered
        assert memo.records(data) == records_from_json(data, convert)


def test_memo_records_keep_damage_as_the_whole_parse_does():
    memo = ElementMemo(_route_from_json)
    for data in (b'[{"dst": "10.0.1.0/24"}, {"dst": "10.0', b'oops\n[{"dst": "10.0.0.0/8"}]'):
        assert memo.records(data) == records_from_json(data, _route_from_json)
    assert memo.records(b'[{"dst": "10.0.1.0/24"}, {"dst": "10.0').truncated
