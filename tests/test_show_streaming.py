"""`needle show` writes its table and JSON as rows are made (the first row is out
before the last is computed), and every cell is shown as typed: console markup is not
applied, control characters are escaped."""

from __future__ import annotations

import inspect
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from needle.analyzer.show.render import FIRST_ROWS, print_json, print_table
from needle.analyzer.show.views import VIEWS

REPO = Path(__file__).resolve().parents[1]
HEALTHY = REPO / "samples" / "lab-healthy.tar.gz"
HOSTILE = ["[bold]x[/bold]", "[/]", "\x1b[2Jowned", "a\nb", "[red]"]


class Stream(io.StringIO):
    def isatty(self) -> bool:
        return False


def rows(count: int, stream: Stream, seen: list[str]) -> Iterator[dict[str, object]]:
    for i in range(count):
        if i == count - 1:
            seen.append(stream.getvalue())  # what was written before the last row is made
        yield {"node": f"node-{i}", "dev": HOSTILE[i % len(HOSTILE)], "flags": ["onlink"]}


def test_a_long_table_streams(tmp_path):
    stream, seen = Stream(), []
    count = 20 * FIRST_ROWS
    print_table(rows(count, stream, seen), "none", color=False, stream=stream)
    (before_last,) = seen
    assert before_last.splitlines()[0].split() == ["NODE", "DEV", "FLAGS"]
    assert "node-0 " in before_last and f"node-{count - 2} " in before_last
    lines = stream.getvalue().splitlines()
    assert len(lines) == count + 1  # the header and one line a row: "a\nb" forged none
    assert lines[-1].startswith(f"node-{count - 1} ")


@pytest.mark.parametrize("count", [len(HOSTILE), 20 * FIRST_ROWS], ids=["short", "streamed"])
def test_cells_are_shown_as_typed(count):
    stream = Stream()
    print_table(rows(count, stream, []), "none", color=False, stream=stream)
    text = stream.getvalue()
    assert "[bold]x[/bold]" in text and "[/]" in text and "[red]" in text
    assert "\x1b" not in text and "\\x1b[2Jowned" in text and "a\\x0ab" in text
    assert len(text.splitlines()) == count + 1


def test_json_streams_and_is_what_json_dumps_writes():
    stream, seen = Stream(), []
    print_json(rows(50, stream, seen), stream=stream)
    assert '"node": "node-48"' in seen[0]
    made = list(rows(50, Stream(), []))
    assert stream.getvalue() == json.dumps(made, indent=2) + "\n"
    empty = Stream()
    print_json(iter(()), stream=empty)
    assert empty.getvalue() == "[]\n" and json.loads(empty.getvalue()) == []


def test_views_are_generators():
    for view in VIEWS.values():  # rows come as they are made, not as one list
        assert inspect.isgeneratorfunction(view), view.__name__


def test_show_routes_with_markup_in_the_bundle_is_not_a_crash(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "needle", "show", str(HEALTHY), "routes"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split()[:2] == ["NODE", "NETNS"]


class ClosedAfter(Stream):
    """A pipe whose reader left (`needle show ... | head`) after a few writes."""

    def __init__(self, writes: int) -> None:
        super().__init__()
        self.writes = writes

    def write(self, text: str) -> int:
        self.writes -= 1
        if self.writes < 0:
            raise BrokenPipeError(32, "Broken pipe")
        return super().write(text)


def test_a_reader_that_leaves_stops_the_rows_quietly():
    made = []

    def counted() -> Iterator[dict[str, object]]:
        for i in range(10**6):
            made.append(i)
            yield {"node": f"node-{i}"}

    print_table(counted(), "none", color=False, stream=ClosedAfter(5))
    print_json(counted(), stream=ClosedAfter(5))
    assert len(made) < 10**5  # stopped when the pipe closed, not at the end
