"""Reads the ``-j`` JSON form of ``ip route show table all`` (``ip -d -j route show table
all``) into the same ``Route`` records the text form gives.

iproute2 spells a few things differently in JSON: ``protocol`` and ``prefsrc`` for the
text's ``proto`` and ``src``, ``via`` as an object, metrics as a list of objects, flag
words of ``nh_info`` and of the cache as lists. They are mapped back to the text form's
spelling so that both forms compare equal. Keys this reader does not know land in
``Route.extra``; elements that are not routes land in ``Parsed.unparsed``.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from needle.analyzer.parsers.common import (
    Parsed,
    json_dumps_safe,
    records_from_json,
    to_int,
    to_str,
)
from needle.analyzer.parsers.elements import ElementMemo
from needle.analyzer.parsers.ip_route_fast import quick_json_route
from needle.analyzer.parsers.ip_route_record import Nexthop, Route, make_route

# The key of an encap's own keys (see _route_pairs): not a string iproute2 can print.
_ENCAP = "\x00encap"

_STR_FIELDS = MappingProxyType(
    {
        "dev": "dev",
        "table": "table",
        "protocol": "proto",
        "scope": "scope",
        "prefsrc": "src",
        "from": "from_prefix",
        "tos": "tos",
        "dsfield": "tos",
        "pref": "pref",
    }
)
_INT_FIELDS = ("metric", "expires", "error", "nhid")
_HANDLED = frozenset(
    {"type", "dst", "gateway", "via", "flags", "metrics", "nexthops", "nh_info", "flow"}
    | set(_STR_FIELDS)
    | set(_INT_FIELDS)
    | {_ENCAP, "cache"}
)
# Where an encap's keys end: the route keys iproute2 writes after it.
_ENCAP_END = frozenset(
    {
        "gateway",
        "via",
        "dev",
        "table",
        "protocol",
        "scope",
        "prefsrc",
        "metric",
        "flags",
        "metrics",
        "pref",
        "expires",
        "nexthops",
        "nh_info",
        "flow",
        "cache",
        "weight",
    }
)


def parse_ip_route_json(data: bytes) -> Parsed[Route]:
    """The ``-j`` form. A cut-off file yields the routes before the cut, ``truncated`` set."""
    raw = data if isinstance(data, str) else bytes(data)
    if ('"encap"' if isinstance(raw, str) else b'"encap"') in raw:
        # An encap's keys share the route object's, so only a reader that sees the keys
        # in order can keep them apart.
        return records_from_json(raw, _route_from_json, _route_pairs)
    return _ELEMENTS.records(raw)


def route_from_json(obj: dict[str, Any]) -> Route | None:
    """The route of one ``-j`` element; None when it has no destination."""
    dst = obj.get("dst")
    if not isinstance(dst, str) or not dst:
        return None
    fields: dict[str, Any] = {"dst": dst}
    rtype = obj.get("type")
    if isinstance(rtype, str):
        fields["type"] = rtype
    for key, name in _STR_FIELDS.items():
        value = to_str(obj.get(key))
        if value is not None:
            fields[name] = value
    for key in _INT_FIELDS:
        number = to_int(obj.get(key))
        if number is not None:
            fields[key] = number
    _gateway(obj, fields)
    fields["flags"] = _flags(obj.get("flags"))
    metrics, locked = _metrics(obj.get("metrics"))
    if metrics:
        fields["metrics"] = metrics
    if locked:
        fields["locked"] = locked
    flow = obj.get("flow")
    if isinstance(flow, dict):
        parts = [to_str(flow.get(k)) for k in ("from", "to") if flow.get(k) is not None]
        fields["realms"] = "/".join(p for p in parts if p)
    encap = obj.get(_ENCAP)
    if isinstance(encap, list):
        fields["encap"] = _encap(encap)
    nexthops = obj.get("nexthops")
    if isinstance(nexthops, list):
        fields["nexthops"] = tuple(_nexthop(n) for n in nexthops if isinstance(n, dict))
    nh_info = obj.get("nh_info")
    if isinstance(nh_info, dict):
        fields["nh_info"] = _nh_info(nh_info)
    cache = obj.get("cache")
    if cache is not None:
        fields["cached"] = True
        if isinstance(cache, list):
            fields["cache_flags"] = tuple(str(f) for f in cache)
    extra: list[str] = []
    for key, value in obj.items():
        if key not in _HANDLED:
            extra.append(key)
            if value is not None:
                extra.append(to_str(value) or json_dumps_safe(value))
    if extra:
        fields["extra"] = tuple(extra)
    return make_route(fields)


def _route_from_json(obj: dict[str, Any]) -> Route | None:
    # The everyday route has a quicker reader that gives the same Route, or None when the
    # route is not one of them (ip_route_fast.py).
    return quick_json_route(obj) or route_from_json(obj)


# Equal elements become one shared Route: every node routes each peer's pod CIDR the same
# way, so a 1,000-node bundle's 10^6 route elements are ~10^3 distinct ones (elements.py).
_ELEMENTS = ElementMemo(_route_from_json)


def _route_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Object hook for route JSON: iproute2 writes an encap's keys (``dst``, ``src``, ...)
    straight into the route object, so a plain dict would let the encap's ``dst`` overwrite
    the route's. Keys after ``encap`` are kept apart until a route key comes back."""
    out: dict[str, Any] = {}
    encap: list[tuple[str, Any]] | None = None
    inside = False
    for key, value in pairs:
        if key == "encap" and encap is None and isinstance(value, str):
            encap = [("type", value)]
            inside = True
            continue
        if inside:
            if key not in _ENCAP_END:
                encap.append((key, value))  # type: ignore[union-attr]
                continue
            inside = False
        out[key] = value
    if encap is not None:
        out[_ENCAP] = encap
    return out


