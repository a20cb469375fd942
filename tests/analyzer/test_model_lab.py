"""The model and `needle show` over real lab bundles."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from needle.analyzer.bundle import open_bundle
from needle.analyzer.model import build_model
from needle.collector.collect import CollectOptions, collect
from needle.collector.progress import Progress
from needle.collector.transports.netns import NetnsTarget
from needle.lab import api as lab_api

pytestmark = [pytest.mark.root, pytest.mark.tools("nsenter")]


def collect_lab(state, output: Path) -> Path:
    targets = [NetnsTarget(netns=n.netns, node=n.name) for n in state.nodes]
    options = CollectOptions(
        output=output, kube_dir=Path(state.kube_dir), targets=targets, capture_seconds=0
    )
    with Progress(live=False) as progress:
        collect(options, progress)
    return output


def show(bundle: Path, *args: str) -> list[dict]:
    result = subprocess.run(
        [sys.executable, "-m", "needle", "show", str(bundle), *args, "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def healthy_bundle(tmp_path_factory):
    name = f"ndlm-{__import__('os').getpid()}"
    state = lab_api.up(name=name, nodes=3, pods=2)
    try:
        path = collect_lab(state, tmp_path_factory.mktemp("b") / "healthy.tar.gz")
        yield state, path
    finally:
        lab_api.down(name)


def test_veths_pair_every_host_veth_with_its_pods_eth0(healthy_bundle):
    state, bundle = healthy_bundle
    rows = show(bundle, "veths")
    on_cni0 = [row for row in rows if row["master"] == "cni0"]
    expected = {(node.name, pod.host_veth, pod.ref) for node in state.nodes for pod in node.pods}
    assert {(r["node"], r["host_veth"], r["pod"]) for r in on_cni0} == expected
    assert all(r["state"] == "resolved" and r["peer"] == "eth0" for r in on_cni0)
    # the uplink's peer is the underlay switch, which is nobody's node: missing, not an error
    uplinks = [row for row in rows if row["host_veth"] == "ens3"]
    assert len(uplinks) == 3 and all(r["state"] == "missing" for r in uplinks)


def test_mtu_shows_each_nodes_chain(healthy_bundle):
    state, bundle = healthy_bundle
    rows = show(bundle, "mtu")
    assert len(rows) == 6
    for row in rows:
        hops = [(hop["interface"], hop["mtu"]) for hop in row["hops"]]
        assert hops[0] == ("eth0", 1450) and hops[2:] == [
            ("cni0", 1450),
            ("flannel.1", 1450),
            ("ens3", 1500),
        ]
    node_one = show(bundle, "mtu", "--node", state.nodes[0].name)
    assert {row["node"] for row in node_one} == {state.nodes[0].name}


def test_the_model_joins_api_and_data_plane(healthy_bundle):
    state, bundle = healthy_bundle
    with open_bundle(bundle) as opened:
        model = build_model(opened)
        _check_joins(state, model)


def _check_joins(state, model):
    assert model.missing == {}
    assert model.net_conf is not None and model.net_conf.network == "10.244.0.0/16"
    for lab_node in state.nodes:
        node = model.nodes[lab_node.name]
        assert node.api is not None and node.api.pod_cidr == lab_node.pod_cidr
        assert model.node_by_vtep_mac[lab_node.vtep_mac.lower()] is node
        assert model.node_by_underlay_ip[lab_node.underlay_ip] is node
        assert model.node_by_pod_cidr[lab_node.pod_cidr] is node
        for other in state.nodes:
            if other is lab_node:
                continue
            (route,) = model.main_routes(lab_node.name)[other.pod_cidr]
            assert route.dev == "flannel.1" and "onlink" in route.flags
            assert route.gateway == other.pod_cidr.split("/")[0]
    joined = [pod for pod in model.pods if pod.netns is not None]
    assert len(joined) == 6 and all(p.host_veth is not None for p in joined)


def test_show_views_all_render_as_tables(healthy_bundle):
    _, bundle = healthy_bundle
    for view in ("nodes", "pods", "links", "routes", "neigh", "fdb", "veths", "mtu", "captures"):
        result = subprocess.run(
            [sys.executable, "-m", "needle", "show", str(bundle), view],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, (view, result.stderr)
        assert result.stdout.strip(), view


def test_show_unknown_node_and_view_are_one_line_errors(healthy_bundle):
    _, bundle = healthy_bundle
    result = subprocess.run(
        [sys.executable, "-m", "needle", "show", str(bundle), "mtu", "--node", "nope"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "no node 'nope'" in result.stderr and "lab-node-1" in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "needle", "show", str(bundle), "bogus"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_orphaned_veth_is_a_first_class_state(lab_factory, tmp_path):
    state = lab_factory(nodes=2, pods=2)
    record = lab_api.fault(state.name, "veth-orphan")
    bundle = collect_lab(lab_api.status(state.name), tmp_path / "orphan.tar.gz")
    rows = [r for r in show(bundle, "veths", "--node", record.node) if r["master"] == "cni0"]
    orphan = [r for r in rows if r["pod"] is None]
    assert len(orphan) == 1, rows
    assert orphan[0]["state"] == "resolved" and orphan[0]["peer_netns"].startswith("ns-")
    pods = show(bundle, "pods", "--node", record.node)
    assert record.pod not in {p["pod"] for p in pods}
