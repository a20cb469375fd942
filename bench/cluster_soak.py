"""Soak: repeated `needle collect --kubeconfig` runs against the wire-faithful mock API
server (tests/cluster/mock_apiserver.py) over a real lab, with transient API trouble
injected at random, then runs interrupted at random points followed by `needle cleanup`.

Needs root (the lab is network namespaces). Everything it makes is named ndsoak-<pid>
and torn down at the end, also on failure.

    .venv/bin/python bench/cluster_soak.py [--runs 20] [--interrupted 10] [--chaos 0.1]

Prints one line per run (nodes ok, pods left, seconds, requests and how many were
spoiled) and exits 1 if any run lost a node or left a pod.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "cluster"))

from mock_apiserver import MockApiServer, MockNode, kubeconfig_text, read_kube_dir  # noqa: E402
from needle.lab import api as lab_api  # noqa: E402


def needle(*args: str) -> list[str]:
    return [sys.executable, "-m", "needle", *args]


def manifest_of(bundle: Path) -> dict[str, Any]:
    with tarfile.open(bundle) as tar:
        for member in tar:
            if member.name.endswith("manifest.json") and member.name.count("/") <= 1:
                extracted = tar.extractfile(member)
                assert extracted is not None
                return dict(json.loads(extracted.read()))
    raise SystemExit(f"{bundle} has no manifest")


def lab_nodes(state: Any) -> list[MockNode]:
    return [
        MockNode(node.name, netns=node.netns, pod_netns=[pod.netns for pod in node.pods])
        for node in state.nodes
    ]


def spoil(server: MockApiServer, rate: float, seed: int) -> None:
    """Transient trouble as a busy API server gives it: throttling (429, Retry-After 1),
    500/503, slow answers and slow tails, dropped connections."""
    server.chaos(
        rate=rate, seed=seed, statuses=(429, 503, 500), delay_s=0.3, body_delay_s=0.1, close=True
    )


def collect_runs(
    server: MockApiServer, kubeconfig: Path, workdir: Path, runs: int, rate: float
) -> list[str]:
    failures = []
    print(
        f"{'conc':>4} {'run':>3} {'nodes ok':>8} {'pods left':>9} {'seconds':>7} "
        f"{'requests':>8} {'spoiled':>7}"
    )
    for concurrency in (1, 10):
        for run in range(1, runs + 1):
            spoil(server, rate, concurrency * 1000 + run)
            before = len(server.requests)
            output = workdir / f"c{concurrency}-{run}.tar.gz"
            started = time.monotonic()
            result = subprocess.run(
                needle(
                    "collect",
                    "--kubeconfig",
                    str(kubeconfig),
                    "-o",
                    str(output),
                    "--no-capture",
                    "--concurrency",
                    str(concurrency),
                ),
                capture_output=True,
                text=True,
                check=False,
                timeout=300,
            )
            took = time.monotonic() - started
            server.chaos(rate=0.0, seed=0)
            requests = server.requests[before:]
            spoiled = sum(1 for r in requests if getattr(r, "fault", None))
            nodes = manifest_of(output)["nodes"] if output.exists() else []
            ok = sum(1 for n in nodes if n["status"] == "ok")
            left = len(server.pod_names())
            print(
                f"{concurrency:>4} {run:>3} {ok:>6}/{len(nodes)} {left:>9} {took:>7.1f} "
                f"{len(requests):>8} {spoiled:>7}",
                flush=True,
            )
            if result.returncode != 0 or ok != 3 or len(nodes) != 3 or left:
                failures.append(
                    f"concurrency {concurrency} run {run}: exit {result.returncode}, "
                    f"{ok}/{len(nodes)} nodes ok, {left} pods left: {result.stderr.strip()}"
                )
    return failures


def interrupted_runs(
    server: MockApiServer, kubeconfig: Path, workdir: Path, runs: int, rate: float
) -> list[str]:
    failures = []
    rng = random.Random(7)
    print(
        f"\n{'run':>3} {'signal':>7} {'after s':>7} {'pods then':>9} {'cleanup':>7} "
        f"{'pods left':>9}"
    )
    for run in range(1, runs + 1):
        spoil(server, rate, 5000 + run)
        signum = rng.choice([signal.SIGINT, signal.SIGKILL])
        after = rng.uniform(0.2, 4.0)
        output = workdir / f"i{run}.tar.gz"
        process = subprocess.Popen(
            needle(
                "collect",
                "--kubeconfig",
                str(kubeconfig),
                "-o",
                str(output),
                "--capture-seconds",
                "3",
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(after)
        process.send_signal(signum)
        try:
            process.wait(60)
        finally:
            process.kill()
        pods_then = len(server.pod_names())
        cleanup = subprocess.run(
            needle("cleanup", "--kubeconfig", str(kubeconfig)),
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        server.chaos(rate=0.0, seed=0)
        left = len(server.pod_names())
        print(
            f"{run:>3} {signal.Signals(signum).name:>7} {after:>7.2f} {pods_then:>9} "
            f"{cleanup.returncode:>7} {left:>9}",
            flush=True,
        )
        if cleanup.returncode != 0 or left:
            failures.append(
                f"interrupted run {run} ({signal.Signals(signum).name} after {after:.2f} s): "
                f"cleanup exit {cleanup.returncode}, {left} pods left: {cleanup.stderr.strip()}"
            )
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="collections per concurrency")
    parser.add_argument("--interrupted", type=int, default=10)
    parser.add_argument("--chaos", type=float, default=0.1, help="share of requests spoiled")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root: the lab is made of network namespaces")
    name = f"ndsoak-{os.getpid()}"
    state = lab_api.up(name=name, nodes=3, pods=2)
    # every answer's tail 10 ms late, as across a network (tests/cluster/conftest.py)
    server = MockApiServer(lab_nodes(state), read_kube_dir(Path(state.kube_dir)), body_delay_s=0.01)
    try:
        url = server.start()
        with tempfile.TemporaryDirectory(prefix="needle-soak-") as tmp:
            workdir = Path(tmp)
            kubeconfig = workdir / "kubeconfig"
            kubeconfig.write_text(kubeconfig_text(url))
            failures = collect_runs(server, kubeconfig, workdir, args.runs, args.chaos)
            failures += interrupted_runs(server, kubeconfig, workdir, args.interrupted, args.chaos)
        print(f"\n{len(server.created_pods)} pods created, {len(server.pod_names())} left")
    finally:
        server.stop()
        lab_api.down(name)
    for failure in failures:
        print("FAILED", failure)
    raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    main()
