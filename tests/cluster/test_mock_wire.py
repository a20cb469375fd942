"""The mock API server on the wire: HTTP/1.1 as kube-apiserver (Go net/http) speaks it,
checked with raw sockets, plus faults, client certificates and the real client.

The mock must not be kinder than a real API server: a client that releases a pooled
connection without reading its response must fail here as it fails on a real cluster.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import select
import socket
import ssl
import time
import uuid
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
import urllib3
from kubernetes import client, config
from mock_apiserver import MockApiServer, MockNode, synthetic_objects
from wire import CHUNK_SIZE, CONTENT_LENGTH_MAX, Fault

AUTH = "Bearer needle-test-token"


# -- a raw HTTP/1.1 client -------------------------------------------------------------


class Raw:
    """One TCP (or TLS) connection to the server, spoken to byte by byte."""

    def __init__(self, server: MockApiServer, context: ssl.SSLContext | None = None) -> None:
        host, port = server.url.split("//")[1].rsplit(":", 1)
        sock = socket.create_connection((host, int(port)), timeout=5)
        if context is not None:
            sock = context.wrap_socket(sock, server_hostname=host)
        self.sock = sock
        self.buffer = b""

    def close(self) -> None:
        self.sock.close()

    def send(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        auth: str | None = AUTH,
        version: str = "HTTP/1.1",
    ) -> None:
        lines = [f"{method} {path} {version}", "Host: 127.0.0.1"]
        if auth:
            lines.append(f"Authorization: {auth}")
        for key, value in (headers or {}).items():
            lines.append(f"{key}: {value}")
        if body and "Transfer-Encoding" not in (headers or {}):
            lines.append(f"Content-Length: {len(body)}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    def recv_once(self, timeout: float = 2.0) -> bytes:
        """Whatever one recv() gives as soon as anything is readable."""
        readable, _, _ = select.select([self.sock], [], [], timeout)
        assert readable, "no answer"
        return self.sock.recv(256 * 1024)

    def _fill(self) -> None:
        data = self.sock.recv(256 * 1024)
        if not data:
            raise EOFError("the server closed the connection")
        self.buffer += data

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            self._fill()
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def _exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def response(self) -> tuple[int, dict[str, str], bytes, list[int]]:
        """(status, headers by lower-case name, body, chunk sizes) of the next response,
        read exactly by its framing."""
        status_line = self._line().decode()
        status = int(status_line.split(" ")[1])
        headers: dict[str, str] = {}
        while line := self._line():
            name, _, value = line.decode().partition(":")
            assert name.lower() not in headers, f"{name} twice"
            headers[name.lower()] = value.strip()
        chunks: list[int] = []
        if headers.get("transfer-encoding") == "chunked":
            assert "content-length" not in headers
            body = b""
            while True:
                size = int(self._line(), 16)
                chunks.append(size)
                if size == 0:
                    assert self._line() == b""  # no trailers, then the end
                    break
                body += self._exactly(size)
                assert self._line() == b""
        else:
            body = self._exactly(int(headers["content-length"]))
        return status, headers, body, chunks

    def is_closed(self, timeout: float = 2.0) -> bool:
        readable, _, _ = select.select([self.sock], [], [], timeout)
        return bool(readable) and not self.buffer and self.sock.recv(1) == b""


@pytest.fixture
def server(mock_factory) -> MockApiServer:
    names = ["node-a", "node-b", "node-c"]
    mock, _kubeconfig = mock_factory(
        [MockNode(n, exec="canned") for n in names], synthetic_objects(names), start_delay_s=0.02
    )
    return mock


@pytest.fixture
def raw(server):
    connection = Raw(server)
    yield connection
    connection.close()


def split_head(data: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.lower()] = value.strip()
    return int(lines[0].split(" ")[1]), headers, body


# -- framing -----------------------------------------------------------------------------


def test_a_small_object_comes_in_one_segment_with_content_length(server, raw):
    raw.send("GET", "/api/v1/namespaces/default")
    data = raw.recv_once()  # one write on the server: everything in the first recv
    status, headers, body = split_head(data)
    assert status == 200
    assert int(headers["content-length"]) == len(body) <= CONTENT_LENGTH_MAX
    assert "transfer-encoding" not in headers
    assert json.loads(body)["metadata"]["name"] == "default"
    # kube-apiserver's headers
    uuid.UUID(headers["audit-id"])
    assert headers["cache-control"] == "no-cache, private"
    assert headers["content-type"] == "application/json"
    uuid.UUID(headers["x-kubernetes-pf-flowschema-uid"])
    uuid.UUID(headers["x-kubernetes-pf-prioritylevel-uid"])
    assert headers["date"].endswith(" GMT")
    assert abs(parsedate_to_datetime(headers["date"]).timestamp() - time.time()) < 60
    assert "connection" not in headers  # persistent by default, as HTTP/1.1 says


def test_lists_and_big_bodies_are_chunked(server, raw):
    raw.send("GET", "/api/v1/nodes")
    status, headers, body, chunks = raw.response()
    assert status == 200 and headers["transfer-encoding"] == "chunked"
    assert chunks[-1] == 0 and len(chunks) >= 2
    assert [n["metadata"]["name"] for n in json.loads(body)["items"]] == [
        "node-a",
        "node-b",
        "node-c",
    ]
    # a single object beyond 2048 bytes is chunked too, in chunks of at most 4 KiB
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "big", "annotations": {"note": "x" * 10_000}},
    }
    raw.send("POST", "/api/v1/namespaces", json.dumps(namespace).encode())
    status, headers, body, chunks = raw.response()
    assert status == 201 and headers["transfer-encoding"] == "chunked"
    assert json.loads(body)["metadata"]["annotations"]["note"] == "x" * 10_000
    assert len(chunks) >= 4 and max(chunks) <= CHUNK_SIZE and chunks[-1] == 0


def test_requests_share_one_persistent_connection(server, raw):
    for path in ("/api/v1/namespaces/default", "/api/v1/nodes", "/version"):
        raw.send("GET", path)
        assert raw.response()[0] == 200
    assert server.connections_opened == 1
    assert {r.connection for r in server.requests} == {1}
    assert [r.status for r in server.requests] == [200, 200]
    assert [e.status for e in server.exchanges] == [200, 200, 200]


def test_connection_close_and_http10_end_the_connection(server, raw):
    raw.send("GET", "/api/v1/namespaces/default", headers={"Connection": "close"})
    status, headers, _body, _ = raw.response()
    assert status == 200 and headers["connection"] == "close"
    assert raw.is_closed()
    old = Raw(server)
    try:
        old.send("GET", "/api/v1/namespaces/default", version="HTTP/1.0")
        assert old.response()[0] == 200
        assert old.is_closed()
    finally:
        old.close()


def test_an_idle_connection_is_closed_after_the_idle_timeout(mock_factory):
    server, _ = mock_factory([], idle_timeout_s=0.2)
    raw = Raw(server)
    try:
        raw.send("GET", "/version")
        assert raw.response()[0] == 200
        started = time.monotonic()
        assert raw.is_closed(timeout=2)
        assert 0.1 < time.monotonic() - started < 1.5
    finally:
        raw.close()


def test_malformed_requests_get_400_and_a_close(server, raw):
    raw.sock.sendall(b"NONSENSE\r\n\r\n")
    data = raw.recv_once()
    assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"Connection: close\r\n" in data
    assert raw.is_closed()
    no_host = Raw(server)
    try:
        no_host.sock.sendall(b"GET /version HTTP/1.1\r\n\r\n")
        assert b"400 Bad Request: missing required Host header" in no_host.recv_once()
    finally:
        no_host.close()


def test_chunked_request_body_and_expect_continue(server, raw):
    body = json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ch"}})
    half = len(body) // 2
    raw.send(
        "POST",
        "/api/v1/namespaces",
        headers={"Transfer-Encoding": "chunked", "Expect": "100-continue"},
    )
    assert raw.recv_once() == b"HTTP/1.1 100 Continue\r\n\r\n"
    for piece in (body[:half], body[half:]):
        raw.sock.sendall(f"{len(piece):x}\r\n{piece}\r\n".encode())
    raw.sock.sendall(b"0\r\n\r\n")
    status, _headers, answer, _ = raw.response()
    assert status == 201 and json.loads(answer)["metadata"]["name"] == "ch"
    assert "ch" in server.namespaces


def test_a_slow_body_tail_arrives_late(server, raw):
    fault = server.add_fault(Fault(method="GET", resource="namespaces", body_delay_s=0.4))
    raw.send("GET", "/api/v1/namespaces/default")
    started = time.monotonic()
    status, headers, body = split_head(raw.recv_once())
    assert status == 200 and 0 < len(body) < int(headers["content-length"])
    rest = raw.recv_once()
    assert time.monotonic() - started >= 0.3
    assert json.loads(body + rest)["metadata"]["name"] == "default"
    assert fault.hits == 1 and server.requests[-1].fault == "slow"
    # chunked: head and first part at once, the last chunk and terminator late
    server.add_fault(Fault(method="GET", resource="nodes", body_delay_s=0.3))
    raw.send("GET", "/api/v1/nodes")
    first = raw.recv_once()
    assert b"Transfer-Encoding: chunked" in first and not first.endswith(b"0\r\n\r\n")
    assert raw.recv_once().endswith(b"\r\n0\r\n\r\n")


# -- status codes ------------------------------------------------------------------------


def test_status_codes_like_the_api_server(server, raw):
    namespace = json.dumps({"metadata": {"name": "twice"}}).encode()
    raw.send("POST", "/api/v1/namespaces", namespace)
    assert raw.response()[0] == 201
    raw.send("POST", "/api/v1/namespaces", namespace)
    status, _headers, body, _ = raw.response()
    assert status == 409
    answer = json.loads(body)
    assert answer["kind"] == "Status" and answer["reason"] == "AlreadyExists"
    assert answer["details"] == {"name": "twice", "kind": "namespaces"}

    pod = json.dumps({"metadata": {"name": "p1"}, "spec": {"nodeName": "node-a"}}).encode()
    raw.send("POST", "/api/v1/namespaces/twice/pods", pod)
    assert raw.response()[0] == 201
    raw.send("POST", "/api/v1/namespaces/twice/pods", pod)
    assert json.loads(raw.response()[2])["reason"] == "AlreadyExists"
    raw.send("DELETE", "/api/v1/namespaces/twice/pods/p1")
    assert raw.response()[0] == 200
    raw.send("DELETE", "/api/v1/namespaces/twice/pods/p1")
    status, _headers, body, _ = raw.response()
    assert status == 404
    assert json.loads(body)["reason"] == "NotFound"
    assert json.loads(body)["message"] == 'pods "p1" not found'

    raw.send("GET", "/api/v1/widgets")
    status, _headers, body, _ = raw.response()
    assert status == 404 and json.loads(body)["reason"] == "NotFound"
    raw.send("GET", "/api/v1/nodes", auth="Bearer wrong")
    status, headers, body, _ = raw.response()
    assert status == 401 and json.loads(body)["reason"] == "Unauthorized"
    assert "x-kubernetes-pf-flowschema-uid" not in headers  # rejected before APF
    assert server.connections_opened == 1  # errors keep the connection


# -- faults ------------------------------------------------------------------------------


def test_a_429_fault_says_when_to_retry_and_is_used_up(server, raw):
    fault = server.add_fault(Fault(method="GET", resource="nodes", status=429, retry_after_s=1))
    raw.send("GET", "/api/v1/nodes")
    status, headers, body, _ = raw.response()
    assert status == 429 and headers["retry-after"] == "1"
    answer = json.loads(body)
    assert answer["reason"] == "TooManyRequests"
    assert answer["details"]["retryAfterSeconds"] == 1
    raw.send("GET", "/api/v1/nodes")
    assert raw.response()[0] == 200
    assert fault.hits == 1
    assert [(r.status, r.fault) for r in server.requests] == [(429, "429"), (200, None)]


def test_a_close_fault_drops_the_connection_unanswered(server, raw):
    server.add_fault(Fault(resource="namespaces", close=True))
    raw.send("GET", "/api/v1/namespaces/default")
    assert raw.is_closed()
    assert server.requests[-1].status == 0 and server.requests[-1].fault == "close"


def test_an_error_after_the_work_leaves_the_work_done(server, raw):
    server.add_fault(Fault(method="POST", resource="namespaces", status=500, after=True))
    raw.send("POST", "/api/v1/namespaces", json.dumps({"metadata": {"name": "half"}}).encode())
    status, _headers, body, _ = raw.response()
    assert status == 500 and json.loads(body)["reason"] == "InternalError"
    assert "half" in server.namespaces  # created all the same, as after an etcd timeout
    assert server.requests[-1].fault == "500-after"


def test_chaos_is_the_same_for_a_seed(mock_factory):
    def statuses(seed: int) -> list[int]:
        server, _ = mock_factory([], synthetic_objects(["n1"]))
        server.chaos(rate=0.4, seed=seed)
        raw = Raw(server)
        try:
            for _ in range(30):
                raw.send("GET", "/api/v1/nodes")
                status, headers, _body, _ = raw.response()
                if status == 429:
                    assert headers["retry-after"] == "1"
        finally:
            raw.close()
        return [r.status for r in server.requests]

    first = statuses(7)
    assert first == statuses(7)
    assert set(first) - {200} and set(first) <= {200, 429, 500, 503}
    assert 3 <= sum(s != 200 for s in first) <= 25
    assert first != statuses(8)


# -- exec ----------------------------------------------------------------------------------


def websocket_head() -> dict[str, str]:
    return {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Protocol": "v5.channel.k8s.io",
    }


def test_exec_upgrades_are_spliced_to_the_websocket_backend(server, raw):
    pod = json.dumps(
        {
            "metadata": {"name": "p"},
            "spec": {"nodeName": "node-a", "containers": [{"name": "needle", "image": "x"}]},
        }
    )
    raw.send("POST", "/api/v1/namespaces/default/pods", pod.encode())
    assert raw.response()[0] == 201
    deadline = time.monotonic() + 2
    while server.pods[("default", "p")]["status"]["phase"] != "Running":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    path = "/api/v1/namespaces/default/pods/p/exec?command=true&stdout=1"
    raw.send("GET", path, headers=websocket_head())
    data = b""
    while b"\r\n\r\n" not in data:
        data += raw.recv_once()
    assert data.startswith(b"HTTP/1.1 101 ")
    assert b"v5.channel.k8s.io" in data
    # a canned node answers a command other than the node script with exit status 1,
    # in a status frame on channel 3
    while b"NonZeroExitCode" not in data:
        data += raw.recv_once()
    (record,) = [r for r in server.requests if r.resource == "pods/exec"]
    assert (record.verb, record.status, record.connection) == ("create", 101, 1)
    assert server.exec_commands == [["true"]]


def test_exec_is_authorized_by_the_front_end(mock_factory):
    server, _ = mock_factory([MockNode("n1", exec="canned")], forbidden={("create", "pods/exec")})
    raw = Raw(server)
    try:
        raw.send(
            "GET", "/api/v1/namespaces/default/pods/p/exec?command=true", headers=websocket_head()
        )
        status, _headers, body, _ = raw.response()
        assert status == 403 and json.loads(body)["reason"] == "Forbidden"
    finally:
        raw.close()


# -- TLS and client certificates -------------------------------------------------------------


def client_context(tls_client_cert, tmp_path: Path, with_cert: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=tls_client_cert.ca_pem.decode())
    if with_cert:
        cert, key = tmp_path / "client.crt", tmp_path / "client.key"
        cert.write_bytes(tls_client_cert.cert_pem)
        key.write_bytes(tls_client_cert.key_pem)
        context.load_cert_chain(cert, key)
    return context


@pytest.fixture
def tls_server(mock_factory, tls_client_cert) -> MockApiServer:
    server, _ = mock_factory(
        [MockNode("n1", exec="canned")],
        synthetic_objects(["n1"]),
        ssl_context=tls_client_cert.context,
        client_ca_pem=tls_client_cert.ca_pem,
    )
    return server


def test_a_client_certificate_authenticates_over_tls(tls_server, tls_client_cert, tmp_path):
    raw = Raw(tls_server, client_context(tls_client_cert, tmp_path, with_cert=True))
    try:
        raw.send("GET", "/api/v1/namespaces/default", auth=None)
        data = raw.recv_once()  # one write, one TLS record
        status, headers, body = split_head(data)
        assert status == 200 and int(headers["content-length"]) == len(body)
        raw.send("GET", "/api/v1/nodes", auth=None)
        assert raw.response()[0] == 200
    finally:
        raw.close()
    assert [(r.user, r.connection) for r in tls_server.requests] == [("needle-test", 1)] * 2


def test_over_tls_no_certificate_and_no_token_is_401_and_a_token_works(
    tls_server, tls_client_cert, tmp_path
):
    raw = Raw(tls_server, client_context(tls_client_cert, tmp_path, with_cert=False))
    try:
        raw.send("GET", "/api/v1/nodes", auth=None)
        status, _headers, body, _ = raw.response()
        assert status == 401 and json.loads(body)["reason"] == "Unauthorized"
        raw.send("GET", "/api/v1/nodes")  # the bearer token, same connection
        assert raw.response()[0] == 200
    finally:
        raw.close()


def test_a_certificate_from_another_ca_is_refused(tls_server, tls_client_cert, tmp_path):
    import trustme

    stranger = trustme.CA().issue_cert("needle-test", common_name="needle-test")
    context = ssl.create_default_context(cadata=tls_client_cert.ca_pem.decode())
    cert, key = tmp_path / "stranger.crt", tmp_path / "stranger.key"
    cert.write_bytes(stranger.cert_chain_pems[0].bytes())
    key.write_bytes(stranger.private_key_pem.bytes())
    context.load_cert_chain(cert, key)
    with pytest.raises((ssl.SSLError, ConnectionError, EOFError, AssertionError)):
        raw = Raw(tls_server, context)
        try:
            raw.send("GET", "/api/v1/nodes", auth=None)
            raw.response()  # TLS 1.3: the refusal shows on the first read
        finally:
            raw.close()
    assert not tls_server.requests


# -- the real client ---------------------------------------------------------------------------


def api_client(kubeconfig: Path, **settings) -> client.ApiClient:
    configuration = client.Configuration()
    config.load_kube_config(
        config_file=str(kubeconfig), client_configuration=configuration, persist_config=False
    )
    for key, value in settings.items():
        setattr(configuration, key, value)
    return client.ApiClient(configuration)


def test_the_kubernetes_client_over_tls_with_a_client_certificate(mock_factory, tls_client_cert):
    server, kubeconfig = mock_factory(
        [MockNode("n1", exec="canned")],
        synthetic_objects(["n1", "n2"]),
        ssl_context=tls_client_cert.context,
        ca_pem=tls_client_cert.ca_pem,
        client_ca_pem=tls_client_cert.ca_pem,
        client_cert=(tls_client_cert.cert_pem, tls_client_cert.key_pem),
    )
    assert "token" not in kubeconfig.read_text()
    with api_client(kubeconfig, connection_pool_maxsize=1) as api:
        core = client.CoreV1Api(api)
        assert [n.metadata.name for n in core.list_node().items] == ["n1", "n2"]
        assert core.read_namespace("default").metadata.name == "default"
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="made")))
        with pytest.raises(client.ApiException) as conflict:
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="made")))
        assert conflict.value.status == 409
    assert {r.user for r in server.requests} == {"needle-test"}
    # one connection for everything: read bodies leave it reusable
    assert server.connections_opened == 1

    # exec over the same TLS front end, authenticated by the certificate, spliced to
    # the WebSocket backend (a client of its own: stream() patches the one it is given)
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="p"),
        spec=client.V1PodSpec(
            node_name="n1", containers=[client.V1Container(name="needle", image="x")]
        ),
    )
    with api_client(kubeconfig) as api:
        core = client.CoreV1Api(api)
        core.create_namespaced_pod("default", pod)
        deadline = time.monotonic() + 2
        while core.read_namespaced_pod("p", "default").status.phase != "Running":
            assert time.monotonic() < deadline
            time.sleep(0.02)
    with api_client(kubeconfig) as api:
        from kubernetes.stream import stream

        session = stream(
            client.CoreV1Api(api).connect_get_namespaced_pod_exec,
            "p",
            "default",
            command=["true"],
            stdout=True,
            stderr=True,
            stdin=False,
            tty=False,
            _preload_content=False,
        )
        session.run_forever(timeout=3)
        assert session.returncode == 1  # a canned node fails anything but the node script
        session.close()
    (exec_call,) = [r for r in server.requests if r.resource == "pods/exec"]
    assert (exec_call.status, exec_call.user) == (101, "needle-test")


def test_a_response_released_unread_breaks_the_next_call(mock_factory):
    """The bug class the mock must show: urllib3 puts a connection back in the pool
    with the response unread; the next request on it cannot read its answer."""
    server, kubeconfig = mock_factory([], synthetic_objects(["n1"]))
    # no retries: they would hide the broken connection behind a new one
    with api_client(kubeconfig, connection_pool_maxsize=1, retries=False) as api:
        core = client.CoreV1Api(api)
        server.add_fault(Fault(method="GET", resource="namespaces", body_delay_s=0.5))
        core.read_namespace("default", _preload_content=False).release_conn()  # body unread
        with pytest.raises((urllib3.exceptions.ProtocolError, http.client.HTTPException)) as broken:
            core.list_node(_preload_content=False)
    cause = broken.value.__context__ or broken.value
    text = f"{broken.value!r} {cause!r}"
    assert any(
        name in text for name in ("ResponseNotReady", "BadStatusLine", "Connection aborted")
    ), text


def test_a_response_read_before_release_keeps_the_connection(mock_factory):
    server, kubeconfig = mock_factory([], synthetic_objects(["n1"]))
    with api_client(kubeconfig, connection_pool_maxsize=1, retries=False) as api:
        core = client.CoreV1Api(api)
        server.add_fault(Fault(method="GET", resource="namespaces", body_delay_s=0.5))
        response = core.read_namespace("default", _preload_content=False)
        assert json.loads(response.data)["metadata"]["name"] == "default"  # waits for the tail
        response.release_conn()
        nodes = core.list_node(_preload_content=False)
        assert json.loads(nodes.data)["items"][0]["metadata"]["name"] == "n1"
        nodes.release_conn()
    assert server.connections_opened == 1
    assert [r.connection for r in server.requests] == [1, 1]


def test_access_reviews_follow_the_forbidden_calls(mock_factory):
    server, _ = mock_factory([], forbidden={("delete", "pods"), ("create", "pods/exec")})
    raw = Raw(server)

    def review(verb: str, resource: str, subresource: str | None = None) -> bool:
        attributes = {"verb": verb, "group": "", "resource": resource, "namespace": "needle"}
        if subresource:
            attributes["subresource"] = subresource
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes},
        }
        path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
        raw.send("POST", path, json.dumps(body).encode())
        status, _headers, answer, _ = raw.response()
        assert status == 201
        return json.loads(answer)["status"]["allowed"]

    try:
        assert review("create", "pods") is True
        assert review("delete", "pods") is False
        assert review("create", "pods", "exec") is False
        assert review("get", "pods", "exec") is True
    finally:
        raw.close()
    assert {(r.verb, r.group, r.resource) for r in server.requests} == {
        ("create", "authorization.k8s.io", "selfsubjectaccessreviews")
    }
