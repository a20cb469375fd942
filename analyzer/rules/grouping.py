"""Items of a large collection grouped by the values a rule reads, so CEL judges each
distinct set of values once (a healthy cluster's 10^6 FDB entries hold ~10^3)."""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from needle.analyzer.rules.facts import Fact

_ABSENT = object()


@dataclass
class Alike:
    """Items keyed by the values of the fields a rule reads: `first` maps each distinct
    key to the first item holding it."""

    keys: list[Any]
    first: dict[Any, int]


def alike(items: list[Fact], fields: tuple[str, ...], at_least: int) -> Alike | None:
    """The items' keys, or None when grouping would not pay (fewer than `at_least`
    items, or most distinct). (Facts hold one type per field, so Python's 1 == True
    never merges unlike values.)"""
    if len(items) < at_least:
        return None
    try:
        # itemgetter and dict() do the per-item work in C: 10^6 FDB entries, ~0.1 s
        keys: list[Any] = list(map(itemgetter(*fields), items)) if fields else [()] * len(items)
        # built from the end, so each key keeps its first (lowest) index
        first = dict(zip(reversed(keys), range(len(keys) - 1, -1, -1), strict=True))
    except (KeyError, TypeError):  # a field some items lack, or a list value
        keys = [_key(item, fields) for item in items]
        try:
            first = dict(zip(reversed(keys), range(len(keys) - 1, -1, -1), strict=True))
        except TypeError:  # a dict-valued field: no grouping, every item goes to CEL
            return None
    if len(first) > len(items) // 2:
        return None
    return Alike(keys, first)


def _key(item: Fact, fields: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(
        tuple(value) if type(value) is list else value
        for value in (item.get(name, _ABSENT) for name in fields)
    )
