"""Probes and counters in the window, against one real 3x2 flannel VXLAN lab: healthy
first, then with the `underlay-port-mtu` fault. Probes go only between the lab's
namespaces (targets come from the lab's own Node and Pod objects)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from lab_bundles import collect_with_probes
from needle.analyzer.bundle import open_bundle
from needle.analyzer.bundle.manifest import manifest_schema
from needle.analyzer.parsers.counters import link_deltas, parse_link_stats
from needle.analyzer.parsers.probes import PingRun, parse_ping
from needle.lab import api as lab_api
from needle.lab.state import LabState

pytestmark = [pytest.mark.root, pytest.mark.tools("tcpdump", "nsenter", "ping")]

WINDOW = 2
PEERS = 2  # a 3-node lab: every node probes both others


@pytest.fixture(scope="module")
def lab(module_lab: Callable[..., LabState]) -> LabState:
    return module_lab(nodes=3, pods=2)


def collect_lab(state: LabState, output: Path) -> dict[str, Any]:
    """Collect every lab node with probes in a WINDOW-second capture window; return a
    snapshot of what the tests read (manifest, probe outputs parsed, counters)."""
    collect_with_probes(state, output, capture_seconds=WINDOW)
    with open_bundle(output) as bundle:
        runs: dict[tuple[str, str, str, str, str], PingRun | None] = {}
        for node in bundle.manifest["nodes"]:
            for result in (node["probes"] or {}).get("results", []):
                if result["kind"] == "vxlan-port" or not result["output"]:
                    continue
                data = bundle.read_bytes(result["output"])
                if result["stderr"]:
                    data += bundle.read_bytes(result["stderr"])
                parsed = parse_ping(data).records
                key = (
                    node["name"],
                    result["peer_node"],
                    result["kind"],
                    result["source"],
                    result["size_name"],
                )
                runs[key] = parsed[0] if parsed else None
        counters = {}
        for node in bundle.manifest["nodes"]:
            for command in node["commands"]:
                if command["id"] in ("link-stats.start", "link-stats.end") and command["output"]:
                    phase = command["id"].rpartition(".")[2]
                    links = parse_link_stats(bundle.read_bytes(command["output"])).records
                    counters[(node["name"], command["netns"], phase)] = links
        pcaps = {
            (node["name"], c["file"].rpartition("/")[2]): c["packets_captured"]
            for node in bundle.manifest["nodes"]
            for c in node["captures"]
            if c["file"]
        }
        return {"manifest": bundle.manifest, "runs": runs, "counters": counters, "pcaps": pcaps}


@pytest.fixture(scope="module")
def healthy(lab: LabState, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return collect_lab(lab, tmp_path_factory.mktemp("healthy") / "b.tar.gz")


@pytest.fixture(scope="module")
def faulted(
    lab: LabState, healthy: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, dict[str, Any]]:
    """After the healthy collection: one node's switch port 100 bytes below the MTU."""
    record = lab_api.fault(lab.name, "underlay-port-mtu")
    return record.node, collect_lab(lab, tmp_path_factory.mktemp("faulted") / "b.tar.gz")


def test_every_node_records_its_plan_and_one_result_per_probe(healthy, lab):
    manifest = healthy["manifest"]
    jsonschema.validate(manifest, manifest_schema())
    assert manifest["status"] == "complete"
    settings = manifest["collection"]["probes"]
    assert settings["enabled"] is True and settings["interval_s"] == 0.2
    addresses = {node.underlay_ip for node in lab.nodes} | {
        ip for node in lab.nodes for ip in (pod.ip for pod in node.pods)
    }
    for node in manifest["nodes"]:
        probes = node["probes"]
        plan = probes["plan"]
        # the lab's objects state no MTU: each node takes its VXLAN device's
        assert plan["mtu"] is None and plan["sizes"] == {"small": 56}
        assert probes["mtu"] == 1450 and probes["mtu_source"] == "mtu of flannel.1 (overlay device)"
        assert probes["sizes"] == {"small": 56, "under-mtu": 1422, "over-mtu": 1423}
        # the objects name no VXLAN port: each node used its own device's
        assert {r["port"] for r in probes["results"] if r["kind"] == "vxlan-port"} == {8472}
        assert plan["cut"] == [] and plan["planned"] == PEERS * 13
        peers = {target["peer_node"] for target in plan["targets"]}
        assert len(peers) == PEERS and node["name"] not in peers
        for target in plan["targets"]:
            # only the lab's own node, gateway and pod addresses
            assert target["address"] in addresses or target["address"].endswith(".1")
        assert len(probes["results"]) == PEERS * 13
        assert probes["source_netns"] in {ns["id"] for ns in node["netns"]}
        assert all(r["output"] and r["exit_code"] is not None for r in probes["results"])


