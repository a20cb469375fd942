"""The manifest, redacted one top-level value and one node record at a time.

A 1,000-node manifest is ~170 MB of JSON; parsed whole it would take over a gigabyte, and
even held as text it would be the largest thing in memory, so it is read from its file
one node record at a time (redact/jsonstream.py), and each record is redacted as an
object (names where names are, paths as paths) and written back on one line, as the
collector writes them.

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
from needle.redact.jsonstream import EncodingError, JsonText, JsonTextError, decoded
from needle.redact.names import NameMap
from needle.redact.text import TextRewriter

REDACTION_KEY = "redaction"
# Collector flags whose value names something on the collector's machine or the cluster.
_PRIVATE_FLAGS = frozenset(
    {"--kubeconfig", "--context", "--kube-dir", "-o", "--output", "--key-file", "--map-out"}
)
_PATH_KEYS = frozenset({"dir", "output", "stderr", "file"})
_NAME_KEYS = frozenset({"name", "peer_node", "node", "pod", "collector_host", "target"})
_STRINGS_KEPT = 1 << 13  # rewritten strings remembered, then all forgotten at once
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

    def rewrite(self, source: BinaryIO, record: dict[str, Any], sink: BinaryIO) -> None:
        """The manifest in `source`, redacted and with `record` added, written to `sink`
        piece by piece: only a node record at a time is held whole."""
        text = JsonText(decoded(source))
        try:
            self._walk(text, record, sink.write)
        except EncodingError as exc:
            raise ManifestError(f"manifest.json is not UTF-8 (byte {exc.byte})") from exc
        except JsonTextError as exc:
            raise ManifestError(f"manifest.json is not valid JSON: {exc}") from exc

    def _walk(self, text: JsonText, record: dict[str, Any], write: Callable[[bytes], Any]) -> None:
        def out(piece: str) -> None:
            write(piece.encode())

        text.skip_space()
        _expect(text, "{")
        first = True
        while True:
            text.skip_space()
            if text.take("}"):
                break
            if not first:
                _expect(text, ",")
                text.skip_space()
            key = text.decode()
            if not isinstance(key, str):
                raise ManifestError("manifest.json is not a JSON object")
            if key == REDACTION_KEY:
                raise ManifestError("the bundle is already redacted: redact the original bundle")
            text.skip_space()
            _expect(text, ":")
            text.skip_space()
            prefix = "{\n" if first else ",\n"
            first = False
            if key == "nodes" and text.take("["):
                out(f'{prefix}"nodes": [')
                self._nodes(text, out)
                out("\n]")
                continue
            value = text.decode()
            out(f"{prefix}{json.dumps(key)}: {_dump(self._top(key, value))}")
        text.skip_space()
        if text.peek():
            raise ManifestError("manifest.json is not valid JSON: more data after its object")
        if first:
            raise ManifestError("manifest.json is an empty object")
        out(f",\n{json.dumps(REDACTION_KEY)}: {json.dumps(record, indent=1)}\n}}\n")

    def _nodes(self, text: JsonText, out: Callable[[str], None]) -> None:
        for number, node in enumerate(text.items()):
            out(("\n" if not number else ",\n") + _dump(self._value(node, "")))
            self.rewriter.trim()  # what one node's record brought into the caches

    def _top(self, key: str, value: Any) -> Any:
        if key == "collection" and isinstance(value, dict):
            value = dict(value)
            if isinstance(value.get("command"), list):
                value["command"] = secrets.argv(
                    value["command"], _PRIVATE_FLAGS, self._keep_private
                )
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


def _minus(after: tuple[int, int, int], before: tuple[int, int, int]) -> tuple[int, int, int]:
    return after[0] - before[0], after[1] - before[1], after[2] - before[2]


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _expect(text: JsonText, char: str) -> None:
    if not text.take(char):
        raise ManifestError(
            f"manifest.json is not valid JSON: expected {char!r} at character {text.position}"
        )
