"""The tree of forks a traversal goes through, and the verdict it comes to.

A traversal forks where the answer depends on something it cannot know:

- a rule whose matches are unknown (and none is known False) forks into "matched" and
  "not matched"; when both branches end the same way the rule did not matter, otherwise
  the verdict is ``unknown`` naming that rule. So an unknown match on a LOG rule, or on a
  rule whose branches both accept, never makes a trace unknown;
- ``-m statistic --mode random`` (kube-proxy's endpoint choice) forks into "chosen" and
  "not chosen", and every branch becomes one of the verdict's ``alternatives``.

Every function here is iterative: a hostile ruleset can fork thousands of times in a row.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from needle.analyzer.netfilter.verdict import Verdict


@dataclass(frozen=True, slots=True)
class Fork:
    rule: str
    chain: str
    why: str
    random: bool  # True: a random choice (an alternative); False: an unknown match


@dataclass(frozen=True, slots=True)
class Outcome:
    verdict: str
    rule: str | None
    reason: str
    decided_in: str | None
    path: tuple[str, ...]
    nat: tuple[str, ...]
    mark: int | None


@dataclass(slots=True)
class Node:
    """A fork of the traversal: what followed with the rule matching (taken) or not."""

    fork: Fork
    taken: Node | Outcome | None = None
    other: Node | Outcome | None = None


Slot = tuple[Node, bool] | None  # where a branch's result goes: (fork, taken) or the root


def attach(root: list[Node | Outcome], slot: Slot, child: Node | Outcome) -> None:
    if slot is None:
        root.append(child)
    elif slot[1]:
        slot[0].taken = child
    else:
        slot[0].other = child


def _same(a: Outcome, b: Outcome) -> bool:
    return a.verdict == b.verdict and a.nat == b.nat


def decide(root: Node | Outcome) -> list[Outcome]:
    """The alternatives the fork tree comes to, resolving unknown-match forks.

    A random fork gives the chosen branch's alternatives, then the others'; an
    unknown-match fork gives its branches' alternatives when both sides agree (the match
    did not matter), else one unknown naming it. Iterative: a hostile ruleset can fork
    thousands of times in a row."""
    results: list[list[Outcome]] = []
    work: list[tuple[bool, Node | Outcome | None]] = [(False, root)]
    while work:
        joined, item = work.pop()
        if item is None:  # a branch that produced nothing (cannot happen; be safe)
            results.append([])
        elif isinstance(item, Outcome):
            results.append([item])
        elif not joined:
            work += [(True, item), (False, item.other), (False, item.taken)]
        else:
            right = results.pop()
            left = results.pop()
            results.append(_join(item.fork, left, right))
    return results[0] if results and results[0] else []


def _join(fork: Fork, left: list[Outcome], right: list[Outcome]) -> list[Outcome]:
    if fork.random:
        left.extend(right)
        return left
    if len(left) == len(right) and all(_same(a, b) for a, b in zip(left, right, strict=True)):
        merged = []
        for a, b in zip(left, right, strict=True):
            mark = a.mark if a.mark == b.mark else None
            reason = (
                f"{a.reason} (the same whether or not {fork.why} in {fork.chain} matches)"
                if a.verdict != "unknown"
                else a.reason
            )
            merged.append(replace(a, mark=mark, reason=reason))
        return merged
    first = (left or right)[0]
    reason = f"a rule of {fork.chain} matching on {fork.why} decides"
    return [Outcome("unknown", fork.rule, reason, fork.chain, first.path, (), None)]


def _first_random(root: Node | Outcome) -> Fork | None:
    work: list[Node | Outcome | None] = [root]
    while work:
        item = work.pop()
        if isinstance(item, Node):
            if item.fork.random:
                return item.fork
            work += [item.other, item.taken]
    return None


def verdict_of(o: Outcome, table: str, chain: str) -> Verdict:
    return Verdict(
        o.verdict, table, chain, o.rule, o.reason, o.path, o.nat, (), o.mark, o.decided_in
    )


def combine(verdicts: list[Verdict], root: Node | Outcome, table: str, chain: str) -> Verdict:
    kinds = {v.verdict for v in verdicts}
    verdict = kinds.pop() if len(kinds) == 1 else "unknown"
    nats = {v.nat for v in verdicts}
    marks = {v.mark for v in verdicts}
    fork = _first_random(root)
    rule = fork.rule if fork else None
    where = fork.chain if fork else None
    prefix: list[str] = []
    for names in zip(*(v.path for v in verdicts), strict=False):
        if len(set(names)) != 1:
            break
        prefix.append(names[0])
    if len({v.verdict for v in verdicts}) > 1:
        counts = {k: sum(v.verdict == k for v in verdicts) for k in ("accept", "drop", "unknown")}
        summary = "the alternatives differ: " + ", ".join(
            f"{n} {k}" for k, n in counts.items() if n
        )
    else:
        summary = f"each gives {verdict}"
    reason = (
        f"{len(verdicts)} alternatives, one chosen at random (-m statistic) in {where}: {summary}"
    )
    return Verdict(
        verdict,
        table,
        chain,
        rule,
        reason,
        tuple(prefix),
        nats.pop() if len(nats) == 1 else (),
        tuple(verdicts),
        marks.pop() if len(marks) == 1 else None,
        where,
    )
