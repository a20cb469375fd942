"""A run's budget (bytes, files and records read across every file of its bundles, the
manifest's own cap) trips with one line naming the variable that raises it."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from minimal_bundle import MINIMAL_MANIFEST
from needle.analyzer.bundle import ReadLimits, open_and_build, open_bundle
from needle.analyzer.bundle.reader import ReadBudget, records_in
from needle.analyzer.errors import AnalyzerError, BundleError

REPO = Path(__file__).resolve().parents[1]
HEALTHY = REPO / "samples" / "lab-healthy.tar.gz"


def directory_bundle(root: Path, files: dict[str, bytes]) -> Path:
    root.mkdir()
    (root / "manifest.json").write_text(json.dumps(MINIMAL_MANIFEST))
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def archive_bundle(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in {"manifest.json": json.dumps(MINIMAL_MANIFEST).encode(), **files}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


FILES = {f"nodes/n/host/f{i}.txt": bytes(400) for i in range(3)}


@pytest.mark.parametrize("make", [directory_bundle, archive_bundle], ids=["directory", "archive"])
def test_bytes_read_across_files_trip_the_budget(tmp_path, make):
    bundle = open_bundle(make(tmp_path / "b", FILES), ReadLimits(max_read_bytes=1000))
    with bundle:
        bundle.read_bytes("nodes/n/host/f0.txt")
        bundle.read_bytes("nodes/n/host/f1.txt")  # 800 bytes: within
        with pytest.raises(BundleError, match="NEEDLE_MAX_READ_BYTES") as caught:
            bundle.read_bytes("nodes/n/host/f2.txt")
    assert "\n" not in str(caught.value)
    assert "f2.txt" in str(caught.value) and "1000 bytes" in str(caught.value)


@pytest.mark.parametrize("make", [directory_bundle, archive_bundle], ids=["directory", "archive"])
def test_files_read_trip_the_budget(tmp_path, make):
    bundle = open_bundle(make(tmp_path / "b", FILES), ReadLimits(max_files_read=2))
    with bundle:
        bundle.read_bytes("nodes/n/host/f0.txt")
        bundle.read_bytes("nodes/n/host/f1.txt")
        with pytest.raises(BundleError, match="NEEDLE_MAX_FILES_READ"):
            bundle.read_bytes("nodes/n/host/f2.txt")


def test_records_are_lines_of_text_and_objects_of_json():
    assert records_in(b"a\nb\nc\n") == 4  # an upper bound: a last line may be empty
    assert records_in(b'[{"dst": "default"}, {"dst": "10.0.0.0/8", "x": {}}]') == 3
    assert records_in(b'  \n{"items": [{}, {}]}') == 3
    assert records_in(b"") == 1


@pytest.mark.parametrize("make", [directory_bundle, archive_bundle], ids=["directory", "archive"])
def test_records_to_parse_trip_the_budget_before_they_are_parsed(tmp_path, make):
    files = {
        "nodes/n/host/ip-route.json": b"[" + b",".join([b"{}"] * 6) + b"]",
        "nodes/n/host/route-n.txt": b"line\n" * 5,
    }
    bundle = open_bundle(make(tmp_path / "b", files), ReadLimits(max_records=10))
    with bundle:
        bundle.read_bytes("nodes/n/host/route-n.txt")  # read, not parsed: no records
        assert bundle.read_records("nodes/n/host/ip-route.json") is not None  # 6
        with pytest.raises(BundleError, match="NEEDLE_MAX_RECORDS") as caught:
            bundle.read_records("nodes/n/host/route-n.txt")  # 6 more
    assert "\n" not in str(caught.value)
    assert "route-n.txt" in str(caught.value) and "10 records" in str(caught.value)


def test_a_diffs_two_bundles_share_one_budget(tmp_path):
    old = directory_bundle(tmp_path / "old", FILES)
    new = archive_bundle(tmp_path / "new.tar.gz", FILES)
    bundles, _ = open_and_build([old, new], lambda b: None, ReadLimits(max_read_bytes=1000))
    try:
        assert bundles[0].budget is bundles[1].budget
        bundles[0].read_bytes("nodes/n/host/f0.txt")
        bundles[1].read_bytes("nodes/n/host/f0.txt")
        with pytest.raises(BundleError, match="budget"):
            bundles[1].read_bytes("nodes/n/host/f1.txt")
    finally:
        for bundle in bundles:
            bundle.close()


def test_a_huge_directory_manifest_is_refused_unread(tmp_path):
    root = directory_bundle(tmp_path / "b", {})
    with (root / "manifest.json").open("r+b") as manifest:
        manifest.truncate(64 << 30)  # 64 GiB, sparse: read whole, it would never end
    started = time.monotonic()
    with pytest.raises(BundleError, match="NEEDLE_MAX_MANIFEST_BYTES") as caught:
        open_bundle(root)
    assert time.monotonic() - started < 1
    assert "\n" not in str(caught.value) and str(64 << 30) in str(caught.value)


def test_an_archive_manifest_over_its_cap_is_refused(tmp_path):
    archive = archive_bundle(tmp_path / "b.tar.gz", {})
    with pytest.raises(BundleError, match="NEEDLE_MAX_MANIFEST_BYTES"):
        open_bundle(archive, ReadLimits(max_manifest_bytes=100))


def test_limits_come_from_the_environment():
    limits = ReadLimits.from_env(
        {"NEEDLE_MAX_READ_BYTES": "16G", "NEEDLE_MAX_FILE_BYTES": "512MiB", "OTHER": "x"}
    )
    assert limits.max_read_bytes == 16 << 30 and limits.max_member_bytes == 512 << 20
    assert limits.max_files_read == ReadLimits().max_files_read
    assert ReadLimits.from_env({"NEEDLE_MAX_FILES_READ": "10"}).max_files_read == 10
    assert ReadLimits.from_env({"NEEDLE_MAX_RECORDS": "2M"}).max_records == 2 << 20
    for bad in ("lots", "-1", "0", "1X"):
        with pytest.raises(AnalyzerError, match="NEEDLE_MAX_READ_BYTES") as caught:
            ReadLimits.from_env({"NEEDLE_MAX_READ_BYTES": bad})
        assert "\n" not in str(caught.value)


def test_the_defaults_leave_headroom_for_a_1000_node_bundle():
    """Measured on bench/synthetic_bundle.py --nodes 1000 --pods 110: a 171 MB manifest;
    a diff of two such bundles reads 571 MB in 453,006 files in one process."""
    limits = ReadLimits()
    assert limits.max_manifest_bytes >= 1.4 * 171_230_595
    assert limits.max_read_bytes >= 4 * 571e6
    assert limits.max_files_read >= 4 * 453_006
    # bench/read_budget.py: such a diff parses 8,474,016 records in one process
    assert limits.max_records >= 3.5 * 8_474_016
    budget = ReadBudget(limits)
    for _ in range(453_006):
        budget.take("b", "f", 1261)  # that diff: within


def test_the_cli_says_how_to_raise_the_budget(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "needle", "analyze", str(HEALTHY)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NEEDLE_MAX_READ_BYTES": "2K", "NO_COLOR": "1"},
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "NEEDLE_MAX_READ_BYTES" in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "needle", "show", str(HEALTHY), "nodes"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NEEDLE_MAX_READ_BYTES": "many", "NO_COLOR": "1"},
    )
    assert result.returncode == 2 and "is not a positive size" in result.stderr


def _with_routes(tmp_path: Path, count: int) -> Path:
    """The healthy sample as a directory, one node holding `count` (empty) routes."""
    root = tmp_path / "bundle"
    root.mkdir()
    with tarfile.open(HEALTHY) as tar:
        tar.extractall(root, filter="data")
    routes = root / "nodes" / "lab-node-1" / "host" / "ip-route.json"
    routes.write_bytes(b"[" + b",".join([b"{}"] * count) + b"]")
    return root


def test_a_table_past_the_record_budget_is_one_line_not_a_parse(tmp_path):
    """10^6 routes in one file (9 MB: far inside the per-file cap) with the budget at
    half that: refused by counting, before a record is made."""
    bundle = _with_routes(tmp_path, 1_000_000)
    for argv in (["analyze", str(bundle)], ["show", str(bundle), "routes"]):
        result = subprocess.run(
            [sys.executable, "-m", "needle", *argv],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "NEEDLE_MAX_RECORDS": "500K", "NO_COLOR": "1"},
        )
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1
        assert "ip-route.json" in result.stderr and "NEEDLE_MAX_RECORDS" in result.stderr
