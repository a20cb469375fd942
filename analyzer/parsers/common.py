"""What every parser shares: the result type, decoding, and tolerant JSON array reading.

The convention, used by every parser in this package:

- a parser is a pure function ``parse_*(data: bytes) -> Parsed[Record]``; it never raises on
  content (any bytes, any length), only on programming errors;
- ``Parsed.records`` holds the typed records, in the order the tool printed them;
- ``Parsed.unparsed`` holds every non-blank input line (or JSON fragment) that produced no
  record and no field of one: tool error messages, noise, truncated tails. Nothing the tool
  printed disappears silently;
- ``Parsed.truncated`` is True when a JSON document ended before it was complete (a collector
  capped the output): the records before the cut are still returned.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import orjson

R = TypeVar("R")

PairsHook = Callable[[list[tuple[str, Any]]], Any]


@dataclass(frozen=True, slots=True)
class Parsed(Generic[R]):
    """The outcome of one parser run on one raw output."""

    records: tuple[R, ...] = ()
    unparsed: tuple[str, ...] = ()
    truncated: bool = False

    @property
    def clean(self) -> bool:
        """True when every line became part of a record and the input was complete."""
        return not self.unparsed and not self.truncated


def decode(data: bytes | bytearray | memoryview | str) -> str:
    """Text of a raw output. Undecodable bytes become U+FFFD instead of failing the parse."""
    if isinstance(data, str):
        return data
    return bytes(data).decode("utf-8", errors="replace")


def lines_of(data: bytes | bytearray | memoryview | str) -> list[str]:
    """Lines split on newline only: tools never use the other separators splitlines() honours,
    and a stray form feed inside a line must not invent a new record."""
    text = decode(data)
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    return text.split("\n")


def to_int(value: object) -> int | None:
    """An int from a decimal token or JSON number, or None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        # isdecimal() also accepts non-ASCII digits, which int() takes but tools never print.
        digits = value[1:] if value[:1] == "-" else value
        if digits.isascii() and digits.isdecimal() and len(digits) < 40:
            return int(value)
    return None


def to_str(value: object) -> str | None:
    """A JSON scalar as text (iproute2 prints some fields as numbers, some as strings)."""
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def json_dumps_safe(value: object) -> str:
    """A JSON fragment for ``unparsed``; never fails, whatever the parsed value holds."""
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=False)
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def _skip_ws(text: str, pos: int) -> int:
    n = len(text)
    while pos < n and text[pos] in " \t\r\n":
        pos += 1
    return pos


@dataclass(slots=True)
class JsonArrays:
    """Elements of the top-level JSON array(s) of an output, read as far as they are whole."""

    items: list[Any] = field(default_factory=list)
    unparsed: list[str] = field(default_factory=list)
    truncated: bool = False


def read_json_arrays(
    data: bytes | bytearray | memoryview | str, pairs_hook: PairsHook | None = None
) -> JsonArrays:
    """Read ``[...]`` documents the way iproute2's ``-j`` prints them, tolerating damage.

    The fast path is one json.loads. When that fails, elements are decoded one at a time so
    that a file cut mid-way (a collector's size cap) still yields every complete element
    before the cut, and text around the arrays (a warning line, a second concatenated
    array) is kept as unparsed lines rather than failing the whole file.
    """
    out = JsonArrays()
    if pairs_hook is None and isinstance(data, bytes):
        # orjson decodes a well-formed document ~2x faster than json (a 1,000-node bundle
        # holds ~1 GB of ip -j output); anything it refuses takes the tolerant path below
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
        else:
            out.items = doc if isinstance(doc, list) else [doc]
            return out
    text = decode(data)
    if not text.strip():
        return out
    try:
        doc = json.loads(text, object_pairs_hook=pairs_hook)
    except (ValueError, RecursionError):
        pass
    else:
        if isinstance(doc, list):
            out.items = doc
        else:
            out.items = [doc]
        return out
    _read_incrementally(text, json.JSONDecoder(object_pairs_hook=pairs_hook), out)
    return out


