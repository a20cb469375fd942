"""Runs the node script as a local process and streams its stdout to a file.

Shared by the `local` and `netns` transports: they differ only in the argv that
reaches the node's host namespace.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from threading import Event

import sh
from needle.collector.transports.base import RunResult

# After a deadline or Ctrl-C the script gets SIGTERM, sends what it has and exits;
# this is how long it may take before it is killed outright.
GRACE_SECONDS = 5.0
POLL_SECONDS = 0.1


def run_script(
    argv: list[str], script: str, stream_to: Path, deadline_s: float, stop: Event
) -> RunResult:
    """Run `argv` with `script` on stdin; stdout goes byte for byte to `stream_to`.

    `stop` is set by the caller on Ctrl-C: the script is asked to stop and whatever it
    sent until then is kept.
    """
    started = time.monotonic()
    stderr_path = stream_to.with_suffix(".stderr")
    try:
        program = sh.Command(argv[0])
    except sh.CommandNotFound:
        return RunResult(None, b"", False, False, 0.0, f"{argv[0]} is not installed here")
    timed_out = interrupted = False
    with stream_to.open("wb") as out, stderr_path.open("wb") as err:
        # _tty_out=False: sh's default pty would turn the binary tar stream's \n into \r\n
        process = program(
            *argv[1:],
            _in=script.encode(),
            _out=out,
            _err=err,
            _tty_out=False,
            _bg=True,
            _bg_exc=False,
            _ok_code=list(range(256)),
            _return_cmd=True,
            # its own process group, so a stop reaches the command it is running too
            # (and never our own group)
            _new_session=True,
        )
        while process.is_alive():
            if stop.is_set():
                interrupted = True
                break
            if time.monotonic() - started > deadline_s:
                timed_out = True
                break
            time.sleep(POLL_SECONDS)
        if process.is_alive():
            _terminate(process)
        exit_code = _exit_code(process)
    stderr = stderr_path.read_bytes()
    stderr_path.unlink(missing_ok=True)
    return RunResult(
        exit_code, stderr, timed_out, interrupted, round(time.monotonic() - started, 3)
    )


def _terminate(process: sh.RunningCommand) -> None:
    """Ask the script's whole process group to stop (it then sends what it has)."""
    try:
        if process.pgid == os.getpgrp():  # never signal our own process group
            process.signal(signal.SIGTERM)
        else:
            process.signal_group(signal.SIGTERM)
        process.wait(timeout=GRACE_SECONDS)
    except sh.TimeoutException:
        with contextlib.suppress(ProcessLookupError):
            process.kill_group()
    except (sh.ErrorReturnCode, sh.SignalException, ProcessLookupError):
        pass


def _exit_code(process: sh.RunningCommand) -> int | None:
    with contextlib.suppress(sh.ErrorReturnCode, sh.SignalException, sh.TimeoutException):
        process.wait()
    code = process.exit_code
    return None if code is None or code < 0 else code
