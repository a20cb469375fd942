"""A directory bundle's files, listed a directory at a time as reads reach them: the same
answers as a full walk, and never a path out of the bundle."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from minimal_bundle import MINIMAL_MANIFEST
from needle.analyzer.bundle import open_bundle
from needle.analyzer.bundle.directory import DirectoryFiles, OverCap

MANIFEST = MINIMAL_MANIFEST


def full_walk(root: Path) -> set[str]:
    found = set()
    for directory, subdirectories, files in os.walk(root):
        base = Path(directory)
        subdirectories[:] = [d for d in subdirectories if not (base / d).is_symlink()]
        for name in files:
            path = base / name
            if path.is_file() and not path.is_symlink():
                found.add(path.relative_to(root).as_posix())
    return found


def make_tree(root: Path, outside: Path) -> None:
    (root / "nodes" / "n1" / "netns" / "ns-1").mkdir(parents=True)
    (root / "nodes" / "n2" / "host").mkdir(parents=True)
    (root / "manifest.json").write_text(json.dumps(MANIFEST))
    (root / "nodes" / "n1" / "netns" / "ns-1" / "ip-link.json").write_text("[]")
    (root / "nodes" / "n2" / "host" / "ip-route.json").write_text("[]")
    (root / "nodes" / "n2" / "host" / "empty").write_bytes(b"")
    outside.mkdir()
    (outside / "secret").write_text("secret")
    (root / "nodes" / "n2" / "host" / "link-to-file").symlink_to(outside / "secret")
    (root / "nodes" / "n2" / "out").symlink_to(outside)
    os.mkfifo(root / "nodes" / "n2" / "host" / "fifo")


def test_membership_and_iteration_match_a_full_walk(tmp_path):
    root = tmp_path / "bundle"
    make_tree(root, tmp_path / "outside")
    files = DirectoryFiles(str(root))
    expected = full_walk(root)
    assert set(files) == expected
    for name in expected:
        assert name in DirectoryFiles(str(root))  # asked first, before any listing
    for name in (
        "nodes/n2/host/link-to-file",  # a symlink to a file
        "nodes/n2/out/secret",  # through a symlinked directory
        "nodes/n2/host/fifo",
        "nodes/n2/host",  # a directory is not a file
        "../outside/secret",
        "nodes/../manifest.json",
        "./manifest.json",
        "nodes//n2/host/empty",
        "/manifest.json",
        "",
        "nodes/n9/host/ip-route.json",
        "a/" * 5000 + "deep",  # deeper than Python's recursion limit
    ):
        assert name not in files, name
        assert not readable(files, name), name
        assert not readable(DirectoryFiles(str(root)), name), name
    for name in expected:
        assert readable(DirectoryFiles(str(root)), name)


def test_a_read_takes_the_whole_file_and_refuses_one_over_the_cap(tmp_path):
    root = tmp_path / "bundle"
    root.mkdir()
    (root / "big").write_bytes(b"x" * 5000)
    files = DirectoryFiles(str(root))
    assert files.read("big", 5000) == b"x" * 5000
    with pytest.raises(OverCap):
        files.read("big", 4999)


def test_a_bundle_reads_nothing_through_a_symlinked_directory(tmp_path):
    root = tmp_path / "bundle"
    make_tree(root, tmp_path / "outside")
    with open_bundle(root) as bundle:
        assert bundle.read_bytes("nodes/n2/out/secret") is None
        assert bundle.read_bytes("nodes/n2/host/link-to-file") is None
        assert bundle.read_bytes("nodes/n2/host/empty") == b""
        assert bundle.read_bytes("nodes/n1/netns/ns-1/ip-link.json") == b"[]"
        assert bundle.files("nodes/n2") == ["nodes/n2/host/empty", "nodes/n2/host/ip-route.json"]


part = st.sampled_from(["nodes", "n1", "n2", "netns", "ns-1", "host", "out", "..", ".", ""])
leaf = st.sampled_from(
    ["manifest.json", "ip-link.json", "ip-route.json", "empty", "secret", "fifo", "", ".."]
)


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(part, max_size=5), name=leaf)
def test_any_path_is_a_member_exactly_when_a_full_walk_lists_it(tmp_path_factory, parts, name):
    base = tmp_path_factory.mktemp("tree")
    root = base / "bundle"
    make_tree(root, base / "outside")
    relpath = "/".join([*parts, name])
    expected = relpath in full_walk(root)
    assert (relpath in DirectoryFiles(str(root))) == expected
    assert readable(DirectoryFiles(str(root)), relpath) == expected


def readable(files: DirectoryFiles, relpath: str) -> bool:
    return files.read(relpath, 1 << 20) is not None
