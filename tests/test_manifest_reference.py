"""Validating a diff's second manifest against the first (records equal to the first's
are not checked twice) accepts and refuses exactly what validating it alone does."""

from __future__ import annotations

import copy
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from needle.analyzer.bundle.manifest import validate_manifest
from needle.analyzer.errors import BundleError

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "lab-healthy.tar.gz"


def _sample_manifest() -> dict[str, Any]:
    with tarfile.open(SAMPLE) as archive:
        member = next(m for m in archive.getmembers() if m.name.endswith("manifest.json"))
        return json.load(archive.extractfile(member))  # type: ignore[arg-type]


VALID = _sample_manifest()


def _leaves(value: Any, at: tuple = ()) -> list[tuple]:
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in _leaves(item, (*at, key))] + [at]
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _leaves(item, (*at, i))] + [at]
    return [at]


LEAVES = [path for path in _leaves(VALID) if path]
weird = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from(["", "/etc/passwd", "../x", "ok/x", "weird", "2026-01-01T00:00:00Z"]),
    st.lists(st.integers(), max_size=1),
    st.just({}),
)


def _verdict(manifest: dict[str, Any], reference: dict[str, Any] | None) -> str | None:
    try:
        validate_manifest(manifest, "b", reference)
    except BundleError as refused:
        return str(refused)
    return None


@settings(max_examples=400, deadline=None)
@given(changes=st.lists(st.tuples(st.sampled_from(LEAVES), weird, st.booleans()), max_size=3))
def test_checked_against_a_valid_reference_or_alone_the_verdict_is_the_same(changes):
    manifest = copy.deepcopy(VALID)
    for path, value, delete in changes:
        parent = manifest
        try:
            for part in path[:-1]:
                parent = parent[part]
            if delete and isinstance(parent, dict):
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed or replaced this path
    against, alone = _verdict(manifest, VALID), _verdict(manifest, None)
    assert (against is None) == (alone is None)
    if len(changes) == 1:  # one fault: both name it alike (with more, either may come first)
        assert against == alone


def test_an_unchanged_manifest_against_itself_is_valid_and_a_bad_record_is_named():
    assert _verdict(copy.deepcopy(VALID), VALID) is None
    bad = copy.deepcopy(VALID)
    bad["nodes"][1]["commands"][2]["output"] = "/etc/passwd"
    refused = _verdict(bad, VALID)
    assert refused is not None and "nodes/1/commands/2" in refused


@pytest.mark.parametrize("reference", [{}, {"nodes": "x"}, {"nodes": [1, {"commands": 3}]}])
def test_a_malformed_reference_only_means_nothing_is_skipped(reference):
    bad = copy.deepcopy(VALID)
    bad["nodes"][0]["status"] = "weird"
    assert _verdict(bad, reference) == _verdict(bad, None) is not None
    assert _verdict(copy.deepcopy(VALID), reference) is None
