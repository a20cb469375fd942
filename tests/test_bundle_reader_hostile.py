"""A hostile or broken bundle gets a one-line error and writes nothing outside the reader's
private temporary directory."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import tempfile
from pathlib import Path

import pytest
from minimal_bundle import MINIMAL_MANIFEST
from needle.analyzer.bundle import ReadLimits, open_bundle
from needle.analyzer.errors import BundleError

MANIFEST = MINIMAL_MANIFEST


def member(name: str, data: bytes = b"", **attrs) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, data


def make_tar(path: Path, members, manifest: dict | None = MANIFEST, mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tar:
        if manifest is not None:
            info, data = member("manifest.json", json.dumps(manifest).encode())
            tar.addfile(info, io.BytesIO(data))
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """Point the reader's temporary place at a directory we can inspect afterwards."""
    place = tmp_path / "private-tmp"
    place.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(place))
    return place


def assert_refused(path: Path, match: str, private_tmp: Path, limits: ReadLimits | None = None):
    with pytest.raises(BundleError, match=match) as caught:
        open_bundle(path, limits)
    assert "\n" not in str(caught.value)
    assert list(private_tmp.iterdir()) == [], "a refused bundle leaves no unpacked files"


@pytest.mark.parametrize(
    "name", ["../escape.txt", "/tmp/needle-escape.txt", "nodes/../../escape.txt", "a/./b"]
)
def test_traversal_is_refused(tmp_path, private_tmp, name):
    bundle = make_tar(tmp_path / "b.tar.gz", [member(name, b"pwned")])
    assert_refused(bundle, "unsafe member path", private_tmp)
    assert not (tmp_path / "escape.txt").exists()
    assert not Path("/tmp/needle-escape.txt").exists()


