"""Pair rules whose helpers answer a node's whole row at once (ModelHelpers.failing) find
what CEL calling the helper once a pair finds: on 30 nodes, one node without the route to
a peer and with another peer's route the wrong way gets those two findings, naming the
node and the peers; a helper that raises sends the rule back to its written form."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from needle.analyzer.cli import _open_model
from needle.analyzer.rules import engine
from needle.analyzer.rules.catalog import load_catalog
from needle.analyzer.rules.engine import Engine, _row_filter, evaluate
from needle.analyzer.rules.helpers import ModelHelpers

NODE = "node-0007"
UNROUTED, MISROUTED = "node-0003", "node-0005"  # their pod CIDRs: 10.0.3.0/24, 10.0.5.0/24
RULES = ("flannel.route.peer-podcidr-missing", "flannel.route.peer-podcidr-wrong-way")


def _faulty(synthetic: Path, tmp_path: Path) -> Path:
    bundle = tmp_path / "n30"
    shutil.copytree(synthetic, bundle)
    path = bundle / "nodes" / NODE / "host" / "ip-route.json"
    rows = []
    for row in json.loads(path.read_bytes()):
        if row["dst"] == "10.0.3.0/24":
            continue  # deleted by hand: no route to UNROUTED's pods
        if row["dst"] == "10.0.5.0/24":  # a static route left from a migration
            row = {**row, "gateway": "172.16.0.1", "dev": "ens3", "flags": []}
        rows.append(row)
    path.write_text(json.dumps(rows))
    return bundle


def _findings(bundle: Path) -> list[dict[str, Any]]:
    opened, model = _open_model(bundle, pod_details=False, lazy_nodes=True, backend=None)
    with opened:
        outcome = evaluate(model, load_catalog([]).rules.values(), workers=1)
    assert not outcome.skipped, outcome.skipped
    return [finding.to_json() for finding in outcome.findings]


@pytest.fixture
def faulty(synthetic, tmp_path) -> Path:
    return _faulty(synthetic, tmp_path)


def test_rows_find_each_fault_once_as_cel_calls_would(faulty, monkeypatch):
    asked: list[str] = []
    failing = ModelHelpers.failing

    def counted(self: ModelHelpers, helper: str, node: str, peers: list[str]) -> list[int]:
        asked.append(helper)
        return failing(self, helper, node, peers)

    monkeypatch.setattr(ModelHelpers, "failing", counted)
    by_rows = _findings(faulty)
    assert {"has_peer_route", "route_as_expected"} <= set(asked)  # the rows were asked
    monkeypatch.setattr(Engine, "_fill_rows", lambda self, helpers, outer: False)
    written = _findings(faulty)
    assert by_rows == written
    mine = {f["rule"]: f for f in by_rows if f["rule"] in RULES}
    assert set(mine) == set(RULES)
    assert [f["rule"] for f in by_rows].count(RULES[0]) == 1
    assert [f["rule"] for f in by_rows].count(RULES[1]) == 1
    missing, wrong = mine[RULES[0]], mine[RULES[1]]
    assert NODE in missing["message"] and UNROUTED in missing["message"]
    assert NODE in wrong["message"] and MISROUTED in wrong["message"]
    assert "ens3" in wrong["message"]


def test_a_raising_helper_sends_the_rule_back_to_cel(faulty, monkeypatch):
    by_rows = _findings(faulty)

    def broken(self: ModelHelpers, helper: str, node: str, peers: list[str]) -> list[int]:
        raise RuntimeError("a row this helper cannot answer")

    monkeypatch.setattr(ModelHelpers, "failing", broken)
    assert _findings(faulty) == by_rows


def test_the_healthy_cluster_has_no_route_findings(synthetic):
    assert [f for f in _findings(synthetic) if f["rule"] in RULES] == []


def test_only_calls_on_the_pair_names_outside_strings_are_read_from_rows():
    helpers, text = _row_filter(
        "peer.pod_cidr != ''",
        "has_peer_route(node.name, peer.name) && route_as_expected(  node.name,peer.name)",
    )
    assert helpers == ("has_peer_route", "route_as_expected")
    assert "has_peer_route(" not in text and "route_as_expected(" not in text
    assert f"node.{engine.ROW_PREFIX}has_peer_route" in text
    # other arguments, or a call spelled inside a string: the rule runs as written
    assert _row_filter("true", "has_peer_route(peer.name, node.name)") == ((), "")
    assert _row_filter("'has_peer_route(node.name, peer.name)' != ''", "true") == ((), "")
    assert _row_filter("r'x' == 'x'", "has_peer_route(node.name, peer.name)") == ((), "")
    assert _row_filter("true", "peer_off_link(node.name, peer.name)")[0] == ("peer_off_link",)
