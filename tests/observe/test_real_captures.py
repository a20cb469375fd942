"""Real captures: tcpdump on both ends of a real VXLAN underlay (tests/observe/
observe_lab.py) while real pings cross it, then real faults (a router dropping, a
small-MTU hop, a port nobody listens on), decoded and correlated."""

from __future__ import annotations

import io
import socket
import time
from collections import Counter

import dpkt
import pytest
from needle.analyzer.observe import (
    CaptureRecord,
    Listener,
    NodeCaptures,
    correlate,
    decode_capture,
)
from observe_lab import A_OVERLAY, A_UNDERLAY, B_OVERLAY, B_UNDERLAY, ROUTER_A_SIDE, run

pytestmark = [pytest.mark.root, pytest.mark.tools("tcpdump", "ping", "iptables", "bridge")]

VXLAN_FILTER = "udp port 8472"
FLANNEL = (Listener("flannel.1", 8472, 1),)


def nodes(captures, a_filter=VXLAN_FILTER, b_filter=VXLAN_FILTER, a_listeners=FLANNEL):
    a = decode_capture(captures["a.pcap"])
    b = decode_capture(captures["b.pcap"])
    return [
        NodeCaptures(
            "node-a",
            frozenset({A_UNDERLAY}),
            a_listeners,
            [CaptureRecord("node-a", "a.pcap", "a0", "underlay", a_filter, a, 2000, 0)],
        ),
        NodeCaptures(
            "node-b",
            frozenset({B_UNDERLAY}),
            FLANNEL,
            [CaptureRecord("node-b", "b.pcap", "b0", "underlay", b_filter, b, 2000, 0)],
        ),
    ]


def _inner_pairs_by_dpkt(data: bytes) -> Counter:
    pairs: Counter = Counter()
    for _, raw in dpkt.pcap.Reader(io.BytesIO(data)):
        udp = dpkt.ethernet.Ethernet(raw).data.data
        inner = dpkt.ethernet.Ethernet(bytes(udp.data)[8:]).data
        pairs[(socket.inet_ntoa(inner.src), socket.inet_ntoa(inner.dst))] += 1
    return pairs


def test_pings_across_vxlan_decode_to_flows_vni_and_counts(underlay_lab):
    lab = underlay_lab
    lab.start_capture(lab.a, "a0", "a.pcap", VXLAN_FILTER)
    lab.start_capture(lab.b, "b0", "b.pcap", VXLAN_FILTER)
    assert lab.ping(lab.a, B_OVERLAY, "-c", "6", "-i", "0.02").wait() == 0
    captures = lab.stop_captures()

    a = decode_capture(captures["a.pcap"])
    assert a.partial is None and a.link_name == "EN10MB" and a.packets == 12
    tunnels = {
        (t.tunnel.src, t.tunnel.dst, t.tunnel.port, t.tunnel.vni): t.packets for t in a.tunnels
    }
    assert tunnels == {(A_UNDERLAY, B_UNDERLAY, 8472, 1): 6, (B_UNDERLAY, A_UNDERLAY, 8472, 1): 6}
    inner = {(f.src, f.dst, f.proto): f.packets for f in a.inner_flows}
    assert inner == {(A_OVERLAY, B_OVERLAY, 1): 6, (B_OVERLAY, A_OVERLAY, 1): 6}
    outer = {(f.src, f.dst, f.proto, f.dport) for f in a.flows}
    assert outer == {(A_UNDERLAY, B_UNDERLAY, 17, 8472), (B_UNDERLAY, A_UNDERLAY, 17, 8472)}
    assert len(a.identities) == 12

    # the decoder agrees with dpkt's own full parse of the same file, packet by packet
    assert _inner_pairs_by_dpkt(captures["a.pcap"]) == Counter(
        {(f.src, f.dst): f.packets for f in a.inner_flows}
    )

    observations, deliveries = correlate(nodes(captures))
    assert observations == []
    by_pair = {(d.sender, d.receiver): (d.sent, d.seen, d.clock) for d in deliveries}
    assert by_pair == {
        ("node-a", "node-b"): (6, 6, "matched packets"),
        ("node-b", "node-a"): (6, 6, "matched packets"),
    }


