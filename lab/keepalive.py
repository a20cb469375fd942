"""Processes that keep an unnamed namespace alive (the veth-orphan fault), and stopping them.

Each such process carries the environment marker NEEDLE_LAB_KEEPALIVE=<lab name>, so `down`
finds it even if the state file was lost, and is recorded by pid and start time, so a pid
the kernel reused for someone else's process is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from needle.lab.errors import LabError
from needle.lab.netns import NETNS_DIR
from needle.lab.state import ProcessRecord

MARKER = "NEEDLE_LAB_KEEPALIVE"
_PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/PID/stat, or None if pid is gone."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm (field 2) may contain spaces and parentheses; fields after the last ')' are safe.
    return stat.rsplit(")", 1)[1].split()


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks), or None if pid is gone."""
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[19])


def _running(record: ProcessRecord) -> bool:
    """Still our process and not yet a zombie (a zombie holds no namespace any more)."""
    fields = _stat_fields(record.pid)
    return fields is not None and fields[0] != "Z" and int(fields[19]) == record.start_time


def netns_inode(pid: int) -> int | None:
    try:
        return (_PROC / str(pid) / "ns" / "net").stat().st_ino
    except (FileNotFoundError, ProcessLookupError):
        return None


def hold_netns(lab: str, netns: str, purpose: str, timeout: float = 5.0) -> ProcessRecord:
    """Start a sleeping process inside `netns` and return once it is really inside.

    `setsid --fork` detaches it from this process entirely (own session, parent is init),
    so it outlives this command and never becomes our zombie.
    """
    target = (NETNS_DIR / netns).stat().st_ino
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), MARKER: lab}
    try:
        subprocess.run(
            ["setsid", "--fork", "nsenter", f"--net={NETNS_DIR / netns}", "sleep", "infinity"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            check=True,
            timeout=timeout,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise LabError(
            f"could not start a process holding namespace {netns} ({exc}); "
            "setsid and nsenter (util-linux) are needed"
        ) from exc
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for record in marked(lab):
            if netns_inode(record.pid) == target and _comm(record.pid) == "sleep":
                record.purpose = purpose
                return record
        time.sleep(0.005)
    raise LabError(f"a process started to hold namespace {netns} never entered it")


def _comm(pid: int) -> str | None:
    try:
        return (_PROC / str(pid) / "comm").read_text().strip()
    except (FileNotFoundError, ProcessLookupError):
        return None


def marked(lab: str) -> list[ProcessRecord]:
    """Live processes carrying lab `lab`'s keep-alive marker."""
    wanted = f"{MARKER}={lab}".encode()
    found: list[ProcessRecord] = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if wanted in environ.split(b"\0"):
            started = start_time(int(entry.name))
            if started is not None:
                found.append(ProcessRecord(int(entry.name), started, "found by marker"))
    return found


def stop(records: list[ProcessRecord], timeout: float = 5.0) -> list[int]:
    """Kill the processes that are still the ones recorded; return the pids signalled."""
    killed: list[ProcessRecord] = []
    for record in records:
        if not _running(record):
            continue
        try:
            os.kill(record.pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        killed.append(record)
    deadline = time.monotonic() + timeout
    for record in killed:
        # Reap it if it is our own child (lab used as a library); otherwise init does.
        while True:
            _reap(record.pid)
            if not _running(record) or time.monotonic() > deadline:
                break
            time.sleep(0.005)
    return [record.pid for record in killed]


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
