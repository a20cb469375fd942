"""nft_only: whether nftables rules iptables-save cannot show act on a node's packets."""

from __future__ import annotations

import json
from pathlib import Path

from needle.analyzer.netfilter import nft_only

DATA = Path(__file__).parent / "data"


def test_lab_compat_tables_only():
    assert nft_only((DATA / "lab__nft-compat-only.txt").read_bytes()) is False


def test_lab_extra_inet_table():
    assert nft_only((DATA / "lab__nft-inet-table.txt").read_bytes()) is True


def test_table_with_only_sets_and_regular_chains_does_nothing():
    text = b"""table inet idle {
\tset blocked {
\t\ttype ipv4_addr
\t\telements = { 10.0.0.1 }
\t}
\tchain unused {
\t}
}
"""
    assert nft_only(text) is False


def test_kube_proxy_nftables_mode_table():
    text = b"""table ip kube-proxy {
\tchain nat-prerouting {
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\tjump services
\t}
}
"""
    assert nft_only(text) is True


def test_json_form():
    doc = {
        "nftables": [
            {"metainfo": {"json_schema_version": 1}},
            {"table": {"family": "ip", "name": "filter"}},
            {"chain": {"family": "ip", "table": "filter", "name": "FORWARD", "hook": "forward"}},
        ]
    }
    assert nft_only(json.dumps(doc).encode()) is False
    doc["nftables"].append(
        {"chain": {"family": "inet", "table": "firewalld", "name": "in", "hook": "input"}}
    )
    assert nft_only(json.dumps(doc).encode()) is True


def test_garbage_is_not_nft_rules():
    assert nft_only(b"") is False
    assert nft_only(b"\xff{[}}}\n") is False
    assert nft_only(b"{not json") is False
