"""Kubernetes objects (cluster/*.json) redacted as objects, not as text: a name is mapped
where a name is expected (metadata, ownerReferences, nodeName, a Hostname address), a
secret-looking env value or flag is removed, and every other string goes through the
text pass (addresses, MACs, hyphenated names inside annotations and config maps).

What the analyzer never reads and only repeats the object (managedFields, kubectl's
last-applied-configuration annotation) is dropped rather than redacted.
"""

from __future__ import annotations

from typing import Any

from needle.redact import secrets
from needle.redact.names import NameMap
from needle.redact.text import TextRewriter

# Keys whose string value is a name (or a list of them, as in a node affinity's values).
NAME_KEYS = frozenset(
    {
        "name",
        "namespace",
        "generateName",
        "nodeName",
        "hostname",
        "address",
        "values",
        "kubernetes.io/hostname",
        "host",
    }
)
_LABELS = frozenset({"labels", "matchLabels", "selector", "nodeSelector"})
DROPPED_ANNOTATIONS = frozenset({"kubectl.kubernetes.io/last-applied-configuration"})
DROPPED_KEYS = frozenset({"managedFields"})


class ObjectRedactor:
    def __init__(self, rewriter: TextRewriter, names: NameMap) -> None:
        self.rewriter = rewriter
        self.names = names

    def document(self, value: Any) -> Any:
        return self._value(value, "")

    def _value(self, value: Any, key: str) -> Any:
        if isinstance(value, str):
            return self._string(value, key)
        if isinstance(value, list):
            if key in ("args", "command"):
                value = secrets.argv(value)
            return [self._value(item, key) for item in value]
        if isinstance(value, dict):
            return self._object(value, key)
        return value

    def _object(self, value: dict[str, Any], key: str) -> dict[str, Any]:
        if "name" in value and "value" in value:
            value = dict(value)
            secrets.env_entry(value)
        out: dict[str, Any] = {}
        for name, item in value.items():
            if name in DROPPED_KEYS or (key == "annotations" and name in DROPPED_ANNOTATIONS):
                continue
            mapped_key = (
                self.rewriter.text(name) if key in ("labels", "annotations", "data") else name
            )
            if key in _LABELS and isinstance(item, str):
                # a label repeats a name (app: web, the stem of web-7d4b9c8f6d-x2x7q)
                exact = self.names.lookup(item)
                if exact is not None:
                    self.rewriter.counts.names += 1
                    out[mapped_key] = exact
                    continue
            out[mapped_key] = self._value(item, name)
        return out

    def _string(self, value: str, key: str) -> str:
        if key == "generateName" and value.endswith("-"):
            stem = self.names.lookup(value[:-1])
            if stem is not None:
                self.rewriter.counts.names += 1
                return f"{stem}-"
        if key in NAME_KEYS or self.names.is_machine(value):
            exact = self.names.lookup(value)
            if exact is not None:
                self.rewriter.counts.names += 1
                return exact
        return self.rewriter.text(secrets.text(value))
