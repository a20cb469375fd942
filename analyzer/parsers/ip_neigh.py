"""Parses ``ip neigh`` (``ip neigh show``; ``ip -s neigh``; busybox ``ip neigh``).

Forms: the ``-j`` JSON form (``ip -j neigh``) and the text form. One ``Neighbour`` per
entry. NUD states are kept as printed (upper case, possibly several); ``router`` and
``proxy`` are booleans; other flag words (``extern_learn``, ``offload`` ...) in ``flags``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from needle.analyzer.parsers.common import (
    Parsed,
    json_dumps_safe,
    looks_like_json,
    records_from_lines,
    to_int,
    to_str,
)
from needle.analyzer.parsers.elements import (
    ElementMemo,
    all_text,
    shared,
    shared_text,
    shared_tuple,
)

NUD_STATES = frozenset(
    {"INCOMPLETE", "REACHABLE", "STALE", "DELAY", "PROBE", "FAILED", "NOARP", "PERMANENT", "NONE"}
)
NEIGH_FLAGS = frozenset({"extern_learn", "offload", "managed", "extern_valid", "use", "self"})


# Not frozen: a frozen dataclass sets each field through object.__setattr__, which on
# a 1,000-node bundle (10^6 records) costs more than parsing. Treat it as read-only.
@dataclass(slots=True)
class Neighbour:
    """One neighbour (ARP / NDP) entry."""

    dst: str
    dev: str | None = None
    lladdr: str | None = None
    state: tuple[str, ...] = ()
    router: bool = False
    proxy: bool = False
    flags: tuple[str, ...] = ()
    probes: int | None = None
    used: str | None = None  # "used/confirmed/updated" seconds as printed by -s
    ref: int | None = None
    family: str | None = None
    extra: tuple[str, ...] = ()


def parse_ip_neigh(data: bytes) -> Parsed[Neighbour]:
    """Either form: JSON when the output starts with ``[``, text otherwise."""
    if looks_like_json(data):
        return parse_ip_neigh_json(data)
    return parse_ip_neigh_text(data)


def _family(dst: str) -> str | None:
    if ":" in dst:
        return "inet6"
    return "inet" if "." in dst else None


def parse_ip_neigh_text(data: bytes) -> Parsed[Neighbour]:
    """The text form: one entry per line, ``ADDR dev DEV lladdr MAC [router] STATE``."""
    return records_from_lines(data, _neighbor_from_tokens)


def _neighbor_from_tokens(tokens: list[str]) -> Neighbour | None:
    dst = tokens[0]
    family = _family(dst)
    if family is None:
        return None
    fields: dict[str, Any] = {"dst": dst, "family": family}
    states: list[str] = []
    flags: list[str] = []
    extra: list[str] = []
    i = 1
    n = len(tokens)
    while i < n:
        tok = tokens[i]
        if tok in ("dev", "lladdr", "used", "probes", "ref") and i + 1 < n:
            value = tokens[i + 1]
            if tok in ("probes", "ref"):
                number = to_int(value)
                if number is None:
                    extra.extend((tok, value))
                else:
                    fields[tok] = number
            else:
                fields[tok] = value
            i += 2
            continue
        if tok in NUD_STATES:
            states.append(tok)
        elif tok == "router":
            fields["router"] = True
        elif tok == "proxy":
            fields["proxy"] = True
        elif tok in NEIGH_FLAGS:
            flags.append(tok)
        else:
            extra.append(tok)
        i += 1
    return Neighbour(**fields, state=tuple(states), flags=tuple(flags), extra=tuple(extra))


# --- JSON form -------------------------------------------------------------------------


def parse_ip_neigh_json(data: bytes) -> Parsed[Neighbour]:
    """The ``-j`` form. A cut-off file yields the entries before the cut."""
    return _ELEMENTS.records(data)


_JSON_KNOWN = frozenset({"dst", "dev", "lladdr", "state", "router", "proxy", "probes", "used"})


def _full_neighbor(obj: dict[str, Any]) -> Neighbour | None:
    dst = to_str(obj.get("dst"))
    if not dst:
        return None
    state = obj.get("state")
    states = tuple(str(s) for s in state) if isinstance(state, list) else ()
    if isinstance(state, str):
        states = (state,)
    flags: list[str] = []
    extra: list[str] = []
    for key, value in obj.items():
        if key in _JSON_KNOWN:
            continue
        # iproute2 writes flag words as keys with a null value ("router": null).
        if value is None or value is True:
            flags.append(key)
        else:
            extra.append(f"{key}={json_dumps_safe(value)}")
    return Neighbour(
        dst=dst,
        dev=to_str(obj.get("dev")),
        lladdr=to_str(obj.get("lladdr")),
        state=states,
        router="router" in obj,
        proxy="proxy" in obj,
        flags=tuple(f for f in flags if f not in ("router", "proxy")),
        probes=to_int(obj.get("probes")),
        used=to_str(obj.get("used")),
        family=_family(dst),
        extra=tuple(extra),
    )


# --- speed: nodes hold one entry per peer VTEP, the same on every node ------------------

_JSON_PLAIN = frozenset({"dst", "dev", "lladdr", "state"})


def _plain_neighbor(obj: dict[str, Any]) -> Neighbour | None:
    """The everyday entry (only dst, dev, lladdr and state, each of the usual JSON type)
    built directly, its strings shared; None for any other. When it gives a record, it is
    _full_neighbor's (tests/parsers/test_parse_fast_paths.py)."""
    if obj.keys() <= _JSON_PLAIN:
        dst, dev, lladdr, state = (
            obj.get("dst"),
            obj.get("dev"),
            obj.get("lladdr"),
            obj.get("state", ()),
        )
        if (
            type(dst) is str
            and dst
            and (dev is None or type(dev) is str)
            and (lladdr is None or type(lladdr) is str)
            and type(state) is list
            and all_text(state)
        ):
            return Neighbour(
                dst=shared_text(dst),
                dev=shared(dev),
                lladdr=shared(lladdr),
                state=shared_tuple(state),
                family=_family(dst),
            )
    return None


def _neighbor_from_json(obj: dict[str, Any]) -> Neighbour | None:
    return _plain_neighbor(obj) or _full_neighbor(obj)


# One record per distinct element, shared by every node that prints it (elements.py).
_ELEMENTS = ElementMemo(_neighbor_from_json)
