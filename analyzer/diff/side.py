"""One side of a diff: open a bundle, model it, judge it, flatten it into facts.

`needle diff` runs the two sides in two processes at once (the machine has 2 cores and
each side of a 1,000-node diff is ~20 s of parsing); a side returns only what the
comparison needs: the bundle summary, the findings, namespace labels and the snapshot.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from analyzer.bundle import open_bundle
from analyzer.diff.snapshot import Aliases, Snapshot, namespace_labels, take_snapshot
from analyzer.model import build_model
from analyzer.rules.catalog import load_catalog
from analyzer.rules.engine import Finding, evaluate


@dataclass
class Side:
    summary: dict[str, object]
    findings: list[Finding]
    labels: Aliases
    snapshot: Snapshot
    nodes: set[str]


def take_side(path: Path, rule_paths: list[Path]) -> Side:
    catalog = load_catalog(rule_paths)
    with open_bundle(path) as bundle:
        model = build_model(bundle)
        summary = bundle.summary()
        outcome = evaluate(model, catalog.rules.values())
        # inside: pods' routes are read from the bundle as the snapshot takes them
        snapshot = take_snapshot(model)
    return Side(summary, outcome.findings, namespace_labels(model), snapshot, set(model.nodes))


def take_sides(old: Path, new: Path, rule_paths: list[Path]) -> tuple[Side, Side]:
    """Both sides, in two processes when the machine has two cores."""
    if (multiprocessing.cpu_count() or 1) < 2:
        return take_side(old, rule_paths), take_side(new, rule_paths)
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        future_old = pool.submit(take_side, old, rule_paths)
        future_new = pool.submit(take_side, new, rule_paths)
        return future_old.result(), future_new.result()
