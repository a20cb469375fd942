"""Ctrl-C is never lost while needle starts a subprocess (needle/process.py): the lab
starts hundreds of `ip` commands, and CPython's vfork() path dropped a SIGINT that
arrived during a start in about one run of five."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

EXIT_INTERRUPTED = 130

# what a command of the lab does, reduced to its part that matters: start programs, one
# after another, until interrupted
STARTS_PROGRAMS = """
import subprocess, sys
from needle.process import prepare_process
prepare_process()
print("ready", flush=True)
try:
    for _ in range(5000):
        subprocess.run(["true"], check=True)
except KeyboardInterrupt:
    sys.exit(130)
sys.exit(0)
"""


def test_sigint_while_starting_programs_is_never_lost():
    chance = random.Random(20261206)
    outcomes = []
    for _ in range(20):
        child = subprocess.Popen(
            [sys.executable, "-c", STARTS_PROGRAMS],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        time.sleep(chance.uniform(0.02, 0.12))
        os.killpg(child.pid, signal.SIGINT)  # Ctrl-C: the whole process group
        try:
            child.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
        outcomes.append(child.returncode)
    assert outcomes == [EXIT_INTERRUPTED] * len(outcomes)
