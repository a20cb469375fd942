"""Usage errors in needle's words: what was wrong with which value, and what to type.

typer checks option values with pydantic and passes pydantic's sentences on ("Value
error, 'jsn' is not one of ...", "Input should be a valid integer, unable to parse
string as an integer"). The command line is needle's interface, so its usage errors are
rewritten here from the facts of the error (the parameter, the value, the check that
failed), not from the library's text.
"""

from __future__ import annotations

from typing import Any

from needle.analyzer.terminal import did_you_mean

try:  # typer >= 0.26 vendors click; older releases depend on it
    from typer._click.exceptions import (
        BadParameter,
        MissingParameter,
        NoSuchOption,
        UsageError,
    )
except ImportError:  # pragma: no cover - exercised only with older typer
    from click.exceptions import (  # type: ignore[no-redef,assignment]
        BadParameter,
        MissingParameter,
        NoSuchOption,
        UsageError,
    )

_LIBRARY_PREFIXES = ("Value error, ", "Assertion failed, ")


def parameter_name(param: Any) -> str:
    """How the command line spells a parameter: its long option, or its metavar."""
    opts = [opt for opt in getattr(param, "opts", []) if opt.startswith("-")]
    if getattr(param, "param_type_name", "") == "option" and opts:
        return max(opts, key=len)
    return str(getattr(param, "metavar", None) or (param.name or "").upper())


def _choices(param: Any) -> list[str]:
    """The values a parameter accepts, when it is a choice ([] otherwise)."""
    descriptor = getattr(param, "type_descriptor", None)
    found = None
    if getattr(descriptor, "is_choice", False):
        found = getattr(descriptor, "choices", None)
    if found is None:  # click's own Choice type (older typer)
        found = getattr(getattr(param, "type", None), "choices", None)
    return [str(getattr(choice, "value", choice)) for choice in found or ()]


def _first_error(exc: BaseException) -> dict[str, Any]:
    """The first of the validation errors behind `exc`, if a validator raised it."""
    errors = getattr(exc.__cause__, "errors", None)
    if not callable(errors):
        return {}
    try:
        found = errors()
    except Exception:  # noqa: BLE001 - any other library's exception: no details
        return {}
    return dict(found[0]) if found else {}


def _plain(message: str) -> str:
    """A library's sentence as part of ours: no validator prefix, no capital, no stop."""
    for prefix in _LIBRARY_PREFIXES:
        message = message.removeprefix(prefix)
    message = message.rstrip(".").replace(". Did you mean", "; did you mean")
    return message[:1].lower() + message[1:]


def _reason(exc: BadParameter, choices: list[str]) -> str:
    error = _first_error(exc)
    value = error.get("input")
    limits = error.get("ctx") or {}
    kind = error.get("type", "")
    shown = repr(value) if isinstance(value, str) else str(value)
    if choices and isinstance(value, str):
        reason = f"{shown} is not one of {', '.join(choices)}"
        suggestion = did_you_mean(value, choices)
        return f"{reason}; {suggestion}" if suggestion else reason
    if kind == "int_parsing":
        return f"{shown} is not a whole number"
    if kind == "float_parsing":
        return f"{shown} is not a number"
    if kind in ("greater_than_equal", "greater_than"):
        least = "at least" if "ge" in limits else "above"
        return f"{value} is too small: it must be {least} {limits.get('ge', limits.get('gt'))}"
    if kind in ("less_than_equal", "less_than"):
        most = "at most" if "le" in limits else "below"
        return f"{value} is too large: it must be {most} {limits.get('le', limits.get('lt'))}"
    return _plain(exc.message)


def usage_message(exc: UsageError) -> str:
    """One sentence for a usage error, without library wording or class names."""
    if isinstance(exc, MissingParameter) and exc.param is not None:
        kind = "option" if getattr(exc.param, "param_type_name", "") == "option" else "argument"
        choices = _choices(exc.param)
        one_of = f" (one of {', '.join(choices)})" if choices else ""
        return f"missing {kind} {parameter_name(exc.param)}{one_of}"
    if isinstance(exc, BadParameter) and exc.param is not None:
        name = parameter_name(exc.param)
        return f"invalid value for {name}: {_reason(exc, _choices(exc.param))}"
    if isinstance(exc, NoSuchOption) and exc.possibilities:
        suggestion = did_you_mean(exc.option_name, sorted(exc.possibilities))
        if suggestion:
            return f"no such option {exc.option_name}; {suggestion}"
    return _plain(exc.format_message())
