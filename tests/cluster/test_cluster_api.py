"""Live-cluster collection against the mock API server with canned nodes (no root):
objects, node selection, binary safety, errors, cleanup and the RBAC it needs."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml
from mock_apiserver import V4, V5, kubeconfig_text
from needle.analyzer.bundle import open_bundle
from needle.collector import rbac
from needle.collector.collect import CollectOptions, collect
from needle.collector.kube import debug_pod
from needle.collector.kube.pods import read_phase
from needle.collector.kube.session import ClusterOptions
from needle.collector.progress import Progress
from needle.collector.transports.pod import PodTiming


def needle(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "needle", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env=env,
    )


def run(tmp_path: Path, kubeconfig: Path, **cluster) -> Path:
    output = tmp_path / "b.tar.gz"
    options = CollectOptions(
        output=output,
        cluster=ClusterOptions(kubeconfig=kubeconfig, **cluster),
        capture_seconds=0,
    )
    with Progress(live=False) as progress:
        collect(options, progress)
    return output


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- objects ----------------------------------------------------------------------------


def test_objects_are_kubectl_lists_paged_and_filtered(canned_cluster, tmp_path):
    server, kubeconfig = canned_cluster(page_size_cap=2)
    output = run(tmp_path, kubeconfig)
    with open_bundle(output) as bundle:
        lists = {
            name: json.loads(bundle.read_bytes(f"cluster/{name}.json"))
            for name in ("nodes", "pods", "configmaps", "daemonsets")
        }
        assert bundle.manifest["cluster"]["origin"].startswith(server.url)
    assert [n["metadata"]["name"] for n in lists["nodes"]["items"]] == [
        "node-a",
        "node-b",
        "node-c",
    ]
    assert len(lists["pods"]["items"]) == 9  # 3 pages and more, all of them
    for name, api_version, kind in (
        ("nodes", "v1", "Node"),
        ("pods", "v1", "Pod"),
        ("configmaps", "v1", "ConfigMap"),
        ("daemonsets", "apps/v1", "DaemonSet"),
    ):
        assert lists[name]["kind"] == "List"
        assert {(i["apiVersion"], i["kind"]) for i in lists[name]["items"]} == {(api_version, kind)}
    # networking only: the application's config map and daemonset stay out
    assert [c["metadata"]["name"] for c in lists["configmaps"]["items"]] == ["kube-flannel-cfg"]
    assert [d["metadata"]["name"] for d in lists["daemonsets"]["items"]] == ["kube-flannel-ds"]
    assert b"not for support tickets" not in output.read_bytes()
    assert not [r for r in server.requests if "secret" in r.resource]
    pages = [r for r in server.requests if r.resource == "pods" and r.verb == "list"]
    assert len(pages) >= 5


def test_a_forbidden_resource_is_recorded_and_the_rest_goes_on(canned_cluster, tmp_path):
    _server, kubeconfig = canned_cluster(forbidden={("list", "daemonsets")})
    with open_bundle(run(tmp_path, kubeconfig)) as bundle:
        records = {r["resource"]: r for r in bundle.manifest["cluster"]["resources"]}
        assert records["daemonsets"]["status"] == "forbidden"
        assert records["daemonsets"]["file"] is None
        assert "daemonsets is forbidden" in records["daemonsets"]["error"]
        assert records["configmaps"]["status"] == "ok"
        assert {n["status"] for n in bundle.manifest["nodes"]} == {"ok"}
        assert not bundle.exists("cluster/daemonsets.json")


# -- nodes ------------------------------------------------------------------------------


def test_nodes_by_name_and_by_selector(canned_cluster, tmp_path):
    server, kubeconfig = canned_cluster()
    with open_bundle(run(tmp_path, kubeconfig, nodes=["node-c", "node-a"])) as bundle:
        assert [n["name"] for n in bundle.manifest["nodes"]] == ["node-c", "node-a"]
    (tmp_path / "b.tar.gz").unlink()
    selected = run(tmp_path, kubeconfig, selector="kubernetes.io/hostname=node-b")
    with open_bundle(selected) as bundle:
        assert [n["name"] for n in bundle.manifest["nodes"]] == ["node-b"]
        # the cluster's objects stay whole: the analyzer needs every node's podCIDR
        assert len(json.loads(bundle.read_bytes("cluster/nodes.json"))["items"]) == 3
    assert server.pod_names() == []


def test_an_unknown_node_fails_alone_and_windows_nodes_are_skipped(canned_cluster, tmp_path):
    server, kubeconfig = canned_cluster()
    server.objects["nodes"].append(
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": "win-1", "labels": {"kubernetes.io/os": "windows"}},
        }
    )
    with open_bundle(run(tmp_path, kubeconfig, nodes=["node-a", "typo", "win-1"])) as bundle:
        nodes = {n["name"]: n for n in bundle.manifest["nodes"]}
        assert nodes["node-a"]["status"] == "ok"
        assert nodes["typo"]["status"] == "failed"
        assert "node typo is not in the cluster" in nodes["typo"]["errors"][0]
        assert "win-1" not in nodes
        assert any("win-1 runs windows" in e for e in bundle.manifest["errors"])
    assert len(server.created_pods) == 1


@pytest.mark.parametrize("protocols", [(V5, V4), (V4,)], ids=["v5", "v4"])
def test_exec_output_is_binary_safe_and_byte_exact(canned_cluster, tmp_path, protocols):
    payload = bytes(range(256)) * 12_800 + os.urandom(100_000)  # 3.38 MB, every byte value
    stream = io.BytesIO()
    with tarfile.open(fileobj=stream, mode="w") as tar:
        info = tarfile.TarInfo("host/blob.bin")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
        records = b"C\tblob\t-\t-\thost/blob.bin\t-\t0\t1\t2\t0\t0\n"
        info = tarfile.TarInfo("_needle/records.1")
        info.size = len(records)
        tar.addfile(info, io.BytesIO(records))
    _server, kubeconfig = canned_cluster(("node-a",), canned=stream.getvalue(), protocols=protocols)
    with open_bundle(run(tmp_path, kubeconfig)) as bundle:
        (node,) = bundle.manifest["nodes"]
        assert node["status"] == "ok", node["errors"]
        assert bundle.read_bytes("nodes/node-a/host/blob.bin") == payload


def test_debug_pod_manifest():
    settings = debug_pod.PodSettings("needle", "img:1", "abc123", 300)
    pod = debug_pod.pod_manifest(settings, "needle-abc123-1-n1", "n1")
    spec = pod["spec"]
    assert spec["nodeName"] == "n1"
    assert spec["hostNetwork"] is True and spec["hostPID"] is True
    assert spec["restartPolicy"] == "Never" and spec["activeDeadlineSeconds"] == 300
    assert spec["tolerations"] == [{"operator": "Exists"}]
    assert spec["automountServiceAccountToken"] is False
    (container,) = spec["containers"]
    assert container["securityContext"] == {"privileged": True, "runAsUser": 0}
    assert container["image"] == "img:1"
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/run"]["mountPropagation"] == "HostToContainer"
    assert all(m["readOnly"] for m in mounts.values())
    assert pod["metadata"]["labels"]["app.kubernetes.io/name"] == "needle"
    assert pod["metadata"]["labels"]["needle.io/run"] == "abc123"
    long_name = debug_pod.pod_name("abc123", 7, "Very.Long_Node." + "x" * 80)
    assert len(long_name) <= 63 and long_name.startswith("needle-abc123-7-very-long-node")


@pytest.mark.parametrize(
    ("status", "running", "finished", "reason"),
    [
        ({"phase": "Pending"}, False, False, "Pending"),
        (
            {
                "phase": "Pending",
                "containerStatuses": [
                    {"state": {"waiting": {"reason": "ErrImagePull", "message": "not found"}}}
                ],
            },
            False,
            False,
            "ErrImagePull",
        ),
        (
            {"phase": "Running", "containerStatuses": [{"state": {"running": {}}}]},
            True,
            False,
            None,
        ),
        ({"phase": "Failed", "reason": "OutOfpods", "message": "full"}, False, True, "OutOfpods"),
    ],
)
def test_read_phase(status, running, finished, reason):
    phase = read_phase({"status": status})
    assert (phase.running, phase.finished, phase.reason) == (running, finished, reason)


# -- errors -----------------------------------------------------------------------------


def one_line_exit_2(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


def clean_env(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT")
    }
    env["HOME"] = str(tmp_path)  # no ~/.kube/config
    return env


def test_no_kubeconfig_anywhere(tmp_path):
    result = needle("collect", "-o", str(tmp_path / "b.tar.gz"), env=clean_env(tmp_path))
    one_line_exit_2(result, "no kubeconfig found", "--kubeconfig")
    assert not (tmp_path / "b.tar.gz").exists()


def test_kubeconfig_that_does_not_exist(tmp_path):
    result = needle(
        "collect", "--kubeconfig", str(tmp_path / "nope"), "-o", str(tmp_path / "b.tar.gz")
    )
    one_line_exit_2(result, "does not exist", "--kubeconfig")


def test_unreachable_api(tmp_path):
    kubeconfig = tmp_path / "kc"
    kubeconfig.write_text(kubeconfig_text(f"http://127.0.0.1:{closed_port()}"))
    result = needle("collect", "--kubeconfig", str(kubeconfig), "-o", str(tmp_path / "b.tar.gz"))
    one_line_exit_2(result, "cannot reach the Kubernetes API at http://127.0.0.1:")
    assert not (tmp_path / "b.tar.gz").exists()


def test_rejected_credentials(canned_cluster, tmp_path):
    server, _kubeconfig = canned_cluster()
    kubeconfig = tmp_path / "kc"
    kubeconfig.write_text(kubeconfig_text(server.url, token="stale"))
    result = needle("collect", "--kubeconfig", str(kubeconfig), "-o", str(tmp_path / "b.tar.gz"))
    one_line_exit_2(result, "rejected the credentials (401 Unauthorized)", "log in again")


def test_unknown_context_and_bad_arguments(canned_cluster, tmp_path):
    _server, kubeconfig = canned_cluster()
    out = str(tmp_path / "b.tar.gz")
    one_line_exit_2(
        needle("collect", "--kubeconfig", str(kubeconfig), "--context", "prod", "-o", out),
        "context 'prod' is not in kubeconfig",
        "(contexts: mock)",
    )
    one_line_exit_2(
        needle("collect", "--kubeconfig", str(kubeconfig), "--namespace", "Bad_NS", "-o", out),
        "--namespace 'Bad_NS' is not a valid namespace name",
    )
    one_line_exit_2(
        needle("collect", "--kubeconfig", str(kubeconfig), "--nodes", "a", "-l", "x=y", "-o", out),
        "not both",
    )
    one_line_exit_2(needle("collect", "--local", "--nodes", "a", "-o", out), "--nodes goes with")
    garbage = tmp_path / "garbage"
    garbage.write_text("clusters: [\n")
    one_line_exit_2(needle("collect", "--kubeconfig", str(garbage), "-o", out), str(garbage))


def test_in_cluster_credentials(mock_factory, tls, tmp_path, monkeypatch):
    from kubernetes.config import incluster_config
    from mock_apiserver import MockNode
    from needle.collector.kube import client as kube_client

    context, ca_pem = tls
    server, _kubeconfig = mock_factory([MockNode("n1", exec="canned")], ssl_context=context)
    (tmp_path / "token").write_text("needle-test-token")
    (tmp_path / "ca.crt").write_bytes(ca_pem)
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(tmp_path / "token"))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(tmp_path / "ca.crt"))
    port = server.url.rsplit(":", 1)[1]
    environ = {
        "HOME": str(tmp_path),
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": port,
    }
    cluster = kube_client.connect(None, None, environ=environ)
    try:
        assert cluster.server_version == "v1.31.0-needle-mock"
        assert cluster.context is None and "in-cluster" in cluster.origin
    finally:
        cluster.close()


# -- cleanup and rbac -------------------------------------------------------------------


def test_cleanup_removes_only_needle_pods(canned_cluster, tmp_path):
    server, kubeconfig = canned_cluster()
    server.namespaces["needle"] = {"metadata": {"name": "needle"}}
    for name, labels in (
        ("needle-old-1-node-a", {debug_pod.APP_LABEL: "needle", debug_pod.RUN_LABEL: "old"}),
        ("needle-old-2-node-b", {debug_pod.APP_LABEL: "needle", debug_pod.RUN_LABEL: "old"}),
        ("someone-elses", {"app": "web"}),
    ):
        server.pods[("needle", name)] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "needle", "labels": labels},
            "spec": {"nodeName": "node-a"},
            "status": {"phase": "Running"},
        }
    result = needle("cleanup", "--kubeconfig", str(kubeconfig))
    assert result.returncode == 0, result.stderr
    assert "deleted pod needle/needle-old-1-node-a" in result.stdout
    assert server.pod_names() == ["someone-elses"]
    again = needle("cleanup", "--kubeconfig", str(kubeconfig))
    assert again.returncode == 0 and "no needle debug pods in namespace needle" in again.stdout


def rule_allows(rules, request) -> bool:
    for rule in rules:
        if (
            request.group in rule["apiGroups"]
            and request.resource in rule["resources"]
            and request.verb in rule["verbs"]
        ):
            return True
    return False


def test_rbac_parses_and_covers_every_call_collection_makes(canned_cluster, tmp_path):
    result = needle("rbac", "--namespace", "needle")
    assert result.returncode == 0, result.stderr
    documents = list(yaml.safe_load_all(result.stdout))
    kinds = [d["kind"] for d in documents]
    assert kinds == ["Namespace", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"]
    by_kind = {d["kind"]: d for d in documents}
    assert (
        by_kind["Namespace"]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
        == "privileged"
    )
    assert by_kind["Role"]["metadata"]["namespace"] == "needle"
    for binding in ("ClusterRoleBinding", "RoleBinding"):
        assert (
            by_kind[binding]["roleRef"]["name"]
            == by_kind[binding.replace("Binding", "")]["metadata"]["name"]
        )
        assert by_kind[binding]["subjects"] == [
            {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "needle-collectors"}
        ]
    everything = [r for d in documents if "rules" in d for r in d["rules"]]
    assert not [r for r in everything if "secrets" in r["resources"] or "*" in r["resources"]]

    # Replay every API call of a collection (namespace made, pods, exec, deadline stop
    # requests) and of a cleanup against the printed rules.
    server, kubeconfig = canned_cluster(behaviours={"node-c": {"exec": "hang"}})
    output = tmp_path / "b.tar.gz"
    options = CollectOptions(
        output=output,
        cluster=ClusterOptions(kubeconfig=kubeconfig, timing=PodTiming(stop_grace_s=0.5)),
        capture_seconds=0,
        node_deadline_s=1,
    )
    with Progress(live=False) as progress:
        collect(options, progress)
    assert needle("cleanup", "--kubeconfig", str(kubeconfig)).returncode == 0
    assert any(r.resource == "pods/exec" for r in server.requests)
    assert any(r.resource == "namespaces" and r.verb == "create" for r in server.requests)
    for request in server.requests:
        rules = by_kind["ClusterRole"]["rules"]
        if request.namespace == "needle":
            rules = rules + by_kind["Role"]["rules"]
        assert rule_allows(rules, request), request


def test_rbac_subjects():
    text = rbac.render("dbg", rbac.parse_subjects(["alice"], [], ["ops:needle"]))
    documents = list(yaml.safe_load_all(text))
    subjects = documents[2]["subjects"]
    assert {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"} in subjects
    assert {"kind": "ServiceAccount", "name": "needle", "namespace": "ops"} in subjects
    result = needle("rbac", "--service-account", "no-colon")
    one_line_exit_2(result, "NAMESPACE:NAME")
