"""`needle trace` on real lab bundles: a healthy data plane delivers both ways (pods on
two nodes, on one node, node to pod) on each backend; each lab fault is dropped at the
node and step where the packet really dies, with the file that shows it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from needle.analyzer.trace.walk import STEPS

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
NEEDLE = (sys.executable, "-m", "needle")


def trace(sample: str, source: str, target: str, *options: str) -> tuple[int, dict]:
    bundle = str(SAMPLES / f"{sample}.tar.gz")
    result = subprocess.run(
        [*NEEDLE, "trace", bundle, source, target, "--format", "json", *options],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def pods(sample: str, node: str) -> list[str]:
    result = subprocess.run(
        [*NEEDLE, "show", str(SAMPLES / f"{sample}.tar.gz"), "pods", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = json.loads(result.stdout)
    return sorted(r["pod"] for r in rows if r["node"] == node and r["pod"].startswith("default/"))


HEALTHY = [
    "lab-healthy",
    "lab-vxlan-directrouting-healthy",
    "lab-host-gw-healthy",
    "lab-canal-healthy",
]


@pytest.mark.parametrize("sample", HEALTHY)
def test_a_healthy_data_plane_delivers_both_ways(sample):
    here, there = pods(sample, "lab-node-1"), pods(sample, "lab-node-2")
    for source, target in [
        (here[0], there[0]),  # two nodes
        (here[0], here[1]),  # one node
        ("lab-node-3", here[0]),  # a node to a pod
    ]:
        code, document = trace(sample, source, target, "--size", "1450")
        assert (code, document["verdict"]) == (0, "delivered"), (source, target, document)
        assert document["return"]["verdict"] == "delivered"
        assert document["hops"][-1]["step"] == "deliver"


@pytest.mark.parametrize(
    ("sample", "own", "other"),
    [
        # VXLAN: flannel.1's address to another node's pods, cni0's to its own
        ("lab-healthy", "10.244.3.1", "10.244.3.0"),
        # host-gw: out of ens3 to another node's pods, so the node's own IP
        ("lab-host-gw-healthy", "10.244.3.1", None),
    ],
)
def test_a_nodes_packet_leaves_with_the_address_its_route_chooses(sample, own, other):
    here, mine = pods(sample, "lab-node-1")[0], pods(sample, "lab-node-3")[0]
    for target, source in ((mine, own), (here, other)):
        code, document = trace(sample, "lab-node-3", target)
        assert code == 0, document
        first = next(h for h in document["hops"] if h["step"] == "route")
        if source is None:
            assert ", from " not in first["detail"], first
            continue
        assert first["detail"].endswith(f", from {source}"), first
        # the reply comes back to that address, not to the node's IP
        last = document["return"]["hops"][-1]
        assert last["detail"].startswith(f"{source} is "), last
        assert (last["node"], last["netns"]) == ("lab-node-3", "host")


def test_the_document_is_the_contract():
    here, there = pods("lab-healthy", "lab-node-1"), pods("lab-healthy", "lab-node-2")
    _, document = trace("lab-healthy", here[0], there[0], "--proto", "udp", "--port", "53")
    assert document["format"] == "needle.trace/v1"
    assert set(document) >= {"from", "to", "packet", "verdict", "hops", "drop", "return"}
    assert document["packet"] == {"proto": "udp", "size": 84, "df": True, "port": 53}
    assert document["from"]["node"] == "lab-node-1" and document["to"]["node"] == "lab-node-2"
    for hop in document["hops"] + document["return"]["hops"]:
        assert set(hop) == {"node", "netns", "step", "interface", "verdict", "detail", "evidence"}
        assert hop["step"] in STEPS and hop["verdict"] in ("pass", "drop", "unknown")
    # the overlay's steps, in the order the kernel takes them
    steps = [hop["step"] for hop in document["hops"]]
    assert (
        steps.index("neigh")
        < steps.index("fdb")
        < steps.index("encap")
        < steps.index("underlay")
        < steps.index("decap")
        < steps.index("deliver")
    )
    assert document["drop"] is None and document["not_modelled"] == [
        "nftables expressions without an iptables equivalent"
    ]
    assert document["endpoints"] == [] and document["return"]["endpoints"] == []  # no DNAT


def _dropped_at(document: dict) -> tuple[str, str, str, str]:
    for path in (document, document["return"]):
        if path["drop"] is not None:
            hop = next(h for h in path["hops"] if h["verdict"] == "drop")
            assert hop["evidence"] and all(item["file"] for item in hop["evidence"])
            return hop["node"], hop["netns"], hop["step"], hop["interface"] or ""
    raise AssertionError(f"not dropped: {document['verdict']}")


# sample -> (FROM on lab-node-2's first pod unless said, TO, options, expected drop)
FAULTS = {
    "lab-route-missing": ("n1", "n2", (), ("lab-node-1", "host", "route", "ens3")),
    "lab-ip-forward-off": ("n1", "n2", (), ("lab-node-1", "host", "sysctl", "cni0")),
    "lab-mtu-underlay": ("n2", "n1", ("--size", "1450"), ("lab-node-1", "host", "mtu", "ens3")),
    "lab-host-gw-route-missing": ("n1", "n2", (), ("lab-node-1", "host", "route", "ens3")),
    "lab-host-gw-peer-off-link": ("n1", "n2", (), ("lab-node-1", "host", "route", "ens3")),
    "lab-host-gw-route-wrong-nexthop": ("n1", "n2", (), ("lab-node-1", "host", "route", "ens3")),
    "lab-vxlan-directrouting-vxlan-route-no-fdb": (
        "n1",
        "n2",
        (),
        ("lab-node-1", "host", "neigh", "flannel.1"),
    ),
    # toward the node whose address changed: its peers still send to the old one
    "lab-vxlan-local-gone": ("n2", "n1", (), ("lab-node-1", "host", "encap", "flannel.1")),
}


@pytest.mark.parametrize("sample", sorted(FAULTS))
def test_each_fault_is_dropped_where_the_packet_dies(sample):
    source_node, target_node, options, expected = FAULTS[sample]
    nodes = {"n1": "lab-node-1", "n2": "lab-node-2"}
    source = pods(sample, nodes[source_node])[0]
    target = pods(sample, nodes[target_node])[0]
    code, document = trace(sample, source, target, *options)
    assert code == 1 and document["verdict"] == "dropped"
    assert _dropped_at(document) == expected


def test_a_canal_pod_without_its_host_route_and_one_without_proxy_arp():
    # the pods the lab's faults touched are the first node's web pods
    target = next(p for p in pods("lab-canal-pod-route-missing", "lab-node-1") if "/web-" in p)
    source = pods("lab-canal-pod-route-missing", "lab-node-2")[0]
    _, document = trace("lab-canal-pod-route-missing", source, target)
    assert _dropped_at(document)[:3] == ("lab-node-1", "host", "route")
    target = next(p for p in pods("lab-canal-proxy-arp-off", "lab-node-1") if "/web-" in p)
    source = pods("lab-canal-proxy-arp-off", "lab-node-2")[0]
    _, document = trace("lab-canal-proxy-arp-off", source, target)
    node, netns, step, interface = _dropped_at(document)
    assert (node, netns, step, interface) == ("lab-node-1", target, "neigh", "eth0")


def test_a_packet_over_the_path_mtu_dies_at_the_bottleneck():
    """The mtu-pod fault gives one pod eth0 MTU 1500 over a 1450 overlay: 1500 bytes with
    DF leave the pod and die at flannel.1; without DF they are fragmented and arrive."""
    source = next(p for p in pods("lab-mtu-pod", "lab-node-1") if "/web-" in p)
    target = pods("lab-mtu-pod", "lab-node-2")[0]
    _, document = trace("lab-mtu-pod", source, target, "--size", "1500")
    hop = next(h for h in document["hops"] if h["verdict"] == "drop")
    assert (hop["node"], hop["step"], hop["interface"]) == ("lab-node-1", "mtu", "flannel.1")
    assert "1500" in hop["detail"] and "1450" in hop["detail"]
    _, fragmented = trace("lab-mtu-pod", source, target, "--size", "1500", "--no-df")
    assert fragmented["hops"][-1]["step"] == "deliver"


def test_endpoints_that_name_nothing_are_one_line_errors():
    result = subprocess.run(
        [*NEEDLE, "trace", str(SAMPLES / "lab-healthy.tar.gz"), "no-such-pod", "lab-node-1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "no pod, node or IPv4 address" in result.stderr


def test_text_reads_like_a_traceroute_and_marks_the_failing_hop():
    source = pods("lab-route-missing", "lab-node-1")[0]
    target = pods("lab-route-missing", "lab-node-2")[0]
    result = subprocess.run(
        [*NEEDLE, "trace", str(SAMPLES / "lab-route-missing.tar.gz"), source, target],
        capture_output=True,
        text=True,
        check=False,
        env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    failing = [line for line in lines if line.startswith("X")]
    assert len(failing) == 1 and "route" in failing[0] and "lab-node-1" in failing[0]
    assert any(
        line.strip().startswith("evidence: nodes/lab-node-1/host/ip-route") for line in lines
    )
    assert any(line.strip().startswith("fix:") for line in lines)
    assert lines[-1].startswith("dropped")


def _with_ruleset(tmp_path: Path, node: str, rules: str) -> Path:
    """The healthy lab as a directory bundle, `node` running these iptables rules."""
    import tarfile

    root = tmp_path / "bundle"
    with tarfile.open(SAMPLES / "lab-healthy.tar.gz") as tar:
        tar.extractall(root, filter="data")
    (root / "nodes" / node / "host" / "iptables-save.txt").write_text(
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
        f"{rules}COMMIT\n"
    )
    return root


def _trace_dir(bundle: Path, source: str, target: str) -> tuple[int, dict]:
    result = subprocess.run(
        [*NEEDLE, "trace", str(bundle), source, target, "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def test_a_forward_drop_rule_drops_at_filter_naming_the_rule(tmp_path):
    rule = '-A FORWARD -d 10.244.2.0/24 -m comment --comment "firewall agent" -j DROP'
    bundle = _with_ruleset(tmp_path, "lab-node-1", rule + "\n")
    source, target = pods("lab-healthy", "lab-node-1")[0], pods("lab-healthy", "lab-node-2")[0]
    code, document = _trace_dir(bundle, source, target)
    assert code == 1 and document["verdict"] == "dropped"
    hop = next(h for h in document["hops"] if h["verdict"] == "drop")
    assert (hop["node"], hop["step"], hop["interface"]) == ("lab-node-1", "filter", "cni0")
    assert hop["evidence"] == [{"file": "nodes/lab-node-1/host/iptables-save.txt", "detail": rule}]
    assert document["return"]["verdict"] == "delivered"  # only that way is filtered


def test_a_rule_the_evaluator_cannot_decide_is_unknown_with_its_text(tmp_path):
    rule = "-A FORWARD -m set --match-set blocked src -j DROP"
    bundle = _with_ruleset(tmp_path, "lab-node-2", rule + "\n")
    source, target = pods("lab-healthy", "lab-node-1")[0], pods("lab-healthy", "lab-node-2")[0]
    code, document = _trace_dir(bundle, source, target)
    assert code == 1 and document["verdict"] == "unknown"
    hop = next(h for h in document["hops"] if h["verdict"] != "pass")
    assert (hop["node"], hop["step"], hop["verdict"]) == ("lab-node-2", "filter", "unknown")
    assert hop["evidence"][0]["detail"] == rule


def _with_neighbour(tmp_path: Path, node: str, row: dict) -> Path:
    """The healthy lab as a directory bundle, `row` replacing `node`'s host neighbour
    entry for its address and device."""
    root = _with_ruleset(tmp_path, node, "")
    path = root / "nodes" / node / "host" / "ip-neigh.json"
    rows = [
        r for r in json.loads(path.read_text()) if (r["dst"], r["dev"]) != (row["dst"], row["dev"])
    ]
    path.write_text(json.dumps([*rows, row]))
    return root


@pytest.mark.parametrize("state", ["FAILED", "INCOMPLETE"])
def test_an_unanswered_arp_for_a_pod_that_is_there_is_not_decidable(tmp_path, state):
    # the kernel asks again when it sends: that the last ask failed is a symptom, and
    # the bundle shows nothing that keeps the pod from answering now
    here = pods("lab-healthy", "lab-node-1")[0]
    _, healthy = trace("lab-healthy", "lab-node-3", here)
    address = healthy["to"]["ip"]
    row = {"dst": address, "dev": "cni0", "state": [state]}
    bundle = _with_neighbour(tmp_path, "lab-node-1", row)
    code, document = _trace_dir(bundle, "lab-node-3", here)
    assert code == 1 and document["verdict"] == "unknown"
    hop = next(h for h in document["hops"] if h["verdict"] != "pass")
    assert (hop["node"], hop["step"], hop["interface"]) == ("lab-node-1", "neigh", "cni0")
    assert f"{address} on cni0 is {state}: the last ARP went unanswered" in hop["detail"]
    assert hop["evidence"][0]["file"] == "nodes/lab-node-1/host/ip-neigh.json"


def test_a_frame_larger_than_the_receivers_mtu_dies_as_it_arrives():
    # mtu-underlay: lab-node-1's ens3 is 1450, the others' 1500: a full-size pod packet
    # from lab-node-2 leaves as 1500 bytes of VXLAN and lab-node-1's ens3 drops it
    source, target = (
        pods("lab-mtu-underlay", "lab-node-2")[0],
        pods("lab-mtu-underlay", "lab-node-1")[0],
    )
    code, document = trace("lab-mtu-underlay", source, target, "--size", "1450")
    assert code == 1
    hop = next(h for h in document["hops"] if h["verdict"] == "drop")
    assert (hop["node"], hop["step"], hop["interface"]) == ("lab-node-1", "mtu", "ens3")
    assert (
        hop["detail"]
        == "1500 bytes arrive at lab-node-1's ens3, above its MTU 1450: dropped as it arrives"
    )
    code, document = trace("lab-mtu-underlay", source, target, "--size", "1400")
    assert code == 0
