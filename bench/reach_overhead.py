"""Benchmark: what walking every pair adds to `needle analyze` (issue #19: at most 30% in
time and memory on the 1,000-node synthetic bundle).

Runs analyze's own path (open, lazy model, rules in two forked shards, report) with and
without the reachability pass, alternating the two so the machine's drift falls on both
alike, each run in a fresh process. Time is wall seconds; memory the peak of the whole
process tree (summed PSS, see analyze_scale.run) and the largest process's RSS. Prints
numbers; asserts nothing.

    python bench/reach_overhead.py /tmp/needle-bench/n1000 --runs 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from analyze_scale import run

ANALYZE = """
import sys
from pathlib import Path
from needle.analyzer.cli import _open_model
from needle.analyzer.report.document import report_document
from needle.analyzer.rules.catalog import load_catalog
from needle.analyzer.rules.engine import evaluate
reach = sys.argv[2] == "on"
catalog = load_catalog([])
bundle, model = _open_model(Path(sys.argv[1]), pod_details=reach, lazy_nodes=True, backend=None)
with bundle:
    about = bundle.summary()
    bundle.drop_manifest()
    outcome = evaluate(model, catalog.rules.values(), reachability=reach)
document = report_document(outcome, about)
print(len(document["findings"]), (document["coverage"]["reachability"] or {}).get("walks", 0))
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[tuple[float, float, float]]] = {"off": [], "on": []}
    for number in range(args.runs):
        for mode in ("off", "on"):
            took, tree_mib, largest_mib, out = run(
                [sys.executable, "-c", ANALYZE, str(args.bundle), mode]
            )
            results[mode].append((took, tree_mib, largest_mib))
            print(
                f"run {number + 1} reachability {mode:>3}: {took:6.2f} s, tree {tree_mib:6.0f} "
                f"MiB, largest {largest_mib:6.0f} MiB ({out.strip()})",
                flush=True,
            )
    for column, label in enumerate(("time", "tree memory", "largest process")):
        off = statistics.mean(r[column] for r in results["off"])
        on = statistics.mean(r[column] for r in results["on"])
        print(f"{label}: {off:.2f} -> {on:.2f} ({(on - off) / off * 100:+.1f}%)")


if __name__ == "__main__":
    main()
