"""A short soak over a real lab: collections at concurrency 1 and 10 while the API server
throttles, fails, slows and drops a share of requests, then a run killed mid-way and
`needle cleanup`. Every node collected, every pod deleted (bench/cluster_soak.py runs
the long version)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from needle.analyzer.bundle import open_bundle

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.tools("nsenter", "unshare")]


def needle(*args: str) -> list[str]:
    return [sys.executable, "-m", "needle", *args]


def spoil(server, seed: int) -> None:
    server.chaos(
        rate=0.15, seed=seed, statuses=(429, 503, 500), delay_s=0.3, body_delay_s=0.1, close=True
    )


def test_collections_under_api_trouble_lose_no_node_and_leave_no_pod(lab_cluster, tmp_path):
    state, server, kubeconfig = lab_cluster(3, 2)
    names = sorted(node.name for node in state.nodes)
    spoiled = 0
    for run, concurrency in enumerate((1, 10, 1, 10), start=1):
        spoil(server, seed=run)
        before = len(server.requests)
        output = tmp_path / f"run{run}.tar.gz"
        result = subprocess.run(
            needle("collect", "--kubeconfig", str(kubeconfig), "-o", str(output),
                   "--no-capture", "--concurrency", str(concurrency)),
            capture_output=True, text=True, check=False, timeout=300,
        )  # fmt: skip
        spoiled += sum(1 for r in server.requests[before:] if r.fault)
        assert result.returncode == 0, result.stderr
        with open_bundle(output) as bundle:
            ok = sorted(n["name"] for n in bundle.manifest["nodes"] if n["status"] == "ok")
        assert ok == names, result.stderr
        assert server.pod_names() == []
    assert spoiled >= 4, "the chaos spoiled requests (the runs were not trouble-free)"


def test_a_run_killed_mid_way_is_cleaned_up_by_needle_cleanup(lab_cluster, tmp_path):
    _state, server, kubeconfig = lab_cluster(3, 1)
    process = subprocess.Popen(
        needle("collect", "--kubeconfig", str(kubeconfig), "-o", str(tmp_path / "b.tar.gz"),
               "--capture-seconds", "30"),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while len(server.pod_names()) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(server.pod_names()) == 3
        process.send_signal(signal.SIGKILL)  # no chance to delete its pods
        process.wait(30)
    finally:
        process.kill()
    assert len(server.pod_names()) == 3
    spoil(server, seed=99)
    cleanup = subprocess.run(
        needle("cleanup", "--kubeconfig", str(kubeconfig)),
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert cleanup.returncode == 0, cleanup.stderr
    assert cleanup.stdout.count("deleted pod needle/") == 3
    assert server.pod_names() == [] and server.live_containers() == 0
