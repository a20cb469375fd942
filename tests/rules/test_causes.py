"""One cause, one finding: a node's fault judged against each peer, or seen by two
rules at one hop, is reported once (analyzer/rules/causes.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from needle.analyzer.rules.causes import PEERS_NAMED, fold_peers, fold_same_cause
from needle.analyzer.rules.engine import SUBJECT_KEYS, Finding


def _finding(rule: str, message: str = "m", file: str = "f", **subject: str) -> Finding:
    return Finding(
        rule=rule,
        severity="error",
        title="t",
        message=message,
        subject={**dict.fromkeys(SUBJECT_KEYS), **subject},
        evidence=[{"file": file, "detail": message}],
        remediation="",
        references=[],
    )


def test_a_node_failing_with_each_peer_is_one_finding_naming_them():
    peers = [f"n{index}" for index in range(1, 9)]
    findings = [
        _finding("r.pair", f"n0 too small for {peer}", f"{peer}.json", node="n0", peer_node=peer)
        for peer in peers
    ]
    (folded,) = fold_peers(findings, peers=8)
    assert folded.subject["node"] == "n0" and folded.subject["peer_node"] is None
    assert folded.message.startswith("n0 too small for n1; likewise with 7 more peers: n2, n3")
    assert folded.message.endswith(f"and {7 - PEERS_NAMED} more")
    assert [item["file"] for item in folded.evidence] == ["n1.json", "n2.json", "n3.json"]


def test_peer_findings_of_different_things_stay_apart():
    findings = [
        # one route per peer: each is its own wrong entry
        _finding("r.route", node="n0", peer_node="n1", cidr="10.244.1.0/24"),
        _finding("r.route", node="n0", peer_node="n2", cidr="10.244.2.0/24"),
        # another node, another rule
        _finding("r.route", node="n1", peer_node="n2", cidr="10.244.2.0/24"),
        _finding("r.other", node="n0", peer_node="n1", cidr="10.244.1.0/24"),
        _finding("r.single", node="n0"),
        _finding("r.single", node="n0"),
    ]
    assert fold_peers(findings, peers=30) == findings


def test_most_peers_entries_wrong_on_one_node_are_one_finding():
    # a flanneld that stopped programming routes: one per peer missing, each its CIDR
    findings = [
        _finding("r.route", node="n0", peer_node=f"n{i}", interface="flannel.1", cidr=f"c{i}")
        for i in range(1, 6)
    ]
    (folded,) = fold_peers(findings, peers=8)
    assert folded.subject == {**findings[0].subject, "peer_node": None, "cidr": None}
    assert "likewise with 4 more peers: n2, n3, n4, n5" in folded.message
    # half of them or fewer: each wrong entry is its own finding
    assert len(fold_peers(findings[:4], peers=8)) == 4


def test_two_rules_at_one_hop_of_one_interface_are_one_finding():
    steps = {"r.node": frozenset({"mtu"}), "r.pair": frozenset({"mtu"})}
    pair = _finding("r.pair", "peers do not fit", "peer.json", node="n0", interface="ens3")
    own = _finding("r.node", "own overlay does not fit", "own.json", node="n0", interface="ens3")
    (kept,) = fold_same_cause([pair, own], steps)
    # the finding on the node alone is the more specific
    assert (kept.rule, kept.message) == ("r.node", "own overlay does not fit")
    assert {"file": "peer.json", "detail": "r.pair: peers do not fit"} in kept.evidence
    # the findings given stay as they were: a diff's two snapshots may share them
    assert own.evidence == [{"file": "own.json", "detail": "own overlay does not fit"}]
    (again,) = fold_same_cause([pair, own], steps)
    assert again.evidence == kept.evidence


def test_different_hops_or_things_stay_apart():
    steps = {
        "r.mtu": frozenset({"mtu"}),
        "r.link": frozenset({"link"}),
        "r.sys": frozenset({"sysctl"}),
        "r.sys2": frozenset({"sysctl"}),
    }
    findings = [
        _finding("r.mtu", node="n0", interface="ens3"),
        _finding("r.link", node="n0", interface="ens3"),  # another step
        _finding("r.mtu", node="n0", interface="cni0"),  # another interface
        _finding("r.mtu", node="n1", interface="ens3"),  # another node
        # node-wide: two sysctls of one node are two causes
        _finding("r.sys", node="n0"),
        _finding("r.sys2", node="n0"),
        _finding("r.nostep", node="n0", interface="ens3"),  # declares no step
    ]
    assert fold_same_cause(findings, steps) == findings


def _errors(bundle: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "needle", "analyze", str(bundle), "--format", "json"],
        capture_output=True,
        text=True,
    )
    assert done.returncode in (0, 1), done.stderr
    return [f for f in json.loads(done.stdout)["findings"] if f["severity"] == "error"]


def _edited(
    synthetic: Path, tmp_path: Path, name: str, edit: Callable[[list[Any]], list[Any]]
) -> Path:
    bundle = tmp_path / "n30"
    shutil.copytree(synthetic, bundle)
    path = bundle / "nodes" / "node-0007" / "host" / name
    path.write_text(json.dumps(edit(json.loads(path.read_bytes()))))
    return bundle


def test_the_synthetic_cluster_is_clean(synthetic):
    assert _errors(synthetic) == []


def test_a_small_underlay_on_one_of_30_nodes_is_one_error(synthetic, tmp_path):
    def smaller(rows: list[Any]) -> list[Any]:
        return [{**row, "mtu": 1450} if row["ifname"] == "ens3" else row for row in rows]

    errors = _errors(_edited(synthetic, tmp_path, "ip-link.json", smaller))
    assert [(f["rule"], f["subject"]["node"], f["subject"]["interface"]) for f in errors] == [
        ("flannel.mtu.overlay-exceeds-underlay", "node-0007", "ens3")
    ]
    details = " ".join(item["detail"] for item in errors[0]["evidence"])
    assert "flannel.mtu.underlay-mismatch" in details and "likewise with 28 more peers" in details


def test_a_node_with_no_route_to_any_peer_is_one_error(synthetic, tmp_path):
    # flanneld stopped programming routes on node-0007: every peer's is gone
    def without_overlay_routes(rows: list[Any]) -> list[Any]:
        return [row for row in rows if row.get("dev") != "flannel.1"]

    errors = _errors(_edited(synthetic, tmp_path, "ip-route.json", without_overlay_routes))
    assert [(f["rule"], f["subject"]["node"], f["subject"]["cidr"]) for f in errors] == [
        ("flannel.route.peer-podcidr-missing", "node-0007", None)
    ]
    assert "likewise with 28 more peers" in errors[0]["message"]


def test_one_missing_route_stays_its_own_error(synthetic, tmp_path):
    def one_less(rows: list[Any]) -> list[Any]:
        return [row for row in rows if row.get("dst") != "10.0.3.0/24"]

    errors = _errors(_edited(synthetic, tmp_path, "ip-route.json", one_less))
    assert [(f["rule"], f["subject"]["peer_node"], f["subject"]["cidr"]) for f in errors] == [
        ("flannel.route.peer-podcidr-missing", "node-0003", "10.0.3.0/24")
    ]
