"""Progress of long work (reading a bundle, checking rules, comparing two bundles).

A spinner on stderr names the current step and the time it has taken, and disappears
when the work is done. It shows only when stderr is a terminal: piped, redirected or in
CI, nothing at all is written, and stdout is never touched. It draws no colour (so
--color has nothing to say about it) and redraws four times a second from rich's own
thread, which costs nothing next to the work it reports on.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TextIO

from needle.analyzer.terminal import make_console, safe_markup
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

REFRESH_PER_SECOND = 4


class WorkProgress:
    """`with WorkProgress() as progress: progress.step("reading x"); ...`"""

    def __init__(self, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self._stream = stream if stream is not None else sys.stderr
        isatty = getattr(self._stream, "isatty", None)
        self._enabled = bool(isatty is not None and isatty()) if enabled is None else enabled
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> WorkProgress:
        if self._enabled:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=make_console(self._stream, color=False),
                transient=True,
                refresh_per_second=REFRESH_PER_SECOND,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._progress.start()
            self._task = self._progress.add_task("needle", total=None)
        return self

    def step(self, description: str) -> None:
        """Show `description` as what is being done now (drawn at once: steps are few);
        it may name a bundle, so it is shown through terminal.safe_markup()."""
        if self._progress is not None and self._task is not None:
            shown = f"needle: {safe_markup(description)}"
            self._progress.update(self._task, description=shown, refresh=True)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
