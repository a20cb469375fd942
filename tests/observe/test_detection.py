"""What the decoder and the correlation find in hand-made packets: retransmissions,
fragments, ICMP errors, VNI and port mismatches, and when loss may and may not be
claimed."""

from __future__ import annotations

import dpkt
from needle.analyzer.observe import (
    CaptureRecord,
    Listener,
    NodeCaptures,
    correlate,
    decode_capture,
)
from observe_craft import echo, ether, ip, pcap, tcp, unreachable, vxlan

A, B, C = "192.168.1.1", "192.168.1.2", "192.168.1.3"
POD_A, POD_B = "10.244.0.5", "10.244.1.7"
FLANNEL = (Listener("flannel.1", 8472, 1),)


def test_retransmissions_count_repeated_data_not_repeated_acks():
    frames = [
        (1.0, ether(ip(POD_A, POD_B, tcp(40000, 80, 1000, b"GET /")))),
        (1.1, ether(ip(POD_A, POD_B, tcp(40000, 80, 1005, b"more")))),
        (1.2, ether(ip(POD_A, POD_B, tcp(40000, 80, 1000, b"GET /")))),  # again
        (1.4, ether(ip(POD_A, POD_B, tcp(40000, 80, 1000, b"GET /")))),  # and again
        (1.5, ether(ip(POD_B, POD_A, tcp(80, 40000, 7, b"")))),  # pure ACKs repeat freely
        (1.6, ether(ip(POD_B, POD_A, tcp(80, 40000, 7, b"")))),
    ]
    summary = decode_capture(pcap(frames))
    (row,) = summary.retransmissions
    assert (row.src, row.dst, row.sport, row.dport, row.retransmissions) == (
        POD_A,
        POD_B,
        40000,
        80,
        2,
    )
    assert row.tunnel is None


def test_retransmissions_inside_vxlan_keep_their_tunnel():
    inner = ether(ip(POD_A, POD_B, tcp(40000, 80, 5, b"data")))
    frames = [(1.0 + n, vxlan(A, B, inner, ip_id=n)) for n in range(3)]
    (row,) = decode_capture(pcap(frames)).retransmissions
    assert row.retransmissions == 2 and (row.tunnel.src, row.tunnel.dst) == (A, B)


def _fragments(src: str, dst: str) -> list[bytes]:
    parts = []
    for more, offset, size in ((True, 0, 24), (True, 24, 24), (False, 48, 8)):
        part = ip(src, dst, b"\x00" * size, p=17, id=77)
        part.mf, part.offset = int(more), offset
        parts.append(ether(part))
    return parts


def test_fragments_are_counted_per_flow_first_middle_and_last():
    frames = [(1.0 + n, frame) for n, frame in enumerate(_fragments(A, B))]
    frames.append((5.0, ether(ip(A, B, echo(1, 1)))))  # not a fragment
    summary = decode_capture(pcap(frames))
    (row,) = summary.fragments
    assert (row.src, row.dst, row.proto, row.fragments) == (A, B, 17, 3)


def test_port_unreachable_against_a_vxlan_port_is_no_listener():
    sent = ip(A, B, dpkt.udp.UDP(sport=40000, dport=4789, data=b"\x08" + b"\x00" * 7))
    frames = [(1.0, ether(sent)), (1.001, unreachable(B, A, 3, sent))]
    summary = decode_capture(pcap(frames))
    (error,) = summary.icmp_errors
    assert (error.sender, error.to, error.code, error.mtu) == (B, A, 3, None)
    assert (error.quoted.dst, error.quoted.proto, error.quoted.dport) == (B, 17, 4789)

    nodes = [
        NodeCaptures("a", frozenset({A}), (Listener("vx", 4789, 9),), [_capture("a", summary)]),
        NodeCaptures("b", frozenset({B}), FLANNEL, []),
    ]
    observations, _ = correlate(nodes)
    (missing,) = [o for o in observations if o.kind == "no-listener"]
    assert missing.peer_node == "b" and missing.counts["port_unreachable"] == 1
    assert not [o for o in observations if o.kind == "unreachable"]


