"""Benchmark: `needle collect` from a live cluster of N mocked nodes, each of whose node
script takes ~1 s (the mock API server streams a canned node response over 1 s).
The server frames REST answers as kube-apiserver does, their tails 10 ms late as across
a network (--tail), and can throttle or fail a share of them (--chaos).

Runs the mock API server (tests/cluster/mock_apiserver.py, 127.0.0.1 only) and needle
as two separate processes, and prints wall time and needle's peak RSS per node count:
time should grow as N / concurrency, memory should not grow with N.

    .venv/bin/python bench/cluster_collect.py [--nodes 50,100,200] [--concurrency 10]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MOCK = REPO / "tests" / "cluster" / "mock_apiserver.py"


def run_once(
    nodes: int, concurrency: int, seconds: float, workdir: Path, tail: float, chaos: float
) -> dict[str, float]:
    kubeconfig = workdir / f"kubeconfig-{nodes}"
    output = workdir / f"bundle-{nodes}.tar.gz"
    mock = subprocess.Popen(
        [
            sys.executable,
            str(MOCK),
            "--canned-nodes",
            str(nodes),
            "--canned-seconds",
            str(seconds),
            "--kubeconfig",
            str(kubeconfig),
            "--body-delay",
            str(tail),
            "--chaos",
            str(chaos),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert mock.stdout is not None and mock.stdin is not None
        ready = mock.stdout.readline()
        if not ready.startswith("READY"):
            raise SystemExit(f"the mock API server did not start: {ready!r}")
        started = time.monotonic()
        needle = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "needle",
                "collect",
                "--kubeconfig",
                str(kubeconfig),
                "-o",
                str(output),
                "--no-capture",
                "--concurrency",
                str(concurrency),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        _pid, status, usage = os.wait4(needle.pid, 0)
        elapsed = time.monotonic() - started
        needle.returncode = os.waitstatus_to_exitcode(status)
        err = needle.stderr.read().decode() if needle.stderr else ""
        if needle.returncode != 0:
            raise SystemExit(f"needle exited {needle.returncode}: {err.strip()[-500:]}")
        mock.stdin.close()
        summary = mock.stdout.readline().split()
        pods_left = int(summary[1]) if summary[:1] == ["PODS-LEFT"] else -1
    finally:
        mock.terminate()
        mock.wait(10)
    return {
        "nodes": nodes,
        "seconds": elapsed,
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "bundle_kib": output.stat().st_size / 1024,
        "pods_left": pods_left,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="50,100,200")
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--node-seconds", type=float, default=1.0)
    parser.add_argument(
        "--tail",
        type=float,
        default=0.01,
        help="seconds each REST answer's last bytes come late (a network in between)",
    )
    parser.add_argument(
        "--chaos", type=float, default=0.0, help="share of REST requests answered 429/503/500"
    )
    args = parser.parse_args()
    counts = [int(n) for n in args.nodes.split(",")]
    print(
        f"{'nodes':>6} {'seconds':>8} {'ideal':>6} {'peak RSS MiB':>13} "
        f"{'bundle KiB':>11} {'pods left':>9}"
    )
    with tempfile.TemporaryDirectory(prefix="needle-bench-") as tmp:
        for count in counts:
            row = run_once(
                count, args.concurrency, args.node_seconds, Path(tmp), args.tail, args.chaos
            )
            ideal = count * args.node_seconds / args.concurrency
            print(
                f"{row['nodes']:>6} {row['seconds']:>8.1f} {ideal:>6.0f} "
                f"{row['peak_rss_mib']:>13.1f} {row['bundle_kib']:>11.0f} "
                f"{row['pods_left']:>9}",
                flush=True,
            )


if __name__ == "__main__":
    main()
