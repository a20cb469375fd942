"""SIGTERM and SIGHUP during `analyze` or `diff` of an archive stop it as Ctrl-C does:
the spool in TMPDIR is removed and needle exits 130 ("interrupted"), the CLI's code for
an interrupted run (needle/cli.py; the collector treats SIGTERM the same way)."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from needle.analyzer.forked import can_fork, run_forked
from needle.analyzer.signals import signals_interrupt

REPO = Path(__file__).resolve().parents[1]
EXIT_INTERRUPTED = 130


def _synthetic():
    spec = importlib.util.spec_from_file_location(
        "synthetic_bundle", REPO / "bench" / "synthetic_bundle.py"
    )
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def big_archive(tmp_path_factory) -> Path:
    """A bundle of 80 nodes x 30 pods as .tar.gz: analyze takes seconds, the spool
    exists throughout."""
    where = tmp_path_factory.mktemp("signals")
    synthetic = _synthetic()
    synthetic.generate(where / "big", 80, 30, 0.0, 1)
    synthetic.pack(where / "big", where / "big.tar.gz")
    return where / "big.tar.gz"


def _interrupt(argv: list[str], tmpdir: Path, signum: int) -> subprocess.CompletedProcess:
    child = subprocess.Popen(
        [sys.executable, "-m", "needle", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "TMPDIR": str(tmpdir), "NO_COLOR": "1"},
    )
    deadline = time.monotonic() + 60
    while not any(tmpdir.glob("needle-bundle-*/bundle.tar")):
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            out, err = child.communicate()
            pytest.fail(f"the spool never appeared (exit {child.returncode}): {err[-500:]!r}")
        time.sleep(0.005)
    child.send_signal(signum)
    out, err = child.communicate(timeout=60)
    return subprocess.CompletedProcess(child.args, child.returncode, out, err)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_during_analyze_removes_the_spool(big_archive, tmp_path, signum):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    done = _interrupt(["analyze", str(big_archive)], tmpdir, signum)
    assert done.returncode == EXIT_INTERRUPTED, done.stderr
    assert done.stderr.decode().strip().endswith("interrupted")
    assert b"Traceback" not in done.stderr
    assert list(tmpdir.iterdir()) == []


def test_sigterm_during_diff_removes_both_spools(big_archive, tmp_path):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    done = _interrupt(["diff", str(big_archive), str(big_archive)], tmpdir, signal.SIGTERM)
    assert done.returncode == EXIT_INTERRUPTED, done.stderr
    assert b"Traceback" not in done.stderr
    assert list(tmpdir.iterdir()) == []


def test_the_handlers_are_restored_after_the_block():
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}
    with signals_interrupt():
        assert signal.getsignal(signal.SIGTERM) is not before[signal.SIGTERM]
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(1)  # the handler runs at the next bytecode
        os.kill(os.getpid(), signal.SIGTERM)  # a second one while unwinding: ignored
        time.sleep(0.01)
    assert {sig: signal.getsignal(sig) for sig in before} == before


def _stopped() -> None:
    raise KeyboardInterrupt


def _killed() -> None:
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(10)


@pytest.mark.parametrize("task", [_stopped, _killed], ids=["interrupted", "killed"])
def test_a_worker_stopped_by_a_signal_stops_the_run(task):
    """Not "worker failed" nor "out of memory?": the run was stopped (exit 130)."""
    if not can_fork():
        pytest.skip("needs fork and two cores")
    with pytest.raises(KeyboardInterrupt):
        run_forked([lambda: None, task], "test")
