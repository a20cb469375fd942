"""Rule results kept with the inputs they came from, for a diff's second snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from needle.analyzer.rules.facts import Collection, Fact

if TYPE_CHECKING:
    from needle.analyzer.rules.engine import RuleResult


@dataclass(frozen=True)
class RuleInputs:
    """Everything a rule that looks nothing up in the model reads."""

    for_each: str
    items: list[Fact]
    peers: list[Fact] | None  # the nodes, for pair rules
    lacking: list[str]
    had_source: bool
    netconf: Fact

    def same_as(self, other: RuleInputs) -> bool:
        # == on lists of flat dicts runs in C: 10^6 FDB facts compare in ~0.05 s, where
        # hashing them for a digest took 0.2 s
        return (
            self.for_each == other.for_each
            and self.lacking == other.lacking
            and self.had_source == other.had_source
            and self.netconf == other.netconf
            and (self.peers is other.peers or self.peers == other.peers)
            and (self.items is other.items or self.items == other.items)
        )


class ResultMemory:
    """Rule results with the inputs they came from, shared by the engines of a diff's
    two snapshots: where a rule's inputs are the same in both, the second snapshot
    reuses the first one's result instead of checking 10^6 items again, and an entry
    collection built from the same parses is taken as it is, not built again. (It keeps
    the first snapshot's collections alive until the second has been checked.)"""

    def __init__(self) -> None:
        self._results: dict[str, tuple[RuleInputs, RuleResult]] = {}
        self._collections: dict[str, tuple[object, Collection]] = {}

    def collection(self, name: str, inputs: object) -> Collection | None:
        """The collection kept for the same inputs (facts.COLLECTION_INPUTS), if any:
        the very same object, so the rules' inputs then compare by identity."""
        known = self._collections.get(name)
        return known[1] if known is not None and known[0] == inputs else None

    def keep_collection(self, name: str, inputs: object, collection: Collection) -> None:
        self._collections[name] = (inputs, collection)

    def recall(self, rule: str, inputs: RuleInputs) -> RuleResult | None:
        known = self._results.get(rule)
        if known is None or not known[0].same_as(inputs):
            return None
        return known[1]

    def keep(self, rule: str, inputs: RuleInputs, result: RuleResult) -> None:
        self._results[rule] = (inputs, result)