def _gateway(obj: dict[str, Any], fields: dict[str, Any]) -> None:
    gateway = to_str(obj.get("gateway"))
    if gateway is not None:
        fields["gateway"] = gateway
    via = obj.get("via")
    if isinstance(via, dict):
        fields["gateway"] = to_str(via.get("host"))
        fields["via_family"] = to_str(via.get("family"))


def _flags(value: object) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(str(f) for f in value)
    return ()


def _metrics(value: object) -> tuple[dict[str, int | str], tuple[str, ...]]:
    """The metrics and the locked metric names."""
    metrics: dict[str, int | str] = {}
    locked: list[str] = []
    blocks = value if isinstance(value, list) else [value]
    for block in blocks:
        if not isinstance(block, dict):
            continue
        for key, raw in block.items():
            # JSON drops the text form's "features"/"congctl" words: map back to them.
            if raw is None:
                metrics["features"] = key
            elif key == "congestion":
                metrics["congctl"] = str(raw)
            elif key == "lock" and isinstance(raw, list):
                locked.extend(str(x) for x in raw)
            else:
                number = to_int(raw)
                metrics[key] = number if number is not None else str(raw)
    return metrics, tuple(locked)


def _encap(pairs: list[tuple[str, Any]]) -> tuple[str, ...]:
    """The encap's words as the text form prints them: type first, then key and value."""
    words: list[str] = []
    for key, value in pairs:
        if key != "type":
            words.append(key)
        text = to_str(value)
        if text is not None and not (isinstance(value, bool) and value):
            words.append(text)
        elif isinstance(value, list):
            words.extend(str(v) for v in value)
    return tuple(words)


_NEXTHOP_HANDLED = frozenset({"gateway", "via", "dev", "weight", "flags", _ENCAP, "flow"})


def _nexthop(obj: dict[str, Any]) -> Nexthop:
    fields: dict[str, Any] = {}
    _gateway(obj, fields)
    dev = to_str(obj.get("dev"))
    if dev is not None:
        fields["dev"] = dev
    weight = to_int(obj.get("weight"))
    if weight is not None:
        fields["weight"] = weight
    fields["flags"] = _flags(obj.get("flags"))
    encap = obj.get(_ENCAP)
    if isinstance(encap, list):
        fields["encap"] = _encap(encap)
    flow = obj.get("flow")
    if isinstance(flow, dict):
        fields["realms"] = "/".join(str(flow[k]) for k in ("from", "to") if flow.get(k) is not None)
    extra = [f"{k}={json_dumps_safe(v)}" for k, v in obj.items() if k not in _NEXTHOP_HANDLED]
    if extra:
        fields["extra"] = tuple(extra)
    return Nexthop(**fields)


_NH_INFO_WORDS = MappingProxyType({"protocol": "proto", "gateway": "via"})


def _nh_info(obj: dict[str, Any]) -> tuple[str, ...]:
    # Spelled as the text form's "nh_info" line prints it, so both forms compare equal.
    words: list[str] = []
    for key, value in obj.items():
        if key == "flags":
            if isinstance(value, list):
                words.extend(str(f) for f in value)
            continue
        name = _NH_INFO_WORDS.get(key, key)
        if key == "group" and isinstance(value, list):
            text = "/".join(
                str(g.get("id")) + (f",{g['weight']}" if "weight" in g else "")
                for g in value
                if isinstance(g, dict)
            )
        else:
            text = to_str(value) or json_dumps_safe(value)
        words.extend((name, text))
    return tuple(words)
