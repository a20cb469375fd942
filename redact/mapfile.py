"""The --map-out file: every name, interface, address and MAC the redaction mapped, and
what it became.

The mappers remember only their recent answers (so memory stays flat in the size of
the cluster) and the map must hold them all, so while the redaction runs each mapping
is noted in a ledger on disk, a line per mapping computed, and the map is written from
it at the end, a section at a time. A value mapped again after its mapper forgot it is
noted again, and comes once in the map. The ledger holds the originals as the map
does: it lives in unnamed temporary files in the map's directory (mode 0600, gone once
closed, or if the process dies).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, TextIO

FORMAT = "needle.redaction-map/v1"
WARNING = "this file reverses the redaction: keep it with the customer"


class Ledger:
    """Mappings noted as they are made (see the module docstring). Interface names
    are kept as they are (prefix and hex digits: no tab, no newline); addresses as the
    version then both values in fixed-width hex, and MACs in hex, so that sorting the
    lines sorts the map's sections."""

    def __init__(self, directory: Path) -> None:
        self._files: dict[str, IO[str]] = {}
        with contextlib.ExitStack() as opened:
            for section in ("interfaces", "addresses", "macs"):
                self._files[section] = opened.enter_context(
                    tempfile.TemporaryFile("w+", encoding="ascii", dir=directory)
                )
            self._closing = opened.pop_all()
        self._interfaces = self._files["interfaces"].write
        self._addresses = self._files["addresses"].write
        self._macs = self._files["macs"].write

    def interface(self, name: str, mapped: str) -> None:
        self._interfaces(f"{name}\t{mapped}\n")

    def address(self, version: int, address: int, mapped: int) -> None:
        if address != mapped:
            width = 8 if version == 4 else 32
            self._addresses(f"{version}{address:0{width}x} {mapped:0{width}x}\n")

    def mac(self, mac: bytes, mapped: bytes) -> None:
        if mac != mapped:
            self._macs(f"{mac.hex()} {mapped.hex()}\n")

    def lines(self, section: str) -> list[str]:
        """The section's distinct lines, sorted, without their newlines."""
        handle = self._files[section]
        handle.flush()
        handle.seek(0)
        return sorted({line.rstrip("\n") for line in handle})

    def close(self) -> None:
        self._closing.close()


def write_map(path: Path, names: Iterable[tuple[str, str]], ledger: Ledger) -> None:
    """The map at `path` (mode 0600, in one rename), as json.dump(indent=1) writes the
    document of format, warning and the four sections, each sorted by original."""
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(f'{{\n "format": {json.dumps(FORMAT)},\n')
            handle.write(f' "warning": {json.dumps(WARNING)},\n')
            _section(handle, "names", sorted(names))
            handle.write(",\n")
            _section(handle, "interfaces", _interfaces(ledger.lines("interfaces")))
            handle.write(",\n")
            _section(handle, "addresses", _addresses(ledger.lines("addresses")))
            handle.write(",\n")
            _section(handle, "macs", _macs(ledger.lines("macs")))
            handle.write("\n}\n")
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _section(handle: TextIO, name: str, pairs: Iterable[tuple[str, str]]) -> None:
    handle.write(f" {json.dumps(name)}: ")
    first = True
    for original, mapped in pairs:
        handle.write(f"{'{' if first else ','}\n  {json.dumps(original)}: {json.dumps(mapped)}")
        first = False
    handle.write("{}" if first else "\n }")


def _interfaces(lines: list[str]) -> Iterator[tuple[str, str]]:
    for line in lines:
        name, _, mapped = line.partition("\t")
        yield name, mapped


def _addresses(lines: list[str]) -> Iterator[tuple[str, str]]:
    for line in lines:
        original, mapped = line[1:].split(" ")
        make = ipaddress.IPv4Address if line[0] == "4" else ipaddress.IPv6Address
        yield str(make(int(original, 16))), str(make(int(mapped, 16)))


def _macs(lines: list[str]) -> Iterator[tuple[str, str]]:
    for line in lines:
        original, mapped = line.split(" ")
        yield bytes.fromhex(original).hex(":"), bytes.fromhex(mapped).hex(":")