def _router_drop(lab, *match: str) -> None:
    lab.in_ns(
        lab.r,
        "iptables",
        "-A",
        "FORWARD",
        "-d",
        B_UNDERLAY,
        "-p",
        "udp",
        "--dport",
        "8472",
        *match,
        "-j",
        "DROP",
    )


def _router_dropped(lab) -> int:
    listing = lab.in_ns(lab.r, "iptables", "-L", "FORWARD", "-v", "-x", "-n")
    return sum(int(line.split()[0]) for line in listing.splitlines() if "DROP" in line)


def test_underlay_loss_names_sender_receiver_and_numbers(underlay_lab):
    lab = underlay_lab
    # the router between them drops every other VXLAN packet towards node-b
    _router_drop(lab, "-m", "statistic", "--mode", "nth", "--every", "2", "--packet", "0")
    lab.start_capture(lab.a, "a0", "a.pcap", VXLAN_FILTER)
    lab.start_capture(lab.b, "b0", "b.pcap", VXLAN_FILTER)
    # node-b's own pings keep its capture busy from before node-a's until after
    background = lab.ping(lab.b, A_OVERLAY, "-c", "40", "-i", "0.02")
    time.sleep(0.1)
    lab.ping(lab.a, B_OVERLAY, "-c", "10", "-i", "0.02", "-W", "1").wait()
    background.wait()
    captures = lab.stop_captures()
    dropped = _router_dropped(lab)
    assert dropped >= 10

    observations, deliveries = correlate(nodes(captures))
    (loss,) = [o for o in observations if o.kind == "underlay-loss"]
    assert (loss.node, loss.peer_node) == ("node-a", "node-b")
    assert loss.counts["lost"] == loss.counts["sent"] - loss.counts["seen"]
    assert loss.counts["seen"] > 0
    # every packet claimed lost was dropped by the router, and nearly all drops are claimed
    assert dropped - 3 <= loss.counts["lost"] <= dropped
    assert "node-a sent" in loss.message and "node-b captured" in loss.message
    assert loss.details["clock"] == "matched packets" and loss.details["examples"]
    assert {e["dst"] for e in loss.details["examples"]} == {B_UNDERLAY}
    reverse = [d for d in deliveries if d.sender == "node-b"]
    assert reverse and reverse[0].lost == 0


def test_total_loss_is_claimed_only_inside_the_receivers_window(underlay_lab):
    lab = underlay_lab
    _router_drop(lab)  # nothing from node-a reaches node-b
    lab.start_capture(lab.a, "a0", "a.pcap", VXLAN_FILTER)
    lab.start_capture(lab.b, "b0", "b.pcap", VXLAN_FILTER)
    background = lab.ping(lab.b, A_OVERLAY, "-c", "30", "-i", "0.02", "-W", "1")
    time.sleep(0.1)
    lab.ping(lab.a, B_OVERLAY, "-c", "5", "-i", "0.02", "-W", "1").wait()
    background.wait()
    captures = lab.stop_captures()

    observations, _ = correlate(nodes(captures))
    (loss,) = [o for o in observations if o.kind == "underlay-loss"]
    assert loss.counts["seen"] == 0 and loss.counts["sent"] >= 5
    assert loss.counts["sent"] <= _router_dropped(lab)
    # node-b's packets that node-a received aligned the clocks
    assert loss.details["clock"] == "matched packets"

    # the same packets, with node-b's capture reporting kernel drops: no claim, a reason
    unsure = nodes(captures)
    unsure[1].captures[0].dropped_by_kernel = 3
    observations, _ = correlate(unsure)
    assert not [o for o in observations if o.kind == "underlay-loss"]
    (unverified,) = [o for o in observations if o.kind == "underlay-unverified"]
    assert unverified.node == "node-b" and "dropped by the kernel" in unverified.message


