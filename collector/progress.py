"""Per-node progress on stderr: a live table on a terminal, one line per event otherwise.

Node names, transports and errors come from clusters: each goes through
terminal.safe_markup() (`shown`) before rich sees it, in the table and in the lines."""

from __future__ import annotations

import sys
import time
from threading import Lock
from typing import TextIO

from needle.collector.bundle.manifest import NodeRecord
from needle.collector.terminal import make_console, plural
from needle.collector.terminal import safe_markup as shown
from rich.live import Live
from rich.table import Table

_STYLE = {"ok": "green", "partial": "yellow", "failed": "red"}


class Progress:
    """Reports each node's state as collection goes; safe to call from worker threads."""

    def __init__(
        self, stream: TextIO | None = None, live: bool | None = None, color: bool | None = None
    ) -> None:
        """`live`: a table redrawn in place (default: when `stream` is a terminal);
        `color` as terminal.make_console() takes it (the live table needs a terminal,
        not colour: --color never keeps it, without colour)."""
        self._stream = stream or sys.stderr
        self._console = make_console(self._stream, color, soft_wrap=True)
        self._live_wanted = self._stream.isatty() if live is None else live
        self._live: Live | None = None
        self._lock = Lock()
        self._rows: dict[str, tuple[str, str, str]] = {}
        self._started: dict[str, float] = {}

    def __enter__(self) -> Progress:
        if self._live_wanted:
            self._live = Live(
                self._table(), console=self._console, refresh_per_second=8, transient=False
            )
            self._live.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._live is not None:
            self._live.update(self._table())
            self._live.__exit__(None, None, None)
            self._live = None

    def _table(self) -> Table:
        table = Table(box=None, pad_edge=False)
        for column in ("NODE", "VIA", "STATE", "TIME"):
            table.add_column(column)
        now = time.monotonic()
        for node, (via, state, took) in self._rows.items():
            elapsed = took or (f"{now - self._started[node]:.1f}s" if node in self._started else "")
            style = _STYLE.get(state.split(" ")[0], "")
            table.add_row(
                shown(node),
                shown(via),
                f"[{style}]{shown(state)}[/]" if style else shown(state),
                elapsed,
            )
        return table

    def _update(self, node: str, via: str, state: str, took: str = "") -> None:
        with self._lock:
            self._rows[node] = (via, state, took)
            if self._live is not None:
                self._live.update(self._table())

    def queued(self, node: str, via: str) -> None:
        self._update(node, via, "queued")

    def running(self, node: str, via: str) -> None:
        self._started[node] = time.monotonic()
        self._update(node, via, "collecting")
        if self._live is None:
            self._console.print(f"needle: {shown(node)}: collecting from {shown(via)}")

    def state(self, node: str, via: str, state: str) -> None:
        """A step within a node's run ("starting pod", "deleting pod"); table only."""
        if state == "collecting" and node in self._rows and self._rows[node][1] == state:
            return
        self._update(node, via, state)

    def finished(self, record: NodeRecord, via: str) -> None:
        took = f"{record.duration_s:.1f}s" if record.duration_s is not None else ""
        state = record.status
        if record.errors:
            state += f" ({plural(len(record.errors), 'problem')})"
        self._update(record.name, via, state, took)
        if self._live is None:
            style = _STYLE.get(record.status, "")
            text = f"[{style}]{shown(state)}[/]" if style else shown(state)
            self._console.print(f"needle: {shown(record.name)}: {text} in {took}")

    def note(self, message: str) -> None:
        with self._lock:
            self._console.print(f"needle: {shown(message)}")
