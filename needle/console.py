"""The front door's side of colour: --color, NO_COLOR and FORCE_COLOR, decided once.

The decision travels to every command as click's `Context.color` (True: colour, False:
none, None: colour only where a terminal is on the other end); each wing's
terminal.py turns it into a console for the stream it writes to.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TextIO

from needle.analyzer.terminal import safe_text

_RED_BOLD = "\x1b[1;31m"
_RESET = "\x1b[0m"


class ColorChoice(StrEnum):
    auto = "auto"
    always = "always"
    never = "never"


def resolve_color(choice: ColorChoice, environ: Mapping[str, str]) -> bool | None:
    """What `--color` and the environment ask for. An explicit --color always/never
    wins; with auto, a non-empty NO_COLOR turns colour off (no-color.org), a
    non-empty FORCE_COLOR turns it on, and otherwise a terminal decides (None)."""
    if choice is ColorChoice.always:
        return True
    if choice is ColorChoice.never:
        return False
    if environ.get("NO_COLOR"):
        return False
    if environ.get("FORCE_COLOR"):
        return True
    return None


def error_line(prog: str, message: str, stream: TextIO, color: bool | None) -> str:
    """The one line a failure prints: `needle: error: ...`, "error" in red when the
    stream is coloured. The message goes through terminal.safe_text(): a file name or a
    value with a line break or an escape sequence in it is shown escaped, on this line."""
    isatty = getattr(stream, "isatty", None)
    colored = color if color is not None else bool(isatty is not None and isatty())
    label = f"{_RED_BOLD}error{_RESET}" if colored else "error"
    return f"{safe_text(prog)}: {label}: {safe_text(message)}\n"
