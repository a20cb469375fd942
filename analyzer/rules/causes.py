"""One cause, one finding: findings that name the same thing at fault become one.

A node-pair rule judges a node against each peer, so one node's wrong value (its
underlay MTU, its public IP) fails with every peer: on 1,000 nodes, 999 findings of one
cause. Those that differ only in the peer fold into one finding on the node, which
names the peers. And two rules that see one cause at the same hop (an underlay MTU that
is too small for the node's own overlay and for its peers') fold into the more specific
one, which keeps the other's message as evidence.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from needle.analyzer.terminal import plural

if TYPE_CHECKING:  # the engine folds its own findings
    from needle.analyzer.rules.engine import Finding

PEERS_NAMED = 5  # peers a folded finding names in its message
EVIDENCE_PEERS = 3  # peers whose own evidence a folded finding keeps

_WHERE = ("node", "netns", "pod", "interface", "cidr")
_NODE_SIDE = ("node", "netns", "pod", "interface")  # without the peer's own CIDR


def _where(finding: Finding, keys: tuple[str, ...] = _WHERE) -> tuple[str | None, ...]:
    """What is at fault: the subject without the peer it was judged against."""
    return tuple(finding.subject.get(key) for key in keys)


def _add_evidence(finding: Finding, items: Iterable[dict[str, str]]) -> None:
    held = {(item.get("file"), item.get("detail")) for item in finding.evidence}
    for item in items:
        key = (item.get("file"), item.get("detail"))
        if key not in held:
            held.add(key)
            finding.evidence.append(item)


def fold_peers(findings: list[Finding], peers: int) -> list[Finding]:
    """One rule's findings on each node, judged against its `peers` other nodes, with
    those of one cause as one, in the order of their first:
    - those that differ only in `peer_node` (the node's own value fails against them);
    - those that differ in `peer_node` and `cidr` too, when they are more than half of
      the node's peers: the node lacks or holds wrongly what it keeps for most peers (a
      flanneld that stopped programming its routes), while a few peers' entries wrong
      are each their own finding.
    The folded finding has no single peer (`peer_node` null, as a finding on many peers
    has elsewhere; `cidr` null when they differ) and its message names the peers."""
    on_node: dict[tuple[str, tuple[str | None, ...]], int] = {}
    for finding in findings:
        if finding.subject.get("peer_node"):
            key = (finding.rule, _where(finding, _NODE_SIDE))
            on_node[key] = on_node.get(key, 0) + 1
    groups: dict[tuple[str, tuple[str | None, ...]], list[Finding]] = {}
    for finding in findings:
        if not finding.subject.get("peer_node"):
            groups[("", (str(id(finding)),))] = [finding]
            continue
        key = (finding.rule, _where(finding, _NODE_SIDE))
        count = on_node[key]
        if count < 2 or count * 2 <= peers:
            key = (finding.rule, _where(finding))
        groups.setdefault(key, []).append(finding)
    folded: list[Finding] = []
    for group in groups.values():
        first = group[0]
        if len(group) == 1:
            folded.append(first)
            continue
        others = [str(item.subject.get("peer_node")) for item in group[1:]]
        shown = ", ".join(others[:PEERS_NAMED])
        more = f" and {len(others) - PEERS_NAMED} more" if len(others) > PEERS_NAMED else ""
        first.message = (
            f"{first.message.rstrip().rstrip('.')}; likewise with "
            f"{plural(len(others), 'more peer')}: {shown}{more}"
        )
        cidrs = {item.subject.get("cidr") for item in group}
        first.subject = {
            **first.subject,
            "peer_node": None,
            "cidr": first.subject.get("cidr") if len(cidrs) == 1 else None,
        }
        for other in group[1:EVIDENCE_PEERS]:
            _add_evidence(first, other.evidence)
        folded.append(first)
    return folded


def _rank(finding: Finding) -> tuple[int, str]:
    # a finding on the node alone names the cause more exactly than one judged
    # against peers; then the rule id, so the choice does not depend on order
    return (1 if finding.subject.get("peer_node") else 0, finding.rule)


def fold_same_cause(findings: list[Finding], steps: dict[str, frozenset[str]]) -> list[Finding]:
    """Findings of rules that describe one hop (`steps`: rule id -> the trace steps it
    declares) and name the same thing at fault (a node's interface, route, namespace or
    pod, not the node alone: two sysctls of one node are two causes) as one: the most
    specific keeps its place, and the others' messages and evidence join its evidence.
    The findings given are left as they are (a diff's two snapshots share the findings
    of rules whose inputs did not change): a finding that gains evidence is a copy."""
    groups: dict[tuple[str | None, ...], list[Finding]] = {}
    for finding in findings:
        where = _where(finding)
        if steps.get(finding.rule) and any(value is not None for value in where[1:]):
            groups.setdefault(where, []).append(finding)
    # by id() of a finding given: None if folded away, else the copy in its place
    replaced: dict[int, Finding | None] = {}
    for group in groups.values():
        if len(group) < 2:
            continue
        kept: list[tuple[Finding, Finding]] = []  # (the finding given, the one reported)
        for finding in sorted(group, key=_rank):
            at = next(
                (n for n, (k, _) in enumerate(kept) if steps[k.rule] & steps[finding.rule]), None
            )
            if at is None:
                kept.append((finding, finding))
                continue
            given, into = kept[at]
            if into is given:
                into = replace(given, evidence=[*given.evidence])
                kept[at] = (given, into)
                replaced[id(given)] = into
            file = next((item["file"] for item in finding.evidence if item.get("file")), "")
            _add_evidence(into, [{"file": file, "detail": f"{finding.rule}: {finding.message}"}])
            _add_evidence(into, finding.evidence)
            replaced[id(finding)] = None
    if not replaced:
        return findings
    return [
        shown for finding in findings if (shown := replaced.get(id(finding), finding)) is not None
    ]
