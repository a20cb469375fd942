"""`needle trace` on a node whose rules are nftables only (iptables-save shows nothing):
the nft rules decide at the hook, named by their own text and file."""

from __future__ import annotations

from pathlib import Path

from service_bundle import service_bundle, trace

WEB_1, WEB_2 = "10.244.1.2", "10.244.2.2"
RULE = 'ip daddr 10.244.2.0/24 tcp dport { 80, 8080 } counter packets 0 bytes 0 drop comment "x"'
NFT = f"""table inet firewall {{
\tset trusted {{
\t\ttype ipv4_addr
\t\telements = {{ 10.244.3.3 }}
\t}}

\tchain forward {{
\t\ttype filter hook forward priority filter; policy accept;
\t\tct state established,related accept
\t\tip saddr @trusted accept
\t\t{RULE}
\t}}
}}
"""


def _nft_only(tmp_path: Path) -> Path:
    bundle = service_bundle(tmp_path, [])
    for node in ("lab-node-1", "lab-node-2", "lab-node-3"):
        (bundle / "nodes" / node / "host" / "iptables-save.txt").write_text("")
    (bundle / "nodes" / "lab-node-1" / "host" / "nft-ruleset.txt").write_text(NFT)
    return bundle


def test_an_nft_forward_rule_drops_at_filter_with_its_own_text(tmp_path):
    bundle = _nft_only(tmp_path)
    code, document = trace(bundle, WEB_1, WEB_2, "--proto", "tcp", "--port", "8080")
    assert (code, document["verdict"]) == (1, "dropped")
    hop = next(h for h in document["hops"] if h["verdict"] == "drop")
    assert (hop["node"], hop["step"], hop["interface"]) == ("lab-node-1", "filter", "cni0")
    assert hop["evidence"] == [{"file": "nodes/lab-node-1/host/nft-ruleset.txt", "detail": RULE}]
    assert "nft table inet firewall chain forward" in hop["detail"]
    # another port, and a source in the named set, pass the same chain
    code, document = trace(bundle, WEB_1, WEB_2, "--proto", "tcp", "--port", "22")
    assert (code, document["verdict"]) == (0, "delivered")
    code, document = trace(bundle, "10.244.3.3", WEB_2, "--proto", "tcp", "--port", "8080")
    assert document["verdict"] == "delivered"
