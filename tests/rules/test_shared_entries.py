"""FDB and neighbour entries that every node holds alike are judged once per distinct
entry, and a wrong one on one node is still one finding that names that node, the peer
and the table it is in; a node lacking data its rules need still sends them the long
way, with the same findings and the node named as not checked."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

NODE, PEER = "node-0007", "node-0003"
PEER_VTEP, PEER_MAC = "10.0.3.0", "0a:00:00:00:00:03"


def _report(bundle: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "needle", "analyze", str(bundle), "--format", "json"],
        capture_output=True,
        text=True,
    )
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)


def _copy(synthetic: Path, tmp_path: Path) -> Path:
    bundle = tmp_path / "n30"
    shutil.copytree(synthetic, bundle)
    return bundle


def _edit(bundle: Path, node: str, name: str, edit) -> None:
    path = bundle / "nodes" / node / "host" / name
    path.write_text(json.dumps([edit(row) for row in json.loads(path.read_bytes())]))


def _stale_neighbour(row: dict[str, Any]) -> dict[str, Any]:
    # PEER re-created its flannel.1 (new MAC); NODE's flanneld never updated the entry
    return {**row, "lladdr": "0a:ff:00:00:00:03"} if row["dst"] == PEER_VTEP else row


def _findings(report: dict[str, Any], rule: str) -> list[dict[str, Any]]:
    return [f for f in report["findings"] if f["rule"] == rule]


def test_entries_held_alike_by_30_nodes_find_nothing(synthetic):
    report = _report(synthetic)
    coverage = report["coverage"]
    not_run = {
        entry["rule"]
        for key in ("rules_skipped", "rules_partial", "rules_not_applicable")
        for entry in coverage[key]
    }
    for rule in ("flannel.neigh.vtep-mac-mismatch", "flannel.fdb.vtep-dst-mismatch"):
        assert rule not in not_run
        assert _findings(report, rule) == []


def test_a_stale_neighbour_on_one_node_is_one_finding_naming_it(synthetic, tmp_path):
    bundle = _copy(synthetic, tmp_path)
    _edit(bundle, NODE, "ip-neigh.json", _stale_neighbour)
    (found,) = _findings(_report(bundle), "flannel.neigh.vtep-mac-mismatch")
    assert (found["subject"]["node"], found["subject"]["peer_node"]) == (NODE, PEER)
    assert "0a:ff:00:00:00:03" in found["message"] and PEER_MAC in found["message"]
    assert found["evidence"][0]["file"] == f"nodes/{NODE}/host/ip-neigh.json"


def test_a_wrong_fdb_entry_on_one_node_is_one_finding_naming_it(synthetic, tmp_path):
    bundle = _copy(synthetic, tmp_path)

    def moved(row: dict[str, Any]) -> dict[str, Any]:
        return {**row, "dst": "172.16.9.99"} if row["mac"] == PEER_MAC else row

    _edit(bundle, NODE, "bridge-fdb.json", moved)
    (found,) = _findings(_report(bundle), "flannel.fdb.vtep-dst-mismatch")
    assert (found["subject"]["node"], found["subject"]["peer_node"]) == (NODE, PEER)
    assert "172.16.9.99" in found["message"]
    assert found["evidence"][0]["file"] == f"nodes/{NODE}/host/bridge-fdb.json"


def test_a_node_lacking_links_is_named_and_the_others_still_judged(synthetic, tmp_path):
    bundle = _copy(synthetic, tmp_path)
    _edit(bundle, NODE, "ip-neigh.json", _stale_neighbour)
    # node-0009's `ip -j link` and `ip -j addr` failed: its neighbours are there, its
    # devices are not
    manifest = json.loads((bundle / "manifest.json").read_bytes())
    (record,) = [node for node in manifest["nodes"] if node["name"] == "node-0009"]
    for command in record["commands"]:
        if command["netns"] is None and command["id"] in ("ip-link", "ip-addr"):
            command["exit_code"] = 1
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    report = _report(bundle)
    (found,) = _findings(report, "flannel.neigh.vtep-mac-mismatch")
    assert (found["subject"]["node"], found["subject"]["peer_node"]) == (NODE, PEER)
    partial = {entry["rule"]: entry["reason"] for entry in report["coverage"]["rules_partial"]}
    assert "node-0009 lacks links" in partial["flannel.neigh.vtep-mac-mismatch"]
