"""A pod namespace's routes and neighbours as the walk reads them, straight from their
JSON output: 10^5 pods' tables at 1,000 nodes, where building Route and Neighbour records
for each would cost more than all else the classes need. Text outputs (older iproute2)
and tables already read fall back to the records."""

from __future__ import annotations

import json
from typing import Any

from needle.analyzer.model.entities import Namespace
from needle.analyzer.reach import canon

# what of a route the walk reads (routing.decide, the devices' steps)
ROUTE_KEYS = ("dst", "type", "table", "dev", "gateway", "prefsrc", "metric", "flags", "nexthops")


def _value(value: Any, tokens: canon.Tokens) -> Any:
    if isinstance(value, str):
        return tokens.get(value, value)
    if isinstance(value, list):
        return tuple(_value(item, tokens) for item in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), _value(v, tokens)) for k, v in value.items()))
    return value if isinstance(value, (int, float, bool)) or value is None else repr(value)


def _rows(data: bytes | None) -> list[dict[str, Any]] | None:
    """The JSON rows of an output; None when only records will do (not JSON, not a
    list of objects)."""
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


def _routes(rows: list[dict[str, Any]], tokens: canon.Tokens) -> tuple[Any, ...]:
    # in the order `ip route` prints them: the same tables print alike
    return tuple(tuple(_value(row.get(key), tokens) for key in ROUTE_KEYS) for row in rows)


def _neighbours(rows: list[dict[str, Any]], tokens: canon.Tokens) -> tuple[Any, ...]:
    found: list[Any] = []
    for row in rows:
        state = row.get("state")
        states = (
            tuple(state)
            if isinstance(state, list) and all(isinstance(s, str) for s in state)
            else (repr(state),)
        )
        kind = canon.state_class(states)
        if kind == "resolved":  # a learnt entry passes as an absent one does
            continue
        lladdr = row.get("lladdr")
        found.append(
            (
                _value(row.get("dst"), tokens),
                _value(row.get("dev"), tokens),
                _value(lladdr.lower() if isinstance(lladdr, str) else lladdr, tokens),
                kind,
            )
        )
    return canon.unordered(found)


class PodTables:
    """One node's pods' routes and neighbours in their written-relative form, each
    distinct table worked out once: the text with the pod's own values (address, MAC,
    veth) taken out is the key, so 10^2 pods that a CNI set up alike cost one parse."""

    def __init__(self) -> None:
        self.known: dict[bytes, tuple[Any, Any]] = {}

    def of(self, space: Namespace, tokens: canon.Tokens, own: dict[str, str]) -> tuple[Any, Any]:
        """(routes, neighbours) of a pod's namespace; `own`: the pod's values and the
        role each plays (in `tokens` too)."""
        outputs = getattr(space.load_details, "outputs", None)
        if outputs is None:  # read already: the records
            return (
                tuple(canon.route(item, tokens) for item in space.routes),
                canon.unresolved_neighbours(space.neighbours, tokens),
            )
        routes = outputs.raw("routes", to_parse=True)
        neighbours = outputs.raw("neighbours", to_parse=True)
        key = (routes or b"-") + b"\0" + (neighbours or b"-")
        for value, role in own.items():
            key = key.replace(f'"{value}"'.encode(), f'"{role}"'.encode())
        found = self.known.get(key)
        if found is None:
            route_rows, neighbour_rows = _rows(routes), _rows(neighbours)
            found = self.known[key] = (
                tuple(canon.route(item, tokens) for item in space.routes)
                if route_rows is None
                else _routes(route_rows, tokens),
                canon.unresolved_neighbours(space.neighbours, tokens)
                if neighbour_rows is None
                else _neighbours(neighbour_rows, tokens),
            )
        return found


def interfaces(space: Namespace, tokens: canon.Tokens) -> tuple[Any, ...]:
    # by ifindex, as `ip link` prints them
    return tuple([canon.interface(item, tokens) for item in space.interfaces.values()])
