"""A large archive is spooled by a forked child that tells this process of each member
once its bytes are in: a build reads the members it needs while the rest is still
being spooled, and the archive is still refused, whole, for anything found later."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import tempfile
import time
from pathlib import Path

import pytest
from minimal_bundle import MINIMAL_MANIFEST
from needle.analyzer.bundle import open_and_build, open_bundle, reader
from needle.analyzer.bundle.reader import Bundle
from needle.analyzer.errors import BundleError

EARLY = "cluster/nodes.json"
LATE = "nodes/n9/host/ip-link.json"
# more than one flush of the spool (4 MiB) between the early member and the late one
FILLER = 9 << 20


def write_archive(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def bundle_members(*tail: tuple[str, bytes]) -> list[tuple[str, bytes]]:
    return [
        ("manifest.json", json.dumps(MINIMAL_MANIFEST).encode()),
        (EARLY, b'{"items": []}'),
        ("nodes/n1/filler.bin", os.urandom(FILLER)),
        *tail,
    ]


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """Every spool goes here (to see that nothing is left), and every archive is
    spooled by a child, as a 1,000-node one is."""
    place = tmp_path / "private-tmp"
    place.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(place))
    monkeypatch.setattr(reader, "PARALLEL_CHECK_BYTES", 0)
    return place


def test_a_build_reads_early_members_before_the_spool_has_ended(tmp_path, private_tmp, monkeypatch):
    path = write_archive(tmp_path / "b.tar.gz", bundle_members((LATE, b"[]")))
    built_early = tmp_path / "built-early"
    waited = tmp_path / "spool-waited"
    real = reader._decompressed

    def held_back(raw, origin):
        """The stream stops after 6 MiB (past a flush of the spool) until the build has
        read the early member, or 20 s have passed: the spooling child waits on the
        building parent."""
        stream = real(raw, origin)
        given = 0

        def read(size: int = -1) -> bytes:
            nonlocal given
            if given > 6 << 20 and not waited.exists():
                deadline = time.monotonic() + 20
                while not built_early.exists() and time.monotonic() < deadline:
                    time.sleep(0.01)
                waited.write_text("yes" if built_early.exists() else "timed out")
            chunk = stream.read(size)
            given += len(chunk)
            return chunk

        return io.BufferedReader(_Reader(read))

    monkeypatch.setattr(reader, "_decompressed", held_back)

    def build(bundle: Bundle) -> tuple[bytes | None, bytes | None, bytes | None]:
        early = bundle.read_bytes(EARLY)
        built_early.write_text("read")
        return early, bundle.read_bytes(LATE), bundle.read_bytes("nodes/n9/absent.json")

    (bundle,), (read,) = open_and_build([path], build)
    with bundle:
        assert read == (b'{"items": []}', b"[]", None)
        assert waited.read_text() == "yes", "the build waited for the whole spool"
        assert bundle.files() == sorted(["manifest.json", EARLY, "nodes/n1/filler.bin", LATE]), (
            "once open, the bundle has every member"
        )
        assert bundle.exists(LATE) and not bundle.exists("nodes/n9/absent.json")
    assert list(private_tmp.iterdir()) == [], "nothing is left behind"


class _Reader(io.RawIOBase):
    def __init__(self, read) -> None:
        self._read = read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self._read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def test_a_hostile_member_after_the_build_began_refuses_the_bundle(tmp_path, private_tmp):
    path = write_archive(tmp_path / "b.tar.gz", bundle_members(("../escape.txt", b"x")))
    read: list[bytes | None] = []
    with pytest.raises(BundleError, match=r"unsafe member path '\.\./escape\.txt'") as caught:
        open_and_build([path], lambda bundle: read.append(bundle.read_bytes(EARLY)))
    assert "\n" not in str(caught.value)
    assert read == [b'{"items": []}'], "the build began on what had been spooled"
    assert list(private_tmp.iterdir()) == []


def test_a_truncated_archive_is_refused_after_the_build(tmp_path, private_tmp):
    whole = write_archive(tmp_path / "whole.tar.gz", bundle_members((LATE, b"[]")))
    data = gzip.decompress(whole.read_bytes())
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(gzip.compress(data[: len(data) - (2 << 20)], compresslevel=1))
    read: list[bytes | None] = []
    with pytest.raises(BundleError, match="truncated or corrupt"):
        open_and_build([cut], lambda bundle: read.append(bundle.read_bytes(LATE)))
    assert read == [None], "a member never spooled is absent to the build"
    assert list(private_tmp.iterdir()) == []


def test_a_bundle_in_a_folder_is_named_as_the_bundle_names_it(tmp_path, private_tmp):
    members = [(f"bundle/{name}", data) for name, data in bundle_members((LATE, b"[]"))]
    path = write_archive(tmp_path / "b.tar.gz", members)
    with open_bundle(path) as bundle:
        assert bundle.read_bytes(LATE) == b"[]"
        assert "bundle/" + LATE not in bundle.files()
    assert list(private_tmp.iterdir()) == []
