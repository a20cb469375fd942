"""The node-pair grid as the page draws it: runs of alike cells in each row (a healthy
row of 1,000 cells is one rectangle), each broken run linked to the walk behind it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from needle.analyzer.reach.grid import DELIVERED, FIRST_OUTCOME, NO_PAIRS, NOT_COLLECTED
from needle.analyzer.report.html.views import FindingView, Mark, TraceView
from needle.analyzer.rules.engine import Drawing

# below this many nodes every cell is its own rectangle, with the names along the edges
LABELLED_UP_TO = 40


@dataclass
class Run:
    row: int
    start: int
    length: int
    verdict: str  # delivered, dropped, unknown, none, not-collected
    anchor: str | None  # the walk's section, for a broken run
    title: str


@dataclass
class ProbeMark:
    """What the probes from one node to another saw, drawn in their cell."""

    row: int
    column: int
    verdict: str  # passed, failed (any probe failed or lost packets), unknown
    title: str


@dataclass
class MatrixView:
    names: list[str]
    cell: int  # pixels a side
    labelled: bool
    runs: list[Run] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # cells by verdict
    probes: list[ProbeMark] = field(default_factory=list)
    probe_counts: dict[str, int] = field(default_factory=dict)  # node pairs by verdict

    @property
    def side(self) -> int:
        return self.cell * len(self.names)


_PLAIN = {NO_PAIRS: "none", DELIVERED: "delivered", NOT_COLLECTED: "not-collected"}
_SAID = {
    "none": "no pairs (no pods to reach)",
    "delivered": "delivered",
    "not-collected": "not checked: a node the bundle did not collect",
}


def trace_views(drawing: Drawing | None, view_of: dict[int, FindingView]) -> list[TraceView]:
    """One section per outcome of the grid: the walk that stands for its cells.
    `view_of`: each Finding's view, by id() (the findings a cause names link to them)."""
    if drawing is None:
        return []
    grid = drawing.grid
    cells: dict[int, int] = {}
    for code in grid.cells:
        if code >= FIRST_OUTCOME:
            cells[code] = cells.get(code, 0) + 1
    views = []
    for number, outcome in enumerate(grid.outcomes):
        cause = drawing.reach.causes.get(outcome.key) if outcome.verdict == "dropped" else None
        marks = []
        for finding in cause.findings if cause is not None else ():
            view = view_of.get(id(finding))
            if view is not None:
                marks.append(Mark(view.anchor, view.severity, view.title))
        path = outcome.path
        failing = path.failing
        view = TraceView(
            f"t-{number}",
            outcome.verdict,
            outcome.source,
            outcome.target,
            outcome.size,
            [hop.to_json() for hop in path.hops],
            marks,
            cells.get(FIRST_OUTCOME + number, 0),
            {failing.node} if failing is not None else set(),
        )
        views.append(view)
    return views


def _cell_size(count: int) -> int:
    if count <= LABELLED_UP_TO:
        return 18
    return max(2, min(12, 900 // max(count, 1)))


def matrix_view(
    drawing: Drawing, traces: list[TraceView], replay: tuple[str, dict[str, str]] | None = None
) -> MatrixView:
    """The grid's runs; with `replay` (the bundle's path, and a pod of each node), a
    delivered cell says the `needle trace` that shows its hops."""
    grid = drawing.grid
    names = grid.names
    labelled = len(names) <= LABELLED_UP_TO
    view = MatrixView(names, _cell_size(len(names)), labelled)

    def verdict(code: int) -> tuple[str, str | None]:
        if code >= FIRST_OUTCOME:
            return grid.outcome(code).verdict, traces[code - FIRST_OUTCOME].anchor
        return _PLAIN[code], None

    for row, source in enumerate(names):
        cells = grid.row(row)
        start = 0
        while start < len(cells):
            code = cells[start]
            end = start + 1
            if not labelled:
                while end < len(cells) and cells[end] == code:
                    end += 1
            word, anchor = verdict(code)
            view.counts[word] = view.counts.get(word, 0) + (end - start)
            targets = names[start] if end - start == 1 else f"{names[start]} … {names[end - 1]}"
            said = _SAID.get(word)
            if said is None:
                trace = traces[code - FIRST_OUTCOME]
                said = f"{word} at {_failing(trace)}"
            elif word == "delivered" and replay is not None and end - start == 1:
                path, pod_of = replay
                ends = (pod_of.get(source), pod_of.get(names[start]))
                if ends[0] and ends[1] and ends[0] != ends[1]:
                    said += f"; its hops: needle trace {path} {ends[0]} {ends[1]}"
            view.runs.append(
                Run(row, start, end - start, word, anchor, f"{source} → {targets}: {said}")
            )
            start = end
    view.probes = probe_marks(drawing.probes, grid.index)
    for mark in view.probes:
        view.probe_counts[mark.verdict] = view.probe_counts.get(mark.verdict, 0) + 1
    return view


# how a node pair's probes are judged, worst first
_PROBE_RANK = {"failed": 0, "lossy": 0, "unknown": 1, "passed": 2}
MAX_PROBE_LINES = 8


def probe_marks(probes: list[Any], index: dict[str, int]) -> list[ProbeMark]:
    """One mark per node pair the probes went between (pods' and nodes' pings, VXLAN
    datagrams): failed when any failed or lost packets, passed when all passed."""
    pairs: dict[tuple[int, int], list[Any]] = {}
    for probe in probes:
        row, column = index.get(probe.node), index.get(probe.peer_node or "")
        if row is None or column is None or probe.outcome in ("not-run", "sent"):
            continue
        pairs.setdefault((row, column), []).append(probe)
    marks = []
    for (row, column), found in sorted(pairs.items()):
        judged = [probe for probe in found if not probe.refused_as_planned] or found[:1]
        worst = min(judged, key=lambda probe: _PROBE_RANK.get(probe.outcome, 1)).outcome
        if all(probe.refused_as_planned for probe in judged):
            worst = "passed"
        verdict = {"lossy": "failed"}.get(worst, worst if worst in _PROBE_RANK else "unknown")
        lines = [f"{probe.describe()}" for probe in found[:MAX_PROBE_LINES]]
        if len(found) > MAX_PROBE_LINES:
            lines.append(f"and {len(found) - MAX_PROBE_LINES} more")
        marks.append(ProbeMark(row, column, verdict, "probes: " + "; ".join(lines)))
    return marks


def _failing(trace: TraceView) -> str:
    hop = next((hop for hop in trace.hops if hop["verdict"] != "pass"), None)
    if hop is None:
        return "an unknown hop"
    where = f" {hop['interface']}" if hop.get("interface") else ""
    return f"{hop['node']} {hop['step']}{where}: {hop['detail']}"
