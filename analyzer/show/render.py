"""Prints view rows: a table (colour only on a terminal) or JSON for scripts."""

from __future__ import annotations

import json
import sys

from needle.analyzer.show.views import JSON_ONLY, Row
from needle.analyzer.terminal import make_console
from rich.table import Table


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "-"
    return str(value)


def print_table(rows: list[Row], empty: str, color: bool | None = None) -> None:
    """`rows` as a table on stdout (bold headings when coloured: see terminal.py)."""
    console = make_console(sys.stdout, color, width=None if sys.stdout.isatty() else 400)
    if not rows:
        console.print(empty)
        return
    table = Table(box=None, pad_edge=False, show_edge=False)
    columns = [key for key in rows[0] if key not in JSON_ONLY]
    for column in columns:
        table.add_column(column.upper().replace("_", " "), overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row.get(column)) for column in columns))
    console.print(table)


def print_json(rows: list[Row]) -> None:
    sys.stdout.write(json.dumps(rows, indent=2) + "\n")
