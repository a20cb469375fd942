"""The manifest, redacted one top-level value and one node record at a time.

A 1,000-node manifest is ~170 MB of JSON; parsed whole it would take over a gigabyte, so
it is walked with the JSON decoder's `raw_decode`, one node record at a time, and each
record is redacted as an object (names where names are, paths as paths) and written
back on one line, as the collector writes them.

What the redaction changes in the manifest itself: every command's `bytes` becomes null
(the outputs were rewritten, and the manifest is written before them), where the
Kubernetes objects came from (`cluster.origin`, a local path or an API server's URL)
and the paths and context on the collector's own command line become `<redacted>`, and
a `redaction` record says how the bundle was redacted (never the key).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, BinaryIO

from needle.redact import secrets
from needle.redact.names import NameMap
from needle.redact.text import TextRewriter

REDACTION_KEY = "redaction"
# Collector flags whose value names something on the collector's machine or the cluster.
_PRIVATE_FLAGS = frozenset(
    {"--kubeconfig", "--context", "--kube-dir", "-o", "--output", "--key-file", "--map-out"}
)
_PATH_KEYS = frozenset({"dir", "output", "stderr", "file"})
_NAME_KEYS = frozenset({"name", "peer_node", "node", "pod", "collector_host", "target"})
_WHITESPACE = " \t\r\n"
_STRINGS_KEPT = 1 << 16  # rewritten strings remembered, then all forgotten at once
_Strings = dict[str, tuple[str, tuple[int, int, int] | None]]


class ManifestError(ValueError):
    """A manifest that is not the JSON object a bundle needs."""


class ManifestRedactor:
    def __init__(self, rewriter: TextRewriter, names: NameMap) -> None:
        self.rewriter = rewriter
        self.names = names
        # the collector's own paths and context, wherever they are repeated (an error
        # such as "no nodes objects in /home/alice/dump")
        self._private: list[str] = []
        # a string as a path, a name or text -> what it was rewritten to, and the
        # (addresses, MACs, names) that replaced: a manifest repeats its strings a lot
        self._strings: tuple[_Strings, _Strings, _Strings] = ({}, {}, {})
        self._by_key: dict[str, _Strings] = {}

    def rewrite(self, data: bytes, record: dict[str, Any], sink: BinaryIO | None = None) -> bytes:
        """The redacted manifest; or, with `sink`, written there piece by piece (and b""
        returned), so that only the text read is ever held whole."""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ManifestError(f"manifest.json is not UTF-8 (byte {exc.start})") from exc
        del data  # when the caller passed its only reference: 170 MB at 1,000 nodes
        decoder = json.JSONDecoder()
        out: list[str] | _Written = [] if sink is None else _Written(sink)
        position = _expect(text, _skip(text, 0), "{")
        first = True
        while True:
            position = _skip(text, position)
            if text.startswith("}", position):
                break
            if not first:
                position = _skip(text, _expect(text, position, ","))
            key, position = _decode(decoder, text, position)
            if not isinstance(key, str):
                raise ManifestError("manifest.json is not a JSON object")
            if key == REDACTION_KEY:
                raise ManifestError("the bundle is already redacted: redact the original bundle")
            position = _skip(text, _expect(text, _skip(text, position), ":"))
            prefix = "{\n" if first else ",\n"
            first = False
            if key == "nodes" and text.startswith("[", position):
                out.append(f'{prefix}"nodes": [')
                position = self._nodes(decoder, text, position + 1, out)
                out.append("\n]")
                continue
            value, position = _decode(decoder, text, position)
            out.append(f"{prefix}{json.dumps(key)}: {_dump(self._top(key, value))}")
        if _skip(text, position + 1) != len(text):
            raise ManifestError("manifest.json is not valid JSON: more data after its object")
        out.append(f",\n{json.dumps(REDACTION_KEY)}: {json.dumps(record, indent=1)}\n}}\n")
        if first:
            raise ManifestError("manifest.json is an empty object")
        return "".join(out).encode() if isinstance(out, list) else b""

    def _nodes(
        self, decoder: json.JSONDecoder, text: str, position: int, out: list[str] | _Written
    ) -> int:
        first = True
        while True:
            position = _skip(text, position)
            if text.startswith("]", position):
                return position + 1
            if not first:
                position = _skip(text, _expect(text, position, ","))
            node, position = _decode(decoder, text, position)
            out.append(("\n" if first else ",\n") + _dump(self._value(node, "")))
            first = False

    def _top(self, key: str, value: Any) -> Any:
        if key == "collection" and isinstance(value, dict):
            value = dict(value)
            if isinstance(value.get("command"), list):
                value["command"] = _command(value["command"], self._keep_private)
        if key == "cluster" and isinstance(value, dict) and value.get("origin") is not None:
            self._keep_private(value["origin"])
            value = {**value, "origin": secrets.REDACTED}
        return self._value(value, key)

    def _keep_private(self, value: object) -> None:
        if isinstance(value, str) and len(value) > 2:
            for strings in self._strings:
                strings.clear()  # what they were rewritten to no longer holds
            self._private.append(value)
            if value.startswith("/") and len(value) > 3:
                self._private.append(value.rstrip("/"))
            self._private.sort(key=len, reverse=True)

    def _value(self, value: Any, key: str) -> Any:
        if isinstance(value, str):
            return self._string(value, key)
        if isinstance(value, list):
            return [self._value(item, key) for item in value]
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for name, item in value.items():  # a command's dozen fields, 558,000 times
                if name == "bytes":
                    out[name] = None
                elif isinstance(item, str):
                    out[name] = self._string(item, name)
                elif isinstance(item, list | dict):
                    out[name] = self._value(item, name)
                else:
                    out[name] = item
            return out
        return value

    def _string(self, value: str, key: str) -> str:
        strings = self._by_key.get(key)
        if strings is None:  # the strings of the key's role: a path, a name or text
            role = 0 if key in _PATH_KEYS else 1 if key in _NAME_KEYS or key == "command" else 2
            strings = self._by_key[key] = self._strings[role]
        counts = self.rewriter.counts
        known = strings.get(value)
        if known is not None:
            if known[1] is not None:
                counts.addresses += known[1][0]
                counts.macs += known[1][1]
                counts.names += known[1][2]
            return known[0]
        before = (counts.addresses, counts.macs, counts.names)
        rewritten = self._rewrite_string(value, key)
        after = (counts.addresses, counts.macs, counts.names)
        if len(strings) >= _STRINGS_KEPT:
            strings.clear()
        strings[value] = (rewritten, None if after == before else _minus(after, before))
        return rewritten

    def _rewrite_string(self, value: str, key: str) -> str:
        if key in _PATH_KEYS:
            return self.rewriter.path(value)
        if key in _NAME_KEYS or key == "command":
            exact = self.names.lookup(value)
            if exact is not None:
                self.rewriter.counts.names += 1
                return exact
            if "/" in value and " " not in value:  # namespace/pod
                return self.rewriter.path(value)
            if "=" in value and " " not in value:  # --netns NS=NODE
                return "=".join(self.rewriter.part(part) for part in value.split("="))
        for private in self._private:
            if private in value:
                value = value.replace(private, secrets.REDACTED)
        return self.rewriter.text(secrets.text(value))


def _command(argv: list[Any], keep_private: Callable[[object], None]) -> list[Any]:
    out: list[Any] = []
    hide = False
    for arg in secrets.argv(argv):
        if hide:
            keep_private(arg)
            out.append(secrets.REDACTED)
            hide = False
            continue
        if isinstance(arg, str) and "=" in arg and arg.split("=", 1)[0] in _PRIVATE_FLAGS:
            flag, value = arg.split("=", 1)
            keep_private(value)
            out.append(f"{flag}={secrets.REDACTED}")
            continue
        hide = arg in _PRIVATE_FLAGS
        out.append(arg)
    return out


def _minus(after: tuple[int, int, int], before: tuple[int, int, int]) -> tuple[int, int, int]:
    return after[0] - before[0], after[1] - before[1], after[2] - before[2]


class _Written:
    """Where the manifest goes piece by piece when `rewrite` is given a sink."""

    def __init__(self, sink: BinaryIO) -> None:
        self._write = sink.write

    def append(self, piece: str) -> None:
        self._write(piece.encode())


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _skip(text: str, position: int) -> int:
    while position < len(text) and text[position] in _WHITESPACE:
        position += 1
    return position


def _expect(text: str, position: int, char: str) -> int:
    if not text.startswith(char, position):
        raise ManifestError(
            f"manifest.json is not valid JSON: expected {char!r} at character {position}"
        )
    return position + 1


def _decode(decoder: json.JSONDecoder, text: str, position: int) -> tuple[Any, int]:
    try:
        return decoder.raw_decode(text, position)
    except json.JSONDecodeError as exc:
        raise ManifestError(
            f"manifest.json is not valid JSON: {exc.msg} at character {exc.pos}"
        ) from exc
