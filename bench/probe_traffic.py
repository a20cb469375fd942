"""Benchmark: probe traffic per node per window, computed from the collector's own plan.

Builds a synthetic cluster of N flannel VXLAN nodes (a Running pod on each), plans the
probes exactly as `needle collect` does (collector/probe_plan.py: K peers on the hash
ring, the window's budget), and counts, for every node, the bytes its underlay carries
for probes in one window: its own echoes and their replies, the echoes the nodes that
probe it send (and its replies), and the VXLAN-port datagrams. An echo over the MTU with
DF set never leaves the node (the local stack refuses it), so it costs nothing on the
wire. Target: < 1 MB per node per window at 1,000 nodes with the default K. Prints
numbers; asserts nothing.

    python bench/probe_traffic.py --nodes 1000 [--peers K] [--window 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from needle.collector.probe_facts import read_cluster_facts
from needle.collector.probe_plan import ICMP_HEADERS, NodeProbePlan, payload_sizes, plan_cluster
from needle.collector.spec.loader import default_spec

ETHERNET = 14
UDP_HEADERS = 28
"""IPv4 20 + UDP 8."""
VXLAN_OVERHEAD = 50
"""Outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8 around each inner frame."""
MTU = 1450
"""What a flannel VXLAN node's overlay device has on a 1500-byte underlay (the nodes
take it from their subnet.env or that device; the objects here state none)."""


def synthetic_cluster(directory: Path, nodes: int) -> list[str]:
    """cluster/nodes.json and pods.json of `nodes` flannel VXLAN nodes."""
    names = [f"node-{index:04d}" for index in range(nodes)]
    items, pods = [], []
    for index, name in enumerate(names):
        third, fourth = divmod(index, 250)
        cidr = f"10.{128 + index // 256}.{index % 256}.0/24"
        items.append(
            {
                "metadata": {
                    "name": name,
                    "annotations": {"flannel.alpha.coreos.com/backend-type": "vxlan"},
                },
                "spec": {"podCIDR": cidr},
                "status": {
                    "addresses": [{"type": "InternalIP", "address": f"172.16.{third}.{fourth + 1}"}]
                },
            }
        )
        pods.append(
            {
                "metadata": {"namespace": "default", "name": f"web-{index}"},
                "spec": {"nodeName": name},
                "status": {"phase": "Running", "podIP": cidr.replace(".0/24", ".2")},
            }
        )
    for resource, listed in (("nodes", items), ("pods", pods)):
        (directory / f"{resource}.json").write_text(json.dumps({"kind": "List", "items": listed}))
    return names


def echo_bytes(payload: int, count: int) -> int:
    """One echo probe's request and reply frames on the underlay (VXLAN-encapsulated)."""
    frame = payload + ICMP_HEADERS + ETHERNET + VXLAN_OVERHEAD
    return 2 * count * frame


def wire_bytes(plans: Mapping[str, NodeProbePlan], mtu: int, udp_payload: int) -> Counter[str]:
    """Underlay bytes per node: each probe counted at the prober and at the target."""
    per_node: Counter[str] = Counter()
    for node, plan in plans.items():
        for target in plan.targets:
            if target.kind == "vxlan-port":
                cost = udp_payload + UDP_HEADERS + ETHERNET
            else:
                sizes = payload_sizes(mtu, plan.sizes["small"]).values()
                fitting = [size for size in sizes if size + ICMP_HEADERS <= mtu]
                cost = len(plan.sources) * sum(echo_bytes(size, plan.count) for size in fitting)
            per_node[node] += cost
            per_node[target.peer_node] += cost
    return per_node


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--peers", type=int, default=None, help="default: the spec's")
    parser.add_argument("--window", type=int, default=3, help="seconds (--capture-seconds)")
    args = parser.parse_args()
    settings = default_spec().probes
    peers = settings.peers if args.peers is None else args.peers
    with tempfile.TemporaryDirectory(prefix="needle-probe-bench-") as tmp:
        names = synthetic_cluster(Path(tmp), args.nodes)
        facts = read_cluster_facts(Path(tmp))
    started = time.perf_counter()
    plans = plan_cluster(names, facts, settings, peers, args.window)
    planned_s = time.perf_counter() - started
    traffic = wire_bytes(plans, facts.mtu or MTU, len(settings.udp_payload))
    probes = [plan.planned for plan in plans.values()]
    cut = sum(len(plan.cut) for plan in plans.values())
    largest = max(traffic.values())
    print(
        f"{args.nodes} nodes, K={peers}, {args.window} s window, MTU {facts.mtu or MTU}: "
        f"{max(probes)} probes per node (capacity {plans[names[0]].capacity}), {cut} targets cut; "
        f"planned in {planned_s:.2f} s"
    )
    print(
        f"probe traffic per node per window: max {largest:,} B ({largest / 1e6:.3f} MB), "
        f"mean {sum(traffic.values()) / len(traffic):,.0f} B; target < 1 MB"
    )


if __name__ == "__main__":
    main()
