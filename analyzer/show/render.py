"""Prints view rows: a table (colour only on a terminal) or JSON for scripts, both as
the rows come.

Rows are a generator (show/views.py): a node with 10^6 routes must not be turned into
one table in memory before the first line is printed (rich laid out a table at ~0.7 ms a
row). A short view (up to FIRST_ROWS rows) is still laid out by rich, folded to the
terminal; a longer one is printed as plain aligned columns sized by its first rows,
each row written as it is made. Every cell goes through safe_markup() or safe_text():
a bundle's "[bold]" or "[/]" is shown as typed, its control characters escaped.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TextIO

from needle.analyzer.show.views import JSON_ONLY, Row
from needle.analyzer.terminal import make_console, safe_markup, safe_text
from rich.console import Console
from rich.table import Table
from rich.text import Text

# Rows laid out by rich when a view has no more; a longer view streams in plain columns.
FIRST_ROWS = 200
GAP = "  "  # between columns, as rich's Table(box=None) pads them


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "-"
    return str(value)


@contextlib.contextmanager
def _reader_may_leave(out: TextIO) -> Iterator[None]:
    """`needle show ... | head` closes the pipe while rows still come: stop writing,
    as the reader asked (not click's exit 1, which the exit-code contract means as
    "findings"), and send what is still buffered nowhere."""
    try:
        yield
    except BrokenPipeError:
        if out is sys.stdout:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)


def print_table(
    rows: Iterable[Row],
    empty: str,
    color: bool | None = None,
    stream: TextIO | None = None,
) -> None:
    """`rows` as a table on `stream` (stdout; bold headings when coloured: see
    terminal.py), the first line written before the rows after FIRST_ROWS are made."""
    out = stream if stream is not None else sys.stdout
    with _reader_may_leave(out):
        _print_table(iter(rows), empty, color, out)


def _print_table(rows: Iterator[Row], empty: str, color: bool | None, out: TextIO) -> None:
    first = list(islice(rows, FIRST_ROWS + 1))
    console = make_console(out, color, width=None if out.isatty() else 400)
    if not first:
        console.print(safe_markup(empty))
        return
    columns = [key for key in first[0] if key not in JSON_ONLY]
    headings = [column.upper().replace("_", " ") for column in columns]
    if len(first) <= FIRST_ROWS:
        table = Table(box=None, pad_edge=False, show_edge=False)
        for heading in headings:
            table.add_column(heading, overflow="fold")
        for row in first:
            table.add_row(*(safe_markup(_cell(row.get(column))) for column in columns))
        console.print(table)
        return
    _stream_columns(console, out, headings, columns, first, rows)


def _stream_columns(
    console: Console,
    out: TextIO,
    headings: list[str],
    columns: list[str],
    first: list[Row],
    rest: Iterator[Row],
) -> None:
    """Plain columns as wide as the first rows need (a later, wider cell pushes its
    line's next columns right, and the columns stay readable)."""
    cells = [[safe_text(_cell(row.get(column))) for column in columns] for row in first]
    widths = [len(heading) for heading in headings]
    for line in cells:
        widths = [max(width, len(cell)) for width, cell in zip(widths, line, strict=True)]
    console.print(Text(_line(headings, widths), style="bold"), soft_wrap=True)
    out.write("".join(_line(line, widths) + "\n" for line in cells))
    out.flush()
    for row in rest:
        out.write(_line([safe_text(_cell(row.get(column))) for column in columns], widths) + "\n")
    out.flush()


def _line(cells: list[str], widths: list[int]) -> str:
    return GAP.join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()


def print_json(rows: Iterable[Row], stream: TextIO | None = None) -> None:
    """`rows` as one JSON array (as json.dumps(rows, indent=2) writes it), a row at a time."""
    out = stream if stream is not None else sys.stdout
    with _reader_may_leave(out):
        opened = False
        for row in rows:
            body = json.dumps(row, indent=2).replace("\n", "\n  ")
            out.write(("[\n  " if not opened else ",\n  ") + body)
            opened = True
        out.write("\n]\n" if opened else "[]\n")
        out.flush()
