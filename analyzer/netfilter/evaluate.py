"""Follow one packet through one built-in chain of an iptables ruleset, as Linux does.

Each rule is compiled once, the first time a traversal reaches it (`compiled.py`: its
matches become predicates answering True, False or None, see `matches.py`). A traversal
walks chains with an explicit jump stack (no Python recursion, so a hostile ruleset
cannot raise RecursionError) and forks where the answer depends on something it cannot
know: a match that answers None, or ``-m statistic --mode random``; `forks.py` says how
the branches come to one verdict.

Forks, steps and jump depth are bounded; past a bound the answer is ``unknown`` and says
which bound, never an exception.
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache

from needle.analyzer.gcpause import paused_gc
from needle.analyzer.netfilter.compiled import (
    ACCEPT,
    CONTINUE,
    DROP,
    JUMP,
    MARK,
    MARK_LOST,
    NAT,
    RETURN,
    UNKNOWN,
    Compiled,
    apply_mark,
    compile_rule,
)
from needle.analyzer.netfilter.forks import (
    Fork,
    Node,
    Outcome,
    Slot,
    attach,
    combine,
    decide,
    verdict_of,
)
from needle.analyzer.netfilter.matches import Ctx, cidr, ip_int
from needle.analyzer.netfilter.rules import Match, Rule
from needle.analyzer.netfilter.save import Section, parse_rule, sections
from needle.analyzer.netfilter.verdict import Packet, Verdict

MAX_FORKS = 4096  # branches per traversal: kube-proxy forks once per endpoint of a Service
MAX_STEPS = 1_000_000  # rules looked at per traversal, over all branches
MAX_DEPTH = 128  # nested jumps

_LEGACY_WARNING = b"iptables-legacy tables present"
_INCOMPATIBLE = re.compile(rb"# Table `(\S+?)' is incompatible, use 'nft' tool")


@lru_cache(maxsize=64)
def _local_ints(addresses: frozenset[str]) -> frozenset[int]:
    return frozenset(v for v in map(ip_int, addresses) if v is not None)


class _Frame:
    """One level of the jump stack: a chain, the next rule, chains left by -g here."""

    __slots__ = ("chain", "gone", "idx")

    def __init__(self, chain: str, idx: int = 0, gone: tuple[str, ...] = ()) -> None:
        self.chain = chain
        self.idx = idx
        self.gone = gone


class _State:
    __slots__ = ("frames", "mark", "notes", "path", "slot")

    def __init__(
        self,
        frames: list[_Frame],
        mark: int | None,
        path: tuple[str, ...],
        slot: Slot,
        notes: tuple[str, ...],
    ) -> None:
        self.frames = frames
        self.mark = mark
        self.path = path
        self.slot = slot
        self.notes = notes

    def copy(self) -> _State:
        frames = [_Frame(f.chain, f.idx, f.gone) for f in self.frames]
        return _State(frames, self.mark, self.path, self.slot, self.notes)


class _Lazy:
    """A rule not compiled yet, with its plain ``-d`` destination when it has one.

    kube-proxy's KUBE-SERVICES holds one rule per Service port, each with ``-d
    CLUSTER-IP``; a packet is compared with every one. Checking that destination on the
    raw text and compiling only rules whose destination matches makes the first traversal
    of a 100,000-rule dump cost a string search per rule, not a parse."""

    __slots__ = ("mask", "net", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.net, self.mask = _plain_dst(text) if _PREFILTER else (0, None)


_PREFILTER = True  # tests turn it off to check it never changes an answer


def _plain_dst(text: str) -> tuple[int, int | None]:
    """(network, mask) of the rule's un-negated ``-d``, or (0, None) when that cannot be
    read safely from the text (quotes with escapes, a negation, a list, another spelling)."""
    if "\\" in text:
        return 0, None
    if '"' in text:
        if text.count('"') % 2:
            return 0, None
        text = " ".join(text.split('"')[::2])  # the words outside quoted strings
    at = text.find(" -d ")
    if at < 0 or text[:at].endswith(" !"):
        return 0, None
    rest = text[at + 4 :].split(None, 1)
    found = cidr(rest[0]) if rest else None
    return (0, None) if found is None else found


class _Table:
    """One table of a Ruleset: its chains' rules as text, compiled when first needed."""

    __slots__ = ("builtin", "committed", "entries", "lines", "name", "names", "policies")

    def __init__(self, section: Section) -> None:
        self.name = section.name
        self.policies = section.policies
        self.lines = section.lines
        self.committed = section.committed
        self.names = frozenset(section.policies)
        self.builtin = frozenset(c for c, p in section.policies.items() if p is not None)
        self.entries: dict[str, list[Compiled | _Lazy]] = {}

    def rules(self, chain: str) -> list[Compiled | _Lazy]:
        entries = self.entries.get(chain)
        if entries is None:
            entries = [_Lazy(text) for text in self.lines[chain]]
            self.entries[chain] = entries
        return entries

    def compile(self, chain: str, idx: int) -> Compiled:
        entries = self.rules(chain)
        entry = entries[idx]
        if isinstance(entry, Compiled):
            return entry
        rule = parse_rule(entry.text, idx + 1) or Rule(chain, idx + 1, entry.text, (Match("?"),))
        compiled = compile_rule(self.name, rule, self.names, self.builtin)
        entries[idx] = compiled
        return compiled


