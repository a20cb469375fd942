"""Whether a node runs nftables rules that `iptables-save` does not show.

needle does not evaluate nftables. What it must not do is call a trace through
iptables complete when nftables hooks (firewalld's `inet firewalld` table, kube-proxy's
nftables mode, Cilium, a `bridge` or `netdev` filter) also see the packet. iptables-nft
keeps its rules in `ip`/`ip6` tables named like iptables' own (filter, nat, mangle, raw,
security), which iptables-save (the nft variant) shows; every other table with a base
chain or a rule is invisible to it.
"""

from __future__ import annotations

import json
import re

from needle.analyzer.parsers.common import decode, looks_like_json

_IPTABLES_TABLES = frozenset({"filter", "nat", "mangle", "raw", "security"})
_TABLE = re.compile(r"^\s*table\s+(\S+)\s+(\S+)\s*\{")
_CHAIN = re.compile(r"^\s*chain\s+\S+")


def _compat(family: str, name: str) -> bool:
    return family in ("ip", "ip6") and name in _IPTABLES_TABLES


def _json_nft_only(text: str) -> bool:
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return False
    items = doc.get("nftables") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        return False
    for item in items:
        if not isinstance(item, dict):
            continue
        for kind in ("chain", "rule"):
            body = item.get(kind)
            if not isinstance(body, dict):
                continue
            family, table = str(body.get("family", "")), str(body.get("table", ""))
            if _compat(family, table):
                continue
            if kind == "rule" or "hook" in body:
                return True
    return False


def nft_only(data: bytes) -> bool:
    """True when `nft list ruleset` (text or `-j` JSON) holds a table iptables-save does
    not show that can act on packets: one with a base chain (a `hook`) or a rule.

    Assumes iptables-save is the nft variant when the node has iptables-nft's tables;
    with iptables-legacy those `ip filter`/`ip nat` tables would be invisible too, and
    which backend a node uses is the caller's to know (iptables -V says)."""
    if looks_like_json(data):
        return _json_nft_only(decode(data))
    table: tuple[str, str] | None = None
    in_chain = False
    depth = 0
    for line in decode(data).split("\n"):
        code = line.split("#", 1)[0]
        if table is None:
            found = _TABLE.match(code)
            if found:
                table, depth = (found.group(1), found.group(2)), 0
        elif depth == 1:
            # A block directly in the table: only chains act on packets (sets, maps,
            # flowtables and counters are read by rules).
            in_chain = _CHAIN.match(code) is not None
        elif in_chain and depth >= 2 and not _compat(*table):
            words = code.split()
            # Inside a chain: `type ... hook ...` makes it a base chain, anything else
            # but its policy or comment is a rule.
            if words and words[0] not in ("}", "policy", "comment"):
                return True
        depth += code.count("{") - code.count("}")
        if table is not None and depth <= 0 and "}" in code:
            table, in_chain = None, False
    return False
