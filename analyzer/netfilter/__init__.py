"""Offline netfilter: what a node's iptables ruleset does with one packet.

`needle trace` asks, at each netfilter hook, what the node's ruleset (its
`iptables-save` output) does with the packet there::

    ruleset = Ruleset.from_save(raw)
    verdict = ruleset.traverse("nat", "PREROUTING", Packet("10.244.1.5", "10.96.0.10",
                               "udp", sport=40000, dport=53, iif="cni0"),
                               local_addresses=frozenset({"192.168.122.11"}))
    verdict.verdict       # "accept" | "drop" | "unknown"
    verdict.alternatives  # kube-proxy's random endpoint choice: one verdict per endpoint

A packet's ``mark`` is 0 when it enters the node (nothing set it yet); ``None`` means
"not known" and makes every rule that reads it answer ``unknown``. A verdict's ``mark`` is
the mark after the traversal: pass it on to the next hook (KUBE-MARK-MASQ's 0x4000 set
in nat PREROUTING is what KUBE-POSTROUTING masquerades).

Linux semantics, honestly bounded: a match or target needle does not model gives
``unknown`` (naming the rule) only where it can change the outcome. nftables rules are
not evaluated; `nft_only` says whether a node has some that iptables-save cannot show.
"""

from __future__ import annotations

from needle.analyzer.netfilter.evaluate import Ruleset
from needle.analyzer.netfilter.nft import nft_only
from needle.analyzer.netfilter.rules import BUILTIN_CHAINS, Chain, Match, Option, Rule, Table
from needle.analyzer.netfilter.save import parse_iptables_save, parse_rule
from needle.analyzer.netfilter.verdict import Packet, Verdict

__all__ = [
    "BUILTIN_CHAINS",
    "Chain",
    "Match",
    "Option",
    "Packet",
    "Rule",
    "Ruleset",
    "Table",
    "Verdict",
    "nft_only",
    "parse_iptables_save",
    "parse_rule",
]
