"""The hand-written check of command records agrees with the manifest's JSON Schema
(the schema is the contract; the check exists because a 1,000-node manifest has ~10^6
command records)."""

from __future__ import annotations

import jsonschema
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.bundle.manifest import command_problem, manifest_schema

SCHEMA = manifest_schema()
COMMAND = jsonschema.Draft202012Validator({"$defs": SCHEMA["$defs"], "$ref": "#/$defs/command"})

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
    from analyzer.bundle.manifest import is_relpath

    assert is_relpath(value) == _relpath_by_parts(value)
