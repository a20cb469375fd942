"""The records `iptables-save` output parses into: tables, chains, rules, matches.

These are plain data, the shape of the text; what they mean for a packet is the job of
`matches.py` (one match) and `evaluate.py` (a traversal). Every match keeps its own text,
so a match the evaluator does not model can still be named exactly in a verdict's reason.
"""

from __future__ import annotations

from dataclasses import dataclass

# Built-in chains per table (the kernel's hooks); a chain iptables-save prints with a
# policy is built in, these are for readers and tests.
BUILTIN_CHAINS: dict[str, tuple[str, ...]] = {
    "raw": ("PREROUTING", "OUTPUT"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "security": ("INPUT", "FORWARD", "OUTPUT"),
}


@dataclass(frozen=True, slots=True)
class Option:
    """One option of a match or target: ``--dport 80`` is ("dport", ("80",), False)."""

    name: str
    args: tuple[str, ...] = ()
    negated: bool = False


@dataclass(frozen=True, slots=True)
class Match:
    """One condition of a rule.

    `kind` is a basic match ("src", "dst", "in", "out", "proto", "fragment") or the module
    name of ``-m NAME`` ("tcp", "conntrack", "set", ...); "?" holds words the parser did
    not understand. `text` is the match as it appeared in the line, for reasons."""

    kind: str
    options: tuple[Option, ...] = ()
    negated: bool = False  # basic matches: the `!` before them
    value: str = ""  # basic matches: the address, interface or protocol
    text: str = ""


@dataclass(frozen=True, slots=True)
class Rule:
    """One ``-A CHAIN ...`` line."""

    chain: str
    number: int  # 1-based position in its chain, as `iptables -L --line-numbers` counts
    text: str  # the line as iptables-save printed it (without a `[p:b]` counter prefix)
    matches: tuple[Match, ...] = ()
    target: str | None = None  # None: no -j/-g (the rule only counts)
    goto: bool = False  # -g: RETURN from the target goes to the caller's caller
    target_options: tuple[Option, ...] = ()


@dataclass(frozen=True, slots=True)
class Chain:
    name: str
    policy: str | None  # "ACCEPT" / "DROP" for a built-in chain, None for a user chain
    rules: tuple[Rule, ...] = ()

    @property
    def builtin(self) -> bool:
        return self.policy is not None


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    chains: tuple[Chain, ...] = ()
    committed: bool = True  # False: the section ended without COMMIT (a cut-off dump)

    def chain(self, name: str) -> Chain | None:
        for chain in self.chains:
            if chain.name == name:
                return chain
        return None
