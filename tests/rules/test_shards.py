"""Rules evaluated in two forked shards give exactly what one process gives."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from needle.analyzer.bundle import open_bundle
from needle.analyzer.model import build_model
from needle.analyzer.rules.catalog import load_catalog
from needle.analyzer.rules.engine import evaluate, shard_nodes

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """70 nodes x 2 pods, 2% of peer routes sent out the underlay device."""
    out = tmp_path_factory.mktemp("synthetic") / "n70"
    subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "synthetic_bundle.py"),
            "--nodes",
            "70",
            "--pods",
            "2",
            "--route-changes",
            "0.02",
            "-o",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    return out


def _routes_out_the_underlay(path: Path) -> int:
    with open_bundle(path) as bundle:
        model = build_model(bundle)
        peer_cidrs = {node.pod_cidr for node in model.nodes.values()}
        return sum(
            1
            for node in model.nodes.values()
            for route in node.host.routes
            if route.dst in peer_cidrs and route.dst != node.pod_cidr and route.dev == "ens3"
        )


def _outcome(path: Path, workers: int, lazy: bool = False):
    with open_bundle(path) as bundle:
        model = build_model(bundle, pod_details=not lazy, lazy_nodes=lazy)
        if lazy:  # as `needle analyze` does: the workers read the pod sides and details
            bundle.drop_manifest()
        return evaluate(model, load_catalog().rules.values(), workers=workers)


def test_two_shards_find_what_one_process_finds(synthetic):
    one = _outcome(synthetic, workers=1)
    two = _outcome(synthetic, workers=2, lazy=True)
    wrong_way = [f for f in one.findings if f.rule == "flannel.route.peer-podcidr-wrong-way"]
    assert len(wrong_way) == _routes_out_the_underlay(synthetic) > 50
    assert {f.subject["node"] for f in wrong_way} > {"node-0000", "node-0001"}
    assert [f.to_json() for f in two.findings] == [f.to_json() for f in one.findings]
    assert two.rules_run == one.rules_run and two.skipped == one.skipped
    assert two.partial == one.partial


def test_every_node_and_podless_node_name_is_in_exactly_one_shard(synthetic):
    with open_bundle(synthetic) as bundle:
        model = build_model(bundle)
    model.pods[0].node = "node-gone"  # a pod on a node the API no longer lists
    shards = shard_nodes(model, 2)
    assert not shards[0] & shards[1]
    assert shards[0] | shards[1] == set(model.nodes) | {"node-gone"}
    assert abs(len(shards[0]) - len(shards[1])) <= 1


def test_a_rule_that_fails_in_one_shard_is_skipped_with_none_of_its_findings(synthetic):
    rule = """\
id: custom.node.fails-on-one
title: Fails on one node
severity: warning
for_each: nodes
assert: "node.name == 'node-0001' ? int('not a number') == 1 : false"
message: "{node.name}"
subject: {node: node.name}
remediation: none
"""
    from needle.analyzer.rules.catalog import parse_rule

    doc = parse_rule(rule, "fails.yaml")
    with open_bundle(synthetic) as bundle:
        outcome = evaluate(build_model(bundle), [doc], workers=2)
    assert outcome.findings == [] and outcome.rules_run == []
    (skipped,) = outcome.skipped
    assert skipped["rule"] == "custom.node.fails-on-one"
    assert skipped["reason"].startswith("evaluation failed")


def test_entries_checked_once_per_distinct_value_still_name_each_bad_entry(synthetic, tmp_path):
    """4,830 FDB entries, ~70 distinct (peer, public-ip, dst) values: CEL sees each value
    once, and the one entry pointing elsewhere is still the one reported."""
    import json
    import shutil

    copy = tmp_path / "bad-fdb"
    shutil.copytree(synthetic, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    node = manifest["nodes"][5]
    fdb = next(c for c in node["commands"] if c["id"] == "bridge-fdb")
    entries = json.loads((copy / fdb["output"]).read_text())
    bad = next(e for e in entries if e.get("dst") and e.get("ifname") == "flannel.1")
    bad["dst"] = "192.0.2.99"
    (copy / fdb["output"]).write_text(json.dumps(entries))
    outcome = _outcome(copy, workers=1)
    (finding,) = [f for f in outcome.findings if f.rule == "flannel.fdb.vtep-dst-mismatch"]
    assert finding.subject["node"] == node["name"]
    assert bad["mac"] in finding.message and "192.0.2.99" in finding.message
