"""`needle collect --local`: this host as one node, through the real CLI."""

from __future__ import annotations

import subprocess
import sys

import pytest
from needle.analyzer.bundle import open_bundle

pytestmark = [pytest.mark.root]


def test_local_collection_through_the_cli(tmp_path):
    output = tmp_path / "local.tar.zst"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "needle",
            "collect",
            "--local",
            "--node-name",
            "this-host",
            "--no-capture",
            "-o",
            str(output),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode in (0, 1), result.stderr  # 1: some optional piece is partial
    assert "Traceback" not in result.stderr
    assert f"wrote {output}" in result.stderr
    with open_bundle(output) as bundle:
        manifest = bundle.manifest
        assert manifest["collection"]["sources"] == ["local"]
        (node,) = manifest["nodes"]
        assert (node["name"], node["transport"]) == ("this-host", "local")
        assert node["status"] in ("ok", "partial")
        assert bundle.read_bytes("nodes/this-host/host/ip-link.json").startswith(b"[")
        assert manifest["collection"]["capture"]["enabled"] is False
        assert node["captures"] == []


def test_collect_without_a_source_says_what_to_give(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "needle",
            "collect",
            "-o",
            str(tmp_path / "b.tar.gz"),
            "--kubeconfig",
            "/nonexistent",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "kubeconfig /nonexistent does not exist" in result.stderr


def test_bad_netns_argument_is_one_line(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "needle",
            "collect",
            "-o",
            str(tmp_path / "b.tar.gz"),
            "--netns",
            "no-equals-sign",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "needle: error: --netns takes NS=NODENAME, not 'no-equals-sign'"
    )
    assert not list(tmp_path.iterdir()), "nothing is left behind"
