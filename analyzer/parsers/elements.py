"""Sharing what repeats across a cluster's nodes: the parsers' speed machinery.

Why: a flannel cluster's nodes hold the same routes, FDB entries and neighbours (a
route, an entry, a neighbour per peer, identical on every node), so a 1,000-node bundle's
10^6 route elements are ~10^3 distinct texts, naming a few thousand distinct devices,
gateways and MACs. Two things here make that cheap, and nothing else in the parsers
keeps state between calls:

- ``ElementMemo``: the records of flat ``-j`` arrays, each distinct element converted
  once. Splitting the array's bytes into elements and remembering what each text became
  makes the other 99.9% a dictionary hit, and the model shares one record per distinct
  element (records are read-only).
- ``shared``, ``shared_text``, ``shared_tuple``: one copy of each repeated string or
  small tuple of words in the records the quick readers build.

Safe on any input: the split is on ``}, {`` between elements. A split in the wrong place
(inside a string, or between two objects nested in one element) leaves a piece whose JSON
is incomplete, which never parses and is never remembered; the first such piece sends
the whole file back to the caller's ordinary parser, as does anything but one complete
array of objects.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from sys import intern
from typing import Any, TypeVar

import orjson
from needle.analyzer.parsers.common import Parsed, json_dumps_safe, records_from_json

R = TypeVar("R")

_BETWEEN = re.compile(rb"\}\s*,\s*\{")
_OPEN = re.compile(rb"\s*\[\s*\{")
_CLOSE = re.compile(rb"\}\s*\]\s*$")
# Remembered elements per converter. Past this many, new texts are converted but not
# remembered: a cluster whose elements are all distinct gains nothing from the memo, and
# it must not cost the memory of a second copy of every element.
MAX_REMEMBERED = 200_000


class _Unparsed(str):
    """An element's text kept for ``Parsed.unparsed`` (its converter made no record)."""


class ElementMemo:
    """What each element text of one converter became (a record, or unparsed text)."""

    def __init__(self, convert: Callable[[dict[str, Any]], Any]) -> None:
        self.convert = convert
        self.done: dict[bytes, Any] = {}

    def records(self, data: bytes | str) -> Parsed[Any]:
        """The records of a ``-j`` output, as ``common.records_from_json`` gives them, with
        one record per distinct element when the output splits into elements."""
        remembered = self.parse(data) if type(data) is bytes else None
        return records_from_json(data, self.convert) if remembered is None else remembered

    def parse(self, data: bytes) -> Parsed[Any] | None:
        """The records of `data` when it is exactly one complete JSON array of objects
        whose elements split cleanly; None otherwise (the caller parses it as usual)."""
        opening = _OPEN.match(data)
        closing = _CLOSE.search(data)
        if opening is None or closing is None or closing.start() < opening.end():
            return None
        pieces = _BETWEEN.split(data[opening.end() : closing.start()])
        done, convert = self.done, self.convert
        records: list[Any] = []
        unparsed: list[str] = []
        for piece in pieces:
            found = done.get(piece)
            if found is None:
                try:
                    element = orjson.loads(b"{" + piece + b"}")
                except orjson.JSONDecodeError:
                    return None  # split inside a string or a nested object: not flat
                record = convert(element)
                found = _Unparsed(json_dumps_safe(element)) if record is None else record
                if len(done) < MAX_REMEMBERED:
                    done[piece] = found
            if type(found) is _Unparsed:
                unparsed.append(str(found))
            else:
                records.append(found)
        return Parsed(tuple(records), tuple(unparsed))


# One copy of a string that repeats across records (device names, tables, states, a
# peer's CIDR or MAC on every node): 10^6 records hold a few thousand distinct values,
# and sharing them saves most of a large model's memory.
shared_text = intern


def shared(value: str | None) -> str | None:
    """``shared_text`` of a value that may be absent."""
    return value if value is None else intern(value)


def shared_tuple(values: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """One copy of each distinct small tuple of words (flags, states)."""
    return _canonical_tuple(tuple(values))


@lru_cache(maxsize=4096)
def _canonical_tuple(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(intern(v) for v in values)


def all_text(values: list[Any] | tuple[Any, ...]) -> bool:
    """Every element is a str (a plain loop: much cheaper than all() over a generator for
    the one- or two-element lists of flags and states)."""
    for value in values:  # noqa: SIM110 - the loop is the point (see above)
        if type(value) is not str:
            return False
    return True
