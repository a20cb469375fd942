"""The one place that knows which CEL runtime needle uses (cel-expr-python).

Rules only ever see: compile an expression against declared variables and helper
functions, and evaluate it on plain dicts and lists. Swapping the runtime means
rewriting this module, nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cel_expr_python import cel

_POSITION = re.compile(r"<input>:(\d+):(\d+): (.*)")


class CelCompileError(Exception):
    """An expression that does not parse or type-check; line/column are 1-based within it."""

    def __init__(self, message: str, line: int | None, column: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


class CelEvalError(Exception):
    """An expression that failed while evaluating (a missing field, a bad helper call)."""


@dataclass(frozen=True)
class HelperFunction:
    """A Python function offered to rules, with its CEL signature."""

    name: str
    params: tuple[str, ...]  # "string", "int", "bool", "list", "map", "dyn"
    returns: str
    impl: Callable[..., Any]


_TYPES: dict[str, Any] = {
    "string": cel.Type.STRING,
    "int": cel.Type.INT,
    "bool": cel.Type.BOOL,
    "double": cel.Type.DOUBLE,
    "dyn": cel.Type.DYN,
    "list": cel.Type.List(cel.Type.DYN),
    "map": cel.Type.Map(cel.Type.STRING, cel.Type.DYN),
}


def _variable_type(kind: str) -> Any:
    return _TYPES[kind]


class CelEnvironment:
    """Variables and helper functions that expressions may use."""

    def __init__(self, variables: Mapping[str, str], helpers: Sequence[HelperFunction]) -> None:
        declarations = [
            cel.FunctionDecl(
                helper.name,
                [
                    cel.Overload(
                        f"{helper.name}_{'_'.join(helper.params)}",
                        return_type=_TYPES[helper.returns],
                        parameters=[_TYPES[p] for p in helper.params],
                        impl=helper.impl,
                    )
                ],
            )
            for helper in helpers
        ]
        self._env = cel.NewEnv(
            variables={name: _variable_type(kind) for name, kind in variables.items()},
            functions=declarations,
        )

    def compile(self, expression: str) -> CompiledExpression:
        try:
            return CompiledExpression(expression, self._env.compile(expression))
        except RuntimeError as exc:
            text = str(exc)
            match = _POSITION.search(text)
            if match is None:
                raise CelCompileError(text.splitlines()[0], None, None) from None
            raise CelCompileError(
                match.group(3).strip(), int(match.group(1)), int(match.group(2)) + 1
            ) from None


@dataclass(frozen=True)
class CompiledExpression:
    source: str
    _compiled: Any

    def evaluate(self, data: Mapping[str, Any]) -> Any:
        try:
            result = self._compiled.eval(data=data)
        except RuntimeError as exc:  # helper functions that raise end up here
            raise CelEvalError(str(exc).splitlines()[0]) from None
        if result.type() == cel.Type.ERROR:
            raise CelEvalError(str(result.value()))
        return result.plain_value()
