"""A pod namespace's routes and neighbours as the walk reads them, straight from their
JSON output: 10^5 pods' tables at 1,000 nodes, where building Route and Neighbour records
for each would cost more than all else the classes need. Text outputs (older iproute2)
and tables already read fall back to the records."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from needle.analyzer.model.entities import Namespace
from needle.analyzer.reach import canon

# what of a route the walk reads (routing.decide, the devices' steps)
ROUTE_KEYS = ("dst", "type", "table", "dev", "gateway", "prefsrc", "metric", "flags", "nexthops")
# a learnt entry passes as an absent one does: only the others make a pod differ
_LEARNT = frozenset({"REACHABLE", "STALE", "DELAY", "PROBE", "NONE"})


def _value(value: Any, tokens: canon.Tokens) -> Any:
    if isinstance(value, str):
        return tokens.get(value, value)
    if isinstance(value, list):
        return tuple(_value(item, tokens) for item in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), _value(v, tokens)) for k, v in value.items()))
    return value if isinstance(value, (int, float, bool)) or value is None else repr(value)


def _rows(space: Namespace, what: str) -> list[dict[str, Any]] | None:
    """The JSON rows of one of the namespace's outputs; None when only records will do
    (already read, not JSON, not a list of objects)."""
    loader = space.load_details
    outputs = getattr(loader, "outputs", None)
    if outputs is None:
        return None
    data = outputs.raw(what, to_parse=True)
    if data is None:
        return []
    if data.lstrip()[:1] != b"[":
        return None
    try:
        rows = json.loads(data)
    except ValueError:
        return None
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        return None
    return rows


def routes(space: Namespace, tokens: canon.Tokens) -> tuple[Any, ...]:
    rows = _rows(space, "routes")
    if rows is None:
        return tuple(sorted((canon.route(item, tokens) for item in space.routes), key=repr))
    # in the order `ip route` prints them: the same tables print alike
    return tuple(tuple(_value(row.get(key), tokens) for key in ROUTE_KEYS) for row in rows)


def neighbours(space: Namespace, tokens: canon.Tokens) -> tuple[Any, ...]:
    rows = _rows(space, "neighbours")
    if rows is None:
        return canon.unresolved_neighbours(space.neighbours, tokens)
    found: list[Any] = []
    for row in rows:
        state = row.get("state")
        states = (
            frozenset(state)
            if isinstance(state, list) and all(isinstance(s, str) for s in state)
            else frozenset({repr(state)})
        )
        if states and states <= _LEARNT:
            continue
        lladdr = row.get("lladdr")
        found.append(
            (
                _value(row.get("dst"), tokens),
                _value(row.get("dev"), tokens),
                _value(lladdr.lower() if isinstance(lladdr, str) else lladdr, tokens),
                tuple(sorted(states)),
            )
        )
    return tuple(found)


def interfaces(space: Namespace, tokens: canon.Tokens) -> tuple[Any, ...]:
    return tuple(
        sorted((canon.interface(item, tokens) for item in space.interfaces.values()), key=repr)
    )


__all__: Iterable[str] = ("interfaces", "neighbours", "routes")
