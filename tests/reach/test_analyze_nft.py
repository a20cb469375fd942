"""`needle analyze` walks the hooks of a node whose rules are nftables only (iptables-save
shows nothing): a chain that drops one node's pod traffic is one error at that node's
filter step, named by the rule's own text and file."""

from __future__ import annotations

from pathlib import Path

from lab_bundles import analyze_json
from service_bundle import service_bundle

RULE = 'ip daddr 10.244.2.0/24 counter packets 12 bytes 1008 drop comment "quarantine"'
NFT = f"""table inet firewall {{
\tchain forward {{
\t\ttype filter hook forward priority filter; policy accept;
\t\tct state established,related accept
\t\t{RULE}
\t}}
}}
"""


def _nft_only(tmp_path: Path, ruleset: str | None) -> Path:
    bundle = service_bundle(tmp_path, [])
    for node in ("lab-node-1", "lab-node-2", "lab-node-3"):
        (bundle / "nodes" / node / "host" / "iptables-save.txt").write_text("")
    if ruleset is not None:
        (bundle / "nodes" / "lab-node-1" / "host" / "nft-ruleset.txt").write_text(ruleset)
    return bundle


def test_an_nft_drop_is_one_error_at_the_node_that_runs_it(tmp_path):
    report = analyze_json(_nft_only(tmp_path, NFT))
    errors = [f for f in report["findings"] if f["severity"] == "error"]
    assert [(f["rule"], f["subject"]["node"]) for f in errors] == [
        ("reachability.filter", "lab-node-1")
    ]
    evidence = errors[0]["evidence"]
    assert {"file": "nodes/lab-node-1/host/nft-ruleset.txt", "detail": RULE} in [
        {"file": e["file"], "detail": e["detail"]} for e in evidence
    ]
    reach = report["coverage"]["reachability"]
    # lab-node-1's two pods to lab-node-2's two, small packets: only that way is cut
    assert reach["dropped"] == 4 and reach["unknown"] == 0


def test_the_same_bundle_without_the_ruleset_is_clean(tmp_path):
    report = analyze_json(_nft_only(tmp_path, None))
    assert [f for f in report["findings"] if f["severity"] == "error"] == []
    reach = report["coverage"]["reachability"]
    assert reach["delivered"] == reach["pairs"]


def test_counters_do_not_split_nodes_whose_rulesets_are_the_same(tmp_path):
    # every node runs the same accepting ruleset, with its own counters
    bundle = _nft_only(tmp_path, None)
    for number, node in enumerate(("lab-node-1", "lab-node-2", "lab-node-3")):
        accepting = NFT.replace(RULE, f"counter packets {number} bytes {number * 84} accept")
        (bundle / "nodes" / node / "host" / "nft-ruleset.txt").write_text(accepting)
    plain = analyze_json(_nft_only(tmp_path / "plain", None))["coverage"]["reachability"]
    reach = analyze_json(bundle)["coverage"]["reachability"]
    assert reach["delivered"] == reach["pairs"]
    assert reach["classes"] == plain["classes"]
