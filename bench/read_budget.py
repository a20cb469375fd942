"""Benchmark: what one run of analyze, show and diff takes from the read budget.

The budget's defaults (analyzer/bundle/reader.py, ReadLimits) must leave large valid
clusters far from their limits. This runs each command in this process with forking
off (so one process does all the work a run's busiest process could) and prints the
bytes, files and records each took. Prints numbers; asserts nothing.

    python bench/read_budget.py BUNDLE [CHANGED_BUNDLE]
"""

from __future__ import annotations

import contextlib
import io
import sys

import needle.analyzer.bundle.reader as reader
import needle.analyzer.diff.run as diff_run
import needle.analyzer.rules.engine as engine

from needle.cli import run

budgets: list[reader.ReadBudget] = []
_init = reader.ReadBudget.__init__


def _recording_init(self: reader.ReadBudget, limits: reader.ReadLimits) -> None:
    _init(self, limits)
    budgets.append(self)


def measure(argv: list[str]) -> str:
    budgets.clear()
    with contextlib.redirect_stdout(io.StringIO()):
        code = run(argv, "needle")
    taken = max(budgets, key=lambda budget: budget.records)
    return (
        f"{argv[0]:8} exit {code}: {taken.bytes_read / 2**20:8.1f} MiB in "
        f"{taken.files_read:9,} files, {taken.records:11,} records"
    )


def main() -> None:
    reader.ReadBudget.__init__ = _recording_init  # type: ignore[method-assign]
    for module in (reader, engine, diff_run):
        module.can_fork = lambda: False  # type: ignore[attr-defined]
    bundle = sys.argv[1]
    changed = sys.argv[2] if len(sys.argv) > 2 else bundle
    print(measure(["analyze", bundle, "--fail-on", "never"]))
    print(measure(["show", bundle, "routes"]))
    print(measure(["diff", bundle, changed]))


if __name__ == "__main__":
    main()
