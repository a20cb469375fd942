"""Parses ``brctl show`` (bridge-utils; busybox's applet prints the same table).

Form: text only. A header line, then one line per bridge (name, id, STP, first port) and
one indented line per further port. One ``BrctlBridge`` per bridge.
"""

from __future__ import annotations

from dataclasses import dataclass

from needle.analyzer.parsers.common import Parsed, lines_of


@dataclass(frozen=True, slots=True)
class BrctlBridge:
    """One bridge and its ports."""

    name: str
    bridge_id: str
    stp_enabled: bool | None  # None when the column holds neither yes nor no
    interfaces: tuple[str, ...] = ()


def parse_brctl_show(data: bytes) -> Parsed[BrctlBridge]:
    """The table ``brctl show`` prints."""
    records: list[BrctlBridge] = []
    unparsed: list[str] = []
    name = bridge_id = ""
    stp: bool | None = None
    ports: list[str] = []
    have_bridge = False

    def finish() -> None:
        if have_bridge:
            records.append(BrctlBridge(name, bridge_id, stp, tuple(ports)))

    for line in lines_of(data):
        tokens = line.split()
        if not tokens:
            continue
        if line.startswith("bridge name"):
            continue
        if line[0] in " \t":
            # A continuation line holds one more port of the bridge above.
            if have_bridge and len(tokens) == 1:
                ports.append(tokens[0])
            else:
                unparsed.append(line)
            continue
        if len(tokens) in (3, 4) and "." in tokens[1]:
            finish()
            name, bridge_id = tokens[0], tokens[1]
            stp = {"yes": True, "no": False}.get(tokens[2])
            ports = tokens[3:]
            have_bridge = True
        else:
            unparsed.append(line)
    finish()
    return Parsed(tuple(records), tuple(unparsed))
