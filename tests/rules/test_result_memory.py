"""A diff's second snapshot reuses a rule's result only where the rule read the same
items and looked nothing up in the model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from needle.analyzer.bundle import open_bundle
from needle.analyzer.model import build_model
from needle.analyzer.rules.catalog import load_catalog
from needle.analyzer.rules.engine import RuleResult, run_shard
from needle.analyzer.rules.memory import ResultMemory

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


FDB_RULE = "flannel.fdb.vtep-dst-mismatch"
NEIGH_RULE = "flannel.neigh.vtep-mac-mismatch"


def _shared_cache_results(paths: list[Path]) -> list[dict[str, RuleResult]]:
    """Each snapshot's results as a diff gets them: one ParseCache, one memory."""
    from needle.analyzer.model.build import ParseCache

    docs = list(load_catalog().rules.values())
    cache, memory, runs = ParseCache(), ResultMemory(), []
    for path in paths:
        with open_bundle(path) as bundle:
            model = build_model(bundle, cache=cache)
            runs.append({r.rule: r for r in run_shard(model, docs, None, memory)})
    return runs


def _findings(result: RuleResult) -> list[dict]:
    return [finding.to_json() for finding in result.findings]


@pytest.fixture(scope="module")
def public_ip_moved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The healthy lab where the API moved one node's flannel public-ip: every FDB file
    is the same bytes, but the entries now point at an address the peer no longer has."""
    copy = tmp_path_factory.mktemp("memory") / "public-ip-moved"
    with open_bundle(HEALTHY) as bundle:
        bundle.export(copy)
    nodes_file = copy / "cluster" / "nodes.json"
    text = nodes_file.read_text()
    assert text.count('public-ip": "192.168.122.12"') == 1
    nodes_file.write_text(text.replace('public-ip": "192.168.122.12"', 'public-ip": "192.0.2.99"'))
    return copy


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many times each entry collection is built."""
    from needle.analyzer.rules.facts import COLLECTION_BUILDERS

    counts = {"vtep_fdb": 0, "vtep_neighbours": 0}
    for name in counts:
        build = COLLECTION_BUILDERS[name]

        def counted(*args, _name=name, _build=build):
            counts[_name] += 1
            return _build(*args)

        monkeypatch.setitem(COLLECTION_BUILDERS, name, counted)
    return counts


def test_entry_collections_of_the_same_parses_are_taken_as_they_are(route_deleted, builds):
    healthy, changed = _shared_cache_results([HEALTHY, route_deleted])
    assert builds == {"vtep_fdb": 1, "vtep_neighbours": 1}
    for rule in (FDB_RULE, NEIGH_RULE):
        assert changed[rule] is healthy[rule]


def test_an_entry_collection_is_built_again_when_a_peer_it_names_changed(public_ip_moved, builds):
    healthy, changed = _shared_cache_results([HEALTHY, public_ip_moved])
    assert builds["vtep_fdb"] == 2
    alone = _results(public_ip_moved, None)
    assert not healthy[FDB_RULE].findings
    assert changed[FDB_RULE].findings, "the same FDB bytes, but a peer's public-ip moved"
    for rule, result in alone.items():
        assert _findings(changed[rule]) == _findings(result), rule