def _read_incrementally(text: str, decoder: json.JSONDecoder, out: JsonArrays) -> None:
    n = len(text)
    pos = _skip_ws(text, 0)
    while pos < n:
        if text[pos] != "[":
            # Not JSON here (a warning or error line): keep the line, look for an array after.
            end = text.find("\n", pos)
            end = n if end < 0 else end
            out.unparsed.append(text[pos:end])
            pos = _skip_ws(text, end)
            continue
        pos = _read_one_array(text, _skip_ws(text, pos + 1), decoder, out)
        if pos < 0:
            return
        pos = _skip_ws(text, pos)


def _read_one_array(text: str, pos: int, decoder: json.JSONDecoder, out: JsonArrays) -> int:
    """Elements of one array starting after its '['; the position after its ']' or -1."""
    n = len(text)
    if pos < n and text[pos] == "]":
        return pos + 1
    while True:
        try:
            item, pos = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError):
            _give_up(text, pos, out)
            return -1
        out.items.append(item)
        pos = _skip_ws(text, pos)
        if pos >= n:
            out.truncated = True
            return -1
        if text[pos] == ",":
            pos = _skip_ws(text, pos + 1)
            continue
        if text[pos] == "]":
            return pos + 1
        _give_up(text, pos, out)
        return -1


def _give_up(text: str, pos: int, out: JsonArrays) -> None:
    rest = text[pos:]
    # A document that never closes its top-level array was cut off; one that closes it but
    # is broken inside was damaged. Either way the tail is reported, not dropped.
    out.truncated = out.truncated or not rest.rstrip().endswith("]")
    out.unparsed.extend(line for line in rest.split("\n") if line.strip())


def looks_like_json(data: bytes | bytearray | memoryview | str) -> bool:
    """Whether an output is a ``-j`` form: its first non-blank character opens an array or
    object. Lets one entry point serve bundles collected with and without JSON support."""
    head = data[:4096] if not isinstance(data, memoryview) else bytes(data[:4096])
    text = decode(head).lstrip()
    return text[:1] in ("[", "{")


def records_from_json(
    data: bytes | str,
    convert: Callable[[dict[str, Any]], R | None],
    pairs_hook: PairsHook | None = None,
) -> Parsed[R]:
    """The shared shape of every ``-j`` parser: each object of the arrays becomes a record
    through `convert`, or an ``unparsed`` fragment when it cannot. `pairs_hook` builds
    each JSON object from its key/value pairs in order (json's ``object_pairs_hook``)."""
    arrays = read_json_arrays(data, pairs_hook)
    records: list[R] = []
    unparsed = list(arrays.unparsed)
    for item in arrays.items:
        record = convert(item) if isinstance(item, dict) else None
        if record is None:
            unparsed.append(json_dumps_safe(item))
        else:
            records.append(record)
    return Parsed(tuple(records), tuple(unparsed), arrays.truncated)


def records_from_lines(data: bytes, convert: Callable[[list[str]], R | None]) -> Parsed[R]:
    """The shared shape of one-record-per-line text parsers: each non-blank line's words
    become a record through `convert`, or the line goes to ``unparsed``."""
    records: list[R] = []
    unparsed: list[str] = []
    for line in lines_of(data):
        tokens = line.split()
        if not tokens:
            continue
        record = convert(tokens)
        if record is None:
            unparsed.append(line)
        else:
            records.append(record)
    return Parsed(tuple(records), tuple(unparsed))


def json_object(data: bytes) -> dict[str, Any] | Parsed[Any]:
    """One JSON object (a config file), or the empty result that says why there is none:
    broken or cut-off JSON gives its lines as unparsed and ``truncated``, never an error."""
    text = decode(data)
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        lines = tuple(line for line in text.split("\n") if line.strip())
        return Parsed((), lines, truncated=bool(text.strip()))
    if not isinstance(obj, dict):
        return Parsed((), (text.strip(),))
    return obj
