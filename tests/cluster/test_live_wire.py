"""Live collection against an API server that frames responses as kube-apiserver does
(keep-alive, one write, chunked lists, TLS): no node lost, retries only where safe, and
every pod deleted whatever the server answered on the way.

Canned nodes (no root): exec streams a prepared node response.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from needle.analyzer.bundle import open_bundle
from needle.collector.collect import CollectOptions, collect
from needle.collector.kube import debug_pod
from needle.collector.kube.calls import ONE_TRY, KubeCallError, KubeCalls, RetryPolicy
from needle.collector.kube.client import connect
from needle.collector.kube.pods import PodApi
from needle.collector.kube.session import ClusterOptions
from needle.collector.progress import Progress
from wire import Fault

NODES = ("node-a", "node-b", "node-c")


def needle(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "needle", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def run(tmp_path: Path, kubeconfig: Path, concurrency: int = 10, **cluster) -> dict:
    output = tmp_path / f"b{len(list(tmp_path.glob('b*.tar.gz')))}.tar.gz"
    options = CollectOptions(
        output=output,
        cluster=ClusterOptions(kubeconfig=kubeconfig, **cluster),
        capture_seconds=0,
        concurrency=concurrency,
    )
    with Progress(live=False) as progress:
        collect(options, progress)
    with open_bundle(output) as bundle:
        return bundle.manifest


def nodes_ok(manifest: dict) -> list[str]:
    return [n["name"] for n in manifest["nodes"] if n["status"] == "ok"]


def rest(server) -> list:
    return [r for r in server.requests if r.resource != "pods/exec"]


# -- the whole path, every way of reaching the server -------------------------------------


@pytest.mark.parametrize("concurrency", [1, 10])
@pytest.mark.parametrize("auth", ["http-token", "tls-token", "tls-client-cert"])
def test_every_node_is_collected_and_every_pod_deleted(
    mock_factory, tls_client_cert, tmp_path, concurrency, auth
):
    from mock_apiserver import MockNode, synthetic_objects

    # every answer's last bytes 10 ms late, as across a network (see conftest's
    # NETWORK_TAIL_S): what made a response released unread break the next request
    kwargs: dict = {
        "start_delay_s": 0.05,
        "canned_seconds": 0.1,
        "page_size_cap": 4,
        "body_delay_s": 0.01,
    }
    if auth != "http-token":
        kwargs.update(ssl_context=tls_client_cert.context, ca_pem=tls_client_cert.ca_pem)
    if auth == "tls-client-cert":
        kwargs.update(
            client_ca_pem=tls_client_cert.ca_pem,
            client_cert=(tls_client_cert.cert_pem, tls_client_cert.key_pem),
        )
    server, kubeconfig = mock_factory(
        [MockNode(n, exec="canned") for n in NODES], synthetic_objects(list(NODES)), **kwargs
    )
    manifest = run(tmp_path, kubeconfig, concurrency)
    assert nodes_ok(manifest) == list(NODES), manifest["nodes"]
    assert {r["status"] for r in manifest["cluster"]["resources"]} == {"ok"}
    assert server.pod_names() == [] and len(server.created_pods) == 3
    if auth == "tls-client-cert":
        assert {r.user for r in server.requests} == {"needle-test"}
    if concurrency == 1:
        # one pooled connection carried every REST call: the case that lost nodes when a
        # response went back to the pool unread
        assert len({r.connection for r in rest(server)}) == 1
    cleanup = needle("cleanup", "--kubeconfig", str(kubeconfig))
    assert cleanup.returncode == 0, cleanup.stderr
    assert "no needle debug pods" in cleanup.stdout


def test_a_response_tail_that_arrives_late_never_lands_in_the_next_answer(canned_cluster, tmp_path):
    """Every REST answer's last bytes come 50 ms after the rest, as across a real
    network: a response released unread would put them in front of the next one."""
    server, kubeconfig = canned_cluster(NODES, body_delay_s=0.05)
    manifest = run(tmp_path, kubeconfig, concurrency=1)
    assert nodes_ok(manifest) == list(NODES), manifest["nodes"]
    assert server.pod_names() == []
    assert all(r.status in (200, 201, 404, 101) for r in server.requests), server.requests


# -- retries where they are safe ---------------------------------------------------------


def test_throttling_and_transient_errors_are_retried(canned_cluster, tmp_path):
    server, kubeconfig = canned_cluster(NODES)
    spoiled = [
        server.add_fault(Fault("GET", "pods", status=429, retry_after_s=1)),  # a list page
        server.add_fault(Fault("GET", "nodes", status=503)),
        server.add_fault(Fault("GET", "namespaces", close=True)),
        server.add_fault(Fault("POST", "pods", status=500, times=2)),
        server.add_fault(Fault("DELETE", "pods", status=503)),
        server.add_fault(Fault("GET", "pods", name=None, status=502)),
    ]
    started = time.monotonic()
    manifest = run(tmp_path, kubeconfig)
    took = time.monotonic() - started
    assert [f.hits for f in spoiled] == [1, 1, 1, 2, 1, 1]
    assert nodes_ok(manifest) == list(NODES), manifest["nodes"]
    assert {r["status"] for r in manifest["cluster"]["resources"]} == {"ok"}
    assert server.pod_names() == [] and len(server.created_pods) == 3
    throttled = next(i for i, r in enumerate(server.requests) if r.fault == "429")
    retry = server.requests[throttled + 1]
    assert (retry.verb, retry.resource) == ("list", "pods")  # the same page, asked again
    assert took >= 1.0, "Retry-After: 1 was waited out"


def test_a_create_whose_answer_was_lost_counts_as_made_and_is_deleted(canned_cluster, tmp_path):
    """The server made the pod but answered 500 (an etcd timeout after the write): the
    retry is answered 409 AlreadyExists, which means ours, and the node goes on."""
    server, kubeconfig = canned_cluster(NODES)
    lost = server.add_fault(Fault("POST", "pods", status=500, after=True))
    dropped = server.add_fault(Fault("POST", "namespaces", close=True, after=True))
    manifest = run(tmp_path, kubeconfig)
    assert lost.hits == 1 and dropped.hits == 1
    assert nodes_ok(manifest) == list(NODES), manifest["nodes"]
    conflicts = [r for r in server.requests if r.status == 409]
    assert {(r.verb, r.resource) for r in conflicts} == {
        ("create", "pods"),
        ("create", "namespaces"),
    }
    assert len(server.created_pods) == 3 and server.pod_names() == []


def test_a_call_that_keeps_failing_names_the_node_and_the_call(canned_cluster, tmp_path):
    server, kubeconfig = canned_cluster(NODES)
    server.add_fault(Fault("POST", "pods", status=503, times=None))
    result = needle(
        "collect", "--kubeconfig", str(kubeconfig), "-o", str(tmp_path / "b.tar.gz"),
        "--no-capture", "--nodes", "node-b",
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    with open_bundle(tmp_path / "b.tar.gz") as bundle:
        (node,) = bundle.manifest["nodes"]
    assert node["status"] == "failed"
    (error,) = node["errors"]
    assert error.startswith("cannot create pod needle-") and " on node-b: 503 " in error
    assert "(5 tries in " in error
    assert f"node-b: {error}" in result.stderr  # the summary says the same
    creates = [r for r in server.requests if (r.verb, r.resource) == ("create", "pods")]
    assert len(creates) == 5
    assert server.pod_names() == []


def test_errors_that_repeating_cannot_cure_are_not_retried(canned_cluster, tmp_path):
    server, kubeconfig = canned_cluster(NODES, forbidden={("create", "pods")})
    manifest = run(tmp_path, kubeconfig, nodes=["node-a"])
    (node,) = manifest["nodes"]
    assert node["status"] == "failed" and "403 Forbidden" in node["errors"][0]
    assert "tries" not in node["errors"][0]
    creates = [r for r in server.requests if (r.verb, r.resource) == ("create", "pods")]
    assert len(creates) == 1


def test_retries_stay_within_their_budget():
    policy = RetryPolicy()
    rng = random.Random(1)
    waits = [policy.delay(attempt, None, rng) for attempt in range(1, policy.attempts)]
    assert all(0.5 * 0.25 * 2 ** (i) <= w <= 0.25 * 2**i for i, w in enumerate(waits))
    assert sum(waits) <= policy.budget_s
    assert policy.delay(1, 1.0, rng) == 1.0
    assert policy.delay(1, 3600.0, rng) == policy.retry_after_cap_s


# -- the connection after a failure mid-body ---------------------------------------------


def test_a_read_cut_mid_body_closes_its_connection_and_the_next_calls_work(
    canned_cluster, tmp_path
):
    from kubernetes import client

    server, kubeconfig = canned_cluster(NODES, page_size_cap=None)
    cluster = connect(kubeconfig, None)
    try:
        # the pod list is chunked; its tail comes after the client's read timeout
        cluster.calls = KubeCalls(timeout=(5.0, 0.3), policy=ONE_TRY)
        server.add_fault(Fault("GET", "pods", body_delay_s=1.0))
        with pytest.raises(KubeCallError) as failure:
            cluster.calls.call(
                "list pods", client.CoreV1Api(cluster.api).list_pod_for_all_namespaces
            )
        assert failure.value.status is None and "timed out" in str(failure.value)
        time.sleep(1.2)  # the late tail has arrived by now, on the closed connection
        pods = PodApi(cluster, "needle")
        server.namespaces["needle"] = {"metadata": {"name": "needle"}}
        assert pods.delete_matching(debug_pod.ALL_RUNS_SELECTOR) == ([], [])
        version = cluster.calls.call("version", client.VersionApi(cluster.api).get_code)
        assert version.json()["gitVersion"].startswith("v1.31")
    finally:
        cluster.close()


def test_ctrl_c_mid_body_leaves_the_client_usable_for_cleanup(canned_cluster, tmp_path):
    from kubernetes import client

    server, kubeconfig = canned_cluster(NODES, page_size_cap=None)
    cluster = connect(kubeconfig, None)
    try:
        server.add_fault(Fault("GET", "pods", body_delay_s=2.0))
        main = threading.main_thread().ident
        assert main == threading.get_ident()
        timer = threading.Timer(0.5, lambda: signal.pthread_kill(main, signal.SIGINT))
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            cluster.calls.call(
                "list pods", client.CoreV1Api(cluster.api).list_pod_for_all_namespaces
            )
        timer.join()
        server.namespaces["needle"] = {"metadata": {"name": "needle"}}
        server.pods[("needle", "needle-old-1-node-a")] = {
            "metadata": {
                "name": "needle-old-1-node-a",
                "namespace": "needle",
                "labels": {debug_pod.APP_LABEL: debug_pod.APP_VALUE},
            },
            "spec": {"nodeName": "node-a"},
        }
        time.sleep(2.0)  # the interrupted list's tail is on the wire now
        pods = PodApi(cluster, "needle")
        assert pods.delete_matching(debug_pod.ALL_RUNS_SELECTOR) == (["needle-old-1-node-a"], [])
        assert server.pod_names() == []
    finally:
        cluster.close()


def test_deleting_against_a_dead_server_gives_up_quickly_and_names_every_pod(
    canned_cluster, tmp_path
):
    server, kubeconfig = canned_cluster(NODES)
    cluster = connect(kubeconfig, None)
    try:
        pods = PodApi(cluster, "needle")
        for index, node in enumerate(NODES):
            pods.ledger.add(f"needle-dead-{index}-{node}", node)
        server.add_fault(Fault("DELETE", "pods", close=True, times=None))
        started = time.monotonic()
        deleted, errors = pods.delete_all(pods.ledger.names())
        took = time.monotonic() - started
    finally:
        cluster.close()
    assert deleted == [] and len(errors) == 3
    assert "(5 tries in" in errors[0] and "(on node-a)" in errors[0]
    assert all("needle-dead-" in e for e in errors)
    assert took < 8, "after the first pod's retries, the others get one try each"


# -- needle rbac --check ----------------------------------------------------------------


def test_rbac_check_says_what_is_missing(canned_cluster):
    _server, kubeconfig = canned_cluster(NODES)
    granted = needle("rbac", "--check", "--kubeconfig", str(kubeconfig))
    assert granted.returncode == 0, granted.stderr
    assert "DENIED" not in granted.stdout
    assert "allowed  create pods in namespace needle" in granted.stdout
    assert "allowed  create or get pods/exec in namespace needle" in granted.stdout
    server, kubeconfig = canned_cluster(
        NODES, forbidden={("list", "configmaps"), ("delete", "pods")}
    )
    denied = needle("rbac", "--check", "--kubeconfig", str(kubeconfig))
    assert denied.returncode == 1
    lines = [line for line in denied.stdout.splitlines() if line.startswith("DENIED")]
    assert [line.split(":")[0] for line in lines] == [
        "DENIED   list configmaps cluster-wide",
        "DENIED   delete pods in namespace needle",
    ]
    assert "2 of " in denied.stderr and "needle rbac --namespace needle" in denied.stderr
    reviews = [r for r in server.requests if r.resource == "selfsubjectaccessreviews"]
    assert reviews and not [r for r in server.requests if r.resource == "pods"]


def test_rbac_check_says_unknown_when_a_review_comes_back_malformed(canned_cluster):
    from needle.collector.kube import access
    from needle.collector.kube.client import connect

    _server, kubeconfig = canned_cluster(NODES)
    cluster = connect(kubeconfig, None)
    try:
        original = cluster.calls.call

        # the body as a confused proxy or webhook might turn it: status is text

        def malformed(what, method, *args, **kwargs):
            reply = original(what, method, *args, **kwargs)
            reply.body = b'{"status": "yes"}'
            return reply

        cluster.calls.call = malformed  # type: ignore[method-assign]
        verdicts = access.check(cluster, "needle")
    finally:
        cluster.close()
    assert verdicts and all(v.allowed is None for v in verdicts)
    assert "not an object" in verdicts[0].reason