def test_healthy_lab_passes_small_and_just_under_and_fails_just_over_locally(healthy):
    runs = healthy["runs"]
    assert len(runs) == 3 * PEERS * 12
    for key, run in runs.items():
        size = key[-1]
        assert run is not None and run.complete, key
        if size == "over-mtu":
            assert run.outcome == "failed", key
            assert [e.kind for e in run.icmp_errors][:1] == ["message-too-long"], key
            assert run.reported_mtu == 1450, key
        else:
            assert run.outcome == "passed", (key, run)


def test_captures_hold_the_probes(healthy):
    # nothing else runs in the lab: the underlay's VXLAN packets are the probes'
    for node in ("lab-node-1", "lab-node-2", "lab-node-3"):
        assert healthy["pcaps"][(node, "underlay-vxlan.pcap")] > 0
        assert healthy["pcaps"][(node, "flannel.1.pcap")] > 0


def test_counter_deltas_show_the_probes_on_the_underlay(healthy):
    counters = healthy["counters"]
    for node in healthy["manifest"]["nodes"]:
        start, end = counters[(node["name"], None, "start")], counters[(node["name"], None, "end")]
        by_name = {delta.ifname: delta for delta in link_deltas(start, end)}
        underlay = by_name["ens3"]
        assert not underlay.recreated
        # small and under-mtu echoes, 3 each, from 2 namespaces to 2 targets of 2 peers
        assert underlay.delta("tx_packets") >= 2 * 3 * 2 * 2 * PEERS
        assert underlay.delta("rx_packets") >= 2 * 3 * 2 * 2 * PEERS
        assert underlay.delta("tx_dropped") == 0
        for ns in node["netns"]:
            assert (node["name"], ns["id"], "start") in counters
            assert (node["name"], ns["id"], "end") in counters


def test_underlay_port_mtu_fails_full_size_probes_between_the_named_nodes_only(faulted):
    faulty, snapshot = faulted
    assert snapshot["manifest"]["status"] == "complete"
    for (node, peer, _kind, _source, size), run in snapshot["runs"].items():
        assert run is not None
        involved = faulty in (node, peer)
        if size == "small":
            assert run.outcome == "passed", (node, peer, size)
        elif size == "under-mtu":
            # 1450 inside + 50 of VXLAN = 1500 on a 1400 switch port: dropped silently
            assert run.outcome == ("failed" if involved else "passed"), (node, peer, run)
        else:
            assert run.outcome == "failed"


def test_no_probe_is_recorded_and_counters_stay(lab, tmp_path):
    output = tmp_path / "b.tar.gz"
    argv = [sys.executable, "-m", "needle", "collect", "-o", str(output), "--no-capture"]
    argv += ["--no-probe", "--kube-dir", lab.kube_dir]
    argv += [arg for pair in lab.netns_args() for arg in ("--netns", pair)]
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    with open_bundle(output) as bundle:
        manifest = bundle.manifest
        assert manifest["collection"]["probes"]["enabled"] is False
        assert manifest["collection"]["probes"]["reason"] == "--no-probe"
        for node in manifest["nodes"]:
            assert node["probes"] is None
            ids = {c["id"] for c in node["commands"]}
            assert {"link-stats.start", "link-stats.end", "proc-snmp.end"} <= ids
            assert not any("/probes/" in c["output"] for c in node["commands"] if c["output"])
