"""Models are built while the manifests are still being validated: an invalid manifest is
refused in one line whatever the build did with it, and a valid one gets the build's own
result or error."""

from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
from pathlib import Path

import pytest
from minimal_bundle import MINIMAL_MANIFEST
from needle.analyzer.bundle import open_and_build, reader
from needle.analyzer.bundle.reader import Bundle
from needle.analyzer.errors import BundleError

MANIFEST = MINIMAL_MANIFEST
# valid JSON of the right format, but not by the schema (found only by validation)
INVALID = {**MANIFEST, "status": "half-done"}


def archive(path: Path, manifest: dict) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in (
            ("manifest.json", json.dumps(manifest).encode()),
            ("nodes/n1/host/ip-link.json", b"[]"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def directory(path: Path, manifest: dict) -> Path:
    (path / "nodes" / "n1" / "host").mkdir(parents=True)
    (path / "manifest.json").write_text(json.dumps(manifest))
    (path / "nodes" / "n1" / "host" / "ip-link.json").write_text("[]")
    return path


@pytest.fixture(params=["forked", "in-process"])
def check_mode(request, monkeypatch, tmp_path):
    """Validation in a forked child (as for a large manifest) or in this process."""
    place = tmp_path / "private-tmp"
    place.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(place))
    threshold = 0 if request.param == "forked" else 1 << 40
    monkeypatch.setattr(reader, "PARALLEL_CHECK_BYTES", threshold)
    return place


@pytest.mark.parametrize("make", [archive, directory])
def test_an_invalid_manifest_is_refused_whatever_the_build_raised(tmp_path, check_mode, make):
    good = make(tmp_path / "good", MANIFEST)
    bad = make(tmp_path / "bad", INVALID)

    def build(bundle: Bundle) -> None:
        raise KeyError("nodes")  # what code meeting a hostile manifest might raise

    with pytest.raises(BundleError, match=r"bad: manifest\.json is invalid at status") as caught:
        open_and_build([good, bad], build)
    assert "\n" not in str(caught.value)
    assert list(check_mode.iterdir()) == [], "the bundles are closed, nothing left behind"


def test_an_invalid_manifest_is_refused_though_the_build_succeeded(tmp_path, check_mode):
    seen: list[Bundle] = []
    with pytest.raises(BundleError, match="invalid at status"):
        open_and_build([archive(tmp_path / "bad", INVALID)], seen.append)
    assert all(bundle._closed for bundle in seen)
    assert list(check_mode.iterdir()) == []


def test_a_valid_bundle_gets_the_builds_result_and_its_error(tmp_path, check_mode):
    path = archive(tmp_path / "good", MANIFEST)
    (bundle,), (links,) = open_and_build(
        [path], lambda b: b.read_bytes("nodes/n1/host/ip-link.json")
    )
    with bundle:
        assert links == b"[]"
        assert bundle.read_bytes("manifest.json") is not None

    def broken(bundle: Bundle) -> None:
        raise ValueError("a bug in the build")

    with pytest.raises(ValueError, match="a bug in the build"):
        open_and_build([path], broken)
    assert list(check_mode.iterdir()) == []


def test_in_process_checking_builds_nothing_from_an_invalid_manifest(tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "PARALLEL_CHECK_BYTES", 1 << 40)
    calls: list[object] = []
    with pytest.raises(BundleError):
        open_and_build([directory(tmp_path / "bad", INVALID)], calls.append)
    assert calls == []


def test_two_archives_are_built_in_order_as_each_is_spooled(tmp_path, check_mode):
    first = archive(tmp_path / "first", MANIFEST)
    second = archive(tmp_path / "second", {**MANIFEST, "created": "2026-11-27T08:00:00Z"})
    bundles, created = open_and_build([first, second], lambda b: b.manifest["created"])
    try:
        assert created == ["2026-11-26T08:00:00Z", "2026-11-27T08:00:00Z"]
        for bundle in bundles:
            assert bundle.read_bytes("nodes/n1/host/ip-link.json") == b"[]"
    finally:
        for bundle in bundles:
            bundle.close()
    assert list(check_mode.iterdir()) == []


def test_a_hostile_second_archive_is_refused_after_the_first_was_built(tmp_path, check_mode):
    first = archive(tmp_path / "first", MANIFEST)
    hostile = tmp_path / "hostile"
    with tarfile.open(hostile, "w:gz") as tar:
        for name, data in (
            ("manifest.json", json.dumps(MANIFEST).encode()),
            # past the first MiB of the stream: found while the rest is spooled
            ("nodes/n1/filler.bin", os.urandom(3 << 20)),
            ("../escape.txt", b"x"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    seen: list[Bundle] = []
    with pytest.raises(BundleError, match=r"hostile: unsafe member path") as caught:
        open_and_build([first, hostile], seen.append)
    assert "\n" not in str(caught.value)
    # the hostile one may have been built while its spool went on: refused all the same
    assert [bundle.origin for bundle in seen][:1] == [str(first)]
    assert all(bundle._closed for bundle in seen)
    assert list(check_mode.iterdir()) == [], "nothing is left behind"
