"""What keeps the redaction's memory flat in the size of the cluster changes no byte of
what it writes: caches that forget at every turn, text read in windows of a few bytes,
members read as streams (from a tar the fast way and tarfile's way, and from a
directory) give the same bundle and the same map as the defaults do."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest
from needle.redact import addresses, archive, jsonstream, macs, manifest, names, run, text
from needle.redact.archive import ArchiveError, read_members
from needle.redact.run import redact_bundle
from needle.redact.scan import streamed

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
CASES = ["lab-healthy.tar.gz", "lab-canal-healthy.tar.gz", "lab-vxlan-fdb-wrong-port.tar.gz"]
KEY = bytes(range(32))


def contents(bundle: Path) -> list[tuple[str, str]]:
    """Each member's name and digest, in order; the redaction's time taken out."""
    out = []
    with tarfile.open(bundle) as tar:
        for info in tar:
            data = tar.extractfile(info).read()  # type: ignore[union-attr]
            if info.name == "manifest.json":
                document = json.loads(data)
                created = json.dumps(document["redaction"]["created"])
                data = data.replace(created.encode(), b'"-"')
            out.append((info.name, hashlib.sha256(data).hexdigest()))
    return out


def redacted(source: Path, directory: Path, **options: bool) -> tuple[list, bytes]:
    directory.mkdir()
    target, mapping = directory / "out.tar.gz", directory / "map.json"
    redact_bundle(source, target, secret=KEY, map_out=mapping, **options)
    return contents(target), mapping.read_bytes()


@pytest.fixture
def forgetful(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every bound as small as it goes: what is cached is forgotten at every trim, and
    JSON is read 5 bytes at a time."""
    monkeypatch.setattr(addresses, "_CACHED", 0)
    monkeypatch.setattr(macs, "_CACHED", 0)
    monkeypatch.setattr(names, "_LIMIT", 0)
    monkeypatch.setattr(names, "_CHUNK", 2)
    monkeypatch.setattr(manifest, "_STRINGS_KEPT", 1)
    monkeypatch.setattr(text, "_MEMO_LIMIT", 1)
    monkeypatch.setattr(text, "_MEMO_KEPT", 0)
    monkeypatch.setattr(text, "_FOLDERS_KEPT", 1)
    monkeypatch.setattr(jsonstream, "CHUNK", 5)
    monkeypatch.setattr(run, "_TRIM_EVERY", 1)


@pytest.mark.parametrize("sample", CASES)
@pytest.mark.parametrize("keep_names", [False, True])
def test_forgetting_changes_nothing(sample, keep_names, tmp_path, request) -> None:
    expected = redacted(SAMPLES / sample, tmp_path / "default", keep_names=keep_names)
    request.getfixturevalue("forgetful")
    assert redacted(SAMPLES / sample, tmp_path / "bounded", keep_names=keep_names) == expected


def test_a_directory_read_as_streams_with_forgetting_changes_nothing(tmp_path, request) -> None:
    unpacked = tmp_path / "bundle"
    with tarfile.open(SAMPLES / CASES[0]) as tar:
        tar.extractall(unpacked, filter="data")
    expected = redacted(unpacked, tmp_path / "default")
    request.getfixturevalue("forgetful")
    assert redacted(unpacked, tmp_path / "bounded") == expected


def _unusual(*args: object) -> object:
    """In place of the fast tar reader: leaves every tar to tarfile's."""
    raise archive._Unusual
    yield  # a generator, as the fast reader is


def test_tarfiles_reader_streams_what_the_fast_reader_streams(monkeypatch, tmp_path) -> None:
    expected = redacted(SAMPLES / CASES[0], tmp_path / "fast")
    monkeypatch.setattr(archive, "_tar_fast", _unusual)
    assert redacted(SAMPLES / CASES[0], tmp_path / "tarfile") == expected


@pytest.mark.parametrize("fast", [True, False])
def test_a_stream_cut_short_is_an_archive_error(monkeypatch, tmp_path, fast) -> None:
    # an uncompressed tar cut inside pods.json, which comes as a stream
    raw = tmp_path / "cut.tar"
    with tarfile.open(SAMPLES / CASES[0]) as tar, tarfile.open(raw, "w") as out:
        for info in tar:
            out.addfile(info, tar.extractfile(info))
    with tarfile.open(raw) as tar:
        pods = tar.getmember("cluster/pods.json")
    raw.write_bytes(raw.read_bytes()[: pods.offset_data + pods.size // 2])
    if not fast:
        monkeypatch.setattr(archive, "_tar_fast", _unusual)
    with pytest.raises(ArchiveError, match=r"truncated"):
        for member in read_members(raw, streamed=streamed):
            if member.stream is not None:
                member.save(tmp_path / "member")
