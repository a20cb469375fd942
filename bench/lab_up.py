"""Time `needle lab up` and `down` (a benchmark, not a test; needs root).

    .venv/bin/python bench/lab_up.py                 # 20 nodes x 20 pods and 3 x 2, 3 runs each
    .venv/bin/python bench/lab_up.py --sizes 20x20 --runs 5

Prints one line per size: best and median seconds for up and for down. The issue's target
is `up --nodes 20 --pods 20` in under 10 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from needle.lab import api  # after the path tweak, so the repo's lab is used


def measure(name: str, nodes: int, pods: int, runs: int) -> tuple[list[float], list[float]]:
    ups: list[float] = []
    downs: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        try:
            api.up(name=name, nodes=nodes, pods=pods)
            ups.append(time.perf_counter() - started)
        finally:
            started = time.perf_counter()
            api.down(name)
            downs.append(time.perf_counter() - started)
    return ups, downs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["20x20", "3x2"], help="NODESxPODS")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    name = f"ndlbench-{os.getpid()}"
    print(f"cpus={os.cpu_count()} runs={args.runs}")
    for size in args.sizes:
        nodes, pods = (int(part) for part in size.split("x"))
        ups, downs = measure(name, nodes, pods, args.runs)
        print(
            f"{nodes:>3} nodes x {pods:>3} pods ({1 + nodes + nodes * pods} netns): "
            f"up best {min(ups):.2f}s median {statistics.median(ups):.2f}s | "
            f"down best {min(downs):.2f}s median {statistics.median(downs):.2f}s"
        )


if __name__ == "__main__":
    main()
