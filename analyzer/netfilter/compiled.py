"""A rule compiled for traversals: its match predicates and what its target does."""

from __future__ import annotations

from dataclasses import dataclass

from needle.analyzer.netfilter.matches import FULL, Pred, compile_match, u32, value_mask
from needle.analyzer.netfilter.rules import Option, Rule

# What a compiled rule does when it matches.
CONTINUE, ACCEPT, DROP, RETURN, JUMP, GOTO, NAT, MARK, MARK_LOST, UNKNOWN = range(10)
_INERT_TARGETS = frozenset(
    {
        "LOG", "NFLOG", "ULOG", "TRACE", "AUDIT", "TCPMSS", "TOS", "DSCP", "TTL", "HL",
        "CLASSIFY", "CHECKSUM", "SECMARK", "CONNSECMARK", "NOTRACK", "CT", "IDLETIMER",
        "LED", "RATEEST", "TEE", "ECN",
    }
)  # fmt: skip
_NAT_TARGETS = frozenset({"DNAT", "SNAT", "MASQUERADE", "REDIRECT", "NETMAP"})


@dataclass(slots=True)
class Compiled:
    """One rule ready to be tried: its predicates and its `action` (with `arg`)."""

    rule: Rule
    preds: tuple[Pred, ...]
    whys: tuple[str, ...]  # per predicate: the match's text, for an unknown answer
    random: float | None  # -m statistic --mode random --probability
    limit: bool  # -m limit: treated as matching (under its rate), said in the reason
    action: int
    arg: object = None


def _nat_text(target: str, options: tuple[Option, ...]) -> str:
    opts = {o.name: " ".join(o.args) for o in options}
    if target == "DNAT":
        dest = " ".join(" ".join(o.args) for o in options if o.name == "to-destination")
        return f"DNAT {dest}".rstrip()
    if target == "SNAT":
        return (
            f"SNAT {' '.join(' '.join(o.args) for o in options if o.name == 'to-source')}".rstrip()
        )
    if target == "REDIRECT":
        return f"REDIRECT {opts['to-ports']}" if "to-ports" in opts else "REDIRECT"
    if target == "NETMAP":
        return f"NETMAP {opts.get('to', '')}".rstrip()
    return f"MASQUERADE {opts['to-ports']}" if "to-ports" in opts else "MASQUERADE"


def _mark_action(options: tuple[Option, ...]) -> tuple[str, int, int] | None:
    for option in options:
        arg = option.args[0] if option.args else ""
        if option.name in ("set-mark", "set-xmark"):
            vm = value_mask(arg)
            if vm is None:
                return None
            return ("set" if option.name == "set-mark" else "xset", vm[0], vm[1])
        if option.name in ("or-mark", "and-mark", "xor-mark"):
            v = u32(arg)
            return None if v is None else (option.name[:-5], v, 0)
    return None


def apply_mark(op: tuple[str, int, int], mark: int | None) -> int | None:
    """The mark after a MARK rule's `op` (None: not known)."""
    kind, value, mask = op
    if kind in ("set", "xset"):
        if mark is None:
            return value if mask == FULL else None
        kept = mark & ~mask & FULL
        return (kept | value) if kind == "set" else (kept ^ value)
    if mark is None:
        return 0 if kind == "and" and value == 0 else None
    if kind == "or":
        return mark | value
    if kind == "and":
        return mark & value
    return mark ^ value


def compile_rule(
    table: str, rule: Rule, chain_names: frozenset[str], builtin: frozenset[str]
) -> Compiled:
    preds: list[Pred] = []
    whys: list[str] = []
    random: float | None = None
    limit = False
    for match in rule.matches:
        p, lim = compile_match(match, preds, whys)
        random = p if p is not None else random
        limit = limit or lim
    target = rule.target
    action, arg = CONTINUE, None
    if target is None or target in _INERT_TARGETS:
        action = CONTINUE
    elif rule.goto or (target in chain_names and target not in builtin):
        if target in chain_names and target not in builtin:
            action, arg = (GOTO if rule.goto else JUMP), target
        else:
            action, arg = (
                UNKNOWN,
                f"rule {rule.number} of {rule.chain} goes to {target}, "
                f"not a chain of table {table}",
            )
    elif target == "ACCEPT":
        action = ACCEPT
    elif target in ("DROP", "REJECT"):
        action = DROP
    elif target == "RETURN":
        action = RETURN
    elif target in _NAT_TARGETS and table == "nat":
        action, arg = NAT, _nat_text(target, rule.target_options)
    elif target == "MARK":
        op = _mark_action(rule.target_options)
        action, arg = (MARK, op) if op else (MARK_LOST, None)
    elif target == "CONNMARK":
        restores = any(o.name == "restore-mark" for o in rule.target_options)
        action = MARK_LOST if restores else CONTINUE
    else:
        action, arg = (
            UNKNOWN,
            f"target {target} of rule {rule.number} of {rule.chain} is not modelled",
        )
    return Compiled(rule, tuple(preds), tuple(whys), random, limit, action, arg)
