"""A pair rule failing for every pair still finds every pair: a chunk whose failures
overrun CEL's iteration budget is checked again in halves."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from needle.analyzer.bundle import open_bundle
from needle.analyzer.model import build_model
from needle.analyzer.rules.catalog import parse_rule
from needle.analyzer.rules.engine import PAIR_STEPS, evaluate

REPO = Path(__file__).resolve().parents[2]

EVERY_PAIR = """\
id: custom.pairs.all
title: Every pair
severity: info
for_each: node_pairs
where: "node.collected"
assert: "node.name == ''"
message: "{node.name} and {peer.name}"
subject: {node: node.name, peer_node: peer.name, cidr: peer.pod_cidr}
remediation: none
"""


def test_every_failing_pair_is_found(tmp_path):
    nodes = 110  # one chunk of nodes x peers, and as many failing: twice the budget
    assert PAIR_STEPS // (nodes + 1) * nodes * 2 > 10_000
    bundle = tmp_path / "n110"
    subprocess.run(
        [
            *(sys.executable, str(REPO / "bench" / "synthetic_bundle.py")),
            *("--nodes", str(nodes), "--pods", "1", "-o", str(bundle)),
        ],
        check=True,
        capture_output=True,
    )
    with open_bundle(bundle) as opened:
        model = build_model(opened)
        outcome = evaluate(model, [parse_rule(EVERY_PAIR, "all.yaml")], workers=1)
    assert outcome.skipped == []
    # each node fails with every peer: one finding a node (rules/causes.py), which counts
    # the peers, so a pair the chunks lost would show
    assert sorted(f.subject["node"] for f in outcome.findings) == sorted(model.nodes)
    others = f"likewise with {nodes - 2} more peers"
    assert all(others in f.message for f in outcome.findings), outcome.findings[0].message