def test_frag_needed_reports_mtu_and_the_quoted_flow():
    sent = ip(A, B, dpkt.udp.UDP(sport=40000, dport=8472, data=b"\x00" * 1400))
    frames = [(1.0, unreachable("192.168.9.1", A, 4, sent, mtu=1400))] * 2
    summary = decode_capture(pcap(frames))
    (error,) = summary.icmp_errors
    assert error.frag_needed and error.mtu == 1400 and error.packets == 2
    assert (error.quoted.src, error.quoted.dst, error.quoted.dport) == (A, B, 8472)
    nodes = [NodeCaptures("a", frozenset({A}), FLANNEL, [_capture("a", summary)])]
    nodes.append(NodeCaptures("b", frozenset({B}), FLANNEL, []))
    (needed,) = correlate(nodes)[0]
    assert needed.kind == "frag-needed" and needed.peer_node == "b"
    assert needed.counts["packets"] == 2 and needed.to_json()["source"] == "capture"


def _capture(node: str, summary, **fields) -> CaptureRecord:
    return CaptureRecord(
        node, f"{node}.pcap", "eth0", "underlay", "udp port 8472", summary, **fields
    )


def _pings(src: str, dst: str, times: list[float], vni: int = 1, port: int = 8472):
    return [
        (ts, vxlan(src, dst, ether(ip(POD_A, POD_B, echo(9, n))), vni=vni, port=port, ip_id=n))
        for n, ts in enumerate(times)
    ]


def test_a_vni_the_receiver_does_not_use_is_vni_mismatch():
    summary = decode_capture(pcap(_pings(A, B, [1.0, 1.1], vni=2)))
    nodes = [
        NodeCaptures("a", frozenset({A}), FLANNEL, [_capture("a", summary)]),
        NodeCaptures("b", frozenset({B}), FLANNEL, []),
    ]
    observations, _ = correlate(nodes)
    (mismatch,) = [o for o in observations if o.kind == "vni-mismatch"]
    assert mismatch.details["vni"] == 2 and mismatch.counts["packets"] == 2
    # a collect-metadata device on the port takes every VNI
    nodes[1].listeners = (Listener("vxlan_sys_8472", 8472, None),)
    assert not [o for o in correlate(nodes)[0] if o.kind == "vni-mismatch"]
    # and a node whose links the bundle lacks is not judged at all
    nodes[1].listeners = None
    assert not [o for o in correlate(nodes)[0] if o.kind in ("vni-mismatch", "no-listener")]


def test_vxlan_to_an_address_no_node_has_is_unknown_destination():
    summary = decode_capture(pcap(_pings(A, "192.168.1.99", [1.0])))
    nodes = [NodeCaptures("a", frozenset({A}), FLANNEL, [_capture("a", summary)])]
    (unknown,) = correlate(nodes)[0]
    assert unknown.kind == "unknown-destination" and "192.168.1.99" in unknown.message


def _pair(sent_times, received_times, received_capture=None, a_hears_b=True):
    """node a sent pings at sent_times; node b captured the ones at received_times, and
    sent its own at 0.9-3.1 s (its capture's span), which node a received if a_hears_b."""
    a_frames = _pings(A, B, sent_times)
    b_own = _pings(B, A, [0.9, 1.5, 2.0, 2.5, 3.1])
    b_frames = sorted([f for f in a_frames if f[0] in received_times] + b_own)
    if a_hears_b:
        a_frames += [(ts + 0.0001, frame) for ts, frame in b_own]
    a = decode_capture(pcap(sorted(a_frames)))
    b = decode_capture(pcap(b_frames))
    return [
        NodeCaptures("a", frozenset({A}), FLANNEL, [_capture("a", a)]),
        NodeCaptures("b", frozenset({B}), FLANNEL, [received_capture or _capture("b", b)]),
    ]


def test_loss_is_counted_only_inside_the_receivers_window():
    sent = [0.5, 1.0, 1.2, 1.4, 2.2, 4.0]  # 0.5 and 4.0 fall outside b's capture
    observations, deliveries = correlate(_pair(sent, [1.0, 2.2]))
    (loss,) = observations
    assert loss.kind == "underlay-loss" and (loss.node, loss.peer_node) == ("a", "b")
    assert loss.counts == {"sent": 4, "seen": 2, "lost": 2}
    assert loss.details["outside_window"] == 2
    assert [example["ip_id"] for example in loss.details["examples"]] == [2, 3]
    assert deliveries[0].clock == "matched packets"


def test_with_no_packet_matched_the_clocks_are_assumed_and_the_window_shrinks():
    sent = [1.0, 1.2, 2.0, 2.9]
    observations, _ = correlate(_pair(sent, [], a_hears_b=False))
    # b -> a is judged the same way: a's capture (1.0-2.9 s, shrunk) missed b's 1.5 and 2.0
    (loss,) = [o for o in observations if o.node == "a"]
    # the window 0.9-3.1 s shrinks by the assumed skew (0.5 s) at both ends: 1.4-2.55 s
    assert loss.counts == {"sent": 1, "seen": 0, "lost": 1}
    assert "assumed" in loss.message and loss.details["clock"] == "assumed in sync"


