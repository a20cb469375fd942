"""The sharded diff (one parse of identical files, facts skipped where both snapshots
hold the same bytes) reports exactly what comparing every fact of both would."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from needle.analyzer.bundle import open_bundle
from needle.analyzer.diff.compare import compare_findings, compare_snapshots
from needle.analyzer.diff.identity import Relabel, pair_pods, role_aliases, vtep_renames
from needle.analyzer.diff.run import run_diff
from needle.analyzer.diff.snapshot import (
    aliases_for,
    namespace_labels,
    rename_namespaces,
    renames_for,
    take_snapshot,
)
from needle.analyzer.model import build_model
from needle.analyzer.rules.catalog import load_catalog
from needle.analyzer.rules.engine import evaluate

REPO = Path(__file__).resolve().parents[2]


def _synthetic(out: Path, route_changes: float, seed: int) -> Path:
    subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "synthetic_bundle.py"),
            "--nodes",
            "66",
            "--pods",
            "3",
            "--route-changes",
            str(route_changes),
            "--seed",
            str(seed),
            "-o",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("diff")
    old = _synthetic(base / "old", 0.01, 1)
    new = _synthetic(base / "new", 0.02, 2)
    # and changes the peer routes do not carry: one node's FDB entry
    manifest = json.loads((new / "manifest.json").read_text())
    node = manifest["nodes"][3]
    fdb = next(c for c in node["commands"] if c["id"] == "bridge-fdb")
    entries = json.loads((new / fdb["output"]).read_text())
    entries[0]["dst"] = "192.0.2.99"
    (new / fdb["output"]).write_text(json.dumps(entries))
    # and a pod's default route
    pod_routes = next(c for c in node["commands"] if c["id"] == "ip-route" and c["netns"])
    routes = json.loads((new / pod_routes["output"]).read_text())
    routes[0]["gateway"] = "10.0.0.254"
    (new / pod_routes["output"]).write_text(json.dumps(routes))
    # and a pod's eth0 MTU on another node (its pod side is then built, not borrowed)
    other = manifest["nodes"][5]
    pod_links = next(c for c in other["commands"] if c["id"] == "ip-link" and c["netns"])
    links = json.loads((new / pod_links["output"]).read_text())
    links[-1]["mtu"] = 1400
    (new / pod_links["output"]).write_text(json.dumps(links))
    # and pods: one moved to the next node (the other shard), one given another IP
    pods_file = new / "cluster" / "pods.json"
    pods = json.loads(pods_file.read_text())
    moved, renumbered = pods["items"][4], pods["items"][7]
    moved["spec"]["nodeName"] = "node-0002"
    renumbered["status"]["podIP"] = "10.99.0.7"
    pods_file.write_text(json.dumps(pods))
    return old, new


def _naive(old: Path, new: Path, show_all: bool = False):
    """Every fact of both snapshots taken and compared, one process, no sharing."""
    docs = list(load_catalog().rules.values())
    with open_bundle(old) as a, open_bundle(new) as b:
        model_a, model_b = build_model(a), build_model(b)
        relabel = Relabel(
            pods=pair_pods(model_a, model_b, a, b),
            devices=role_aliases(model_a, model_b, model_a.nodes),
            macs=vtep_renames(model_a, model_b),
        )
        snap_a = take_snapshot(model_a, relabel, ethtool_by_interface=show_all)
        snap_b = take_snapshot(model_b, ethtool_by_interface=show_all)
        labels_a = namespace_labels(model_a, relabel=relabel)
        labels_b = namespace_labels(model_b)
        rename_namespaces(snap_a, renames_for(aliases_for(labels_a, labels_b), labels_a))
        rename_namespaces(snap_b, renames_for(aliases_for(labels_b, labels_a), labels_b))
        result = compare_snapshots(snap_a, snap_b, None, show_all)
        found_a = evaluate(model_a, docs, workers=1).findings
        found_b = evaluate(model_b, docs, workers=1).findings
    compare_findings(found_a, found_b, result, None, relabel.pods)
    return result


def _plain(result):
    return (
        [c.to_json() for c in result.changes],
        result.not_compared,
        [f.to_json() for f in result.new_findings],
        [f.to_json() for f in result.resolved_findings],
        [f.to_json() for f in result.unchanged_findings],
        dict(result.left_out),
    )


def _owned(pods_file: Path, renamed_nodes: set[str]) -> None:
    """Give every pod a ReplicaSet owner per node (as a Deployment's pods have), and
    new generated names to the pods on `renamed_nodes` (as a re-created one's have)."""
    pods = json.loads(pods_file.read_text())
    for index, item in enumerate(pods["items"]):
        node = item["spec"]["nodeName"]
        owner = f"app-{node.removeprefix('node-')}"
        renamed = node in renamed_nodes
        template = "5f6c7d8b9x" if renamed else "7d4b9c8f6d"
        suffix = "".join("bcdfghjklmnpqrstvwxz2456789"[(index * 7 + k) % 27] for k in range(5))
        item["metadata"].update(
            name=f"{owner}-{template}-{suffix}" if renamed else item["metadata"]["name"],
            generateName=f"{owner}-{template}-",
            labels={"pod-template-hash": template},
            ownerReferences=[
                {"kind": "ReplicaSet", "name": f"{owner}-{template}", "controller": True}
            ],
        )
    pods_file.write_text(json.dumps(pods))


@pytest.fixture(scope="module")
def recreated(pair: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory):
    """The pair, its pods owned by ReplicaSets, and the new side's pods on four nodes
    (two in each shard) re-created under new generated names."""
    base = tmp_path_factory.mktemp("recreated")
    old, new = base / "old", base / "new"
    shutil.copytree(pair[0], old)
    shutil.copytree(pair[1], new)
    _owned(old / "cluster" / "pods.json", set())
    _owned(new / "cluster" / "pods.json", {"node-0010", "node-0011", "node-0020", "node-0021"})
    return old, new


def test_the_sharded_diff_equals_comparing_every_fact(pair):
    old, new = pair
    naive = _naive(old, new)
    sharded = run_diff(old, new, list(load_catalog().rules.values()), None).result
    assert _plain(sharded) == _plain(naive)
    kinds = {c.kind for c in sharded.changes}
    assert {"route", "fdb"} <= kinds
    pod_route = [c for c in sharded.changes if c.kind == "route" and c.key[1].startswith("pod ")]
    assert len(pod_route) == 1 and pod_route[0].after == {"via": "10.0.0.254"}
    mtu = [c for c in sharded.changes if c.kind == "interface" and c.after == {"mtu": 1400}]
    assert len(mtu) == 1 and mtu[0].node == "node-0005", mtu
    pods = {c.key[0]: c for c in sharded.changes if c.kind == "pod"}
    assert set(pods) == {"default/app-0001-0001", "default/app-0002-0001"}, pods
    assert len(sharded.new_findings) > 20 and len(sharded.resolved_findings) > 10


def test_identical_bundles_give_an_empty_diff(pair, tmp_path):
    old, _ = pair
    copy = tmp_path / "copy"
    shutil.copytree(old, copy)
    result = run_diff(old, copy, list(load_catalog().rules.values()), None).result
    assert result.changes == [] and result.not_compared == []
    assert result.new_findings == [] and result.resolved_findings == []
    assert len(result.unchanged_findings) > 10


def test_records_not_shared_between_snapshots_still_compare_exactly(pair, monkeypatch):
    """With the element memo full, equal routes are distinct records: every route key
    counts as touched and is compared as facts, with the same outcome."""
    from needle.analyzer.parsers import elements

    old, new = pair
    monkeypatch.setattr(elements, "MAX_REMEMBERED", 0)
    for memo in _element_memos():
        monkeypatch.setattr(memo, "done", {})
    unshared = run_diff(old, new, list(load_catalog().rules.values()), None).result
    assert _plain(unshared) == _plain(_naive(old, new))


def _element_memos():
    from needle.analyzer.parsers import bridge_fdb, ip_neigh, ip_route

    return [bridge_fdb._ELEMENTS, ip_neigh._ELEMENTS, ip_route._ELEMENTS]


@pytest.mark.parametrize("show_all", [False, True])
def test_pods_re_created_under_new_names_diff_alike_sharded_or_not(recreated, show_all):
    old, new = recreated
    naive = _naive(old, new, show_all)
    sharded = run_diff(old, new, list(load_catalog().rules.values()), None, show_all).result
    assert _plain(sharded) == _plain(naive)
    renamed = [c for c in sharded.changes if c.kind == "pod" and c.noise == "per-boot"]
    if show_all:
        assert len(renamed) == 12, "3 pods on each of 4 nodes, each paired with its successor"
        assert all(c.before["name"] != c.after["name"] for c in renamed)
    else:
        assert renamed == [] and sharded.left_out["per-boot"] >= 12
    # the pair's own pod changes stay (a moved pod, a renumbered one), under their names
    pods = {c.key[0] for c in sharded.changes if c.kind == "pod" and c.noise is None}
    assert pods == {"default/app-0001-0001", "default/app-0002-0001"}, pods
