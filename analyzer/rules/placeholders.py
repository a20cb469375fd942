"""Working out a finding's placeholders and subject without CEL where that is safe: a
field of a variable (`{peer.pod_cidr}`), or a helper called on fields and quoted text
(`{route_via(node.name, peer.pod_cidr)}`). 10^4 findings would otherwise be 5x10^4 CEL
calls, each converting every binding. Anything else, and anything a lookup cannot
answer, is left to CEL."""

from __future__ import annotations

import re
from typing import Any

from needle.analyzer.rules.cel_adapter import CompiledExpression, HelperFunction

FieldPath = tuple[str, ...]
HelperCall = tuple[HelperFunction, tuple[FieldPath | str, ...]]

_PATH = re.compile(r"\s*[A-Za-z_]\w*(\s*\.\s*[A-Za-z_]\w*)+\s*")


def field_path(expression: str) -> FieldPath | None:
    if _PATH.fullmatch(expression) is None:
        return None
    return tuple(part.strip() for part in expression.split("."))


_CALL_SHAPE = re.compile(r"\s*([A-Za-z_]\w*)\s*\((.*)\)\s*")
_TEXT = re.compile(r"\s*'([^'\\]*)'\s*")


def helper_call(expression: str, helpers: dict[str, HelperFunction]) -> HelperCall | None:
    """A call of a helper whose arguments are field paths or quoted text, or None."""
    shape = _CALL_SHAPE.fullmatch(expression)
    if shape is None or shape.group(1) not in helpers:
        return None
    helper = helpers[shape.group(1)]
    arguments: list[FieldPath | str] = []
    for text in shape.group(2).split(",") if shape.group(2).strip() else []:
        quoted = _TEXT.fullmatch(text)
        path = field_path(text)
        if quoted is not None:
            arguments.append(quoted.group(1))
        elif path is not None:
            arguments.append(path)
        else:
            return None
    return (helper, tuple(arguments)) if len(arguments) == len(helper.params) else None


_MISSING = object()
_PYTHON_TYPES = {"string": str, "int": int, "bool": bool}


def _lookup(bindings: dict[str, Any], path: FieldPath) -> Any:
    value: Any = bindings
    for part in path:
        value = value.get(part, _MISSING) if type(value) is dict else _MISSING
        if value is _MISSING:
            break
    return value


def value_of(
    expression: CompiledExpression,
    bindings: dict[str, Any],
    paths: dict[str, FieldPath],
    calls: dict[str, HelperCall],
) -> Any:
    """What `expression` evaluates to. A field path is looked up directly, and a helper
    called on fields directly; whatever that cannot answer (an absent field, a value of
    another type, a helper that raises) is left to CEL to judge."""
    path = paths.get(expression.source)
    if path is not None:
        value = _lookup(bindings, path)
        if value is not _MISSING:
            return value
    call = calls.get(expression.source)
    if call is not None:
        helper, arguments = call
        values = [
            argument if type(argument) is str else _lookup(bindings, argument)
            for argument in arguments
        ]
        if all(
            type(value) is _PYTHON_TYPES.get(kind, object)
            for value, kind in zip(values, helper.params, strict=True)
        ):
            try:
                return helper.impl(*values)
            except Exception:  # noqa: BLE001, S110 - CEL evaluates it and names the error
                pass
    return expression.evaluate(bindings)
