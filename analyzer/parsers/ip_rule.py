"""Parses ``ip rule`` (``ip rule show``, ``ip -6 rule``).

Forms: the ``-j`` JSON form (``ip -j rule``) and the text form (``PRIO:<tab>selector
action``). One ``Rule`` per line; ``src``/``dst`` are prefixes (``all`` when the rule
matches everything), ``action`` is ``lookup`` unless the rule is a ``goto``, ``nop`` or
``blackhole``/``unreachable``/``prohibit``.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from needle.analyzer.parsers.common import (
    Parsed,
    json_dumps_safe,
    looks_like_json,
    records_from_json,
    records_from_lines,
    to_int,
    to_str,
)

RULE_ACTIONS = frozenset({"blackhole", "unreachable", "prohibit", "nop"})


@dataclass(frozen=True, slots=True)
class Rule:
    """One policy-routing rule."""

    priority: int
    src: str = "all"
    dst: str | None = None
    invert: bool = False  # "not"
    table: str | None = None
    action: str = "lookup"
    goto: int | None = None
    iif: str | None = None
    oif: str | None = None
    fwmark: str | None = None
    fwmask: str | None = None
    tos: str | None = None
    suppress_prefixlength: int | None = None
    suppress_ifgroup: str | None = None
    uidrange: str | None = None
    ipproto: str | None = None
    sport: str | None = None
    dport: str | None = None
    l3mdev: bool = False
    proto: str | None = None
    realms: str | None = None
    flags: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()


def parse_ip_rule(data: bytes) -> Parsed[Rule]:
    """Either form: JSON when the output starts with ``[``, text otherwise."""
    if looks_like_json(data):
        return parse_ip_rule_json(data)
    return parse_ip_rule_text(data)


_TEXT_STR = MappingProxyType(
    {
        "from": "src",
        "to": "dst",
        "iif": "iif",
        "oif": "oif",
        "tos": "tos",
        "dsfield": "tos",
        "lookup": "table",
        "table": "table",
        "suppress_ifgroup": "suppress_ifgroup",
        "uidrange": "uidrange",
        "ipproto": "ipproto",
        "sport": "sport",
        "dport": "dport",
        "proto": "proto",
        "protocol": "proto",
        "realms": "realms",
    }
)


def parse_ip_rule_text(data: bytes) -> Parsed[Rule]:
    """The text form."""
    return records_from_lines(data, _rule_from_tokens)


def _rule_from_tokens(tokens: list[str]) -> Rule | None:
    head = tokens[0]
    priority = to_int(head[:-1]) if head.endswith(":") else None
    if priority is None:
        return None
    fields: dict[str, Any] = {"priority": priority}
    flags: list[str] = []
    extra: list[str] = []
    i = 1
    n = len(tokens)
    while i < n:
        tok = tokens[i]
        value = tokens[i + 1] if i + 1 < n else None
        if tok in _TEXT_STR and value is not None:
            fields[_TEXT_STR[tok]] = value
            i += 2
        elif tok == "fwmark" and value is not None:
            mark, _, mask = value.partition("/")
            fields["fwmark"] = mark
            if mask:
                fields["fwmask"] = mask
            i += 2
        elif tok in ("suppress_prefixlength", "goto") and to_int(value) is not None:
            fields[tok] = to_int(value)
            if tok == "goto":
                fields["action"] = "goto"
            i += 2
        else:
            if tok == "not":
                fields["invert"] = True
            elif tok == "l3mdev":
                fields["l3mdev"] = True
            elif tok in RULE_ACTIONS:
                fields["action"] = tok
            elif tok in ("[detached]", "detached", "[unresolved]"):
                flags.append(tok.strip("[]"))
            else:
                extra.append(tok)
            i += 1
    return Rule(**fields, flags=tuple(flags), extra=tuple(extra))


def parse_ip_rule_json(data: bytes) -> Parsed[Rule]:
    """The ``-j`` form. A cut-off file yields the rules before the cut."""
    return records_from_json(data, _rule_from_json)


_JSON_STR = MappingProxyType(
    {
        "table": "table",
        "iif": "iif",
        "oif": "oif",
        "tos": "tos",
        "dsfield": "tos",
        "fwmark": "fwmark",
        "fwmask": "fwmask",
        "suppress_ifgroup": "suppress_ifgroup",
        "ipproto": "ipproto",
        "sport": "sport",
        "dport": "dport",
        "protocol": "proto",
        "realms": "realms",
    }
)
_JSON_HANDLED = frozenset(
    set(_JSON_STR)
    | {"priority", "src", "srclen", "dst", "dstlen", "not", "l3mdev", "goto", "action"}
    | {"suppress_prefixlen", "uid_start", "uid_end", "flags", "iif_detached", "oif_detached"}
)


def _prefix(obj: dict[str, Any], key: str) -> str | None:
    value = to_str(obj.get(key))
    length = to_int(obj.get(key + "len"))
    if value is None:
        return None
    return value if length is None else f"{value}/{length}"


def _rule_from_json(obj: dict[str, Any]) -> Rule | None:
    priority = to_int(obj.get("priority"))
    if priority is None:
        return None
    fields: dict[str, Any] = {"priority": priority, "src": _prefix(obj, "src") or "all"}
    fields["dst"] = _prefix(obj, "dst")
    for key, name in _JSON_STR.items():
        value = to_str(obj.get(key))
        if value is not None:
            fields[name] = value
    fields["invert"] = "not" in obj
    fields["l3mdev"] = "l3mdev" in obj
    fields["suppress_prefixlength"] = to_int(obj.get("suppress_prefixlen"))
    goto = to_int(obj.get("goto"))
    if goto is not None:
        fields["goto"] = goto
        fields["action"] = "goto"
    action = to_str(obj.get("action"))
    if action is not None:
        fields["action"] = action
    if "uid_start" in obj:
        fields["uidrange"] = f"{obj.get('uid_start')}-{obj.get('uid_end')}"
    flags = [k.replace("_", "-") for k in ("iif_detached", "oif_detached") if k in obj]
    raw_flags = obj.get("flags")
    if isinstance(raw_flags, list):
        flags.extend(str(f) for f in raw_flags)
    extra = [f"{k}={json_dumps_safe(v)}" for k, v in obj.items() if k not in _JSON_HANDLED]
    return Rule(**fields, flags=tuple(flags), extra=tuple(extra))
