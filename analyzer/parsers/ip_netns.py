"""Parses ``ip netns list``.

Forms: the ``-j`` JSON form (``ip -j netns list``: ``[{"name": ..., "id": N}]``) and the
text form (``NAME`` or ``NAME (id: N)``). The id is the namespace's netnsid *as seen from
the namespace the command ran in*: what ``link_netnsid`` of a veth refers to.
"""

from __future__ import annotations

from dataclasses import dataclass

from needle.analyzer.parsers.common import (
    Parsed,
    json_dumps_safe,
    lines_of,
    looks_like_json,
    read_json_arrays,
    to_int,
    to_str,
)


@dataclass(frozen=True, slots=True)
class Netns:
    """A named network namespace, and its netnsid when one is assigned."""

    name: str
    id: int | None = None


def parse_ip_netns(data: bytes) -> Parsed[Netns]:
    """Either form: JSON when the output starts with ``[``, text otherwise."""
    if looks_like_json(data):
        return parse_ip_netns_json(data)
    return parse_ip_netns_text(data)


def parse_ip_netns_text(data: bytes) -> Parsed[Netns]:
    """The text form."""
    records: list[Netns] = []
    unparsed: list[str] = []
    for line in lines_of(data):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) == 1:
            records.append(Netns(tokens[0]))
        elif len(tokens) == 3 and tokens[1] == "(id:" and tokens[2].endswith(")"):
            netnsid = to_int(tokens[2][:-1])
            if netnsid is None:
                unparsed.append(line)
            else:
                records.append(Netns(tokens[0], netnsid))
        else:
            unparsed.append(line)
    return Parsed(tuple(records), tuple(unparsed))


def parse_ip_netns_json(data: bytes) -> Parsed[Netns]:
    """The ``-j`` form."""
    arrays = read_json_arrays(data)
    records: list[Netns] = []
    unparsed = list(arrays.unparsed)
    for item in arrays.items:
        name = to_str(item.get("name")) if isinstance(item, dict) else None
        if not name or not isinstance(item, dict):
            unparsed.append(json_dumps_safe(item))
            continue
        records.append(Netns(name, to_int(item.get("id"))))
    return Parsed(tuple(records), tuple(unparsed), arrays.truncated)
