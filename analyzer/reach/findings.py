"""Causes as report findings, one per hop, merged with the rules that name the same one.

A rule that says why a hop drops (an ip_forward sysctl, a missing route, a wrong MAC)
names the cause better than the walk's step does: when a rule declares the step and its
finding is on the node of the hop, or on the one node all the broken pairs lead to (a
node off its peers' segment makes its peers' routes fail), it keeps its id, message and
fix, and gains the walk as evidence (how many pairs the cause breaks, and one of
them). Otherwise the cause is its own finding, `reachability.<step>`.
"""

from __future__ import annotations

from needle.analyzer.reach.judge import Cause, Reachability
from needle.analyzer.rules.engine import SUBJECT_KEYS, Finding
from needle.analyzer.terminal import plural
from needle.analyzer.trace.document import FIXES

TITLES = {
    "link": "Pod traffic dies at a device that is down",
    "route": "Pod traffic dies at a routing decision",
    "neigh": "Pod traffic dies resolving the next hop",
    "fdb": "Pod traffic dies at a forwarding-database entry",
    "bridge": "Pod traffic dies at a bridge port",
    "filter": "Pod traffic dies at an iptables rule",
    "nat": "Pod traffic dies at a NAT rewrite",
    "encap": "Pod traffic dies at the overlay's encapsulation",
    "underlay": "Pod traffic dies on the underlay between nodes",
    "decap": "Pod traffic dies at the receiving overlay device",
    "mtu": "Pod traffic does not fit an MTU on its path",
    "sysctl": "Pod traffic dies at a forwarding sysctl",
    "deliver": "Pod traffic dies at its destination",
}


def _where(cause: Cause) -> str:
    if cause.scope == "pod":
        pods = sorted(cause.pods)
        shown = ", ".join(pods[:3]) + (f" and {len(pods) - 3} more" if len(pods) > 3 else "")
        return f"{plural(len(pods), 'pod')} on {cause.node} ({shown})"
    return cause.node


def _reach_line(cause: Cause) -> str:
    kinds = "; ".join(sorted(cause.kinds))
    others = sorted(cause.also)
    also = (
        f"; the same on {plural(len(others), 'more node')} ({', '.join(others[:5])})"
        if others
        else ""
    )
    return f"breaks {plural(cause.pairs, 'pair')} ({kinds}), e.g. {'; '.join(cause.examples)}{also}"


def _evidence(cause: Cause) -> list[dict[str, str]]:
    items = [{"file": file, "detail": detail} for file, detail in cause.hop.evidence if file]
    items.append(
        {
            "file": items[0]["file"] if items else "",
            "detail": f"needle trace {cause.examples[0].split(' (')[0].replace(' -> ', ' ')}"
            if cause.examples
            else "needle trace",
        }
    )
    return [item for item in items if item["file"]]


def cause_finding(cause: Cause) -> Finding:
    hop = cause.hop
    subject: dict[str, str | None] = dict.fromkeys(SUBJECT_KEYS)
    subject["node"] = cause.node
    subject["interface"] = hop.interface
    if cause.scope == "pod":
        pods = sorted(cause.pods)
        subject["pod"] = pods[0] if len(pods) == 1 else None
        subject["netns"] = hop.netns if hop.netns != "host" else None
    return Finding(
        rule=f"reachability.{cause.step}",
        severity="error",
        title=TITLES.get(cause.step, "Pod traffic dies on its path"),
        message=f"On {_where(cause)}, {hop.step}"
        + (f" {hop.interface}" if hop.interface else "")
        + f": {hop.detail}. "
        f"This {_reach_line(cause)}.",
        subject=subject,
        evidence=_evidence(cause),
        remediation=FIXES.get(cause.step, ""),
        references=[],
    )


def _only(nodes: set[str]) -> str | None:
    return next(iter(nodes)) if len(nodes) == 1 else None


def merge(
    findings: list[Finding], reach: Reachability, steps: dict[str, frozenset[str]]
) -> list[Finding]:
    """The rules' findings, each cause merged into the ones on its node and step
    (`steps`: rule id -> the steps it describes), and the other causes as findings."""
    added: list[Finding] = []
    for cause in sorted(reach.causes.values(), key=lambda c: (-c.pairs, c.key)):
        matching = [
            finding
            for finding in findings
            if cause.step in steps.get(finding.rule, ())
            and finding.subject.get("node") in (cause.node, _only(cause.peers))
        ]
        if not matching:
            added.append(cause_finding(cause))
            cause.findings = [added[-1]]
            continue
        cause.findings = matching
        for finding in matching:
            finding.evidence.append(
                {
                    "file": next((file for file, _ in cause.hop.evidence if file), ""),
                    "detail": f"reachability: {cause.hop.detail}; {_reach_line(cause)}",
                }
            )
    return findings + added