def test_small_mtu_hop_gives_frag_needed_and_fragments(underlay_lab):
    lab = underlay_lab
    for ns, dev in ((lab.r, "rb"), (lab.b, "b0")):
        run("ip", "-n", ns, "link", "set", dev, "mtu", "1300")
    lab.start_capture(lab.a, "a0", "a.pcap", f"icmp or {VXLAN_FILTER}")
    lab.start_capture(lab.b, "b0", "b.pcap", VXLAN_FILTER)
    # DF set, larger than the router's next hop: the router answers "fragmentation needed"
    lab.ping(lab.a, B_UNDERLAY, "-M", "do", "-s", "1400", "-c", "2", "-i", "0.05", "-W", "1").wait()
    # pod traffic of 1,400 bytes: its VXLAN packet (DF clear) is fragmented on the way
    lab.ping(lab.a, B_OVERLAY, "-s", "1372", "-c", "3", "-i", "0.05", "-W", "1").wait()
    captures = lab.stop_captures()

    observations, _ = correlate(nodes(captures, a_filter=f"icmp or {VXLAN_FILTER}"))
    (needed,) = [o for o in observations if o.kind == "frag-needed"]
    assert needed.node == "node-a" and needed.peer_node == "node-b"
    assert needed.details["sender"] == ROUTER_A_SIDE and needed.details["mtu"] == 1300
    assert needed.details["quoted"]["src"] == A_UNDERLAY
    assert needed.details["quoted"]["dst"] == B_UNDERLAY
    assert "next-hop MTU 1300" in needed.message
    fragments = [o for o in observations if o.kind == "fragments"]
    assert any(
        o.details["from"] == "node-a" and o.details["to"] == "node-b" and o.counts["fragments"] >= 3
        for o in fragments
    )


def test_vxlan_to_a_port_nobody_listens_on_is_no_listener(underlay_lab):
    lab = underlay_lab
    # a second VXLAN device on node-a sending to node-b's port 4789, where node-b has none
    run(
        "ip",
        "-n",
        lab.a,
        "link",
        "add",
        "vx4789",
        "address",
        "0a:58:0a:f5:00:01",
        "type",
        "vxlan",
        "id",
        "7",
        "dstport",
        "4789",
        "local",
        A_UNDERLAY,
        "dev",
        "a0",
        "nolearning",
    )
    run("ip", "-n", lab.a, "addr", "add", "10.245.0.1/24", "dev", "vx4789")
    run("ip", "-n", lab.a, "link", "set", "vx4789", "up")
    run(
        "ip",
        "-n",
        lab.a,
        "neigh",
        "replace",
        "10.245.0.2",
        "lladdr",
        "0a:58:0a:f5:00:02",
        "dev",
        "vx4789",
        "nud",
        "permanent",
    )
    run(
        "bridge",
        "-n",
        lab.a,
        "fdb",
        "append",
        "0a:58:0a:f5:00:02",
        "dev",
        "vx4789",
        "dst",
        B_UNDERLAY,
    )
    bpf = "icmp or udp port 8472 or udp port 4789"
    lab.start_capture(lab.a, "a0", "a.pcap", bpf)
    lab.start_capture(lab.b, "b0", "b.pcap", VXLAN_FILTER)
    lab.ping(lab.a, "10.245.0.2", "-c", "3", "-i", "0.05", "-W", "1").wait()
    captures = lab.stop_captures()

    a_listeners = (*FLANNEL, Listener("vx4789", 4789, 7))
    observations, deliveries = correlate(nodes(captures, a_filter=bpf, a_listeners=a_listeners))
    (missing,) = [o for o in observations if o.kind == "no-listener"]
    assert (missing.node, missing.peer_node) == ("node-a", "node-b")
    assert missing.details["port"] == 4789 and missing.counts["packets"] == 3
    assert missing.counts["port_unreachable"] >= 1  # node-b's kernel said so
    assert "no VXLAN device" in missing.message
    # node-b's capture filters port 8472 only: the 4789 packets are not claimed lost
    assert not [o for o in observations if o.kind == "underlay-loss"]
    assert all(d.lost == 0 for d in deliveries)
