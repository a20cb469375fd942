"""The map file written from the ledger is what json.dump(indent=1) writes for the whole
map held in dicts: each section sorted by original, each mapping once, what maps to
itself left out (but for interface names, as before)."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import stat
from pathlib import Path

import pytest
from needle.redact.mapfile import FORMAT, WARNING, Ledger, write_map

V4 = [("10.244.1.5", "8.17.3.5"), ("192.168.122.10", "192.140.7.10"), ("10.0.0.1", "9.2.2.1")]
V6 = [("fd00::1", "fd12:3456::9"), ("::ffff:10.244.1.5", "::ffff:8.17.3.5")]
MACS = [(bytes.fromhex("0a580af40105"), bytes.fromhex("1e2b3c4d5e6f"))]
NAMES = [("lab-node-1", "node-4cf2c3e084"), ("w\u00e9b-1", "pod-1a2b3c4d5e"), ("a\tb", "ns-x")]
INTERFACES = [("veth4d2cdbc3", "veth22fb29c1"), ("veth1a2b3c", "vethffeedd")]


def as_dumped(names, interfaces, v4, v6, macs) -> bytes:
    document = {
        "format": FORMAT,
        "warning": WARNING,
        "names": dict(sorted(names)),
        "interfaces": dict(sorted(interfaces)),
        "addresses": {
            str(a): str(b)
            for a, b in sorted(
                [(ipaddress.ip_address(a), ipaddress.ip_address(b)) for a, b in v4 + v6],
                key=lambda pair: (pair[0].version, pair[0]),
            )
        },
        "macs": {a.hex(":"): b.hex(":") for a, b in sorted(macs)},
    }
    return (json.dumps(document, indent=1) + "\n").encode()


@pytest.mark.parametrize("empty", [False, True])
def test_the_map_is_the_document_json_would_dump(tmp_path: Path, empty: bool) -> None:
    pick = (lambda values: []) if empty else (lambda values: values)
    with contextlib.closing(Ledger(tmp_path)) as ledger:
        for _ in range(2):  # a mapper that forgot maps again: once in the map
            for name, mapped in reversed(pick(INTERFACES)):
                ledger.interface(name, mapped)
            for a, b in reversed(pick(V4 + V6)):
                address, result = ipaddress.ip_address(a), ipaddress.ip_address(b)
                ledger.address(address.version, int(address), int(result))
            for a, b in pick(MACS):
                ledger.mac(a, b)
        ledger.address(4, 0x7F000001, 0x7F000001)  # kept: not in the map
        ledger.mac(b"\xff" * 6, b"\xff" * 6)
        write_map(tmp_path / "map.json", pick(NAMES), ledger)
    written = (tmp_path / "map.json").read_bytes()
    expected = as_dumped(pick(NAMES), pick(INTERFACES), pick(V4), pick(V6), pick(MACS))
    assert written == expected
    assert stat.S_IMODE((tmp_path / "map.json").stat().st_mode) == 0o600
    assert sorted(path.name for path in tmp_path.iterdir()) == ["map.json"]  # no ledger left
