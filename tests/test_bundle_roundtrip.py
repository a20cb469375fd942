"""The collector's writer and the analyzer's reader agree through the v1 format only."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import jsonschema
import pytest
from needle.analyzer.bundle import open_bundle
from needle.analyzer.bundle.manifest import manifest_schema
from needle.collector.bundle import (
    BundleWriter,
    CaptureRecord,
    CommandRecord,
    Manifest,
    NetnsRecord,
    ResourceRecord,
)
from needle.collector.errors import CollectorError

IP_LINK = b'[{"ifindex":1,"ifname":"lo","mtu":65536}]\n'
BINARY = bytes(range(256)) * 64  # pcap-like bytes must survive untouched


def write_sample(output: Path) -> Path:
    manifest = Manifest(
        tool_version="0.1.0", sources=["kube-dir", "netns"], command=["needle", "collect"]
    )
    with BundleWriter(output, manifest) as writer:
        writer.write_json("cluster/nodes.json", {"kind": "List", "items": []})
        writer.add_resource(ResourceRecord("nodes", "ok", "cluster/nodes.json", items=0))
        writer.add_resource(
            ResourceRecord("configmaps", "forbidden", None, error="configmaps is forbidden")
        )
        node = writer.add_node("lab-node-1", "netns", target="needle-lab-n1")
        writer.write_bytes(f"{node.dir}/host/ip-link.json", IP_LINK)
        node.commands.append(
            CommandRecord(
                id="ip-link",
                argv=["ip", "-d", "-j", "link"],
                exit_code=0,
                timed_out=False,
                output=f"{node.dir}/host/ip-link.json",
                bytes=len(IP_LINK),
                duration_s=0.01,
            )
        )
        node.commands.append(
            CommandRecord(
                id="brctl-show",
                argv=["brctl", "show"],
                exit_code=None,
                timed_out=False,
                output=None,
                missing_tool=True,
            )
        )
        node.netns.append(
            NetnsRecord(
                id="ns-4026532301",
                dir=f"{node.dir}/netns/ns-4026532301",
                inode=4026532301,
                nsid=0,
                pids=[42],
            )
        )
        with writer.open(f"{node.dir}/captures/ens3.pcap") as stream:
            stream.write(BINARY)
        node.captures.append(
            CaptureRecord(
                interface="ens3",
                filter="udp port 8472",
                file=f"{node.dir}/captures/ens3.pcap",
                seconds=3,
                max_packets=2000,
                max_bytes=600_000,
                snaplen=200,
                packets_captured=7,
                packets_dropped_by_kernel=0,
            )
        )
        failed = writer.add_node("lab-node-2", "netns", target="needle-lab-n2")
        failed.fail("netns needle-lab-n2 does not exist")
    return output


@pytest.mark.parametrize("suffix", [".tar.gz", ".tar.zst"])
def test_round_trip(tmp_path, suffix):
    path = write_sample(tmp_path / f"bundle{suffix}")
    with open_bundle(path) as bundle:
        manifest = bundle.manifest
        jsonschema.validate(manifest, manifest_schema())
        assert manifest["format"] == "needle.bundle/v1"
        assert manifest["status"] == "partial"  # one node failed, one resource forbidden
        nodes = {node["name"]: node for node in manifest["nodes"]}
        assert nodes["lab-node-2"]["status"] == "failed"
        assert nodes["lab-node-2"]["errors"] == ["netns needle-lab-n2 does not exist"]
        commands = {c["id"]: c for c in nodes["lab-node-1"]["commands"]}
        assert commands["brctl-show"]["missing_tool"] is True
        assert bundle.read_bytes(commands["ip-link"]["output"]) == IP_LINK
        capture = nodes["lab-node-1"]["captures"][0]
        assert bundle.read_bytes(capture["file"]) == BINARY
        assert json.loads(bundle.read_bytes("cluster/nodes.json")) == {"kind": "List", "items": []}
        assert bundle.read_bytes("nodes/lab-node-1/host/absent.json") is None
        unpacked = bundle.root
    assert not unpacked.exists(), "the reader's private copy is removed on close"
    assert not list(tmp_path.glob(".needle-staging-*")), "the writer's staging is removed"


def test_unpacked_directory_reads_the_same(tmp_path):
    path = write_sample(tmp_path / "bundle.tar.gz")
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    with tarfile.open(path) as tar:
        tar.extractall(unpacked, filter="data")
    with open_bundle(unpacked) as bundle:
        assert bundle.read_bytes("nodes/lab-node-1/host/ip-link.json") == IP_LINK
        assert "nodes/lab-node-1/captures/ens3.pcap" in bundle.files("nodes/lab-node-1")
    assert unpacked.exists(), "a directory bundle is the user's; the reader leaves it alone"


def test_manifest_comes_first_and_packing_is_deterministic(tmp_path):
    manifest = Manifest(tool_version="0.1.0", created="2026-11-26T08:00:00Z")
    first = tmp_path / "a.tar.gz"
    with BundleWriter(first, manifest) as writer:
        writer.write_bytes("nodes/b/host/x", b"x")
        writer.write_bytes("cluster/nodes.json", b"{}")
    with tarfile.open(first) as tar:
        names = tar.getnames()
        mtimes = {member.mtime for member in tar.getmembers()}
    assert names == ["manifest.json", "cluster/nodes.json", "nodes/b/host/x"]
    assert len(mtimes) == 1


def test_ctrl_c_still_writes_what_was_collected(tmp_path):
    output = tmp_path / "b.tar.gz"
    with pytest.raises(KeyboardInterrupt), BundleWriter(output, Manifest("0.1.0")) as writer:
        writer.write_bytes("cluster/nodes.json", b"{}")
        raise KeyboardInterrupt
    with open_bundle(output) as bundle:
        assert bundle.manifest["status"] == "interrupted"
        assert bundle.read_bytes("cluster/nodes.json") == b"{}"


def test_a_crash_still_writes_a_partial_bundle_with_the_error(tmp_path):
    output = tmp_path / "b.tar.zst"
    with pytest.raises(RuntimeError), BundleWriter(output, Manifest("0.1.0")):
        raise RuntimeError("kube API went away")
    with open_bundle(output) as bundle:
        assert bundle.manifest["status"] == "partial"
        assert "kube API went away" in bundle.manifest["errors"][0]


@pytest.mark.parametrize("bad", ["/etc/passwd", "../x", "a/../../x", "a//b", "a\\b", ""])
def test_writer_refuses_paths_outside_the_bundle(tmp_path, bad):
    writer = BundleWriter(tmp_path / "b.tar.gz", Manifest("0.1.0"))
    try:
        with pytest.raises(CollectorError, match="unsafe path"):
            writer.write_bytes(bad, b"x")
    finally:
        writer.abandon()


def test_writer_refuses_bad_node_names_and_duplicates(tmp_path):
    writer = BundleWriter(tmp_path / "b.tar.gz", Manifest("0.1.0"))
    try:
        with pytest.raises(CollectorError, match="not a valid Kubernetes node name"):
            writer.add_node("../evil", "local")
        writer.add_node("node-a", "local")
        with pytest.raises(CollectorError, match="collected twice"):
            writer.add_node("node-a", "local")
    finally:
        writer.abandon()


def test_writer_names_the_output_formats_it_knows(tmp_path):
    with pytest.raises(CollectorError, match=r"\.tar\.gz or \.tar\.zst"):
        BundleWriter(tmp_path / "b.zip", Manifest("0.1.0"))
    with pytest.raises(CollectorError, match="does not exist"):
        BundleWriter(tmp_path / "missing" / "b.tar.gz", Manifest("0.1.0"))
