"""`needle collect --netns ... --kube-dir ...` against a real 3x2 lab."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

import jsonschema
import pytest
from needle.analyzer.bundle import open_bundle
from needle.analyzer.bundle.manifest import manifest_schema
from needle.collector.collect import CollectOptions, collect
from needle.collector.progress import Progress
from needle.collector.transports.netns import NetnsTarget
from needle.lab import api as lab_api

pytestmark = [pytest.mark.root, pytest.mark.tools("tcpdump", "nsenter", "ping")]


def targets(state, shell="sh"):
    return [NetnsTarget(netns=node.netns, node=node.name, shell=shell) for node in state.nodes]


def run_collect(tmp_path: Path, state, **overrides):
    settings = {"capture_seconds": 0, **overrides}
    options = CollectOptions(
        output=tmp_path / "b.tar.gz",
        kube_dir=Path(state.kube_dir),
        targets=targets(state),
        **settings,
    )
    with Progress(live=False) as progress:
        collect(options, progress)
    return options.output


def udp_dports(pcap: bytes) -> list[int]:
    """Destination ports of the IPv4/UDP packets in an Ethernet pcap."""
    magic = struct.unpack("<I", pcap[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    ports, offset = [], 24
    while offset + 16 <= len(pcap):
        caplen = struct.unpack(endian + "IIII", pcap[offset : offset + 16])[2]
        frame = pcap[offset + 16 : offset + 16 + caplen]
        offset += 16 + caplen
        if len(frame) >= 42 and frame[12:14] == b"\x08\x00" and frame[23] == 17:
            ihl = (frame[14] & 0x0F) * 4
            ports.append(struct.unpack(">H", frame[14 + ihl + 2 : 14 + ihl + 4])[0])
    return ports


@pytest.fixture
def lab3x2(lab_factory):
    return lab_factory(nodes=3, pods=2)


def test_each_node_holds_exactly_its_pods_with_both_veth_ends(lab3x2, tmp_path):
    bundle_path = run_collect(tmp_path, lab3x2)
    with open_bundle(bundle_path) as bundle:
        manifest = bundle.manifest
        jsonschema.validate(manifest, manifest_schema())
        assert manifest["status"] == "complete"
        assert {r["resource"]: r["items"] for r in manifest["cluster"]["resources"]} == {
            "nodes": 3,
            "pods": 9,
            "configmaps": 1,
            "daemonsets": 1,
        }
        by_name = {node["name"]: node for node in manifest["nodes"]}
        for lab_node in lab3x2.nodes:
            node = by_name[lab_node.name]
            assert node["status"] == "ok", node["errors"]
            assert sorted(ns["name"] for ns in node["netns"]) == sorted(
                pod.netns for pod in lab_node.pods
            )
            host_links = json.loads(bundle.read_bytes(f"{node['dir']}/host/ip-link.json"))
            host_by_name = {link["ifname"]: link for link in host_links}
            for pod in lab_node.pods:
                ns = next(ns for ns in node["netns"] if ns["name"] == pod.netns)
                pod_links = json.loads(bundle.read_bytes(f"{ns['dir']}/ip-link.json"))
                eth0 = next(link for link in pod_links if link["ifname"] == "eth0")
                veth = host_by_name[pod.host_veth]
                assert veth["link_netnsid"] == ns["nsid"]
                assert veth["link_index"] == eth0["ifindex"]
                assert eth0["link_index"] == veth["ifindex"]
                assert veth["master"] == "cni0"


def test_pcaps_hold_vxlan_when_traffic_flows(lab3x2, tmp_path):
    source = lab3x2.nodes[0].pods[0]
    target = lab3x2.nodes[1].pods[0]

    # pod-to-pod pings across nodes for the whole capture window (lab addresses only)
    pinger = subprocess.Popen(
        ["ip", "netns", "exec", source.netns, "ping", "-q", "-c", "40", "-i", "0.1", target.ip],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        bundle_path = run_collect(tmp_path, lab3x2, capture_seconds=2)
    finally:
        pinger.kill()
        pinger.wait()
    with open_bundle(bundle_path) as bundle:
        node = next(n for n in bundle.manifest["nodes"] if n["name"] == lab3x2.nodes[0].name)
        # found by kind: the lab's flannel.1 (vxlan), cni0 (bridge), ens3 (flannel.1's dev)
        captures = {c["file"].rpartition("/")[2]: c for c in node["captures"]}
        assert {(name, c["interface"], c["role"]) for name, c in captures.items()} == {
            ("underlay-vxlan.pcap", "ens3", "underlay"),
            ("flannel.1.pcap", "flannel.1", "overlay"),
            ("cni0.pcap", "cni0", "bridge"),
            ("underlay-pods.pcap", "ens3", "underlay"),
        }
        assert not any(c["skipped"] for c in captures.values())
        underlay = captures["underlay-vxlan.pcap"]
        assert underlay["filter"] == "udp port 8472" and underlay["error"] is None
        pods = captures["underlay-pods.pcap"]
        assert pods["filter"].startswith("net ") and pods["error"] is None
        assert underlay["packets_captured"] > 0 and underlay["packets_dropped_by_kernel"] == 0
        pcap = bundle.read_bytes(underlay["file"])
        assert 8472 in udp_dports(pcap)
        assert len(pcap) <= underlay["max_bytes"]
        assert bundle.manifest["collection"]["capture"]["enabled"] is True


def test_an_orphaned_veth_namespace_is_found_through_proc_on_its_node_only(lab_factory, tmp_path):
    state = lab_factory(nodes=2, pods=2)
    record = lab_api.fault(state.name, "veth-orphan")
    bundle_path = run_collect(tmp_path, lab_api.status(state.name))
    with open_bundle(bundle_path) as bundle:
        nodes = {n["name"]: n for n in bundle.manifest["nodes"]}
        faulted = nodes[record.node]
        unnamed = [ns for ns in faulted["netns"] if ns["name"] is None]
        assert len(unnamed) == 1 and unnamed[0]["pids"], faulted["netns"]
        other = next(n for name, n in nodes.items() if name != record.node)
        assert all(ns["name"] is not None for ns in other["netns"])


def test_a_missing_namespace_fails_its_node_only(lab3x2, tmp_path):
    output = tmp_path / "b.tar.gz"
    argv = [
        sys.executable,
        "-m",
        "needle",
        "collect",
        "-o",
        str(output),
        "--no-capture",
        "--kube-dir",
        lab3x2.kube_dir,
        "--netns",
        "ndl-no-such-ns=ghost-node",
        *[arg for pair in lab3x2.netns_args() for arg in ("--netns", pair)],
    ]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert result.returncode == 1, result.stderr
    assert "ghost-node: network namespace ndl-no-such-ns does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    with open_bundle(output) as bundle:
        statuses = {n["name"]: n["status"] for n in bundle.manifest["nodes"]}
        assert bundle.manifest["status"] == "partial"
    assert statuses == {"ghost-node": "failed", **{n.name: "ok" for n in lab3x2.nodes}}


def test_node_deadline_keeps_what_was_sent(lab3x2, tmp_path):
    output = run_collect(tmp_path, lab3x2, capture_seconds=30, node_deadline_s=2.0)
    with open_bundle(output) as bundle:
        node = bundle.manifest["nodes"][0]
        assert node["status"] == "partial"
        assert any("deadline" in error for error in node["errors"])
        assert bundle.read_bytes(f"{node['dir']}/host/ip-link.json")
        assert node["duration_s"] < 10
        assert any(c["file"] for c in node["captures"]), "captures stopped early are kept"
    with tarfile.open(output) as tar:
        assert tar.getnames()[0] == "manifest.json"


@pytest.mark.parametrize("backend", ["canal", "host-gw"])
def test_captures_follow_each_lab_data_plane_by_kind(lab_factory, tmp_path, backend):
    state = lab_factory(nodes=2, pods=1, backend=backend)
    source, target = state.nodes[0].pods[0], state.nodes[1].pods[0]
    # pod-to-pod pings across the two nodes for the window (lab addresses only)
    pinger = subprocess.Popen(
        ["ip", "netns", "exec", source.netns, "ping", "-q", "-c", "30", "-i", "0.1", target.ip],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        bundle_path = run_collect(tmp_path, state, capture_seconds=2)
    finally:
        pinger.kill()
        pinger.wait()
    with open_bundle(bundle_path) as bundle:
        node = next(n for n in bundle.manifest["nodes"] if n["name"] == state.nodes[0].name)
        assert node["status"] == "ok", node["errors"]
        taken = {c["file"].rpartition("/")[2]: c for c in node["captures"] if c["file"]}
        why = {(c["role"], c["filter"]): c["skipped"] for c in node["captures"] if c["skipped"]}
        if backend == "canal":
            # routed veths, flannel's VXLAN: no bridge, and no bridge network to filter for
            assert set(taken) == {"underlay-vxlan.pcap", "flannel.1.pcap"}
            assert set(why) == {("bridge", ""), ("underlay", "net {pod_net}")}
            assert "routed veths" in why["bridge", ""]
            underlay = taken["underlay-vxlan.pcap"]
            assert underlay["packets_captured"] > 0, "the pings crossed encapsulated"
        else:
            # no overlay: the pods' own packets on the underlay, unencapsulated
            assert set(taken) == {"cni0.pcap", "underlay-pods.pcap"}
            assert set(why) == {("overlay", ""), ("underlay", "udp port {vxlan_dstport}")}
            pods = taken["underlay-pods.pcap"]
            assert pods["interface"] == "ens3" and pods["filter"].startswith("net 10.")
            assert pods["packets_captured"] > 0, "the pings crossed the underlay as they are"
