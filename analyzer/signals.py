"""SIGTERM and SIGHUP stop `analyze`, `diff` and `show` the way Ctrl-C does.

A `kill`, a CI timeout or a closed terminal must not leave an archive's spool (a
gigabyte at 1,000 nodes) in TMPDIR: the signal raises KeyboardInterrupt in the main
thread, so the bundle's cleanup runs as the stack unwinds, forked workers are killed,
and the CLI exits 130 with "interrupted", as for Ctrl-C (the collector's
`sigterm_as_interrupt` does the same for a collection).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

STOPPING = (signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise KeyboardInterrupt (once: a second
    signal while the first unwinds is ignored, so the cleanup it started completes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raised = False

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        nonlocal raised
        if raised:
            return
        raised = True
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in STOPPING}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
