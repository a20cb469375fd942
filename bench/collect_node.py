"""Benchmark: collect one lab node with 50 pods through the netns transport.

Targets (issue #4): under 3 s plus the capture window; the node's part of the bundle
without pcaps under 1 MB compressed. Run as root: `python bench/collect_node.py`.
Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import statistics
import tarfile
import tempfile
import time
from pathlib import Path

from needle.collector.collect import CollectOptions, collect
from needle.collector.progress import Progress
from needle.collector.transports.netns import NetnsTarget
from needle.lab import api


def node_part_gzip_bytes(bundle: Path, node: str) -> tuple[int, int]:
    """Compressed and raw size of nodes/<node>/ without captures, packed alone."""
    raw = 0
    buffer = io.BytesIO()
    with tarfile.open(bundle) as source, tarfile.open(fileobj=buffer, mode="w") as part:
        for member in source.getmembers():
            if member.name.startswith(f"nodes/{node}/") and "/captures/" not in member.name:
                raw += member.size
                part.addfile(member, source.extractfile(member))
    return len(gzip.compress(buffer.getvalue())), raw


def run_once(state: api.LabState, workdir: Path, capture_seconds: int) -> tuple[float, Path]:
    node = state.nodes[0]
    output = workdir / f"bench-{capture_seconds}-{time.monotonic_ns()}.tar.gz"
    options = CollectOptions(
        output=output, targets=[NetnsTarget(node.netns, node.name)], capture_seconds=capture_seconds
    )
    started = time.perf_counter()
    with Progress(live=False, stream=open(os.devnull, "w")) as progress:  # noqa: PTH123
        collect(options, progress)
    return time.perf_counter() - started, output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pods", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--capture-seconds", type=int, default=3)
    args = parser.parse_args()
    name = f"ndlbench-{os.getpid()}"
    state = api.up(name=name, nodes=1, pods=args.pods)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            times = []
            for _ in range(args.runs):
                took, output = run_once(state, workdir, 0)
                times.append(took)
            compressed, raw = node_part_gzip_bytes(output, state.nodes[0].name)
            with_capture, capture_output = run_once(state, workdir, args.capture_seconds)
            print(f"node with {args.pods} pods, netns transport, {os.cpu_count()} cores")
            print(
                f"  no capture: median {statistics.median(times):.2f} s, "
                f"min {min(times):.2f} s, max {max(times):.2f} s over {args.runs} runs"
            )
            print(
                f"  with a {args.capture_seconds} s capture window: {with_capture:.2f} s "
                f"({with_capture - args.capture_seconds:.2f} s beyond the window)"
            )
            print(
                f"  node part without pcaps: {compressed / 1024:.0f} KiB gzip "
                f"({raw / 1024:.0f} KiB raw)"
            )
            print(f"  whole bundle with captures: {capture_output.stat().st_size / 1024:.0f} KiB")
    finally:
        api.down(name)


if __name__ == "__main__":
    main()
