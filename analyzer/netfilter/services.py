"""kube-proxy's Services as its iptables mode writes them, read back from a node's ruleset.

A Service port is a rule of nat KUBE-SERVICES (``-d CLUSTER_IP/32 -p PROTO --dport PORT
-j KUBE-SVC-...``, commented "ns/name:port cluster IP"); its endpoints are the
KUBE-SEP-... chains that KUBE-SVC-... jumps to. A Service without endpoints has no nat
rule but a REJECT in filter KUBE-SERVICES commented "ns/name:port has no endpoints".
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from needle.analyzer.netfilter.evaluate import Ruleset
from needle.analyzer.netfilter.rules import Rule
from needle.analyzer.netfilter.save import parse_rule as parse_any_rule

# the same kube-proxy rules are on every node (10^4 of them at a few thousand Services):
# each distinct line is parsed once per run, its Rule (frozen) shared
parse_rule = functools.lru_cache(maxsize=1 << 18)(parse_any_rule)

CHAIN = "KUBE-SERVICES"
# kube-proxy's per-Service chains: cluster (SVC), local-traffic-policy (SVL), firewall (FW)
SERVICE_CHAINS = ("KUBE-SVC-", "KUBE-SVL-")
ENDPOINT_CHAIN = "KUBE-SEP-"


@dataclass(frozen=True)
class ServicePort:
    """One Service port on one node: its name ("ns/name:port"), the chain that picks an
    endpoint (None when kube-proxy writes only the no-endpoints REJECT) and the rule."""

    name: str
    ip: str
    proto: str
    port: int
    chain: str | None
    rule: str
    endpoints: int  # the KUBE-SEP chains its chain jumps to

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"


def _comment(rule: Rule) -> str:
    for match in rule.matches:
        for option in match.options:
            if option.name == "comment" and option.args:
                return option.args[0]
    return ""


def _portal(rule: Rule) -> tuple[str, str, int] | None:
    """(ip, proto, port) of a rule matching one address, protocol and destination port."""
    ip = proto = port = None
    for match in rule.matches:
        if match.negated:
            return None
        if match.kind == "dst" and match.value.endswith("/32"):
            ip = match.value[:-3]
        elif match.kind == "dst":
            ip = match.value if "/" not in match.value else None
        elif match.kind == "proto":
            proto = match.value.lower()
        for option in match.options:
            if option.name == "dport" and not option.negated and option.args:
                port = option.args[0]
    if ip is None or proto is None or port is None or not port.isdigit():
        return None
    return ip, proto, int(port)


def _service_name(comment: str) -> str:
    for suffix in (" cluster IP", " has no endpoints"):
        if comment.endswith(suffix):
            return comment[: -len(suffix)]
    return comment


def services(ruleset: Ruleset) -> dict[tuple[str, str, int], ServicePort]:
    """Every Service port the node's kube-proxy rules name, by (ClusterIP, proto, port)."""
    found: dict[tuple[str, str, int], ServicePort] = {}
    for table in ("nat", "filter"):
        for text in ruleset.lines(table, CHAIN):
            rule = parse_rule(text)
            if rule is None or rule.target is None:
                continue
            portal = _portal(rule)
            comment = _comment(rule)
            if portal is None or portal in found:
                continue
            if table == "nat" and rule.target.startswith(SERVICE_CHAINS):
                chain: str | None = rule.target
            elif table == "filter" and rule.target == "REJECT" and "no endpoints" in comment:
                chain = None
            else:
                continue
            endpoints = (
                sum(
                    1
                    for line in ruleset.lines("nat", chain)
                    if (jump := parse_rule(line)) is not None
                    and (jump.target or "").startswith(ENDPOINT_CHAIN)
                )
                if chain is not None
                else 0
            )
            ip, proto, port = portal
            found[portal] = ServicePort(
                _service_name(comment) or chain or ip, ip, proto, port, chain, text, endpoints
            )
    return found


def cluster_ips(ruleset: Ruleset) -> frozenset[str]:
    """The ClusterIPs the node's kube-proxy rules name, whatever the port."""
    return frozenset(ip for ip, _, _ in services(ruleset))
