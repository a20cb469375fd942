"""Human-readable output: when to colour, counted nouns, did-you-mean suggestions, and
the one boundary every string from a bundle or a cluster crosses on its way to a person.

The same file lives in collector/, analyzer/ and lab/: the three share no code (only the
bundle format), and tests/test_cli_newcomer.py keeps the copies identical. The front
door (needle.cli) turns --color, NO_COLOR and FORCE_COLOR into click's `Context.color`
(True, False, or None: colour only on a terminal); commands pass that value here.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape as escape_markup


def wants_color(stream: TextIO, color: bool | None) -> bool:
    """Whether output to `stream` is coloured: as `color` says, else only on a terminal."""
    if color is not None:
        return color
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty())


def make_console(stream: TextIO, color: bool | None, **options: Any) -> Console:
    """A rich console on `stream` that writes colour and styles exactly when
    wants_color() says so, and no escape codes for them otherwise (not even bold)."""
    on = wants_color(stream, color)
    settings: dict[str, Any] = {"highlight": False, **options}
    if not on:
        return Console(file=stream, color_system=None, **settings)
    console = Console(file=stream, force_terminal=True, color_system="auto", **settings)
    if console.color_system is None:  # TERM=dumb, and yet colour was asked for
        console = Console(file=stream, force_terminal=True, color_system="standard", **settings)
    return console


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """ "1 node", "0 nodes", "2 nodes"; `plural_form` for nouns without a plain -s
    ("process", "processes") or without a plural ("info", "info")."""
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {plural_form if plural_form is not None else noun + 's'}"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """ "did you mean 'mtu'?" for the choice closest to a mistyped `word` (several when
    they are equally close); "" when none is close enough to suggest."""
    options = list(choices)
    matches = difflib.get_close_matches(word, options, n=3, cutoff=0.6)
    if not matches:
        return ""

    def closeness(match: str) -> float:
        return difflib.SequenceMatcher(None, word, match).ratio()

    best = closeness(matches[0])
    close = sorted(match for match in matches if closeness(match) >= best - 0.02)
    shown = [repr(match) for match in close]
    listed = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]
    return f"did you mean {listed}?"


# What a terminal would act on or reorder rather than show: C0 controls (ESC starts CSI
# and OSC sequences, BEL ends OSC, CR overwrites a line), DEL, C1 controls (0x9b is a
# one-byte CSI), and the bidirectional marks, overrides and isolates (Trojan Source).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_OR_BREAK = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


def _shown(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(text: object, *, lines: bool = False) -> str:
    """`text` as a person may safely see it: every character a terminal would act on
    shown visibly escaped (ESC as \\x1b, U+202E as \\u202e), so nothing in a bundle
    can clear the screen, retitle the window or reorder what is shown. Line breaks and
    tabs are escaped too (a name must not forge a line of its own), unless `lines`.

    For human-readable output only: JSON escapes by itself, and stored data stays exact.
    """
    pattern = _UNSAFE if lines else _UNSAFE_OR_BREAK
    return pattern.sub(_shown, str(text))


def safe_markup(text: object) -> str:
    """safe_text() for a rich renderable that interprets console markup: "[bold]" and
    "[/]" in a name are shown as typed, never applied (nor a crash)."""
    return escape_markup(safe_text(text))