@pytest.mark.parametrize(
    ("attrs", "kind"),
    [
        ({"type": tarfile.SYMTYPE, "linkname": "/etc/passwd"}, "symbolic link"),
        ({"type": tarfile.LNKTYPE, "linkname": "manifest.json"}, "hard link"),
        ({"type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 3}, "device"),
        ({"type": tarfile.FIFOTYPE}, "FIFO"),
    ],
)
def test_links_and_devices_are_refused(tmp_path, private_tmp, attrs, kind):
    bundle = make_tar(tmp_path / "b.tar.gz", [member("nodes/n/host/x", **attrs)])
    assert_refused(bundle, kind, private_tmp)


def test_a_member_over_the_size_cap_is_refused(tmp_path, private_tmp):
    zeros = b"\0" * (8 * 1024 * 1024)  # compresses to a few KiB
    bundle = make_tar(tmp_path / "b.tar.gz", [member("nodes/n/host/big", zeros)])
    assert bundle.stat().st_size < 100_000
    assert_refused(
        bundle, "decompression bomb", private_tmp, ReadLimits(max_member_bytes=1024 * 1024)
    )


def test_many_small_members_over_the_total_cap_are_refused(tmp_path, private_tmp):
    parts = [member(f"nodes/n/host/{i}", b"\0" * 100_000) for i in range(20)]
    bundle = make_tar(tmp_path / "b.tar.gz", parts)
    assert_refused(bundle, "decompression bomb", private_tmp, ReadLimits(max_total_bytes=1_000_000))


def test_too_many_members_are_refused(tmp_path, private_tmp):
    parts = [member(f"nodes/n/host/{i}") for i in range(50)]
    bundle = make_tar(tmp_path / "b.tar.gz", parts)
    assert_refused(bundle, "more than 10 members", private_tmp, ReadLimits(max_members=10))


def test_duplicate_members_are_refused(tmp_path, private_tmp):
    bundle = make_tar(tmp_path / "b.tar.gz", [member("x", b"1"), member("x", b"2")])
    assert_refused(bundle, "appears twice", private_tmp)


def test_garbage_is_refused(tmp_path, private_tmp):
    garbage = tmp_path / "b.tar.gz"
    garbage.write_bytes(os.urandom(4096))
    assert_refused(garbage, "not a bundle|truncated or corrupt", private_tmp)


def test_garbage_inside_gzip_is_refused(tmp_path, private_tmp):
    garbage = tmp_path / "b.tar.gz"
    garbage.write_bytes(gzip.compress(b"this is not a tar stream" * 100))
    assert_refused(garbage, "truncated or corrupt", private_tmp)


@pytest.mark.parametrize("suffix,mode", [(".tar.gz", "w:gz"), (".tar", "w")])
def test_truncated_archive_is_refused(tmp_path, private_tmp, suffix, mode):
    payload = os.urandom(300_000)  # incompressible so the cut lands inside a member
    whole = make_tar(tmp_path / f"whole{suffix}", [member("nodes/n/host/x", payload)], mode=mode)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert_refused(cut, "truncated or corrupt", private_tmp)


def test_truncated_zstd_is_refused(tmp_path, private_tmp):
    import zstandard

    whole = make_tar(tmp_path / "whole.tar", [member("x", os.urandom(300_000))], mode="w")
    compressed = zstandard.ZstdCompressor().compress(whole.read_bytes())
    cut = tmp_path / "cut.tar.zst"
    cut.write_bytes(compressed[: len(compressed) // 2])
    assert_refused(cut, "truncated or corrupt", private_tmp)


def test_missing_manifest_is_refused(tmp_path, private_tmp):
    bundle = make_tar(tmp_path / "b.tar.gz", [member("nodes/n/host/x", b"1")], manifest=None)
    assert_refused(bundle, "no manifest.json", private_tmp)


def test_schema_invalid_manifest_is_refused(tmp_path, private_tmp):
    broken = {**MANIFEST, "status": "fine", "nodes": [{"name": "../n"}]}
    bundle = make_tar(tmp_path / "b.tar.gz", [], manifest=broken)
    assert_refused(bundle, "manifest.json is invalid at", private_tmp)


def test_manifest_that_is_not_json_is_refused(tmp_path, private_tmp):
    bundle = tmp_path / "b.tar.gz"
    with tarfile.open(bundle, "w:gz") as tar:
        info, data = member("manifest.json", b"{not json")
        tar.addfile(info, io.BytesIO(data))
    assert_refused(bundle, "not valid JSON", private_tmp)


def test_unknown_format_version_says_to_upgrade(tmp_path, private_tmp):
    bundle = make_tar(
        tmp_path / "b.tar.gz", [], manifest={**MANIFEST, "format": "needle.bundle/v2"}
    )
    assert_refused(bundle, "needle.bundle/v2 is not one this needle reads.*upgrade", private_tmp)


def test_not_a_needle_bundle(tmp_path, private_tmp):
    bundle = make_tar(tmp_path / "b.tar.gz", [], manifest={"format": "sosreport"})
    assert_refused(bundle, "not a needle bundle", private_tmp)


def test_missing_path(tmp_path):
    with pytest.raises(BundleError, match="no such file or directory"):
        open_bundle(tmp_path / "nope.tar.gz")


def test_a_bundle_someone_retarred_inside_a_folder_still_opens(tmp_path):
    bundle = make_tar(tmp_path / "b.tar.gz", [member("bundle/x", b"1")], manifest=None)
    with tarfile.open(bundle, "w:gz") as tar:
        for name, data in [
            ("bundle/manifest.json", json.dumps(MANIFEST).encode()),
            ("bundle/nodes/n/host/x", b"1"),
        ]:
            info, payload = member(name, data)
            tar.addfile(info, io.BytesIO(payload))
    with open_bundle(bundle) as opened:
        assert opened.read_bytes("nodes/n/host/x") == b"1"


def test_directory_bundle_never_follows_a_link_out(tmp_path):
    root = tmp_path / "dir-bundle"
    (root / "nodes" / "n" / "host").mkdir(parents=True)
    (root / "manifest.json").write_text(json.dumps(MANIFEST))
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    (root / "nodes" / "n" / "host" / "link").symlink_to(secret)
    (root / "nodes" / "n" / "escape").symlink_to(tmp_path)
    with open_bundle(root) as bundle:
        assert bundle.read_bytes("nodes/n/host/link") is None
        assert bundle.read_bytes("nodes/n/escape/secret.txt") is None
        assert bundle.read_bytes("../secret.txt") is None


def test_two_archives_opened_at_once_read_as_each_alone(tmp_path, private_tmp):
    """A diff's archives spool side by side (the second in a forked child)."""
    from needle.analyzer.bundle.reader import open_bundles

    members = [member(f"nodes/n{i}/host/ip-link.json", b"[]" * i) for i in range(1, 40)]
    first = make_tar(tmp_path / "a.tar.gz", members)
    second = make_tar(tmp_path / "b.tar.gz", [*members, member("extra.txt", b"x")])
    both = open_bundles([first, second])
    try:
        for bundle, path in zip(both, (first, second), strict=True):
            with open_bundle(path) as alone:
                assert bundle.files() == alone.files()
                for name in alone.files():
                    assert bundle.read_bytes(name) == alone.read_bytes(name)
    finally:
        for bundle in both:
            bundle.close()
    assert list(private_tmp.iterdir()) == []


@pytest.mark.parametrize("hostile_first", [True, False])
def test_a_hostile_archive_opened_with_another_is_refused_in_one_line(
    tmp_path, private_tmp, hostile_first
):
    from needle.analyzer.bundle.reader import open_bundles

    # past the first MiB of the stream: found while spooling, not with the manifest
    filler = member("nodes/n1/filler.bin", os.urandom(3 << 20))
    good = make_tar(tmp_path / "good.tar.gz", [filler, member("nodes/n1/x.json", b"{}")])
    bad = make_tar(tmp_path / "bad.tar.gz", [filler, member("../escape.txt", b"x")])
    paths = [bad, good] if hostile_first else [good, bad]
    with pytest.raises(BundleError, match=r"bad\.tar\.gz: unsafe member path") as caught:
        open_bundles(paths)
    assert "\n" not in str(caught.value)
    assert list(private_tmp.iterdir()) == [], "nothing is left behind"
