"""MAC mapping: the flags the analysis reads survive, protocol MACs stay, and no two MACs
ever collide."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from needle.redact.macs import MacMapper

KEY = random.Random(21).randbytes(32)
MACS = MacMapper(KEY)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=6, max_size=6))
def test_flags_are_kept_and_unicast_changes(mac):
    mapped = MACS.map(mac)
    assert len(mapped) == 6
    assert mapped[0] & 0x03 == mac[0] & 0x03
    multicast = mac[0] & 0x01
    if multicast or mac in (bytes(6), b"\x02" + bytes(5)):
        assert mapped == mac
    else:
        assert mapped != bytes(6)


def test_protocol_macs_are_identity():
    for text in (
        "00:00:00:00:00:00",
        "ff:ff:ff:ff:ff:ff",
        "01:00:5e:00:00:fb",
        "01:00:5e:7f:ff:fa",
        "33:33:00:00:00:01",
        "33:33:ff:dd:ee:ff",
        "01:80:c2:00:00:00",
    ):
        assert MACS.map_text(text) == text


def test_unicast_macs_move():
    rnd = random.Random(1)
    sample = [bytes([rnd.randrange(256) & 0xFE]) + rnd.randbytes(5) for _ in range(1000)]
    moved = sum(MACS.map(mac) != mac for mac in sample)
    assert moved == len(sample)
    # vendor prefixes are not kept: the OUI changes too
    assert sum(MACS.map(mac)[:3] != mac[:3] for mac in sample) > 990


def test_bijective_on_100000_macs():
    rnd = random.Random(2)
    sample = {rnd.randbytes(6) for _ in range(60000)}
    # and a dense block: one vendor's consecutive MACs, where collisions would cluster
    sample |= {bytes.fromhex("0242ac11") + i.to_bytes(2, "big") for i in range(40000)}
    mapped = MacMapper(KEY).map_many(sample)
    assert len(mapped) == len(sample)
    assert len(set(mapped.values())) == len(sample)


def test_batched_equals_single():
    rnd = random.Random(3)
    sample = [rnd.randbytes(6) for _ in range(500)] + [bytes(6), b"\x02" + bytes(5)]
    batched = MacMapper(KEY).map_many(sample)
    single = MacMapper(KEY)
    assert batched == {mac: single.map(mac) for mac in sample}


def test_text_keeps_case_and_separator():
    lower = MACS.map_text("aa:bb:cc:dd:ee:ff")
    assert lower == MACS.map(bytes.fromhex("aabbccddeeff")).hex(":")
    assert MACS.map_text("AA:BB:CC:DD:EE:FF") == lower.upper()
    assert MACS.map_text("aa-bb-cc-dd-ee-ff") == lower.replace(":", "-")
    assert MACS.map_text("AA-BB-CC-DD-EE-FF") == lower.replace(":", "-").upper()
    assert MACS.map_text("02:42:ac:11:00:02") != "02:42:ac:11:00:02"


@pytest.mark.parametrize(
    "text",
    [
        "aa:bb:cc:dd:ee",
        "aa:bb:cc:dd:ee:ff:00",
        "aa-bb:cc:dd:ee:ff",
        "a:bb:cc:dd:ee:ff",
        "gg:bb:cc:dd:ee:ff",
        "",
    ],
)
def test_bad_text_raises(text):
    with pytest.raises(ValueError):
        MACS.map_text(text)


def test_keys():
    assert MacMapper(bytes(32)).map(b"\x02BCDEF") != MACS.map(b"\x02BCDEF")
    assert MacMapper(b"k" * 20).map(b"\x02BCDEF") != MacMapper(b"k" * 21).map(b"\x02BCDEF")
    with pytest.raises(ValueError):
        MacMapper(bytes(15))
    with pytest.raises(ValueError):
        MACS.map(bytes(5))
