"""Parses ``bridge fdb show`` (``bridge -d fdb show``, ``bridge -s fdb show``).

Forms: the ``-j`` JSON form (``bridge -d -j fdb show``) and the text form. One
``FdbEntry`` per line. For a VXLAN device (``flannel.1``) the entries with ``dst`` are the
VTEP table: which remote node owns which MAC. ``state`` is ``permanent``, ``static``,
``stale`` or ``""`` (a learned, reachable entry: iproute2 prints no word for it).
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

FDB_STATES = frozenset({"permanent", "static", "stale"})
FDB_FLAGS = frozenset(
    {
        "self",
        "master",
        "router",
        "use",
        "extern_learn",
        "offload",
        "sticky",
        "activity_notify",
        "inactive",
        "locked",
        "blackhole",
    }
)


# Not frozen: a frozen dataclass sets each field through object.__setattr__, which on
# a 1,000-node bundle (10^6 records) costs more than parsing. Treat it as read-only.
@dataclass(slots=True)
class FdbEntry:
    """One forwarding-database entry."""

    mac: str
    dev: str | None = None
    dst: str | None = None  # VXLAN remote (VTEP) address
    vlan: int | None = None
    port: int | None = None
    vni: int | None = None
    src_vni: int | None = None
    via: str | None = None
    nhid: int | None = None
    master: str | None = None
    flags: tuple[str, ...] = ()  # self, router, extern_learn, offload, sticky ...
    state: str = ""
    used: str | None = None
    extra: tuple[str, ...] = ()


def parse_bridge_fdb(data: bytes) -> Parsed[FdbEntry]:
    """Either form: JSON when the output starts with ``[``, text otherwise."""
    if looks_like_json(data):
        return parse_bridge_fdb_json(data)
    return parse_bridge_fdb_text(data)


_TEXT_STR = frozenset({"dev", "dst", "via", "master", "used"})
_TEXT_INT = frozenset({"vlan", "port", "vni", "src_vni", "nhid"})


def parse_bridge_fdb_text(data: bytes) -> Parsed[FdbEntry]:
    """The text form: ``MAC dev DEV [dst IP] [vlan N] [self|master BR] [permanent]``."""
    return records_from_lines(data, _entry_from_tokens)


def _is_mac(token: str) -> bool:
    return token.count(":") == 5 and len(token) == 17


def _entry_from_tokens(tokens: list[str]) -> FdbEntry | None:
    if not _is_mac(tokens[0]):
        return None
    fields: dict[str, Any] = {"mac": tokens[0]}
    flags: list[str] = []
    extra: list[str] = []
    i = 1
    n = len(tokens)
    while i < n:
        tok = tokens[i]
        value = tokens[i + 1] if i + 1 < n else None
        if tok in _TEXT_STR and value is not None:
            fields[tok] = value
            i += 2
            continue
        if tok in _TEXT_INT and value is not None and to_int(value) is not None:
            fields[tok] = int(value)
            i += 2
            continue
        if tok in FDB_STATES:
            fields["state"] = tok
        elif tok in FDB_FLAGS:
            flags.append(tok)
        else:
            extra.append(tok)
        i += 1
    return FdbEntry(**fields, flags=tuple(flags), extra=tuple(extra))


# --- JSON form -------------------------------------------------------------------------


def parse_bridge_fdb_json(data: bytes) -> Parsed[FdbEntry]:
    """The ``-j`` form. A cut-off file yields the entries before the cut."""
    return _ELEMENTS.records(data)


_JSON_HANDLED = frozenset(
    {"mac", "ifname", "dst", "vlan", "port", "vni", "src_vni", "via", "nhid", "master"}
    | {"flags", "state", "used"}
)


def _full_entry(obj: dict[str, Any]) -> FdbEntry | None:
    mac = to_str(obj.get("mac"))
    if not mac:
        return None
    raw_flags = obj.get("flags")
    flags = tuple(str(f) for f in raw_flags) if isinstance(raw_flags, list) else ()
    extra = [f"{k}={json_dumps_safe(v)}" for k, v in obj.items() if k not in _JSON_HANDLED]
    return FdbEntry(
        mac=mac,
        dev=to_str(obj.get("ifname")),
        dst=to_str(obj.get("dst")),
        vlan=to_int(obj.get("vlan")),
        port=to_int(obj.get("port")),
        vni=to_int(obj.get("vni")),
        src_vni=to_int(obj.get("src_vni")),
        via=to_str(obj.get("via")),
        nhid=to_int(obj.get("nhid")),
        master=to_str(obj.get("master")),
        flags=flags,
        state=to_str(obj.get("state")) or "",
        used=to_str(obj.get("used")),
        extra=tuple(extra),
    )


# --- speed: a VXLAN device holds one entry per peer, the same on every node -------------

_JSON_PLAIN = frozenset({"mac", "ifname", "dst", "master", "flags", "state"})


def _plain_entry(obj: dict[str, Any]) -> FdbEntry | None:
    """The everyday entry (only mac, ifname, dst, master, flags and state, each of the
    usual JSON type) built directly, its strings shared; None for any other. When it gives
    a record, it is _full_entry's (tests/parsers/test_parse_fast_paths.py)."""
    if obj.keys() <= _JSON_PLAIN:
        get = obj.get
        mac, flags = get("mac"), get("flags", ())
        text = (get("ifname"), get("dst"), get("master"), get("state"))
        if (
            type(mac) is str
            and mac
            and type(flags) is list
            and all_text(flags)
            and all_text([v for v in text if v is not None])
        ):
            return FdbEntry(
                mac=shared_text(mac),
                dev=shared(text[0]),
                dst=shared(text[1]),
                master=shared(text[2]),
                flags=shared_tuple(flags),
                state=shared_text(text[3] or ""),
            )
    return None


def _entry_from_json(obj: dict[str, Any]) -> FdbEntry | None:
    return _plain_entry(obj) or _full_entry(obj)


# One record per distinct element, shared by every node that prints it (elements.py).
_ELEMENTS = ElementMemo(_entry_from_json)
