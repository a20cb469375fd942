"""The hand-written checks of command and netns records agree with the manifest's JSON
Schema (the schema is the contract; the checks exist because a 1,000-node manifest has
~10^6 command and ~10^5 netns records)."""

from __future__ import annotations

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from minimal_bundle import MINIMAL_MANIFEST
from needle.analyzer.bundle.manifest import command_problem, manifest_schema, netns_problem

SCHEMA = manifest_schema()
COMMAND = jsonschema.Draft202012Validator({"$defs": SCHEMA["$defs"], "$ref": "#/$defs/command"})
NETNS = jsonschema.Draft202012Validator({"$defs": SCHEMA["$defs"], "$ref": "#/$defs/netns"})

paths = st.one_of(
    st.sampled_from(
        ["nodes/a/host/x.json", "a//b", "/abs", "a/../b", "a/.", "..", "a\\b", "", "ok", "a/b/"]
    ),
    st.text(max_size=8),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(-1, 5, allow_nan=False),
    st.text(max_size=5),
)
records = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.text(max_size=6), scalars),
        "argv": st.one_of(
            st.lists(st.text(max_size=4), max_size=3), st.lists(scalars, max_size=2), scalars
        ),
        "exit_code": scalars,
        "timed_out": scalars,
        "truncated": scalars,
        "missing_tool": scalars,
        "netns": scalars,
        "interface": scalars,
        "output": st.one_of(paths, scalars),
        "stderr": st.one_of(paths, scalars),
        "duration_s": scalars,
        "bytes": scalars,
    },
)


@settings(max_examples=3000, deadline=None)
@given(st.one_of(records, scalars))
def test_command_check_agrees_with_the_schema(record):
    assert (command_problem(record) is None) == COMMAND.is_valid(record), record


def test_a_typical_record_passes():
    assert (
        command_problem(
            {
                "id": "ip-link",
                "argv": ["ip"],
                "exit_code": 0,
                "timed_out": False,
                "output": "nodes/n/host/ip-link.json",
                "duration_s": 0.01,
                "bytes": 10,
                "netns": None,
            }
        )
        is None
    )


def test_integral_floats_are_integers_as_in_json_schema():
    record = {
        "id": "a",
        "argv": [],
        "exit_code": 1.0,
        "timed_out": False,
        "output": None,
        "bytes": 2.0,
    }
    assert COMMAND.is_valid(record) and command_problem(record) is None
    record["exit_code"] = 1.5
    assert not COMMAND.is_valid(record) and command_problem(record) is not None


def _relpath_by_parts(value: str) -> bool:
    return (
        bool(value)
        and not value.startswith("/")
        and "\\" not in value
        and "\x00" not in value
        and all(part not in {"", ".", ".."} for part in value.split("/"))
    )


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet="./a\\\x00b", max_size=10))
def test_relpath_check_is_the_part_by_part_definition(value):
    from needle.analyzer.bundle.manifest import is_relpath

    assert is_relpath(value) == _relpath_by_parts(value)


netns_records = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(
            st.sampled_from(["ns-4026532001", "cni-1a2b", "a.b_c-d", "-x", "", "a b", "x\n"]),
            st.text(max_size=6),
            scalars,
        ),
        "dir": st.one_of(paths, scalars),
        "inode": scalars,
        "nsid": scalars,
        "name": scalars,
        "pids": st.one_of(st.lists(scalars, max_size=3), st.lists(st.integers(-2, 9)), scalars),
    },
)


@settings(max_examples=3000, deadline=None)
@given(st.one_of(netns_records, scalars))
def test_netns_check_agrees_with_the_schema(record):
    assert (netns_problem(record) is None) == NETNS.is_valid(record), record


def test_a_typical_netns_record_passes_and_a_bad_one_is_named():
    from needle.analyzer.bundle.manifest import validate_manifest
    from needle.analyzer.errors import BundleError

    record = {"id": "ns-4026532001", "dir": "nodes/n/netns/ns-4026532001", "inode": 4026532001}
    assert netns_problem({**record, "nsid": 3, "name": None, "pids": [1, 2]}) is None
    manifest = {
        **MINIMAL_MANIFEST,
        "nodes": [
            {
                "name": "n",
                "transport": "local",
                "status": "ok",
                "errors": [],
                "dir": "nodes/n",
                "commands": [],
                "netns": [record, {**record, "dir": "nodes/n/../x"}],
            }
        ],
    }
    with pytest.raises(BundleError) as refused:
        validate_manifest(manifest, "b")
    assert str(refused.value) == (
        "b: manifest.json is invalid at nodes/0/netns/1: "
        "dir must be a relative path inside the bundle"
    )
