"""Each ordered pair of nodes and what became of the pairs between them: the matrix the
HTML report draws.

A cell (A, B) stands for every pair whose source is on node A (a pod, or A itself) and
whose destination is a pod on node B; (A, A) for pods of one node to each other and to
the Services they back. Cells hold small codes in one array (1,000 nodes: 2 MB): only
the cells a walk found broken are written, every other cell that has pairs is delivered.
A cell keeps the worst it was told (dropped over unknown), first come first kept.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from needle.analyzer.model.entities import Model

NO_PAIRS = 0
DELIVERED = 1
NOT_COLLECTED = 2  # an end whose host namespace the bundle lacks: nothing was walked
FIRST_OUTCOME = 3
# outcomes past this many share the last code's meaning ("dropped" or "unknown", no cause)
MAX_OUTCOMES = 60_000


@dataclass
class GridOutcome:
    """Why the pairs of some cells were not delivered: one cause (or unknown) and the walk
    that stands for them."""

    verdict: str  # "dropped" | "unknown"
    key: tuple[Any, ...]  # the cause's or the unknown's key in the Reachability
    path: Any  # trace.hops.Path: the walk that found it
    source: str  # the walk's ends, as the report names them
    target: str
    size: int


class Grid:
    def __init__(self, model: Model) -> None:
        self.names = sorted(model.nodes)
        self.index = {name: number for number, name in enumerate(self.names)}
        size = len(self.names)
        self.cells = array("H", bytes(2 * size * size))
        self.outcomes: list[GridOutcome] = []
        self._codes: dict[tuple[str, tuple[Any, ...]], int] = {}
        pods = {
            name: sum(
                1 for pod in model.pods_by_node.get(name, ()) if pod.ip and not pod.host_network
            )
            for name in self.names
        }
        collected = {name for name in self.names if model.nodes[name].host is not None}
        # a row is one of two templates (its source collected or not), written whole:
        # 10^6 cells set one by one took 0.26 s
        from_collected = array(
            "H",
            (
                (DELIVERED if target in collected else NOT_COLLECTED) if pods[target] else NO_PAIRS
                for target in self.names
            ),
        )
        from_missing = array(
            "H", (NOT_COLLECTED if code != NO_PAIRS else NO_PAIRS for code in from_collected)
        )
        for row, source in enumerate(self.names):
            base = row * size
            template = from_collected if source in collected else from_missing
            self.cells[base : base + size] = template
            # a pod is no pair with itself: one pod alone has no pair on its node
            if pods[source] < 2:
                self.cells[base + row] = NO_PAIRS

    def code(self, outcome: GridOutcome) -> int:
        """The code of `outcome`, kept the first time its cause is seen."""
        key = (outcome.verdict, outcome.key)
        found = self._codes.get(key)
        if found is None:
            if len(self.outcomes) >= MAX_OUTCOMES:
                return FIRST_OUTCOME + MAX_OUTCOMES - 1
            found = self._codes[key] = FIRST_OUTCOME + len(self.outcomes)
            self.outcomes.append(outcome)
        return found

    def known(self, verdict: str, key: tuple[Any, ...]) -> int | None:
        """The code of an outcome seen already, by its verdict and key."""
        return self._codes.get((verdict, key))

    def mark(self, cells: Iterable[tuple[str, str]], code: int) -> None:
        """Cells whose pairs (some of them) ended as `code` says."""
        size, index, codes, outcomes = len(self.names), self.index, self.cells, self.outcomes
        dropped = self.outcome(code).verdict == "dropped"
        # a class's cells come a source row at a time: its offset is looked up once a row
        # (10^6 cells where a whole cluster's pairs end alike)
        source_seen: str | None = None
        base = -1
        for source, target in cells:
            if source is not source_seen:
                source_seen = source
                row = index.get(source)
                base = -1 if row is None else row * size
            column = index.get(target)
            if base < 0 or column is None:
                continue
            at = base + column
            held = codes[at]
            if held < FIRST_OUTCOME or (
                dropped and outcomes[held - FIRST_OUTCOME].verdict != "dropped"
            ):
                codes[at] = code

    def mark_rows(self, rows: Iterable[tuple[str, Iterable[tuple[str, Any]]]], code: int) -> None:
        """As mark(), a source at a time: (source node, its destinations as (node, any));
        a class of a whole cluster's pairs marks 10^6 cells, each row's in a copy of
        the row."""
        size, index, codes, outcomes = len(self.names), self.index, self.cells, self.outcomes
        dropped = self.outcome(code).verdict == "dropped"
        for source, destinations in rows:
            row = index.get(source)
            if row is None:
                continue
            base = row * size
            segment = codes[base : base + size]
            for node, _ in destinations:
                column = index.get(node)
                if column is None:
                    continue
                held = segment[column]
                if held < FIRST_OUTCOME or (
                    dropped and outcomes[held - FIRST_OUTCOME].verdict != "dropped"
                ):
                    segment[column] = code
            codes[base : base + size] = segment

    def outcome(self, code: int) -> GridOutcome:
        return self.outcomes[code - FIRST_OUTCOME]

    def row(self, number: int) -> array:
        size = len(self.names)
        return self.cells[number * size : (number + 1) * size]
