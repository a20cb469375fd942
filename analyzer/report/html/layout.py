"""Where each node goes in the drawing: layers top to bottom (pods inside their node's
box, the node with its overlay device, the underlay it hangs from), nodes in rows, a
row's underlay a bus, the buses joined by a trunk. Overlay paths are curves between
nodes' overlay ports; all of them for a few nodes, else only the ones a finding names."""

from __future__ import annotations

from dataclasses import dataclass, field

from needle.analyzer.report.html.views import Edge, Mark, NodeBox

COLUMNS = 6
BOX_WIDTH = 270
GAP = 30  # between boxes in a row
HEADER = 100  # a node's name and its five facts
CHIP = 17  # a pod's line
GROUP_HEIGHT = 72
EDGE_ROOM = 72  # below a row: overlay curves, then the underlay bus
ROW_GAP = 40
MARGIN = 20
# up to this many nodes, every overlay path is drawn (a full mesh); above, the marked ones
MESH_UP_TO = 8


@dataclass
class Placed:
    box: NodeBox
    x: int
    y: int
    width: int
    height: int
    chips: int  # pod lines drawn (with "+N more")

    @property
    def port(self) -> tuple[int, int]:
        """The overlay device: the bottom of the box, left of centre."""
        return self.x + self.width // 3, self.y + self.height

    @property
    def uplink(self) -> tuple[int, int]:
        """The underlay device: the bottom of the box, right of centre."""
        return self.x + 2 * self.width // 3, self.y + self.height


@dataclass
class Curve:
    a: str  # the two nodes
    b: str
    d: str  # the SVG path
    severity: str | None  # None: a healthy overlay path
    marks: list[Mark] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"overlay path {self.a} ↔ {self.b}"


@dataclass
class Layout:
    width: int
    height: int
    placed: list[Placed]
    buses: list[tuple[int, int, int]]  # (y, x from, x to)
    trunk: tuple[int, int, int] | None  # (x, y from, y to)
    curves: list[Curve]
    mesh: bool  # every overlay path is drawn


def _chips(box: NodeBox) -> int:
    return len(box.pods) + (1 if box.pod_count > len(box.pods) else 0)


def _curve(a: Placed, b: Placed, depth: int) -> str:
    (x1, y1), (x2, y2) = a.port, b.port
    if y1 == y2:  # same row: dip below the boxes
        return f"M{x1},{y1} Q{(x1 + x2) // 2},{y1 + depth} {x2},{y2}"
    return f"M{x1},{y1} C{x1},{y1 + depth} {x2},{y2 + depth} {x2},{y2}"


def lay_out(boxes: list[NodeBox], edges: list[Edge]) -> Layout:
    columns = max(1, min(COLUMNS, len(boxes)))
    placed: list[Placed] = []
    buses: list[tuple[int, int, int]] = []
    y = MARGIN
    for start in range(0, len(boxes), columns):
        row = boxes[start : start + columns]
        heights = [
            GROUP_HEIGHT if box.members is not None else HEADER + CHIP * _chips(box) + 8
            for box in row
        ]
        tallest = max(heights)
        for column, box in enumerate(row):
            x = MARGIN * 2 + column * (BOX_WIDTH + GAP)
            placed.append(Placed(box, x, y, BOX_WIDTH, tallest, _chips(box)))
        bus_y = y + tallest + EDGE_ROOM
        buses.append((bus_y, MARGIN, MARGIN * 2 + len(row) * (BOX_WIDTH + GAP) - GAP))
        y = bus_y + ROW_GAP
    width = MARGIN * 3 + columns * (BOX_WIDTH + GAP)
    trunk = (MARGIN, buses[0][0], buses[-1][0]) if len(buses) > 1 else None
    by_name = {item.box.name: item for item in placed}
    curves: list[Curve] = []
    marked = {(edge.a, edge.b) for edge in edges}
    singles = [item for item in placed if item.box.members is None]
    mesh = len(singles) <= MESH_UP_TO
    if mesh:
        for number, a in enumerate(singles):
            for b in singles[number + 1 :]:
                if (a.box.name, b.box.name) not in marked:
                    curves.append(Curve(a.box.name, b.box.name, _curve(a, b, 28), None))
    for edge in edges:
        a, b = by_name.get(edge.a), by_name.get(edge.b)
        if a is None or b is None:
            continue
        severity = min((mark.severity for mark in edge.marks), key=_rank)
        curves.append(Curve(edge.a, edge.b, _curve(a, b, 52), severity, edge.marks))
    return Layout(width, y + MARGIN, placed, buses, trunk, curves, mesh)


def _rank(severity: str) -> int:
    return ("error", "warning", "info").index(severity)
