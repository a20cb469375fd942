"""Ctrl-C while `needle analyze` checks a large cluster in two processes: the user gets
the one-line "interrupted" and exit code 130, and no worker is left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _descendants(pid: int) -> set[int]:
    found, pending = set(), [pid]
    while pending:
        current = pending.pop()
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                found.add(child)
                pending.append(child)
    return found


def _forked_workers(pid: int) -> tuple[set[int], set[bytes]]:
    """The descendants that are forks of `pid` (the same command line), and the command
    lines of any other program it started."""
    try:
        own = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return set(), set()
    workers, others = set(), set()
    for child in _descendants(pid):
        try:
            line = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue  # gone already
        if line == own:
            workers.add(child)
        elif line:  # empty: a zombie, or a fork caught before its first read
            others.add(line)
    return workers, others


def test_ctrl_c_during_sharded_rules_leaves_no_worker(tmp_path):
    bundle = tmp_path / "n300"
    subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "synthetic_bundle.py"),
            "--nodes",
            "300",
            "--pods",
            "10",
            "-o",
            str(bundle),
        ],
        check=True,
        capture_output=True,
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "needle", "analyze", str(bundle), "--fail-on", "never"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal would give it
    )
    workers: set[int] = set()
    programs: set[bytes] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not workers and process.poll() is None:
        workers, others = _forked_workers(process.pid)
        programs |= others
        time.sleep(0.02)
    assert workers, "the analysis forked no worker (or ended before one was seen)"
    # a program started beside the analysis (once `ldconfig -p`, to find libc) would be
    # a second thing for Ctrl-C to reach, and cost a process start on every run
    assert not programs
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does: the whole group
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert stderr.strip().splitlines()[-1].endswith("interrupted")
    time.sleep(0.2)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]
