"""Probe planning: targets only from the cluster's own objects, peers spread on a hash ring,
the window's budget with what it cut recorded, the MTU with its source, the spec's probe
settings checked, and the traffic of a 1,000-node plan under 1 MB per node."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from needle.collector.bundle.manifest import NodeRecord
from needle.collector.errors import CollectorError
from needle.collector.probe_facts import read_cluster_facts
from needle.collector.probe_plan import plan_cluster, ring_peers, window_capacity
from needle.collector.probe_records import probe_result, probe_settings
from needle.collector.probe_setup import ProbeRequest, prepare_probes
from needle.collector.script.render import ScriptArgs
from needle.collector.spec.loader import ProbeSettings, default_spec, parse_spec

REPO = Path(__file__).resolve().parents[2]
FLANNEL = "flannel.alpha.coreos.com/"


def node(name: str, cidr: object, ip: str, **annotations: str) -> dict[str, Any]:
    return {
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {f"{FLANNEL}{k}": v for k, v in annotations.items()},
        },
        "spec": {"podCIDR": cidr},
        "status": {"addresses": [{"type": "InternalIP", "address": ip}]},
    }


def pod(
    ns: str, name: str, node_name: str, ip: str, phase: str = "Running", host: bool = False
) -> dict[str, Any]:
    return {
        "metadata": {"namespace": ns, "name": name},
        "spec": {"nodeName": node_name, "hostNetwork": host},
        "status": {"phase": phase, "podIP": ip},
    }


def write(directory: Path, **lists: list[Any]) -> Path:
    for resource, items in lists.items():
        (directory / f"{resource}.json").write_text(json.dumps({"kind": "List", "items": items}))
    return directory


def test_targets_come_from_the_node_and_pod_objects(tmp_path):
    write(
        tmp_path,
        nodes=[
            node("a", "10.244.1.0/24", "192.168.1.1", **{"backend-type": "vxlan"}),
            node(
                "b",
                "10.244.2.0/24",
                "192.168.1.2",
                **{
                    "backend-type": "vxlan",
                    "public-ip": "172.16.0.2",
                    "backend-data": '{"Port": 4789}',
                },
            ),
        ],
        pods=[
            pod("kube-system", "flannel", "b", "192.168.1.2", host=True),  # the node's address
            pod("default", "web", "b", "10.244.2.7"),
            pod("default", "api", "b", "10.244.2.5", phase="Pending"),
            pod("default", "old", "b", "10.244.9.9"),  # not in b's podCIDR
            pod("a-first", "zz", "b", "10.244.2.9"),  # first by namespace/name
        ],
    )
    facts = read_cluster_facts(tmp_path)
    b = facts.nodes["b"]
    assert (b.gateway, b.pod_ip, b.pod) == ("10.244.2.1", "10.244.2.9", "a-first/zz")
    assert (b.vxlan_address, b.vxlan_port) == ("172.16.0.2", 4789)
    a = facts.nodes["a"]
    # no port in the objects: the prober's own VXLAN dstport (the node script's "-")
    assert (a.pod_ip, a.vxlan_address, a.vxlan_port) == (None, "192.168.1.1", None)
    # no MTU in the objects: the node takes its own (subnet.env, its overlay device)
    assert (facts.mtu, facts.mtu_source) == (None, None)
    plan = plan_cluster(["a"], facts, ProbeSettings(), 6, 3)["a"]
    assert [(t.kind, t.address, t.port) for t in plan.targets] == [
        ("node-gateway", "10.244.2.1", None),
        ("pod", "10.244.2.9", None),
        ("vxlan-port", "172.16.0.2", 4789),
    ]
    assert plan.sizes == {"small": 56}
    a_plan = plan_cluster(["b"], facts, ProbeSettings(), 6, 3)["b"]
    assert a_plan.targets[-1].word() == "vxlan-port,192.168.1.1,-,a"


@pytest.mark.parametrize(
    ("configmap", "mtu", "source"),
    [
        ({"veth_mtu": "1410"}, 1410, "config map kube-system/canal-config veth_mtu"),
        (
            {
                "cni-conf.json": json.dumps(
                    {"plugins": [{"type": "flannel", "delegate": {"mtu": 1400}}]}
                )
            },
            1400,
            "config map kube-system/canal-config cni-conf.json mtu",
        ),
        ({"net-conf.json": json.dumps({"Backend": {"Type": "host-gw"}})}, None, None),
    ],
)
def test_the_mtu_says_where_it_came_from(tmp_path, configmap, mtu, source):
    # what a config map states; else the node decides (subnet.env, its devices)
    item = {"metadata": {"namespace": "kube-system", "name": "canal-config"}, "data": configmap}
    write(tmp_path, nodes=[node("a", "10.244.1.0/24", "192.168.1.1")], configmaps=[item])
    facts = read_cluster_facts(tmp_path)
    assert (facts.mtu, facts.mtu_source) == (mtu, source)


def test_a_host_gw_node_gets_no_vxlan_probe(tmp_path):
    net_conf = json.dumps({"Backend": {"Type": "host-gw"}})
    write(
        tmp_path,
        nodes=[node("a", "10.244.1.0/24", "10.0.0.1"), node("b", "10.244.2.0/24", "10.0.0.2")],
        configmaps=[
            {"metadata": {"name": "kube-flannel-cfg"}, "data": {"net-conf.json": net_conf}}
        ],
    )
    plan = plan_cluster(["a"], read_cluster_facts(tmp_path), ProbeSettings(), 6, 3)["a"]
    assert [t.kind for t in plan.targets] == ["node-gateway"]


@pytest.mark.parametrize(
    "nodes_json",
    [
        b"not json",
        b'{"kind": "List", "items": "x"}',
        json.dumps(
            {
                "items": [
                    None,
                    {"metadata": {"name": 7}},
                    {"metadata": {"name": "v6"}, "spec": {"podCIDR": "fd00::/64"}},
                    {"metadata": {"name": "bad"}, "spec": {"podCIDRs": ["10.1.1.0/33", 5]}},
                    {"metadata": {"name": "host"}, "spec": {"podCIDR": "10.1.1.1/32"}},
                    {"metadata": {"name": "x", "annotations": {f"{FLANNEL}backend-data": "{"}}},
                    {"metadata": {"name": "y"}, "status": {"addresses": [{"type": "InternalIP"}]}},
                ]
            }
        ).encode(),
    ],
)
def test_hostile_objects_give_no_target_and_no_traceback(tmp_path, nodes_json):
    (tmp_path / "nodes.json").write_bytes(nodes_json)
    (tmp_path / "pods.json").write_bytes(b'{"items": [{"spec": null}, 3]}')
    facts = read_cluster_facts(tmp_path)
    for found in facts.nodes.values():
        assert found.gateway is None and found.vxlan_address is None
    plans = plan_cluster(list(facts.nodes), facts, ProbeSettings(), 6, 3)
    assert all(not plan.targets for plan in plans.values())


def test_every_node_is_probed_by_exactly_k_others_whatever_the_order():
    names = [f"node-{i}" for i in range(1000)]
    ring = ring_peers(names, 6)
    assert ring == ring_peers(list(reversed(names)), 6)
    probed_by = Counter(peer for peers in ring.values() for peer in peers)
    assert set(probed_by.values()) == {6}
    assert all(len(set(peers)) == 6 and name not in peers for name, peers in ring.items())
    # spread: a node's peers are not its neighbours by name
    assert sum(ring[f"node-{i}"][0] == f"node-{i + 1}" for i in range(999)) < 10
    small = ring_peers(["a", "b", "c"], 6)  # K over n - 1: every other node
    assert {name: sorted(peers) for name, peers in small.items()} == {
        "a": ["b", "c"],
        "b": ["a", "c"],
        "c": ["a", "b"],
    }
    assert ring_peers(["solo"], 6) == {"solo": []}


def test_what_does_not_fit_the_window_is_cut_and_recorded(tmp_path):
    nodes = [
        node(f"n{i}", f"10.244.{i}.0/24", f"10.0.0.{i + 1}", **{"backend-type": "vxlan"})
        for i in range(20)
    ]
    write(
        tmp_path, nodes=nodes, pods=[pod("d", f"p{i}", f"n{i}", f"10.244.{i}.2") for i in range(20)]
    )
    facts = read_cluster_facts(tmp_path)
    settings = ProbeSettings()
    assert window_capacity(settings, 3) == 80 and window_capacity(settings, 1) == 0
    plan = plan_cluster(["n0"], facts, settings, 10, 3)["n0"]
    assert plan.planned <= plan.capacity == 80
    assert len(plan.targets) + len(plan.cut) == 30
    assert plan.cut and all("does not fit the 3 s window: 80 probes" in c.reason for c in plan.cut)
    nothing = plan_cluster(["n0"], facts, settings, 10, 1)["n0"]
    assert nothing.targets == [] and len(nothing.cut) == 30


def test_the_plan_reaches_the_manifest_and_the_script_arguments(tmp_path):
    write(
        tmp_path,
        nodes=[node("a", "10.244.1.0/24", "10.0.0.1"), node("b", "10.244.2.0/24", "10.0.0.2")],
    )
    records = [NodeRecord("a", "netns", "nodes/a"), NodeRecord("ghost", "netns", "nodes/ghost")]
    settings, args, problems = prepare_probes(
        ProbeRequest(True, None, 3), ProbeSettings(), tmp_path, records
    )
    assert settings.enabled and settings.peers == 6 and problems == []
    assert records[0].probes.plan["targets"][0]["address"] == "10.244.2.1"
    assert records[1].probes.skipped.startswith("not a Node object")
    argv = ScriptArgs(window_seconds=3, probe_targets=args["a"].targets).argv()
    assert argv[argv.index("-t") + 1] == "node-gateway,10.244.2.1,-,b"
    off, none, _ = prepare_probes(ProbeRequest(False, None, 3), ProbeSettings(), tmp_path, records)
    assert (off.enabled, off.reason, none) == (False, "--no-probe", {})


@pytest.mark.parametrize(
    ("probes", "message"),
    [
        ({"from": ["host", "elsewhere"]}, "probes.from"),
        ({"count": 0}, "probes.count"),
        ({"interval": 0.01}, "probes.interval"),  # faster than an unprivileged ping may go
        ({"parallel": "many"}, "probes.parallel"),
        ({"deadline": 1.5}, "probes.deadline"),  # ping -w takes whole seconds
        ({"count": 10, "interval": 0.5}, "leave time for the last echo"),
        ({"udp_payload": "X marks"}, "probes.udp_payload"),  # 'X' has VXLAN's I flag
        ({"udp_payload": "P'; rm -rf /"}, "probes.udp_payload"),
    ],
)
def test_bad_probe_settings_are_refused_with_their_place(probes, message):
    text = json.dumps({"commands": [], "probes": probes})
    with pytest.raises(CollectorError, match=message):
        parse_spec(text)


def test_the_default_spec_keeps_its_probes_bounded():
    spec = default_spec()
    assert spec.probes.interval_s >= 0.2 and spec.probes.count <= 5
    assert {c.id for c in spec.counters} >= {"link-stats", "nstat", "proc-snmp", "softnet-stat"}


def test_probe_traffic_bench_stays_under_a_megabyte_per_node():
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "probe_traffic.py"), "--nodes", "200"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    line = next(line for line in result.stdout.splitlines() if "per node per window" in line)
    assert float(line.split("(")[1].split(" MB")[0]) < 1.0, line


@pytest.mark.parametrize(
    "fields",
    [
        ["R"],
        ["R", *["-"] * 17],
        ["R", "elsewhere", "-", "pod", "1.2.3.4", "-", "b", *["-"] * 11],
        ["R", "host", "-", "rm -rf", "1.2.3.4", "-", "b", *["-"] * 11],
        [
            "R",
            "host",
            "-",
            "pod",
            "1.2.3.4",
            "99999999999999",
            "b",
            "x",
            "y",
            "1",
            "ping",
            "../../etc/passwd",
            "-",
            "NaN",
            "x",
            "y",
            "1",
            "-",
        ],
    ],
)
def test_a_garbled_probe_record_from_a_node_is_left_out_or_kept_harmless(fields):
    node = NodeRecord("a", "netns", "nodes/a")
    result = probe_result(fields, node, {"host/probes/x.txt": 3})
    if result is not None:
        assert result.output is None and result.exit_code is None and result.port is None
    probe_settings(["Q", "x", "-", "-", "-", "7", "rm", "-"], node, ProbeSettings())
    assert node.probes is not None and node.probes.mtu is None and node.probes.udp_tool is None


def test_no_probe_with_probe_peers_is_a_usage_error(tmp_path):
    argv = [sys.executable, "-m", "needle", "collect", "-o", str(tmp_path / "b.tar.gz")]
    argv += ["--no-probe", "--probe-peers", "3", "--kube-dir", str(tmp_path)]
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 2 and "--probe-peers goes with probing" in result.stderr
    assert "Traceback" not in result.stderr
