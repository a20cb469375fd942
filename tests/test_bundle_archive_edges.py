"""Archive edge cases refused quickly (< 1 s) with one line: a negative pax size, a
member named with a newline and "..", a manifest giving a key twice."""

from __future__ import annotations

import io
import json
import tarfile
import tempfile
import time
from pathlib import Path

import pytest
from minimal_bundle import MINIMAL_MANIFEST
from needle.analyzer.bundle import open_bundle
from needle.analyzer.errors import BundleError

MANIFEST = json.dumps(MINIMAL_MANIFEST).encode()


@pytest.fixture(autouse=True)
def private_tmp(tmp_path, monkeypatch):
    place = tmp_path / "private-tmp"
    place.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(place))
    yield place
    assert list(place.iterdir()) == [], "a refused bundle leaves no spool behind"


def archive(path: Path, extra: list[tuple[tarfile.TarInfo, bytes]], manifest: bytes = MANIFEST):
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
        for info, data in extra:
            tar.addfile(info, io.BytesIO(data))
        # bulk after the trick: refusing late would mean decompressing all of it
        filler = tarfile.TarInfo("nodes/n/host/filler.bin")
        filler.size = 16 << 20
        tar.addfile(filler, io.BytesIO(bytes(filler.size)))
    return path


def refused_quickly(path: Path, match: str) -> str:
    started = time.monotonic()
    with pytest.raises(BundleError, match=match) as caught:
        open_bundle(path)
    assert time.monotonic() - started < 1
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_negative_pax_size_is_refused_at_once(tmp_path):
    info = tarfile.TarInfo("nodes/n/host/x.txt")
    info.pax_headers = {"size": "-1"}
    refused_quickly(archive(tmp_path / "b.tar.gz", [(info, b"")]), "negative size")


def test_a_negative_octal_size_is_refused_at_once(tmp_path):
    info = tarfile.TarInfo("nodes/n/host/x.txt")
    header = bytearray(info.tobuf(tarfile.USTAR_FORMAT))
    header[124:136] = b"-0000000001\0"
    header[148:156] = b" " * 8
    header[148:155] = b"%06o\0" % sum(header[:512])
    raw = tmp_path / "b.tar"
    with tarfile.open(raw, "w") as tar:
        manifest = tarfile.TarInfo("manifest.json")
        manifest.size = len(MANIFEST)
        tar.addfile(manifest, io.BytesIO(MANIFEST))
    data = raw.read_bytes()
    end = data.rfind(MANIFEST) + len(MANIFEST)
    end += -end % 512
    raw.write_bytes(data[:end] + bytes(header[:512]) + bytes(1024))
    refused_quickly(raw, "negative size")


@pytest.mark.parametrize(
    "name", ["nodes/..\n/evil.txt", "..\n", "nodes/n/host/x\x1b[2J.txt", "nodes/a\rb"]
)
def test_a_member_named_with_control_characters_is_refused(tmp_path, name):
    info = tarfile.TarInfo(name)
    message = refused_quickly(archive(tmp_path / "b.tar.gz", [(info, b"")]), "unsafe member path")
    assert repr(name) in message


@pytest.mark.parametrize("form", ["directory", "archive"])
def test_a_manifest_key_given_twice_is_refused_by_name(tmp_path, form):
    text = b'{"status": "partial", ' + MANIFEST[1:]
    if form == "directory":
        path = tmp_path / "b"
        path.mkdir()
        (path / "manifest.json").write_bytes(text)
    else:
        path = archive(tmp_path / "b.tar.gz", [], manifest=text)
    message = refused_quickly(path, "manifest.json gives the key 'status' twice")
    assert message.startswith(str(path))


def test_a_nested_key_given_twice_is_refused_too(tmp_path):
    text = MANIFEST.replace(b'"tool": {', b'"tool": {"name": "evil", ', 1)
    path = tmp_path / "b"
    path.mkdir()
    (path / "manifest.json").write_bytes(text)
    refused_quickly(path, "'name' twice")
