"""Work done in forked children: results come back in order, failures are one clear
error, never a hang or a traceback from a child."""

from __future__ import annotations

import os
import signal

import pytest
from needle.analyzer.errors import AnalyzerError
from needle.analyzer.forked import Started, run_forked

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")


def test_results_come_back_in_task_order_and_children_see_the_parents_data():
    shared = list(range(100_000))  # never sent: the children read it after fork
    tasks = [lambda k=k: (os.getpid(), sum(shared[k::3])) for k in range(3)]
    results = run_forked(tasks, "sums")
    assert [total for _, total in results] == [sum(shared[k::3]) for k in range(3)]
    assert results[0][0] == os.getpid()  # the first runs here
    assert len({pid for pid, _ in results}) == 3


def test_a_child_that_raises_is_an_analyzer_error_with_its_traceback_as_a_note():
    def boom() -> int:
        raise ValueError("bad shard")

    with pytest.raises(AnalyzerError, match=r"rules: worker 2 failed: ValueError: bad shard") as e:
        run_forked([lambda: 1, boom], "rules")
    assert "boom" in e.value.__notes__[0]


def test_a_child_killed_by_a_signal_is_named():
    def die() -> int:
        os.kill(os.getpid(), signal.SIGKILL)
        return 0

    with pytest.raises(AnalyzerError, match="worker 2 was killed by signal 9"):
        run_forked([lambda: 1, die], "rules")


def test_a_failure_here_reaps_every_child():
    def fail_here() -> int:
        raise RuntimeError("parent side failed")

    with pytest.raises(RuntimeError):
        run_forked([fail_here, lambda: 2], "rules")
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # nothing left to reap


def test_a_started_task_runs_beside_this_process_and_answers_once():
    shared = list(range(1000))
    started = Started(lambda: (os.getpid(), sum(shared)), "sum")
    pid, total = started.result()
    assert total == sum(shared) and pid != os.getpid()
    with pytest.raises(RuntimeError):
        started.result()


def test_a_started_task_that_raises_is_an_analyzer_error():
    def boom() -> int:
        raise ValueError("bad spool")

    with pytest.raises(AnalyzerError, match=r"spool: worker failed: ValueError: bad spool"):
        Started(boom, "spool").result()


def test_a_cancelled_task_is_killed_and_reaped_even_when_it_hangs():
    def hang() -> int:
        signal.pause()
        return 0

    started = Started(hang, "spool")
    started.cancel()
    started.cancel()  # a second cancel is harmless
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # nothing left to reap
