"""Ctrl-C, a kill and a crash in the middle of a live-cluster collection: the bundle
holds what was collected, and no debug pod is left behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from needle.analyzer.bundle import open_bundle
from needle.collector.collect import CollectOptions, collect
from needle.collector.kube.session import ClusterOptions
from needle.collector.progress import Progress


def start_needle(kubeconfig, output, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "needle",
            "collect",
            "--kubeconfig",
            str(kubeconfig),
            "-o",
            str(output),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


@pytest.mark.root
@pytest.mark.tools("nsenter", "unshare", "tcpdump")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_exec_keeps_the_data_and_deletes_every_pod(lab_cluster, tmp_path, signum):
    _state, server, kubeconfig = lab_cluster(2, 1)
    output = tmp_path / "b.tar.gz"
    process = start_needle(kubeconfig, output, "--capture-seconds", "60")
    try:
        # both node scripts are running (in their capture window) when the signal comes
        wait_for(lambda: sum("needle-node" in c for c in server.exec_commands) == 2)
        time.sleep(1.5)
        process.send_signal(signum)
        _out, err = process.communicate(timeout=40)
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert server.pod_names() == [] and server.live_containers() == 0
    with open_bundle(output) as bundle:
        assert bundle.manifest["status"] == "interrupted"
        for node in bundle.manifest["nodes"]:
            assert node["status"] == "partial", node["errors"]
            assert any("interrupted" in error for error in node["errors"])
            assert bundle.read_bytes(f"{node['dir']}/host/ip-link.json").startswith(b"[")


def test_ctrl_c_while_pods_start_deletes_them(canned_cluster, tmp_path):
    server, kubeconfig = canned_cluster(
        behaviours={name: {"pod": "never-ready"} for name in ("node-a", "node-b", "node-c")}
    )
    output = tmp_path / "b.tar.gz"
    process = start_needle(kubeconfig, output, "--no-capture")
    try:
        wait_for(lambda: len(server.pod_names()) == 3)
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert len(server.created_pods) == 3
    assert server.pod_names() == []
    with open_bundle(output) as bundle:
        assert bundle.manifest["status"] == "interrupted"
        assert {n["status"] for n in bundle.manifest["nodes"]} == {"failed"}
        for node in bundle.manifest["nodes"]:
            assert "interrupted while pod needle-" in node["errors"][0]


def test_a_crash_mid_run_still_deletes_every_pod(canned_cluster, tmp_path, monkeypatch):
    server, kubeconfig = canned_cluster(canned_seconds=0.5)

    def crash(self, record, via):
        raise RuntimeError("boom in the main loop")

    monkeypatch.setattr(Progress, "finished", crash)
    output = tmp_path / "b.tar.gz"
    options = CollectOptions(
        output=output, cluster=ClusterOptions(kubeconfig=kubeconfig), capture_seconds=0
    )
    with pytest.raises(RuntimeError, match="boom"), Progress(live=False) as progress:
        collect(options, progress)
    assert len(server.created_pods) == 3
    assert server.pod_names() == []
    with open_bundle(output) as bundle:
        assert bundle.manifest["status"] == "partial"
        assert any("boom in the main loop" in e for e in bundle.manifest["errors"])


def test_pods_whose_delete_failed_are_deleted_at_the_end_by_their_run_label(
    canned_cluster, tmp_path, monkeypatch
):
    """A pod whose own delete failed (and that the ledger lost) is still found, by label."""
    from needle.collector.kube.pods import PodApi

    server, kubeconfig = canned_cluster(canned_seconds=0.1)
    real_delete = PodApi.delete
    failed_once: set[str] = set()

    def flaky_delete(self, name):
        if name not in failed_once:
            failed_once.add(name)
            self.ledger.discard(name)
            return f"could not delete pod {name}: 503 Service Unavailable"
        return real_delete(self, name)

    monkeypatch.setattr(PodApi, "delete", flaky_delete)
    options = CollectOptions(
        output=tmp_path / "b.tar.gz",
        cluster=ClusterOptions(kubeconfig=kubeconfig),
        capture_seconds=0,
    )
    with Progress(live=False) as progress:
        writer = collect(options, progress)
    assert len(failed_once) == 3 and len(server.created_pods) == 3
    assert server.pod_names() == []
    assert writer.manifest.status == "complete"
