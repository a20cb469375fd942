"""Regenerate the sample bundles from the lab (run as root: `python samples/regenerate.py`).

Each sample is a real collection of a 3-node, 2-pods-per-node lab: one healthy, and one
per fault of `needle lab fault`, with a short capture while pods ping across nodes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from needle.collector.collect import CollectOptions, collect
from needle.collector.progress import Progress
from needle.collector.transports.netns import NetnsTarget
from needle.lab import api
from needle.lab.faults import CATALOGUE

HERE = Path(__file__).resolve().parent


def traffic(state: api.LabState) -> list[subprocess.Popen[bytes]]:
    """Pod-to-pod pings across nodes (lab addresses only) during the capture window."""
    pingers = []
    for index, node in enumerate(state.nodes):
        target = state.nodes[(index + 1) % len(state.nodes)].pods[0]
        pingers.append(
            subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    node.pods[0].netns,
                    "ping",
                    "-q",
                    "-c",
                    "15",
                    "-i",
                    "0.1",
                    "-s",
                    "1200",
                    target.ip,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    return pingers


def sample(name: str, fault: str | None, output: Path) -> None:
    lab_name = f"ndlsample-{os.getpid()}"
    state = api.up(name=lab_name, nodes=3, pods=2)
    try:
        if fault is not None:
            api.fault(lab_name, fault)
            state = api.status(lab_name)
        pingers = traffic(state)
        options = CollectOptions(
            output=output,
            kube_dir=Path(state.kube_dir),
            targets=[NetnsTarget(netns=n.netns, node=n.name) for n in state.nodes],
            capture_seconds=1,
            max_packets=200,
            command=[
                "needle",
                "collect",
                "-o",
                output.name,
                "--kube-dir",
                "KUBE_DIR",
                *[arg for pair in state.netns_args() for arg in ("--netns", pair)],
            ],
        )
        with Progress(live=False) as progress:
            collect(options, progress)
        for pinger in pingers:
            pinger.kill()
            pinger.wait()
        print(f"{name}: {output.stat().st_size / 1024:.0f} KiB")
    finally:
        api.down(lab_name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", help="regenerate only this sample (healthy or a fault name)")
    args = parser.parse_args()
    scenarios: list[tuple[str, str | None]] = [("healthy", None)]
    scenarios += [(fault, fault) for fault in CATALOGUE]
    for name, fault in scenarios:
        if args.only and args.only != name:
            continue
        sample(name, fault, HERE / f"lab-{name}.tar.gz")
    return 0


if __name__ == "__main__":
    sys.exit(main())
