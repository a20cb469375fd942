"""nftables rules evaluated through their iptables translation (netfilter/nft_rules.py):
the lab's nft dump of a flannel node decides every packet as its iptables-save does, and
what has no iptables equivalent is `unknown` with its own nft text."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from needle.analyzer.netfilter import Packet, Ruleset
from needle.analyzer.netfilter.nft_rules import nft_ruleset

DATA = Path(__file__).parent / "data"
NODE = frozenset({"192.168.122.11", "10.244.1.0", "10.244.1.1"})


def _packets() -> list[Packet]:
    sources = ["10.244.1.5", "10.244.3.9", "192.168.122.12", "8.8.8.8"]
    targets = ["10.244.2.7", "10.244.1.6", "192.168.122.11", "1.1.1.1"]
    ports = [("tcp", 22), ("tcp", 8080), ("udp", 8472), ("icmp", None)]
    ifaces = [("cni0", "flannel.1"), ("eth1", "eth2"), ("ens3", "eth0")]
    return [
        Packet(src, dst, proto, dport=port, iif=iif, oif=oif, mark=mark)
        for src, dst, (proto, port), (iif, oif), mark in itertools.product(
            sources, targets, ports, ifaces, (0, 0x4000)
        )
    ]


@pytest.mark.parametrize(
    ("table", "chain"),
    [("filter", "INPUT"), ("filter", "FORWARD"), ("filter", "OUTPUT"), ("nat", "POSTROUTING")],
)
def test_the_nft_dump_decides_as_the_iptables_dump_of_the_same_rules(table, chain):
    iptables = Ruleset.from_save((DATA / "lab__flannel-node.txt").read_bytes())
    nft = nft_ruleset((DATA / "lab__nft-compat-only.txt").read_bytes())
    differ = []
    for packet in _packets():
        a = iptables.traverse(table, chain, packet, local_addresses=NODE)
        b = nft.traverse(table, chain, packet, local_addresses=NODE)
        if (a.verdict, a.nat) != (b.verdict, b.nat):
            differ.append((packet, a.reason, b.reason))
    assert differ == []


def _one(rules: str, chain: str = "forward", kind: str = "filter", policy: str = "accept"):
    return nft_ruleset(
        f"table inet t {{\n\tchain c {{\n\t\ttype {kind} hook {chain} priority 0; "
        f"policy {policy};\n{rules}\n\t}}\n}}\n".encode()
    )


FWD = Packet("10.244.1.5", "10.244.2.7", "tcp", dport=80, iif="cni0", oif="flannel.1", mark=0)


def test_an_expression_without_an_iptables_equivalent_is_unknown_with_its_text():
    rules = _one("\t\tip daddr . tcp dport vmap @services\n\t\tdrop")
    verdict = rules.traverse("filter", "FORWARD", FWD)
    assert verdict.verdict == "unknown"  # the verdict map decides, not the drop after it
    assert verdict.rule == "ip daddr . tcp dport vmap @services"
    rules = _one("\t\tnumgen random mod 2 0 drop")
    verdict = rules.traverse("filter", "FORWARD", FWD)
    assert verdict.verdict == "unknown"
    assert verdict.rule == "numgen random mod 2 0 drop"


def test_a_fixed_named_set_is_read_and_a_dynamic_one_is_not():
    table = """table ip t {
\tset blocked {
\t\ttype ipv4_addr
\t\tflags interval
\t\telements = { 10.244.2.0/24, 10.9.0.1 }
\t}
\tset seen {
\t\ttype ipv4_addr
\t\tflags dynamic,timeout
\t\ttimeout 1m
\t}
\tchain c {
\t\ttype filter hook forward priority 0; policy accept;
\t\tip daddr @blocked drop
\t\tip saddr @seen drop
\t}
}
"""
    rules = nft_ruleset(table.encode())
    assert rules.traverse("filter", "FORWARD", FWD).verdict == "drop"
    other = Packet("10.244.1.5", "10.244.3.7", "tcp", dport=80, iif="cni0", mark=0)
    verdict = rules.traverse("filter", "FORWARD", other)
    assert verdict.verdict == "unknown" and verdict.rule == "ip saddr @seen drop"


def test_every_base_chain_of_a_hook_runs_in_priority_order():
    text = b"""table inet a {
\tchain late {
\t\ttype filter hook forward priority filter + 10; policy accept;
\t\ttcp dport 80 drop
\t}
}
table inet b {
\tchain early {
\t\ttype filter hook forward priority -5; policy accept;
\t\ttcp dport 80 accept
\t}
}
"""
    rules = nft_ruleset(text)
    assert [c.priority for c in sorted(rules.chains, key=lambda c: c.priority)] == [-5, 10]
    verdict = rules.traverse("filter", "FORWARD", FWD)
    # an accept ends only its own base chain: the later one still drops
    assert verdict.verdict == "drop" and verdict.rule == "tcp dport 80 drop"
    assert "nft table inet a chain late" in verdict.reason


def test_nat_rewrites_and_the_mark_are_followed():
    rules = _one(
        "\t\tip daddr 10.96.0.20 tcp dport 80 meta mark set 0x4000\n"
        "\t\tip daddr 10.96.0.20 tcp dport 80 dnat ip to 10.244.2.7:8080",
        chain="prerouting",
        kind="nat",
    )
    packet = Packet("10.244.1.5", "10.96.0.20", "tcp", dport=80, iif="cni0", mark=0)
    verdict = rules.traverse("nat", "PREROUTING", packet)
    assert (verdict.verdict, verdict.nat, verdict.mark) == (
        "accept",
        ("DNAT 10.244.2.7:8080",),
        0x4000,
    )


def test_what_is_not_evaluated_makes_the_hook_unknown():
    netdev = b"""table netdev edge {
\tchain ingress {
\t\ttype filter hook ingress device "ens3" priority 0; policy accept;
\t\tip saddr 10.0.0.0/8 drop
\t}
}
"""
    assert nft_ruleset(netdev).traverse("filter", "FORWARD", FWD).verdict == "unknown"
    as_json = json.dumps(
        {
            "nftables": [
                {"table": {"family": "inet", "name": "t"}},
                {"chain": {"family": "inet", "table": "t", "name": "c", "hook": "forward"}},
            ]
        }
    ).encode()
    assert nft_ruleset(as_json).traverse("filter", "FORWARD", FWD).verdict == "unknown"
    # ip6, arp and bridge tables do not see a routed IPv4 packet
    assert not nft_ruleset(
        b"table ip6 t {\n\tchain c {\n\t\ttype filter hook forward "
        b"priority 0; policy drop;\n\t}\n}\n"
    )


def test_hostile_names_and_values_stay_values():
    text = b"""table inet t {
\tchain "odd chain" {
\t\tdrop
\t}
\tchain c {
\t\ttype filter hook forward priority 0; policy accept;
\t\tiifname "-j" drop
\t\tmeta mark -j drop
\t\tjump "odd chain"
\t\t}}} { garbage \xff\xfe
\t}
}
table inet {
"""
    rules = nft_ruleset(text)
    verdict = rules.traverse("filter", "FORWARD", FWD)
    # neither value reads as an option: each rule is one the evaluator cannot decide
    assert verdict.verdict == "unknown"
    assert verdict.rule in ('iifname "-j" drop', "meta mark -j drop")
    alone = _one('\t\tiifname "-j" drop')
    assert alone.traverse("filter", "FORWARD", FWD).verdict == "unknown"
