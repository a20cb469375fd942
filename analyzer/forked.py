"""Running pieces of one job at once: in this process and in forked children that share
its memory.

A 1,000-node model is ~10^7 Python objects: sending it to a worker would cost more
than the work. A forked child sees it for free (copy-on-write), does its share, and
sends back only its (small) answer through a pipe. Used where the machine has more
than one core and the platform can fork; callers fall back to running in-process.
"""

from __future__ import annotations

import os
import pickle
import signal
import traceback
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from needle.analyzer.errors import AnalyzerError

T = TypeVar("T")


def can_fork() -> bool:
    return hasattr(os, "fork") and (os.cpu_count() or 1) > 1


def _child(task: Callable[[], T], write_end: int) -> None:
    try:
        payload = pickle.dumps(("ok", task()), protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException as exc:  # noqa: BLE001 - the parent reports it, Ctrl-C included
        payload = pickle.dumps(("error", f"{type(exc).__name__}: {exc}", traceback.format_exc()))
    with os.fdopen(write_end, "wb") as stream:
        stream.write(payload)


def _read_all(read_end: int) -> bytes:
    with os.fdopen(read_end, "rb") as stream:
        return stream.read()


def _fork(task: Callable[[], T]) -> tuple[int, int]:
    """A child running `task`, and the read end of the pipe its answer comes through."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller's code
        status = 1
        try:
            os.close(read_end)
            _child(task, write_end)
            status = 0
        finally:
            # no atexit handlers, no finalizers: the parent owns every temp dir
            os._exit(status)
    os.close(write_end)
    return pid, read_end


def _kill(pid: int, read_end: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.close(read_end)
    except OSError:
        pass  # already gone, or its pipe already read and closed


# A worker killed by one of these was stopped, as its parent is: not a failure to report.
_STOPPED_BY = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _answer(payload: bytes, status: int, what: str, index: int | None) -> object:
    worker = "worker" if index is None else f"worker {index}"
    if not payload:
        if os.WIFSIGNALED(status) and os.WTERMSIG(status) in _STOPPED_BY:
            raise KeyboardInterrupt  # stopped with the rest of the run (analyzer/signals.py)
        how = (
            f"was killed by signal {os.WTERMSIG(status)}"
            if os.WIFSIGNALED(status)
            else f"exited with status {os.waitstatus_to_exitcode(status)}"
        )
        raise AnalyzerError(f"{what}: {worker} {how} (out of memory?)")
    answer = pickle.loads(payload)  # noqa: S301 - written by our own child
    if answer[0] != "ok" and answer[1].startswith("KeyboardInterrupt"):
        raise KeyboardInterrupt  # a Ctrl-C or SIGTERM that reached the worker first
    if answer[0] != "ok":
        error = AnalyzerError(f"{what}: {worker} failed: {answer[1]}")
        error.__notes__ = [answer[2]]
        raise error
    return answer[1]


class Started(Generic[T]):
    """A task running in a forked child while this process goes on; result() waits for
    it (once), cancel() kills it. Every Started must get one of the two."""

    def __init__(self, task: Callable[[], T], what: str) -> None:
        self.what = what
        self._pid, self._read_end = _fork(task)
        self._done = False

    def result(self) -> T:
        if self._done:
            raise RuntimeError(f"{self.what}: result() after result() or cancel()")
        self._done = True
        try:
            payload = _read_all(self._read_end)
        except BaseException:
            _kill(self._pid, self._read_end)
            os.waitpid(self._pid, 0)
            raise
        status = os.waitpid(self._pid, 0)[1]
        return _answer(payload, status, self.what, None)  # type: ignore[return-value]

    def cancel(self) -> None:
        if not self._done:
            self._done = True
            _kill(self._pid, self._read_end)
            os.waitpid(self._pid, 0)


def run_forked(tasks: Sequence[Callable[[], T]], what: str) -> list[T]:
    """Each task's result, in task order: the first task runs here while every other
    runs in its own forked child (a child's private memory is what it changes; the
    parent's own share costs no copy at all). A child that raises or dies becomes an
    AnalyzerError naming `what` (its traceback with --debug)."""
    children: list[tuple[int, int]] = []
    try:
        for task in tasks[1:]:
            children.append(_fork(task))
        first = tasks[0]() if tasks else None
        # children never wait on each other, so reading one pipe after another cannot
        # deadlock: a child with a full pipe just waits for its turn
        payloads = [_read_all(read_end) for _, read_end in children]
    except BaseException:
        for pid, read_end in children:
            _kill(pid, read_end)
        raise
    finally:
        statuses = [os.waitpid(pid, 0)[1] for pid, _ in children]
    results: list[T] = [first] if tasks else []  # type: ignore[list-item]
    for index, (payload, status) in enumerate(zip(payloads, statuses, strict=True), 2):
        results.append(_answer(payload, status, what, index))  # type: ignore[arg-type]
    return results
