"""Property tests for every parser in analyzer/parsers: random bytes, random JSON of any
shape and depth, and mutated real samples (tests/parsers/data) never raise (parsers
report bad input as ``unparsed`` lines and ``truncated``, never an exception) and never
return values of the wrong type: every record field holds what its annotation says."""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import needle.analyzer.parsers as parsers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from needle.analyzer.parsers.common import Parsed

DATA = Path(__file__).parent / "data"
PARSERS: list[tuple[str, Callable[[bytes], Parsed]]] = [
    (name, getattr(parsers, name)) for name in parsers.__all__ if name.startswith("parse_")
]
SAMPLES = sorted(
    p for p in DATA.rglob("*") if p.is_file() and p.suffix in {".json", ".txt", ".env", ""}
)
FUZZ = settings(
    max_examples=int(os.environ.get("NEEDLE_FUZZ_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _matches(value: Any, hint: Any) -> bool:
    """Whether `value` is of the annotated type (the shapes parsers' records use)."""
    if hint is Any or hint is object:
        return True
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in args)
    if hint is type(None):
        return value is None
    if origin is typing.Literal:
        return value in args
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(item, args[0]) for item in value)
        return len(args) == len(value) and all(
            _matches(v, a) for v, a in zip(value, args, strict=True)
        )
    if origin in (list, frozenset, set):
        return isinstance(value, origin) and all(_matches(item, args[0]) for item in value)
    if origin is dict:
        return isinstance(value, dict) and all(
            _matches(k, args[0]) and _matches(v, args[1]) for k, v in value.items()
        )
    if origin is not None:
        return isinstance(value, origin)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(hint, type):
        if not isinstance(value, hint):
            return False
        if dataclasses.is_dataclass(hint):
            check_record(value)
        return True
    return True  # a hint this checker does not know: no claim


_HINTS: dict[type, dict[str, Any]] = {}


def check_record(record: Any) -> None:
    cls = type(record)
    assert dataclasses.is_dataclass(cls), f"{cls.__name__} is not a record"
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    for item in dataclasses.fields(cls):
        value = getattr(record, item.name)
        assert _matches(value, hints[item.name]), (
            f"{cls.__name__}.{item.name} is {value!r}, not {hints[item.name]}"
        )
    # a record made on first use (ip_addr.InterfaceAddresses.link) is made here, so
    # that hostile input that would break it breaks it now
    for name, member in vars(cls).items():
        if isinstance(member, property):
            value = getattr(record, name)
            if dataclasses.is_dataclass(value):
                check_record(value)


def check(result: Parsed) -> None:
    assert isinstance(result, Parsed)
    assert isinstance(result.records, tuple)
    assert isinstance(result.unparsed, tuple)
    assert all(isinstance(line, str) for line in result.unparsed)
    assert isinstance(result.truncated, bool)
    for record in result.records:
        check_record(record)


def run_all(data: bytes) -> None:
    """Every parser on `data` (one Hypothesis example feeds all of them: fast)."""
    for name, parse in PARSERS:
        try:
            result = parse(data)
        except Exception as exc:  # pragma: no cover - what the test is for
            raise AssertionError(f"{name} raised {exc!r}") from exc
        try:
            check(result)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from exc


# JSON of random structure: scalars of every kind (huge and negative numbers, floats,
# text with control characters), lists and objects nested a few levels, and the shapes
# iproute2 prints (a list of objects with its keys) so values reach the field readers.
KEYS = st.sampled_from(
    [
        "ifname",
        "ifindex",
        "mtu",
        "dst",
        "dev",
        "gateway",
        "metric",
        "table",
        "type",
        "flags",
        "addr_info",
        "local",
        "prefixlen",
        "family",
        "lladdr",
        "state",
        "mac",
        "master",
        "linkinfo",
        "info_kind",
        "info_data",
        "id",
        "port",
        "nexthops",
        "link",
        "Network",
        "Backend",
        "VNI",
        "Port",
        "plugins",
        "name",
        "cniVersion",
        "priority",
        "src",
        "protocol",
        "scope",
        "address",
        "link_index",
        "operstate",
        "max_mtu",
        "x",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(KEYS | st.text(max_size=5), inner, max_size=6)
    ),
    max_leaves=25,
)
RECORDS = st.lists(st.dictionaries(KEYS, JSON, max_size=8), max_size=4)


@FUZZ
@given(data=st.binary(max_size=400))
def test_random_bytes(data):
    run_all(data)


@FUZZ
@given(value=JSON | RECORDS)
def test_random_json(value):
    run_all(json.dumps(value).encode())


def test_json_nested_beyond_any_limit():
    run_all(b'[{"a":' * 3000 + b"1" + b"}]" * 3000)
    run_all(b"[" * 100_000)


@FUZZ
@given(
    index=st.integers(min_value=0, max_value=max(len(SAMPLES) - 1, 0)),
    cut=st.integers(min_value=0),
    at=st.integers(min_value=0),
    insert=st.binary(max_size=12),
    drop=st.integers(min_value=0, max_value=40),
)
def test_mutated_real_samples(index, cut, at, insert, drop):
    """A real output with a few bytes replaced, dropped or inserted somewhere, and cut."""
    data = SAMPLES[index].read_bytes()
    if data:
        at %= len(data)
        data = data[:at] + insert + data[at + drop :]
        data = data[: (cut % (len(data) + 1)) if data else 0] if cut % 3 == 0 else data
    run_all(data)


@FUZZ
@given(
    index=st.integers(min_value=0, max_value=max(len(SAMPLES) - 1, 0)),
    value=JSON,
    pick=st.integers(min_value=0),
)
def test_real_json_with_a_field_of_another_type(index, value, pick):
    """A real JSON sample with one field of one record replaced by random JSON: the
    wrong-type case of the hostile corpus, on every parser."""
    path = SAMPLES[index]
    try:
        document = json.loads(path.read_bytes())
    except ValueError:
        return
    records = document if isinstance(document, list) else [document]
    objects = [r for r in records if isinstance(r, dict) and r]
    if objects:
        target = objects[pick % len(objects)]
        key = sorted(target)[pick % len(target)]
        target[key] = value
    run_all(json.dumps(document).encode())
