"""Benchmark: decoding and correlating a large bundle's captures (issue #20's target:
2,000 packets x 1,000 nodes adds under 10 s to `needle analyze` on 2 cores).

Synthesises one underlay capture per node, written as real pcap files into a directory
bundle: outer Ethernet/IPv4/UDP 8472/VXLAN, inner Ethernet/IPv4 with TCP (data with a
few retransmissions, pure ACKs) or ICMP echo, cut at snap length 200. Each node sends
half its packets to 8 peers and receives the other half from 8 others: every packet
is in two captures, as on a real underlay; a few pairs lose some on the way. Then times
the decoder alone, correlation alone, the whole observe_captures() in one process and
with its forked worker, and dpkt's full parse of the same packets for comparison.
Prints numbers; asserts nothing.

    python bench/pcap_decode.py [--nodes 1000] [--packets 2000] [--dir DIR] [--repeat N]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import socket
import struct
import sys
import tempfile
import time
from pathlib import Path

import dpkt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from minimal_bundle import MINIMAL_MANIFEST  # the smallest valid manifest
from needle.analyzer.bundle import open_bundle
from needle.analyzer.model.entities import HOST, Interface, Model, Namespace, Node, NodeApi
from needle.analyzer.observe import (
    CaptureRecord,
    NodeCaptures,
    correlate,
    decode_capture,
    listeners_of,
    observe_captures,
    underlay_ips_of,
)
from needle.analyzer.parsers.ip_link import Link, Vxlan

SNAPLEN = 200
PEERS = 8


def underlay(index: int) -> bytes:
    return bytes((10, 1, index // 250, index % 250 + 1))


def pod(index: int, host: int) -> bytes:
    """Pod `host` of node `index` (a /24 per node under 10.100.0.0/14)."""
    return bytes((10, 100 + index // 256, index % 256, host))


def frame(
    src: int, dst: int, ip_id: int, kind: str, seq: int, rng: random.Random
) -> tuple[bytes, int]:
    """One VXLAN frame from node src to node dst, cut at SNAPLEN, and its wire length."""
    pod_src, pod_dst = pod(src, 2 + seq % 4), pod(dst, 2 + seq % 4)
    if kind == "icmp":
        l4 = struct.pack("!BBHHH", 8, 0, 0, 0x1234, seq & 0xFFFF) + b"p" * 56
        proto = 1
    else:
        payload = 1348 if kind == "data" else 0
        l4 = (
            struct.pack(
                "!HHIIBBHHH",
                40000 + seq % 4,
                8080,
                seq * 1348 & 0xFFFFFFFF,
                1,
                0x50,
                0x18 if payload else 0x10,
                502,
                0,
                0,
            )
            + b"d" * payload
        )
        proto = 6
    inner_ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(l4),
        rng.getrandbits(16),
        0x4000,
        63,
        proto,
        0,
        pod_src,
        pod_dst,
    )
    inner = b"\x0a\x58" + bytes(4) + b"\x0a\x58" + bytes(4) + b"\x08\x00" + inner_ip + l4
    vxlan = struct.pack("!B3xI", 0x08, 1 << 8)
    udp = struct.pack("!HHHH", 32768 + (seq % 16) * 7, 8472, 16 + len(inner), 0)
    outer_ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 36 + len(inner), ip_id, 0, 64, 17, 0, underlay(src), underlay(dst)
    )
    full = (
        b"\x52\x54"
        + bytes(4)
        + b"\x52\x54"
        + bytes(4)
        + b"\x08\x00"
        + outer_ip
        + udp
        + vxlan
        + inner
    )
    return full[:SNAPLEN], len(full)


def synthesise(nodes: int, packets: int, seed: int = 20) -> list[list[tuple[float, bytes, int]]]:
    """Each node's capture: (ts, frame, wire length), sorted by time."""
    rng = random.Random(seed)
    captures: list[list[tuple[float, bytes, int]]] = [[] for _ in range(nodes)]
    per_node = packets // 2
    start = 1_796_600_000.0
    for src in range(nodes):
        for n in range(per_node):
            dst = (src + 1 + n % PEERS) % nodes
            draw = rng.random()
            kind = "icmp" if draw < 0.2 else "ack" if draw < 0.3 else "data"
            seq = n // PEERS if draw < 0.99 else max(0, n // PEERS - 1)  # ~1% retransmitted
            data, wire = frame(src, dst, n & 0xFFFF, kind, seq, rng)
            ts = start + n * 0.001
            captures[src].append((ts, data, wire))
            # pairs 3k -> 3k+1 lose 5% on the underlay
            if not (src % 3 == 0 and dst == src + 1 and rng.random() < 0.05):
                captures[dst].append((ts + 0.0002, data, wire))
    for capture in captures:
        capture.sort(key=lambda record: record[0])
    return captures


def pcap_bytes(records: list[tuple[float, bytes, int]]) -> bytes:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, 1)]
    for ts, data, wire in records:
        seconds = int(ts)
        out.append(struct.pack("<IIII", seconds, round((ts - seconds) * 1e6), len(data), wire))
        out.append(data)
    return b"".join(out)