def test_a_receiver_that_only_captured_before_the_packets_cannot_judge_them():
    nodes = _pair([5.0, 5.1], [])
    observations, _ = correlate(nodes)
    (unverified,) = observations
    assert unverified.kind == "underlay-unverified" and unverified.node == "b"
    assert unverified.counts["packets"] == 2


def test_a_receiver_without_readable_captures_cannot_judge():
    broken = CaptureRecord("b", "b.pcap", "eth0", "underlay", "", decode_capture(b"junk"))
    observations, deliveries = correlate(_pair([1.0, 1.5], [], received_capture=broken))
    (unverified,) = observations
    assert unverified.kind == "underlay-unverified" and "could not be read" in unverified.message
    assert deliveries == []


def test_a_receiver_filter_that_leaves_the_port_out_is_not_a_window():
    nodes = _pair([1.5, 2.0], [])
    nodes[1].captures[0].filter = "udp port 4789"
    observations, _ = correlate(nodes)
    assert [o.kind for o in observations] == ["underlay-unverified"]


def test_cooked_and_raw_link_types_decode_the_same_ipv4():
    packet = bytes(ip(POD_A, POD_B, echo(1, 1)))
    sll = b"\x00\x00\x00\x01\x00\x06" + b"\x00" * 8 + b"\x08\x00" + packet
    sll2 = b"\x08\x00" + b"\x00" * 18 + packet
    for linktype, frame in ((113, sll), (276, sll2), (101, packet)):
        summary = decode_capture(pcap([(1.0, frame)], linktype=linktype))
        assert [(f.src, f.dst, f.proto) for f in summary.flows] == [(POD_A, POD_B, 1)], linktype


def test_only_captures_that_record_vxlan_say_when_a_receiver_was_capturing():
    # b's underlay capture stopped at -c after 1.5 s; its bridge capture ran on to 9 s
    nodes = _pair([1.0, 2.0, 2.5], [1.0])
    underlay = nodes[1].captures[0]
    cut = [f for f in _pings(A, B, [1.0]) + _pings(B, A, [0.9, 1.5])]
    underlay.summary = decode_capture(pcap(sorted(cut)))
    underlay.max_packets = 3
    bridge_frames = [
        (0.5, ether(ip(POD_A, POD_B, echo(1, 1)))),
        (9.0, ether(ip(POD_B, POD_A, echo(1, 2)))),
    ]
    bridge = CaptureRecord(
        "b", "cni0.pcap", "cni0", "bridge", "", decode_capture(pcap(bridge_frames))
    )
    nodes[1].captures.append(bridge)
    observations, deliveries = correlate(nodes)
    assert not [o for o in observations if o.kind == "underlay-loss"]
    (a_to_b,) = [d for d in deliveries if d.sender == "a"]
    assert (a_to_b.sent, a_to_b.seen, a_to_b.outside_window) == (1, 1, 2)
    assert underlay.full


def test_port_unreachable_for_a_port_with_a_device_says_nothing_was_bound():
    sent = ip(A, B, dpkt.udp.UDP(sport=40000, dport=8472, data=b"\x08" + b"\x00" * 7))
    summary = decode_capture(pcap([(1.0, unreachable(B, A, 3, sent))] * 2))
    nodes = [
        NodeCaptures("a", frozenset({A}), FLANNEL, [_capture("a", summary)]),
        NodeCaptures("b", frozenset({B}), FLANNEL, []),
    ]
    (missing,) = [o for o in correlate(nodes)[0] if o.kind == "no-listener"]
    assert missing.counts == {"packets": 0, "port_unreachable": 2}
    assert "2 ICMP port unreachable from b" in missing.message
    assert "although the bundle shows flannel.1 on that port" in missing.message


def test_a_receiver_whose_tcpdump_wrote_nothing_it_counted_is_unverified_with_why():
    empty = CaptureRecord(
        "b", "b.pcap", "eth0", "underlay", "udp port 8472", decode_capture(pcap([]))
    )
    empty.received_by_filter = 36
    observations, _ = correlate(_pair([1.0, 1.5], [], received_capture=empty))
    (unverified,) = [o for o in observations if o.node == "b"]
    assert unverified.kind == "underlay-unverified"
    assert "counted packets but wrote none" in unverified.message
    assert "b.pcap (36 received by its filter)" in unverified.message
    assert empty.to_json()["unwritten"] == 36
