"""JSON text walked a value at a time from a file, in bounded memory.

The manifest of a 1,000-node bundle is ~170 MB and its pods.json tens of MB: read whole
they would put the redaction's memory in proportion to the cluster. Their values (a
node's record, a pod) are small and independent, so the text is held in a window that
moves on as values are decoded with the JSON decoder's `raw_decode`: what is decoded is
exactly what `raw_decode` on the whole text would give, and a position in an error is
counted from the start of the whole text.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from typing import Any, BinaryIO

CHUNK = 1 << 20  # bytes read at a time, and characters the window grows by at least
_DECODER = json.JSONDecoder()
_WHITESPACE = re.compile(r"[ \t\n\r]*")  # json's own
# A value decoded this close to the end of the window is decoded again once more text
# is there: a number cut at the window's end (`1.` of `1.5`, `2e` of `2e+5`) decodes as
# a shorter number, and at most two of its characters would be left unread.
_SURE = 3


class JsonTextError(ValueError):
    """Not valid JSON: `msg` as the JSON decoder says it, at character `pos` of the text."""

    def __init__(self, msg: str, pos: int) -> None:
        super().__init__(f"{msg} at character {pos}")
        self.msg = msg
        self.pos = pos


class EncodingError(ValueError):
    """The bytes are not text in the encoding: the first bad one is at `byte`."""

    def __init__(self, encoding: str, byte: int) -> None:
        super().__init__(f"not {encoding} at byte {byte}")
        self.byte = byte


def decoded(stream: BinaryIO, encoding: str = "utf-8", errors: str = "strict") -> Iterator[str]:
    """The text of `stream`, a piece at a time (a character cut between reads is whole in
    the next piece)."""
    decoder = codecs.getincrementaldecoder(encoding)(errors)
    fed = 0  # bytes handed to the decoder so far
    while True:
        data = stream.read(CHUNK)
        held = len(decoder.getstate()[0])  # bytes of a character the last read cut
        try:
            text = decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            # the error counts from the bytes held back, then this read's
            raise EncodingError(encoding, fed - held + exc.start) from exc
        fed += len(data)
        if text:
            yield text
        if not data:
            return


class JsonText:
    """A cursor over JSON text that arrives in pieces (see the module docstring)."""

    def __init__(self, pieces: Iterator[str]) -> None:
        self._pieces = pieces
        self._text = ""  # the window
        self._at = 0  # the cursor, in the window
        self._before = 0  # characters of the text before the window
        self._ended = False

    @property
    def position(self) -> int:
        """The cursor, in characters from the start of the text."""
        return self._before + self._at

    def skip_space(self) -> None:
        while True:
            self._at = _WHITESPACE.match(self._text, self._at).end()  # type: ignore[union-attr]
            if self._at < len(self._text) or not self._more():
                return

    def peek(self) -> str:
        """The character at the cursor ("" at the end of the text)."""
        if self._at >= len(self._text) and not self._more():
            return ""
        return self._text[self._at]

    def take(self, char: str) -> bool:
        """Whether the character at the cursor is `char`; if so the cursor passes it."""
        if self.peek() != char:
            return False
        self._at += 1
        return True

    def decode(self) -> Any:
        """The JSON value at the cursor; the cursor moves past it. (A value that is not
        JSON is known not to be only once the window holds the rest of the text: an
        error costs memory, a valid text never does.)"""
        while True:
            try:
                value, end = _DECODER.raw_decode(self._text, self._at)
            except json.JSONDecodeError as exc:
                if self._more():
                    continue  # the value may only have been cut by the window's end
                raise JsonTextError(exc.msg, self._before + exc.pos) from None
            if end + _SURE > len(self._text) and self._more():
                continue
            self._at = end
            return value

    def items(self, trailing_comma: bool = False) -> Iterator[Any]:
        """The values of the array whose "[" the cursor has just passed, the cursor then
        past its "]". With `trailing_comma`, a "," before the "]" is let through."""
        space, raw_decode = _WHITESPACE.match, _DECODER.raw_decode
        first = True
        while True:
            # Most values, and what comes before them, lie well inside the window: read
            # them without a call a character; where the window's end comes near, or an
            # error, the methods above take over from the same place.
            text, start = self._text, self._at
            at = space(text, start).end()  # type: ignore[union-attr]
            if at + _SURE < len(text):
                if text[at] == "]":
                    self._at = at + 1
                    return
                if not first:
                    if text[at] != ",":
                        raise JsonTextError("expected ','", self._before + at)
                    at = space(text, at + 1).end()  # type: ignore[union-attr]
                    if trailing_comma and text.startswith("]", at):
                        self._at = at + 1
                        return
                try:
                    value, end = raw_decode(text, at)
                except json.JSONDecodeError:
                    end = len(text)
                if end + _SURE <= len(text):
                    self._at = end
                    first = False
                    yield value
                    continue
            self._at = start
            self.skip_space()
            if self.take("]"):
                return
            if not first:
                if not self.take(","):
                    raise JsonTextError("expected ','", self.position)
                self.skip_space()
                if trailing_comma and self.take("]"):
                    return
            first = False
            yield self.decode()

    def _more(self) -> bool:
        """Move the window to start at the cursor and add at least as much text again as
        it holds from there (so a long value is decoded a few times, not once a chunk);
        False if the text had ended."""
        if self._ended:
            return False
        self._before += self._at
        kept = self._text[self._at :]
        wanted = max(len(kept), CHUNK)
        pieces = [kept]
        got = 0
        while got < wanted:
            piece = next(self._pieces, None)
            if piece is None:
                self._ended = True
                break
            pieces.append(piece)
            got += len(piece)
        self._text = "".join(pieces)
        self._at = 0
        return got > 0
