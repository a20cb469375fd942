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
    # no emoji: ":ab:" in a MAC (02:ab:cd:...) or an IPv6 address would become one
    settings: dict[str, Any] = {"highlight": False, "emoji": False, **options}
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


# what rich takes for a tag (rich.markup.RE_TAGS, without the escapes before it)
_TAG = re.compile(r"\[[a-z#/@][^[]*?]")
_BACKSLASHES_BEFORE_BRACKET = re.compile(r"(\\+)(?=\[)")
# a span with nothing in it: after doubled backslashes, it ends their run
_EMPTY_SPAN = "[bold][/bold]"


def safe_markup(text: object) -> str:
    """safe_text() for a rich renderable that interprets console markup: "[bold]" and
    "[/]" in a name are shown as typed, never applied (nor a crash). Backslashes stay
    as typed too, whatever follows: at the end, and before a "[" that is no tag (rich
    15 reads "\\[" there as an escaped bracket, 13 as typed), they are doubled (rich
    reads a run of them before "[" as escapes) and closed by an empty span."""
    shown = safe_text(text)
    body = shown.rstrip("\\")
    trailing = len(shown) - len(body)
    escaped = escape_markup(body)

    def ended(match: re.Match[str]) -> str:
        if _TAG.match(escaped, match.end()):  # a tag escape_markup escaped: as it is
            return match.group(1)
        return "\\" * (2 * len(match.group(1))) + _EMPTY_SPAN

    escaped = _BACKSLASHES_BEFORE_BRACKET.sub(ended, escaped)
    return escaped + ("\\" * (2 * trailing) + _EMPTY_SPAN if trailing else "")


# Markdown that goes into a ticket is rendered as HTML: "<", ">" and "&" as entities
# (no tag, autolink or entity of its own), and a backslash before every character that
# CommonMark or GitHub give a meaning inline: emphasis, code spans, links and images
# (which need "["), table cells, strikethrough, headings' closing "#"s, escapes.
_MARKDOWN_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_MARKDOWN_SPECIAL = re.compile(r"[\\`*_\[\]|~#]|[&<>]")
# What only means something at the start of a line: a heading, quote, list item, rule.
_MARKDOWN_LEADING = re.compile(r"^(\s*)([-+=]|\d+[.)])")


def _markdown_escaped(match: re.Match[str]) -> str:
    char = match.group()
    return _MARKDOWN_ENTITIES.get(char, "\\" + char)


def _leading_escaped(match: re.Match[str]) -> str:
    indent, marker = match.groups()
    return f"{indent}{marker[:-1]}\\{marker[-1]}"  # - x: \- x; 1. x: 1\. x


def markdown_text(text: object) -> str:
    """safe_text() for markdown: `text` shows as typed once rendered (no emphasis, link,
    image, table cell break or HTML of its own), on one line."""
    shown = _MARKDOWN_SPECIAL.sub(_markdown_escaped, safe_text(text))
    return _MARKDOWN_LEADING.sub(_leading_escaped, shown, count=1)


def markdown_code(text: object, *, table: bool = False) -> str:
    """safe_text() as a markdown code span: fenced by one backtick more than the longest
    run of backticks inside (CommonMark), padded when it starts or ends with one.
    `table`: "|" escaped, as a code span in a GitHub table cell needs. Text holding "<"
    becomes markdown_text() instead: nothing shaped like a tag reaches a ticket raw."""
    shown = safe_text(text)
    if "<" in shown:
        return markdown_text(shown)
    if table:
        shown = shown.replace("|", "\\|")
    longest = max((len(run) for run in re.findall("`+", shown)), default=0)
    fence = "`" * (longest + 1)
    # CommonMark strips one space from each end when both ends have one
    padded = shown.startswith("`") or shown.endswith("`") or shown[:1] == shown[-1:] == " "
    if padded and shown.strip(" "):
        shown = f" {shown} "
    return f"{fence}{shown or ' '}{fence}"
