"""`--help` that reads well at any terminal width.

typer's rich help keeps every line break of a docstring (so a paragraph wrapped at 88
columns in the source breaks mid-sentence at 80) and shows each value's Python type as
a placeholder (`<bool>`, `<list[Path]>`). Once the command tree is built, this walks it
and fixes both: prose paragraphs become one line each (the terminal wraps them), a
paragraph that starts with click's `\\b` marker (examples, lists) is kept line for line,
and every option names its value in words (FILE, N, text|json) or not at all (flags).
"""

from __future__ import annotations

import inspect
from typing import Any

try:  # typer >= 0.26 vendors click; older releases depend on it
    from typer._click import Command, Context
except ImportError:  # pragma: no cover - exercised only with older typer
    from click import Command, Context  # type: ignore[no-redef,assignment]

VERBATIM = "\b"
_BY_TYPE = {"int": "N", "float": "SECONDS", "str": "TEXT", "Path": "PATH", "bool": ""}


def reflow(text: str | None) -> str | None:
    """`text` with each prose paragraph on one line and `\\b` paragraphs kept as written
    (without the marker); anything after a form feed (click's "hide the rest") dropped."""
    if not text:
        return text
    body = inspect.cleandoc(text).partition("\f")[0]
    paragraphs = []
    for paragraph in body.split("\n\n"):
        if paragraph.startswith(VERBATIM):
            paragraphs.append(paragraph.removeprefix(VERBATIM).removeprefix("\n"))
        else:
            paragraphs.append(" ".join(paragraph.split()))
    return "\n\n".join(paragraph for paragraph in paragraphs if paragraph)


def _choices(param: Any) -> list[str]:
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is None or not getattr(descriptor, "is_choice", False):
        return []
    return [str(getattr(choice, "value", choice)) for choice in descriptor.choices or ()]


def _type_name(param: Any) -> str:
    descriptor = getattr(param, "type_descriptor", None)
    annotation = getattr(descriptor, "annotation", None)
    arguments = getattr(annotation, "__args__", None)
    if arguments:  # list[Path] and the like: each value is one Path
        annotation = arguments[0]
    return getattr(annotation, "__name__", "")


def value_name(param: Any) -> str:
    """What an option's value is called in help: its choices, or a word for its type."""
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return ""
    choices = _choices(param)
    if choices:
        return "|".join(choices)
    return _BY_TYPE.get(_type_name(param), "VALUE")


def _no_type(ctx: Context | None = None) -> str | None:
    """An argument's type column: empty. Its name says what it is (BUNDLE, VIEW) and its
    help lists the choices, in words that wrap where a line ends (a long choice list in
    this narrow column would break in the middle of a word)."""
    return None


def _polish_param(param: Any) -> None:
    if getattr(param, "param_type_name", "") == "argument":
        param.display_type_rich = _no_type
    elif param.metavar is None:
        param.metavar = value_name(param)
    if getattr(param, "help", None):
        param.help = reflow(param.help)


def polish(command: Command, ctx: Context) -> None:
    """Tidy the help of `command` and of everything under it. `ctx` is a context for
    `command` (its parent chain gives the help option's names)."""
    command.help = reflow(command.help)
    for param in command.params:
        _polish_param(param)
    help_option = command.get_help_option(ctx)
    if help_option is not None:
        _polish_param(help_option)
    subcommands: dict[str, Command] = getattr(command, "commands", None) or {}
    for name, sub in subcommands.items():
        polish(sub, Context(sub, info_name=name, parent=ctx))
