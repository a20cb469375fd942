"""A diff's second snapshot reuses a rule's result only where the rule read the same
items and looked nothing up in the model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analyzer.bundle import open_bundle
from analyzer.model import build_model
from analyzer.rules.catalog import load_catalog
from analyzer.rules.engine import RuleResult, run_shard
from analyzer.rules.memory import ResultMemory

HEALTHY = Path(__file__).resolve().parents[2] / "samples" / "lab-healthy.tar.gz"
MISSING = "flannel.route.peer-podcidr-missing"


def _results(path: Path, memory: ResultMemory | None) -> dict[str, RuleResult]:
    docs = list(load_catalog().rules.values())
    with open_bundle(path) as bundle:
        model = build_model(bundle)
        return {result.rule: result for result in run_shard(model, docs, None, memory)}


@pytest.fixture(scope="module")
def route_deleted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The healthy lab with one peer route deleted on one node, nothing else changed."""
    copy = tmp_path_factory.mktemp("memory") / "route-deleted"
    with open_bundle(HEALTHY) as bundle:
        bundle.export(copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    command = next(
        c for c in manifest["nodes"][0]["commands"] if c["id"] == "ip-route" and not c["netns"]
    )
    path = copy / command["output"]
    routes = json.loads(path.read_text())
    peer = next(r for r in routes if r.get("dev") == "flannel.1")
    path.write_text(json.dumps([r for r in routes if r is not peer]))
    return copy


def test_rules_reading_only_unchanged_items_are_reused(route_deleted):
    memory = ResultMemory()
    healthy = _results(HEALTHY, memory)
    changed = _results(route_deleted, memory)
    alone = _results(route_deleted, None)
    # reused or not, the second snapshot's results are what it gives on its own
    assert set(changed) == set(alone)
    for rule, result in alone.items():
        assert changed[rule].status == result.status
        assert [f.to_json() for f in changed[rule].findings] == [
            f.to_json() for f in result.findings
        ]
    # the route rules look routes up: checked again, and the deleted route is found
    assert changed[MISSING] is not healthy[MISSING] and changed[MISSING].findings
    # rules over FDB entries, neighbours, pods and node pairs read only their items
    for rule in ("flannel.fdb.vtep-dst-mismatch", "flannel.node.podcidr-overlap"):
        assert changed[rule] is healthy[rule]


def test_a_second_run_of_the_same_snapshot_reuses_every_rule_without_lookups():
    memory = ResultMemory()
    first = _results(HEALTHY, memory)
    again = _results(HEALTHY, memory)
    reused = {rule for rule in first if again[rule] is first[rule]}
    assert MISSING not in reused and "flannel.route.peer-podcidr-wrong-way" not in reused
    assert "flannel.veth.orphaned" in reused and "kubernetes.pod.netns-missing" in reused