class Ruleset:
    """A node's iptables ruleset, ready for traversals.

    Splitting the dump into tables and chains happens here; a chain's rules are parsed
    and compiled the first time a traversal enters it, so a 100,000-rule kube-proxy dump
    costs only the chains a packet actually crosses."""

    def __init__(
        self, found: list[Section], unparsed: tuple[str, ...] = (), truncated: bool = False
    ) -> None:
        self._tables: dict[str, _Table] = {}
        self.duplicated: set[str] = set()
        self.legacy_hidden = False
        self.incompatible: set[str] = set()
        self.unparsed = unparsed
        self.truncated = truncated
        for section in found:
            if section.name in self._tables:
                # Two sections for one table: iptables-legacy-save and iptables-nft-save
                # concatenated. Both sets of hooks run in the kernel; one list cannot say.
                self.duplicated.add(section.name)
                continue
            self._tables[section.name] = _Table(section)

    @classmethod
    def from_save(cls, data: bytes) -> Ruleset:
        found, unparsed, truncated = sections(data)
        ruleset = cls(found, tuple(unparsed), truncated)
        # iptables-nft-save's own warning: legacy (x_tables) rules are loaded as well; the
        # kernel runs both, and this dump shows only the nft ones.
        ruleset.legacy_hidden = _LEGACY_WARNING in data
        # iptables-nft-save prints this instead of a table holding nft rules it cannot
        # express (added with `nft` into iptables' own table): its rules are not shown.
        ruleset.incompatible = {
            m.group(1).decode(errors="replace") for m in _INCOMPATIBLE.finditer(data)
        }
        return ruleset

    @property
    def table_names(self) -> tuple[str, ...]:
        return tuple(self._tables)

    def policies(self, table: str) -> dict[str, str | None]:
        """Each chain of a table and its policy (None for a user chain)."""
        section = self._tables.get(table)
        return dict(section.policies) if section is not None else {}

    def lines(self, table: str, chain: str) -> tuple[str, ...]:
        """The `-A` lines of one chain as the dump holds them (none when it has no such
        chain): for readers that look for rules by shape, such as kube-proxy's Services."""
        section = self._tables.get(table)
        return tuple(section.lines.get(chain, ())) if section is not None else ()

    def traverse(
        self,
        table: str,
        chain: str,
        packet: Packet,
        *,
        local_addresses: frozenset[str] = frozenset(),
    ) -> Verdict:
        """What `chain` (a built-in chain) of `table` does with `packet`."""
        verdict = self._traverse(table, chain, packet, local_addresses)
        if self.legacy_hidden and verdict.verdict != "unknown":
            return replace(
                verdict,
                verdict="unknown",
                reason="iptables-legacy tables are loaded too and this dump does not show "
                f"them; its own rules say {verdict.verdict}: {verdict.reason}",
            )
        return verdict

    def _traverse(
        self, table: str, chain: str, packet: Packet, local_addresses: frozenset[str]
    ) -> Verdict:
        base = Verdict("unknown", table, chain, None, "", (chain,), mark=packet.mark)
        if table in self.incompatible:
            return replace(
                base,
                reason=f"iptables-save could not show the {table} table (it holds nft rules "
                "iptables cannot express): see `nft list ruleset`",
            )
        if table in self.duplicated:
            return replace(
                base,
                reason=f"the dump holds two *{table} sections (legacy and nft?): "
                "both run, which one decides is not known",
            )
        if table not in self._tables:
            return replace(
                base,
                verdict="accept",
                reason=f"the ruleset has no {table} table: nothing to do",
                decided_in=chain,
            )
        if not self._tables[table].committed:
            return replace(
                base,
                reason=f"the {table} table's dump ends without COMMIT (cut off): "
                "rules may be missing",
            )
        policy = self._tables[table].policies.get(chain, "")
        if policy is None or policy == "":
            what = "a user chain" if policy is None else "not a chain of this table"
            return replace(base, reason=f"{chain} is {what}; traversals start at a built-in chain")
        if table == "nat" and (packet.state or "").upper() != "NEW":
            return replace(
                base,
                verdict="accept",
                reason="nat rules see only a connection's first packet; conntrack applies "
                f"its translation to this {packet.state} one",
                decided_in=chain,
            )
        ctx = Ctx(packet, _local_ints(frozenset(local_addresses)))
        with paused_gc():  # a first traversal may compile thousands of rules
            root = self._run(self._tables[table], chain, policy, ctx, packet.mark)
        alternatives = decide(root)
        verdicts = [verdict_of(o, table, chain) for o in alternatives]
        if not verdicts:
            return replace(base, reason="the traversal came to no outcome")
        if len(verdicts) == 1:
            return verdicts[0]
        return combine(verdicts, root, table, chain)

    def _run(
        self,
        chains: _Table,
        start: str,
        policy: str,
        ctx: Ctx,
        mark: int | None,
    ) -> Node | Outcome:
        """The tree of forks the traversal went through, outcomes at its leaves."""
        stack = [_State([_Frame(start)], mark, (start,), None, ())]
        root: list[Node | Outcome] = []
        budget = [MAX_STEPS, MAX_FORKS]
        while stack:
            state = stack.pop()
            outcome = self._walk(state, chains, start, policy, ctx, stack, budget, root)
            attach(root, state.slot, outcome)
        return root[0]

    def _walk(
        self,
        st: _State,
        chains: _Table,
        start: str,
        policy: str,
        ctx: Ctx,
        stack: list[_State],
        budget: list[int],
        root: list[Node | Outcome],
    ) -> Outcome:
        def end(
            verdict: str,
            rule: str | None,
            reason: str,
            where: str | None,
            nat: tuple[str, ...] = (),
        ) -> Outcome:
            if st.notes and verdict != "unknown":
                reason = f"{reason} ({'; '.join(st.notes)})"
            return Outcome(verdict, rule, reason, where, st.path, nat, st.mark)

        def by_policy(why: str) -> Outcome:
            verdict = {"ACCEPT": "accept", "DROP": "drop"}.get(policy, "unknown")
            return end(
                verdict, f":{start} {policy}", f"{why}: policy {policy} of {start} decides", start
            )

        while True:
            frame = st.frames[-1]
            name = frame.chain
            rules = chains.rules(name)
            idx = frame.idx
            if idx >= len(rules):
                if len(st.frames) == 1:
                    return by_policy(f"no rule of {name} decided")
                st.frames.pop()
                continue
            frame.idx = idx + 1
            budget[0] -= 1
            if budget[0] < 0:
                return end(
                    "unknown",
                    None,
                    f"more than {MAX_STEPS} rule visits: the ruleset is too large "
                    "or forks too often to follow",
                    name,
                )
            c = rules[idx]
            if c.__class__ is _Lazy:
                dst = ctx.dst
                if c.mask is not None and dst is not None and (dst & c.mask) != c.net:
                    continue  # its -d does not match: no need to compile it
                c = chains.compile(name, idx)
            unknown_at = -1
            matched = True
            mark = st.mark
            for i, pred in enumerate(c.preds):
                answer = pred(ctx, mark)
                if answer is False:
                    matched = False
                    break
                if answer is None and unknown_at < 0:
                    unknown_at = i
            if not matched:
                continue
            action = c.action
            if action == CONTINUE:
                continue
            if action in (MARK, MARK_LOST):
                new = apply_mark(c.arg, st.mark) if action == MARK else None  # type: ignore[arg-type]
                # An unknown match on a MARK rule: the mark is one of two values, so it
                # becomes unknown; whatever later reads it says so.
                certain = unknown_at < 0 and (c.random is None or c.random >= 1.0)
                st.mark = new if certain or new == st.mark else None
                continue
            fork_random = c.random is not None and c.random < 1.0 and unknown_at < 0
            if c.random is not None and c.random <= 0.0:
                continue
            if unknown_at >= 0 or fork_random:
                budget[1] -= 1
                if budget[1] < 0:
                    return end(
                        "unknown",
                        c.rule.text,
                        f"more than {MAX_FORKS} branches "
                        "(random choices or unmodelled matches) to follow",
                        name,
                    )
                why = "-m statistic --mode random" if fork_random else c.whys[unknown_at]
                node = Node(Fork(c.rule.text, c.rule.chain, why, fork_random))
                attach(root, st.slot, node)
                other = st.copy()
                other.slot = (node, False)
                stack.append(other)
                st.slot = (node, True)
            if c.limit:
                st.notes = (
                    *st.notes,
                    f"-m limit of rule {c.rule.number} of {c.rule.chain} taken as under its rate",
                )
            what = f"rule {c.rule.number} of {c.rule.chain}"
            if action == ACCEPT:
                return end("accept", c.rule.text, f"ACCEPT {what} matched", c.rule.chain)
            if action == DROP:
                word = c.rule.target or "DROP"
                extra = " (a drop for the trace)" if word == "REJECT" else ""
                return end("drop", c.rule.text, f"{word} {what} matched{extra}", c.rule.chain)
            if action == NAT:
                return end(
                    "accept",
                    c.rule.text,
                    f"{c.rule.target} {what} matched: {c.arg}",
                    c.rule.chain,
                    (str(c.arg),),
                )
            if action == UNKNOWN:
                return end("unknown", c.rule.text, str(c.arg), c.rule.chain)
            if action == RETURN:
                if len(st.frames) == 1:
                    return by_policy(f"RETURN {what} ends the built-in chain")
                st.frames.pop()
                continue
            target = str(c.arg)
            if any(target == f.chain or target in f.gone for f in st.frames):
                loop = _loop_text(st.frames, target)
                return end(
                    "unknown",
                    c.rule.text,
                    f"jump loop: {loop} (iptables would refuse this ruleset)",
                    c.rule.chain,
                )
            st.path = (*st.path, target)
            if action == JUMP:
                if len(st.frames) >= MAX_DEPTH:
                    return end(
                        "unknown",
                        c.rule.text,
                        f"chains nest deeper than {MAX_DEPTH} jumps",
                        c.rule.chain,
                    )
                st.frames.append(_Frame(target))
            else:  # -g: this frame continues in the target; RETURN goes to the caller's caller
                frame.gone = (*frame.gone, frame.chain)
                frame.chain = target
                frame.idx = 0


def _loop_text(frames: list[_Frame], target: str) -> str:
    chain: list[str] = []
    for f in frames:
        chain.extend(f.gone)
        chain.append(f.chain)
    start = chain.index(target) if target in chain else 0
    return " -> ".join([*chain[start:], target])
