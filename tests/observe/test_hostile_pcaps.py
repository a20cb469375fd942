"""Hostile and broken capture files: each one decodes what it can and says why it
stopped (`partial`); none raises."""

from __future__ import annotations

import io
import struct

import dpkt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from needle.analyzer.observe import DecodeLimits, decode_capture
from observe_craft import echo, ether, ip, pcap, vxlan

PING = vxlan("192.168.1.1", "192.168.1.2", ether(ip("10.244.0.1", "10.244.1.1", echo(1, 1))))
GOOD = pcap([(1000.0 + n, PING) for n in range(5)])


def test_a_good_file_decodes_whole():
    summary = decode_capture(GOOD)
    assert summary.partial is None
    assert summary.packets == 5 and summary.vxlan_packets == 5 and summary.malformed == 0
    assert (summary.first_ts, summary.last_ts) == (1000.0, 1004.0)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not a capture: 0 bytes"),
        (GOOD[:23], "shorter than a pcap header"),
        (b"\x00" * 24 + GOOD[24:], "not a pcap or pcapng file: magic 00000000"),
        (b"GIF89a" + GOOD[6:], "not a pcap or pcapng file"),
        (GOOD[:4] + struct.pack("<HH", 9, 9) + GOOD[8:], "version 9.9"),
        (GOOD[:16] + struct.pack("<I", 0xFFFFFFFF) + GOOD[20:], "snap length 4294967295"),
        (GOOD[:16] + struct.pack("<I", 0) + GOOD[20:], "snap length 0"),
        (GOOD[:20] + struct.pack("<I", 147) + GOOD[24:], "unsupported link type 147"),
    ],
)
def test_a_bad_global_header_is_refused_with_its_reason(data, reason):
    summary = decode_capture(data)
    assert summary.packets == 0
    assert summary.partial is not None and reason in summary.partial


def _records() -> list[int]:
    """The byte offset of each record of GOOD."""
    offsets, offset = [], 24
    while offset < len(GOOD):
        offsets.append(offset)
        offset += 16 + struct.unpack_from("<I", GOOD, offset + 8)[0]
    return offsets


def test_a_truncated_last_record_keeps_the_records_before_it():
    last = _records()[-1]
    summary = decode_capture(GOOD[: last + 30])
    assert summary.packets == 4 and summary.vxlan_packets == 4
    assert summary.partial.startswith(f"truncated record 5 at byte {last}")


def test_a_record_header_cut_short_is_truncation_too():
    last = _records()[-1]
    summary = decode_capture(GOOD[: last + 7])
    assert summary.packets == 4
    assert "7 bytes of its 16-byte header" in summary.partial


def test_garbage_mid_file_stops_there():
    third = _records()[2]
    broken = GOOD[:third] + b"\xff" * 16 + GOOD[third + 16 :]
    summary = decode_capture(broken)
    assert summary.packets == 2
    assert summary.partial.startswith(f"garbage at record 3 (byte {third})")


def test_a_caplen_beyond_the_snap_length_is_garbage_not_a_huge_read():
    first = _records()[0]
    claimed = GOOD[: first + 8] + struct.pack("<II", 2**31, 2**31) + GOOD[first + 16 :]
    summary = decode_capture(claimed)
    assert summary.packets == 0 and "captured length 2147483648" in summary.partial


def test_the_packet_limit_stops_decoding_and_says_so():
    summary = decode_capture(GOOD, limits=DecodeLimits(max_packets=3))
    assert summary.packets == 3 and summary.partial == "stopped after 3 packets (the decode limit)"


def test_table_caps_are_named_and_decoding_goes_on():
    frames = [
        (
            1.0 + n,
            vxlan("192.168.1.1", "192.168.1.2", ether(ip("10.0.0.1", f"10.0.1.{n}", echo(1, n)))),
        )
        for n in range(10)
    ]
    summary = decode_capture(pcap(frames), limits=DecodeLimits(max_rows=4, max_identities=6))
    assert summary.partial is None and summary.packets == 10
    # outer and inner flows share one table of 4 rows: the outer flow came first
    assert len(summary.flows) == 1 and len(summary.inner_flows) == 3
    assert len(summary.identities) == 6
    assert summary.capped == ["flows", "identities"]
    assert summary.identities_until == 6.0  # the last packet whose identity was kept


def test_frames_cut_by_the_snap_length_count_as_malformed_not_errors():
    frames = [(1.0, PING[:20]), (2.0, PING[:40]), (3.0, PING[:49]), (4.0, PING)]
    summary = decode_capture(pcap(frames))
    assert summary.partial is None and summary.packets == 4
    assert summary.malformed >= 2 and summary.vxlan_packets == 1


def test_big_endian_and_nanosecond_files_read():
    little = decode_capture(GOOD)
    swapped = bytearray(GOOD[:24])
    struct.pack_into(">IHHiIII", swapped, 0, 0xA1B23C4D, 2, 4, 0, 0, 200, 1)
    for offset in _records():
        sec, usec, caplen, wirelen = struct.unpack_from("<IIII", GOOD, offset)
        swapped += struct.pack(">IIII", sec, usec * 1000, caplen, wirelen)
        swapped += GOOD[offset + 16 : offset + 16 + caplen]
    big = decode_capture(bytes(swapped))
    assert big.partial is None and big.packets == little.packets
    assert big.first_ts == little.first_ts and big.vxlan_packets == 5


def test_pcapng_decodes_through_dpkt():
    out = io.BytesIO()
    writer = dpkt.pcapng.Writer(out, snaplen=200)
    for n in range(3):
        writer.writepkt(PING, ts=10.0 + n)
    summary = decode_capture(out.getvalue())
    assert summary.format == "pcapng" and summary.partial is None
    assert summary.packets == 3 and summary.vxlan_packets == 3


def test_a_broken_pcapng_is_partial_not_an_exception():
    out = io.BytesIO()
    writer = dpkt.pcapng.Writer(out, snaplen=200)
    for n in range(3):
        writer.writepkt(PING, ts=10.0 + n)
    data = out.getvalue()
    assert decode_capture(data[:40]).partial.startswith("bad pcapng")
    cut = decode_capture(data[:-20])
    assert cut.partial is not None and cut.packets == 2


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.integers(min_value=0, max_value=len(GOOD)))
def test_any_bytes_anywhere_never_raise(noise, at):
    for data in (noise, GOOD[:at] + noise, GOOD[:24] + noise):
        summary = decode_capture(data)
        assert summary.packets >= 0
