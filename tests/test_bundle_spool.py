"""Archives read through one spool file: every tar dialect needle may meet (ustar, GNU
long names, pax) gives the same members as Python's tarfile, and a stream is refused
as soon as a header is hostile."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from minimal_bundle import MINIMAL_MANIFEST
from needle.analyzer.bundle import open_bundle
from needle.analyzer.bundle.reader import ReadLimits
from needle.analyzer.bundle.spool import Corrupt, spool
from needle.analyzer.errors import BundleError

MANIFEST = json.dumps(MINIMAL_MANIFEST).encode()

segment = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=1, max_size=40)
paths = (
    st.lists(segment, min_size=1, max_size=6)
    .map("/".join)
    .filter(lambda p: all(part not in {".", ".."} for part in p.split("/")))
)


def _archive(members: dict[str, bytes], tar_format: int, prefix: str = "") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tar_format) as tar:
        for name, data in {"manifest.json": MANIFEST, **members}.items():
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    members=st.dictionaries(
        paths.map(lambda p: f"nodes/{p}"), st.binary(max_size=3000), min_size=1, max_size=8
    ),
    tar_format=st.sampled_from([tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT]),
)
def test_every_member_reads_back_as_written(tmp_path, members, tar_format):
    names = set(members)
    if any(a != b and b.startswith(a + "/") for a in names for b in names):
        return  # a file cannot also be a directory
    try:
        data = _archive(members, tar_format)
    except ValueError:
        return  # a name ustar cannot hold
    bundle_path = tmp_path / f"b{tar_format}.tar.gz"
    bundle_path.write_bytes(gzip.compress(data, compresslevel=1))
    with open_bundle(bundle_path) as bundle:
        for name, content in members.items():
            assert bundle.read_bytes(name) == content
        assert set(bundle.files()) == {"manifest.json", *members}


def test_long_names_in_gnu_and_pax_archives(tmp_path):
    deep = "nodes/" + "/".join(["a-rather-long-directory-name"] * 8) + "/ip-route.json"
    assert len(deep) > 200
    for tar_format in (tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        bundle_path = tmp_path / f"long{tar_format}.tar"
        bundle_path.write_bytes(_archive({deep: b"[]"}, tar_format))
        with open_bundle(bundle_path) as bundle:
            assert bundle.read_bytes(deep) == b"[]"


def test_a_folder_someone_retarred_is_looked_into(tmp_path):
    bundle_path = tmp_path / "retarred.tar"
    bundle_path.write_bytes(_archive({"nodes/n/x": b"1"}, tarfile.PAX_FORMAT, "bundle-7/"))
    with open_bundle(bundle_path) as bundle:
        assert bundle.read_bytes("nodes/n/x") == b"1"


def test_a_bomb_is_refused_before_the_rest_is_decompressed(tmp_path):
    """The second member's header is refused while the stream still holds ~1 GB."""
    info = tarfile.TarInfo("manifest.json")
    info.size = len(MANIFEST)
    padding = bytes(-len(MANIFEST) % 512)
    head = info.tobuf(format=tarfile.GNU_FORMAT) + MANIFEST + padding
    big = tarfile.TarInfo("nodes/n/big")
    big.size = 1 << 30
    stream = io.BytesIO(head + big.tobuf(format=tarfile.GNU_FORMAT) + bytes(4 << 20))
    consumed = []

    def read(size: int) -> bytes:
        chunk = stream.read(size)
        consumed.append(len(chunk))
        return chunk

    fd = os.open(tmp_path / "spool", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        with pytest.raises(BundleError, match="decompression bomb"):
            spool(read, fd, ReadLimits(max_member_bytes=1 << 20), "b.tar")
    finally:
        os.close(fd)
    assert sum(consumed) <= 1 << 20


def test_a_stream_cut_exactly_after_a_member_is_whole_and_one_cut_inside_is_not(tmp_path):
    whole = _archive({"nodes/n/x": b"x" * 700}, tarfile.GNU_FORMAT)
    end = whole.rstrip(b"\0")
    after_member = whole[: (len(end) + 511) // 512 * 512]
    for data, whole_enough in ((after_member, True), (whole[: len(after_member) - 100], False)):
        fd = os.open(tmp_path / f"s{whole_enough}", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if whole_enough:
                members = spool(io.BytesIO(data), fd, ReadLimits(), "b.tar")
                assert set(members) == {"manifest.json", "nodes/n/x"}
            else:
                with pytest.raises(Corrupt):
                    spool(io.BytesIO(data), fd, ReadLimits(), "b.tar")
        finally:
            os.close(fd)


def test_a_read_after_close_is_an_error_and_the_spool_is_gone(tmp_path):
    bundle_path = tmp_path / "b.tar"
    bundle_path.write_bytes(_archive({"nodes/n/x": b"1"}, tarfile.PAX_FORMAT))
    with open_bundle(bundle_path) as bundle:
        private = Path(bundle.root)
        assert (private / "bundle.tar").exists()
    assert not private.exists()
    with pytest.raises(BundleError, match="after the bundle was closed"):
        bundle.read_bytes("nodes/n/x")


def test_a_bundle_never_closed_leaves_no_spool_when_the_process_exits(tmp_path):
    import subprocess
    import sys

    bundle_path = tmp_path / "b.tar"
    bundle_path.write_bytes(_archive({"nodes/n/x": b"1"}, tarfile.PAX_FORMAT))
    private = tmp_path / "tmp"
    private.mkdir()
    code = (
        "import sys; from needle.analyzer.bundle import open_bundle; "
        "b = open_bundle(sys.argv[1]); assert b.read_bytes('nodes/n/x') == b'1'"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(bundle_path)],
        check=True,
        env={**os.environ, "TMPDIR": str(private)},
    )
    assert list(private.iterdir()) == []
