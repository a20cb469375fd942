"""The node-pair grid the HTML report draws: judging by class marks every cell as
walking every pair does (on every sample), and a fault on one node shows as its row and
column, not as the whole cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
from needle.analyzer.bundle import open_bundle
from needle.analyzer.model import build_model
from needle.analyzer.reach.exhaustive import judge_every_pair
from needle.analyzer.reach.facts import collect_facts
from needle.analyzer.reach.grid import DELIVERED, FIRST_OUTCOME, NO_PAIRS, Grid
from needle.analyzer.reach.judge import judge

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def verdicts(grid: Grid) -> dict[tuple[str, str], str]:
    shown = {}
    for row, source in enumerate(grid.names):
        for column, code in enumerate(grid.row(row)):
            if code >= FIRST_OUTCOME:
                word = grid.outcome(code).verdict
            else:
                word = {NO_PAIRS: "none", DELIVERED: "delivered"}.get(code, "not collected")
            shown[(source, grid.names[column])] = word
    return shown


def grids(sample: str) -> tuple[Grid, Grid]:
    with open_bundle(SAMPLES / sample) as bundle:
        model = build_model(bundle)
        by_class = Grid(model)
        judge(model, collect_facts(model), grid=by_class)
    with open_bundle(SAMPLES / sample) as bundle:
        model = build_model(bundle)
        every = Grid(model)
        judge_every_pair(model, every)
    return by_class, every


@pytest.mark.parametrize("sample", sorted(p.name for p in SAMPLES.glob("*.tar.gz")))
def test_classes_mark_the_cells_every_pair_marks(sample):
    by_class, every = grids(sample)
    assert verdicts(by_class) == verdicts(every)


def test_healthy_is_delivered_everywhere():
    by_class, _ = grids("lab-healthy.tar.gz")
    assert set(verdicts(by_class).values()) == {"delivered"}


def test_a_fault_on_one_node_stays_in_its_row_and_column():
    by_class, _ = grids("lab-vxlan-local-gone.tar.gz")
    shown = verdicts(by_class)
    broken = {cell for cell, word in shown.items() if word == "dropped"}
    faulty = "lab-node-1"  # its underlay address changed under flanneld
    others = [name for name in by_class.names if name != faulty]
    # both ways: it cannot send from the address it lost, nor take what peers send there
    assert broken == {(faulty, o) for o in others} | {(o, faulty) for o in others}
    assert all(word == "delivered" for cell, word in shown.items() if faulty not in cell)
    # the cells name the walk that stands for them, with its drop
    outcomes = [by_class.outcome(code) for code in set(by_class.cells) if code >= FIRST_OUTCOME]
    assert outcomes
    assert all(o.path.failing.node == faulty for o in outcomes)
