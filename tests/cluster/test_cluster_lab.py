"""`needle collect` against a live (mock) cluster whose debug pods exec for real inside
lab nodes: the same node data as the netns transport, and every pod deleted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from needle.analyzer.bundle import open_bundle
from needle.analyzer.bundle.manifest import manifest_schema
from needle.collector.collect import CollectOptions, collect
from needle.collector.kube.session import ClusterOptions
from needle.collector.progress import Progress
from needle.collector.transports.netns import NetnsTarget
from needle.collector.transports.pod import PodTiming

pytestmark = [pytest.mark.root, pytest.mark.tools("nsenter", "unshare", "tcpdump")]


def needle(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "needle", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def node_files(node: dict) -> dict[str, set[str]]:
    """Per namespace name ("host" for the node's own), the output files' names."""
    by_id = {ns["id"]: ns["name"] for ns in node["netns"]}
    files: dict[str, set[str]] = {"host": set()}
    prefix = node["dir"] + "/"
    for command in node["commands"]:
        if command["output"] is None:
            continue
        relative = command["output"][len(prefix) :]
        if command["netns"] is None:
            files["host"].add(relative)
        else:
            files.setdefault(by_id[command["netns"]], set()).add(
                relative.split("/", 2)[2]  # netns/<id>/<file>
            )
    return files


def in_process(tmp_path: Path, name: str, **options) -> Path:
    output = tmp_path / name
    settings = {"capture_seconds": 0, **options}
    with Progress(live=False) as progress:
        collect(CollectOptions(output=output, **settings), progress)
    return output


def test_pod_transport_gives_the_netns_transports_node_data(lab_cluster, tls, tmp_path):
    context, ca_pem = tls
    state, server, kubeconfig = lab_cluster(3, 2, ssl_context=context, ca_pem=ca_pem)
    through_pods = tmp_path / "pods.tar.gz"
    result = needle(
        "collect", "--kubeconfig", str(kubeconfig), "--no-capture", "-o", str(through_pods)
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert server.pod_names() == [] and server.live_containers() == 0
    assert len(server.created_pods) == 3
    through_netns = in_process(
        tmp_path,
        "netns.tar.gz",
        targets=[NetnsTarget(netns=n.netns, node=n.name) for n in state.nodes],
    )
    with open_bundle(through_pods) as pods_bundle, open_bundle(through_netns) as netns_bundle:
        manifest = pods_bundle.manifest
        jsonschema.validate(manifest, manifest_schema())
        assert manifest["status"] == "complete"
        assert manifest["collection"]["sources"] == ["kube-api", "pod"]
        assert manifest["cluster"]["source"] == "kube-api"
        assert {r["resource"]: r["items"] for r in manifest["cluster"]["resources"]} == {
            "nodes": 3,
            "pods": 9,
            "configmaps": 1,
            "daemonsets": 1,
        }
        pods = json.loads(pods_bundle.read_bytes("cluster/pods.json"))
        assert pods["kind"] == "List"
        assert {(p["apiVersion"], p["kind"]) for p in pods["items"]} == {("v1", "Pod")}
        by_name = {n["name"]: n for n in netns_bundle.manifest["nodes"]}
        for node in manifest["nodes"]:
            assert node["status"] == "ok", node["errors"]
            assert node["transport"] == "pod" and node["target"].startswith("needle/needle-")
            lab_node = state.node(node["name"])
            assert sorted(ns["name"] for ns in node["netns"]) == sorted(
                pod.netns for pod in lab_node.pods
            )
            reference = by_name[node["name"]]
            assert sorted(ns["inode"] for ns in node["netns"]) == sorted(
                ns["inode"] for ns in reference["netns"]
            )
            assert node_files(node) == node_files(reference)
            # the data is the node's: its cni0 and its pods' veths
            links = json.loads(pods_bundle.read_bytes(f"{node['dir']}/host/ip-link.json"))
            names = {link["ifname"] for link in links}
            assert {"cni0", "flannel.1", "ens3"} <= names
            assert {pod.host_veth for pod in lab_node.pods} <= names


def test_failures_leave_the_healthy_nodes_and_say_why(lab_cluster, tmp_path):
    _state, server, kubeconfig = lab_cluster(
        3,
        1,
        behaviours={
            "lab-node-2": {"pod": "never-ready"},
            "lab-node-3": {"exec": "hang"},
        },
        forbidden={("list", "configmaps")},
    )
    from mock_apiserver import MockNode

    # two more nodes, not in the lab: one whose image cannot be pulled, one that is full
    for name, behaviour in (("ghost-pull", "image-pull"), ("ghost-full", "rejected")):
        server.nodes[name] = MockNode(name, pod=behaviour)
        server.objects["nodes"].append(
            {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {}}}
        )
    output = in_process(
        tmp_path,
        "b.tar.gz",
        cluster=ClusterOptions(
            kubeconfig=kubeconfig,
            nodes=["lab-node-1", "lab-node-2", "lab-node-3", "ghost-pull", "ghost-full"],
            image="registry.invalid/needle:none",
            timing=PodTiming(start_timeout_s=2, pull_grace_s=0.3, stop_grace_s=1),
        ),
        node_deadline_s=3,
    )
    assert server.pod_names() == [] and server.live_containers() == 0
    with open_bundle(output) as bundle:
        manifest = bundle.manifest
        jsonschema.validate(manifest, manifest_schema())
        assert manifest["status"] == "partial"
        resources = {r["resource"]: r for r in manifest["cluster"]["resources"]}
        assert resources["configmaps"]["status"] == "forbidden"
        assert "configmaps is forbidden" in resources["configmaps"]["error"]
        assert resources["pods"]["status"] == "ok" and resources["nodes"]["status"] == "ok"
        nodes = {n["name"]: n for n in manifest["nodes"]}
        assert nodes["lab-node-1"]["status"] == "ok", nodes["lab-node-1"]["errors"]
        assert bundle.read_bytes("nodes/lab-node-1/host/ip-link.json").startswith(b"[")
        never = nodes["lab-node-2"]
        assert never["status"] == "failed"
        assert "never started within 2 s: ContainerCreating" in never["errors"][0]
        assert never["errors"][0].startswith("pod needle-")
        hung = nodes["lab-node-3"]
        assert hung["status"] == "failed"
        assert any("3 s deadline" in e for e in hung["errors"]), hung["errors"]
        pull = nodes["ghost-pull"]
        assert pull["status"] == "failed"
        assert "on ghost-pull never started: ImagePullBackOff" in pull["errors"][0] or (
            "ErrImagePull" in pull["errors"][0]
        )
        full = nodes["ghost-full"]
        assert "never started: OutOfpods" in full["errors"][0]
        assert hung["duration_s"] < 10


def test_a_v4_server_that_cannot_close_stdin(lab_cluster, tmp_path):
    from mock_apiserver import V4

    _state, server, kubeconfig = lab_cluster(1, 1, protocols=(V4,))
    output = in_process(tmp_path, "b.tar.gz", cluster=ClusterOptions(kubeconfig=kubeconfig))
    with open_bundle(output) as bundle:
        (node,) = bundle.manifest["nodes"]
        assert node["status"] == "ok", node["errors"]
        assert len(node["netns"]) == 1
    assert server.pod_names() == []


def test_deadline_stops_the_script_in_its_pod_and_keeps_what_it_sent(lab_cluster, tmp_path):
    _state, server, kubeconfig = lab_cluster(1, 1)
    output = in_process(
        tmp_path,
        "b.tar.gz",
        cluster=ClusterOptions(kubeconfig=kubeconfig),
        capture_seconds=30,
        node_deadline_s=2,
    )
    stop_requests = [c for c in server.exec_commands if "needle-node" not in c]
    assert len(stop_requests) == 1
    with open_bundle(output) as bundle:
        (node,) = bundle.manifest["nodes"]
        assert node["status"] == "partial"
        assert any("2 s deadline" in e for e in node["errors"]), node["errors"]
        assert bundle.read_bytes(f"{node['dir']}/host/ip-link.json").startswith(b"[")
        # the captures were stopped and sent, not lost
        assert any(c["file"] for c in node["captures"]), node["errors"]
        assert node["duration_s"] < 15
    assert server.pod_names() == [] and server.live_containers() == 0