def write_bundle(root: Path, captures: list[list[tuple[float, bytes, int]]]) -> Model:
    """A directory bundle holding the captures, and the model observe_captures needs
    (built by hand: the bundle has no ip-link outputs to build one from)."""
    root.mkdir(parents=True)
    (root / "manifest.json").write_text(json.dumps(MINIMAL_MANIFEST))
    model = Model()
    for index, records in enumerate(captures):
        name = f"node-{index:04d}"
        relative = f"nodes/{name}/captures/underlay-vxlan.pcap"
        (root / relative).parent.mkdir(parents=True)
        (root / relative).write_bytes(pcap_bytes(records))
        host = Namespace(node=name, id=HOST, dir=f"nodes/{name}/host")
        address = socket.inet_ntoa(underlay(index))
        device = Vxlan(id=1, port=8472, local=address)
        host.add(
            Interface(name, HOST, Link(ifindex=4, name="flannel.1", kind="vxlan", vxlan=device))
        )
        host.present.add("links")
        node = Node(name=name, api=NodeApi(name=name, internal_ip=address), host=host)
        node.captures = [
            {
                "interface": "eth0",
                "filter": "udp port 8472",
                "file": relative,
                "role": "underlay",
                "skipped": None,
                "error": None,
                "max_packets": len(records) + 1,
                "packets_dropped_by_kernel": 0,
            }
        ]
        model.nodes[name] = node
    return model


def timed(label: str, work, packets: int):  # noqa: ANN001, ANN201 - a bench helper
    """Wall time, and the CPU time of this process and of the forked workers it waited
    for (on a busy machine wall time says little; on an idle one, with the work split
    evenly, the wall time is about the larger of the two)."""
    before, started = os.times(), time.perf_counter()
    result = work()
    took, after = time.perf_counter() - started, os.times()
    own = after.user + after.system - before.user - before.system
    workers = (
        after.children_user + after.children_system - before.children_user - before.children_system
    )
    print(
        f"{label:54} {took:6.2f} s wall, cpu {own:5.2f} s here + {workers:5.2f} s in workers"
        f"  ({took / packets * 1e6:5.2f} us/packet wall)",
        flush=True,
    )
    return result


def dpkt_parse(data: bytes) -> int:
    """dpkt's full parse of every layer, outer and inner, as a decoder built on it would."""
    count = 0
    for _, raw in dpkt.pcap.Reader(io.BytesIO(data)):
        outer = dpkt.ethernet.Ethernet(raw)
        udp = outer.data.data
        if isinstance(udp, dpkt.udp.UDP) and udp.dport == 8472:
            inner = dpkt.ethernet.Ethernet(bytes(udp.data)[8:])
            count += isinstance(inner.data, dpkt.ip.IP)
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--packets", type=int, default=2000)
    parser.add_argument("--dir", type=Path, default=None, help="keep the bundle here")
    parser.add_argument(
        "--repeat", type=int, default=1, help="run observe_captures this many times each"
    )
    options = parser.parse_args()
    work_dir = Path(tempfile.mkdtemp(prefix="needle-pcap-bench-"))
    root = options.dir or work_dir / "bundle"
    try:
        started = time.perf_counter()
        captures = synthesise(options.nodes, options.packets)
        model = write_bundle(root, captures)
        total = sum(len(capture) for capture in captures)
        size = sum(p.stat().st_size for p in root.rglob("*.pcap"))
        print(
            f"{options.nodes} nodes, {total:,} packets, {size / 2**20:.0f} MiB of pcap, "
            f"made in {time.perf_counter() - started:.1f} s"
        )
        datas = [(root / n.captures[0]["file"]).read_bytes() for n in model.nodes.values()]
        captures.clear()

        summaries = timed(
            "decode (struct), one process",
            lambda: [decode_capture(data) for data in datas],
            total,
        )
        sample = datas[: max(1, len(datas) // 20)]
        sample_packets = sum(s.packets for s in summaries[: len(sample)])
        timed(
            f"  dpkt full parse, {len(sample)} captures (for comparison)",
            lambda: [dpkt_parse(data) for data in sample],
            sample_packets,
        )
        timed(
            f"  struct decode, the same {len(sample)} captures",
            lambda: [decode_capture(data) for data in sample],
            sample_packets,
        )
        nodes = [
            NodeCaptures(
                name,
                underlay_ips_of(node),
                listeners_of(node),
                [CaptureRecord(name, "f", "eth0", "underlay", "udp port 8472", summary)],
            )
            for (name, node), summary in zip(model.nodes.items(), summaries, strict=True)
        ]
        observations, deliveries = timed("correlate", lambda: correlate(nodes), total)
        kinds: dict[str, int] = {}
        for observation in observations:
            kinds[observation.kind] = kinds.get(observation.kind, 0) + 1
        print(f"  {len(deliveries):,} node pairs judged; observations: {kinds}")
        summaries.clear()
        nodes.clear()
        datas.clear()
        for workers in [1, 2] * options.repeat:
            with open_bundle(root) as bundle:
                result = timed(
                    f"observe_captures (read+decode+correlate), {workers} worker(s)",
                    lambda bundle=bundle, workers=workers: observe_captures(
                        bundle, model, workers=workers
                    ),
                    total,
                )
            assert len(result.captures) == options.nodes
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
