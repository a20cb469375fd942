"""A small Kubernetes API server for tests: REST for objects and pods, and pod exec over
a WebSocket (v4.channel.k8s.io / v5.channel.k8s.io), driven by the real client.

REST is served by a hand-written HTTP/1.1 front end (wire.py) that behaves on the wire
like kube-apiserver (Go net/http): persistent connections, Content-Length for a small
body sent in one write, chunked lists, Go's headers and status codes. A client that
mishandles pooled connections (a response released unread) fails here as it fails
against a real cluster. Faults (429/500/503, slow answers, slow body tails, dropped
connections) can be injected one by one (`add_fault`) or at random (`chaos`).

Exec keeps aiohttp's WebSocket handling: the front end authenticates and authorizes the
upgrade request, then splices the connection to an internal aiohttp app on a Unix
socket in a private temp dir (TLS ends at the front end).

It listens on 127.0.0.1 only, on a random port, and serves only what it is given:
objects (e.g. a lab's kube dir) and nodes. A node is either a lab node (its pods' exec
runs for real inside the node's network namespace, in an emulated container) or a
canned one (exec streams a prepared response: the benchmark).

The emulated container of a lab pod: `ip netns exec <node netns>` (network namespace,
/sys remounted), then `unshare --mount --pid --fork --mount-proc`: a private mount
namespace whose /run/netns shows only that node's pod namespaces (as on a real node)
and whose /tmp is its own, and a private PID namespace so other nodes' processes do
not show in /proc. Exec joins it with nsenter, as a runtime joins a container.

Run as a process (the benchmark): python mock_apiserver.py --canned-nodes 200 ...
prints "READY <url>" and serves until stdin closes or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import io
import json
import os
import shutil
import signal
import ssl
import sys
import tarfile
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

sys.path.insert(0, str(Path(__file__).resolve().parent))  # wire.py, also when run as a script

from wire import (
    HEADER_TIMEOUT_S,
    IDLE_TIMEOUT_S,
    MAX_HEADER_BYTES,
    Chaos,
    Closed,
    Fault,
    FaultPlan,
    Head,
    HttpRequest,
    Response,
    WireError,
    parse_target,
    read_body,
    read_head,
    write_response,
)

__all__ = [
    "GROUP_OF",
    "LIST_KINDS",
    "TOKEN",
    "V4",
    "V5",
    "Exchange",
    "Fault",
    "MockApiServer",
    "MockNode",
    "Request",
    "canned_node_stream",
    "kubeconfig_text",
    "matches",
    "read_kube_dir",
    "status_body",
    "synthetic_objects",
]

V4 = "v4.channel.k8s.io"
V5 = "v5.channel.k8s.io"
TOKEN = "needle-test-token"
LIST_KINDS = {
    "nodes": ("Node", "v1"),
    "pods": ("Pod", "v1"),
    "configmaps": ("ConfigMap", "v1"),
    "daemonsets": ("DaemonSet", "apps/v1"),
    "namespaces": ("Namespace", "v1"),
}
GROUP_OF = {
    "nodes": "",
    "pods": "",
    "configmaps": "",
    "namespaces": "",
    "daemonsets": "apps",
    "selfsubjectaccessreviews": "authorization.k8s.io",
}
# What kube-apiserver says for the statuses faults answer: (reason, message).
FAULT_TEXT = {
    429: ("TooManyRequests", "Too many requests, please try again later."),
    500: ("InternalError", "Internal error occurred: etcdserver: request timed out"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: ("Timeout", "Timeout: request did not complete within the allotted timeout"),
}

# The container's PID 1 reaps orphans, as containerd-shim (a child subreaper) does for a
# hostPID pod: a script whose helper died leaves no zombie that looks alive to `kill -0`.
_REAPER = """
import os, time
while True:
    try:
        os.waitpid(-1, 0)
    except ChildProcessError:
        time.sleep(0.2)
"""
# A container's setup: private /tmp, /run/netns holding only the node's pod namespaces.
_CONTAINER_SETUP = r"""
set -e
mount -t tmpfs -o mode=1777 needle-mock-tmp /tmp
mkdir /tmp/.netns
mount -t tmpfs -o mode=755 needle-mock-netns /tmp/.netns
for ns; do : >"/tmp/.netns/$ns"; mount --bind "/run/netns/$ns" "/tmp/.netns/$ns"; done
mount --move /tmp/.netns /run/netns
echo ready
exec "$NEEDLE_MOCK_PYTHON" -c "$NEEDLE_MOCK_REAPER"
"""


@dataclass
class MockNode:
    name: str
    netns: str | None = None
    """The lab node's namespace; None for a canned node."""
    pod_netns: list[str] = field(default_factory=list)
    pod: str = "ready"
    """What its debug pod does: ready | never-ready | image-pull | rejected."""
    exec: str = "run"
    """What its exec does: run (in the lab) | canned | hang."""


@dataclass
class Request:
    """One API call as the authorizer sees it (verb, group, resource, namespace), with
    the TCP connection it came on and what it was answered."""

    verb: str
    group: str
    resource: str
    namespace: str | None
    name: str | None
    connection: int = 0
    """Which TCP connection (1, 2, ... in accept order) carried it."""
    status: int = 0
    """The status answered (101 for an exec upgrade); 0 while unanswered or when the
    connection was closed instead."""
    user: str = ""
    fault: str | None = None
    """The injected fault ("429", "close", "slow", "500-after", ...), if any."""


@dataclass
class Exchange:
    """Every HTTP exchange, also those the authorizer never sees (/version, 401, 404)."""

    method: str
    path: str
    connection: int
    status: int = 0


@dataclass
class Container:
    process: asyncio.subprocess.Process
    init_pid: int


@dataclass
class Route:
    """An API path taken apart: /api/v1/namespaces/NS/pods/NAME/exec and the like."""

    group: str
    resource: str
    namespace: str | None
    name: str | None
    subresource: str | None

    @property
    def full_resource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


@dataclass
class Splice:
    """The answer to a WebSocket exec request: hand the connection to the exec backend."""

    record: Request
    exchange: Exchange | None = None


def parse_route(path: str) -> Route | None:
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, rest = "", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, rest = parts[1], parts[3:]
    else:
        return None
    namespace = name = subresource = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, resource = rest[1], rest[2]
        name = rest[3] if len(rest) > 3 else None
        subresource = rest[4] if len(rest) > 4 else None
    elif rest:
        resource = rest[0]
        name = rest[1] if len(rest) > 1 else None
    else:
        return None
    if GROUP_OF.get(resource) != group:
        return None
    return Route(group, resource, namespace, name, subresource)


def status_body(
    code: int, reason: str, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": details or {},
        "code": code,
    }


def _json(data: Any, status: int = 200) -> web.Response:
    """An aiohttp JSON response: only the exec backend (behind the splice) uses these."""
    return web.Response(
        body=json.dumps(data).encode(), status=status, content_type="application/json"
    )


def encode(data: Any) -> bytes:
    # Go's json.Encoder, which the API server's serializer uses, ends with a newline.
    return json.dumps(data, separators=(",", ":")).encode() + b"\n"


def matches(labels: dict[str, str], selector: str | None) -> bool:
    """Equality-based selectors: a=b, a==b, a!=b, a, !a (comma = and)."""
    if not selector:
        return True
    for term in selector.split(","):
        term = term.strip()
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term and term not in labels:
            return False
    return True


def canned_node_stream(files: int = 40, size: int = 4096) -> bytes:
    """A node response in the node script's format: tar archives of outputs + records."""
    out = io.BytesIO()
    records = []
    with tarfile.open(fileobj=out, mode="w") as tar:
        for index in range(files):
            name = f"host/canned-{index}.txt"
            data = (f"line {index}\n" * (size // 8 + 1)).encode()[:size]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            records.append(f"C\tcanned-{index}\t-\t-\t{name}\t-\t0\t1.00\t1.01\t0\t0\n")
        text = "".join(records).encode()
        info = tarfile.TarInfo("_needle/records.1")
        info.size = len(text)
        tar.addfile(info, io.BytesIO(text))
    return out.getvalue()


def _now() -> str:
    """An RFC 3339 timestamp as the API server writes them (the client's models parse it)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _cert_user(peercert: dict[str, Any] | None) -> str | None:
    """The user a verified client certificate names: its CN, as the API server's x509
    authenticator takes it (a certificate without one authenticates nobody)."""
    for rdn in (peercert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName" and value:
                return str(value)
    return None


class MockApiServer:
    def __init__(
        self,
        nodes: list[MockNode],
        objects: dict[str, list[dict[str, Any]]] | None = None,
        *,
        token: str = TOKEN,
        forbidden: set[tuple[str, str]] | None = None,
        protocols: tuple[str, ...] = (V5, V4),
        ssl_context: ssl.SSLContext | None = None,
        start_delay_s: float = 0.2,
        canned: bytes | None = None,
        canned_seconds: float = 1.0,
        page_size_cap: int | None = None,
        client_ca_pem: bytes | None = None,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        body_delay_s: float = 0.0,
    ) -> None:
        self.nodes = {node.name: node for node in nodes}
        self.objects = {key: list(value) for key, value in (objects or {}).items()}
        self.token = token
        self.forbidden = forbidden or set()
        """(verb, resource) pairs answered with 403, e.g. ("list", "configmaps")."""
        self.protocols = protocols
        self.ssl_context = ssl_context
        self.client_ca_pem = client_ca_pem
        if client_ca_pem is not None:
            if ssl_context is None:
                raise ValueError("client_ca_pem needs an ssl_context: client certs need TLS")
            # Go's VerifyClientCertIfGiven: a certificate is optional (a token will do),
            # but one that is given must chain to the client CA. This changes the given
            # context in place; a test that needs it unchanged passes a context of its own.
            ssl_context.verify_mode = ssl.CERT_OPTIONAL
            ssl_context.load_verify_locations(cadata=client_ca_pem.decode())
        self.idle_timeout_s = idle_timeout_s
        """Seconds a persistent connection may wait for its next request (Go's
        IdleTimeout; kube-apiserver sets 90)."""
        self.body_delay_s = body_delay_s
        """Seconds before the tail of every REST response goes out (a fault's own value
        wins): the end of a response crossing a network after its start, as the second
        TLS record or TCP segment does. 0: all of a small answer in one write, as Go on
        loopback. A client that releases a connection with its response unread then
        finds that tail in front of its next response."""
        self.start_delay_s = start_delay_s
        self.canned = canned if canned is not None else canned_node_stream()
        self.canned_seconds = canned_seconds
        self.page_size_cap = page_size_cap
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}
        self.namespaces: dict[str, dict[str, Any]] = {
            name: {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            for name in ("default", "kube-system")
        }
        self.requests: list[Request] = []
        self.exchanges: list[Exchange] = []
        self.created_pods: list[dict[str, Any]] = []
        self.exec_commands: list[list[str]] = []
        self.connections_opened = 0
        """TCP connections accepted (TLS: handshake done) so far."""
        self.faults = FaultPlan()
        self._flow_schema_uid = str(uuid.uuid4())
        self._priority_level_uid = str(uuid.uuid4())
        self._containers: dict[tuple[str, str], Container] = {}
        self._execs: set[asyncio.subprocess.Process] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._connection_tasks: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._front: asyncio.Server | None = None
        self._socket_dir: str | None = None
        self._backend_path = ""
        self._version = 1
        self.url = ""

    # -- faults ---------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> Fault:
        """Spoil the next `fault.times` matching requests (from any thread). Returns the
        fault, whose `hits` tells how many it has spoiled."""
        return self.faults.add(fault)

    def clear_faults(self) -> None:
        """Forget every added fault and stop the chaos."""
        self.faults.clear()

    def chaos(
        self,
        rate: float = 0.1,
        seed: int = 1,
        statuses: tuple[int, ...] = (429, 503, 500),
        delay_s: float = 0.0,
        body_delay_s: float = 0.0,
        close: bool = False,
    ) -> None:
        """Make a `rate` share of REST requests (never exec) fail transiently: one of
        `statuses` (a 429 with Retry-After: 1), or slow (`delay_s` before the answer,
        `body_delay_s` before its tail) when either is set, or a dropped connection when
        `close`. The n-th REST request's fate depends on the seed alone. rate=0 stops it."""
        self.faults.set_chaos(
            Chaos(rate, seed, tuple(statuses), delay_s, body_delay_s, close) if rate > 0 else None
        )

    # -- lifecycle ------------------------------------------------------------------

    def app(self) -> web.Application:
        """The exec backend: aiohttp's WebSocket handling behind the front end's splice."""
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._exec_backend)
        return app

    async def start_async(self, port: int = 0) -> str:
        self._loop = asyncio.get_running_loop()
        self._socket_dir = tempfile.mkdtemp(prefix="needle-mock-api-")
        self._backend_path = str(Path(self._socket_dir) / "exec.sock")
        self._runner = web.AppRunner(self.app(), handle_signals=False)
        await self._runner.setup()
        await web.UnixSite(self._runner, self._backend_path).start()
        self._front = await asyncio.start_server(
            self._serve_connection,
            "127.0.0.1",
            port,
            ssl=self.ssl_context,
            # a header line may be as long as the whole head may be (Go's MaxHeaderBytes)
            limit=MAX_HEADER_BYTES + 4096,
            ssl_handshake_timeout=10 if self.ssl_context else None,
        )
        host, bound = self._front.sockets[0].getsockname()[:2]
        scheme = "https" if self.ssl_context else "http"
        self.url = f"{scheme}://{host}:{bound}"
        return self.url

    async def stop_async(self) -> None:
        if self._front is not None:
            self._front.close()  # no new connections
        for writer in list(self._writers):
            writer.transport.abort()  # no TLS goodbyes: the server is going away
        for task in list(self._connection_tasks) + list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._connection_tasks, *self._tasks, return_exceptions=True)
        for key in list(self._containers):
            await self._stop_container(key)
        for process in list(self._execs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        if self._runner is not None:
            await self._runner.cleanup()
        if self._front is not None:
            await self._front.wait_closed()
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)

    def start(self) -> str:
        """Serve from a thread of its own; returns the URL."""
        ready = threading.Event()
        loop = asyncio.new_event_loop()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self.start_async())
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=serve, name="mock-apiserver", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the mock API server did not start")
        return self.url

    def call(self, coroutine: Any, timeout: float = 30) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        self.call(self.stop_async())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._thread = None

    def pod_names(self) -> list[str]:
        async def names() -> list[str]:
            return sorted(name for _ns, name in self.pods)

        return self.call(names()) if self._thread else sorted(n for _, n in self.pods)

    def live_containers(self) -> int:
        async def count() -> int:
            return len(self._containers)

        return int(self.call(count()))

    def _spawn(self, coroutine: Awaitable[Any]) -> None:
        """A background task the server keeps (so it is not collected) and ends on stop."""
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the wire: one TCP connection ---------------------------------------------------

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Serve requests on one connection, one after another, until the client closes
        it, asks to, idles too long or breaks the protocol (Go's conn.serve)."""
        self.connections_opened += 1
        connection = self.connections_opened
        task = asyncio.current_task()
        assert task is not None
        self._connection_tasks.add(task)
        self._writers.add(writer)
        cert_user = _cert_user(writer.get_extra_info("peercert")) if self.client_ca_pem else None
        wait_s = HEADER_TIMEOUT_S  # the first request: Go's ReadHeaderTimeout
        try:
            while True:
                try:
                    head = await read_head(reader, wait_s)
                    wait_s = self.idle_timeout_s
                    request = await self._read_request(head, reader, writer, connection)
                except WireError as exc:
                    writer.write(exc.answer())
                    await writer.drain()
                    break
                except Closed:
                    break
                outcome = await self._answer(request, cert_user)
                if outcome is None:
                    break  # a fault closes without an answer
                if isinstance(outcome, Splice):
                    await self._splice(head, reader, writer, outcome)
                    break
                if not outcome.body_delay_s:
                    outcome.body_delay_s = self.body_delay_s
                if await write_response(
                    writer,
                    outcome,
                    http11=head.http11,
                    keep_alive=head.keep_alive,
                    head_only=head.method == "HEAD",
                ):
                    break
        except (ConnectionError, ssl.SSLError, OSError):
            pass  # the client went away mid-exchange: nothing to answer
        except asyncio.CancelledError:
            # The server stops. Ending normally keeps asyncio's start_server callback
            # from logging the cancelled task as an error.
            pass
        finally:
            self._connection_tasks.discard(task)
            self._writers.discard(writer)
            writer.close()
            # TLS waits for the peer's close_notify (up to 30 s); Go does not wait.
            try:
                await asyncio.wait_for(writer.wait_closed(), 1)
            except (TimeoutError, OSError, ssl.SSLError, asyncio.CancelledError):
                writer.transport.abort()

    async def _read_request(
        self,
        head: Head,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        connection: int,
    ) -> HttpRequest:
        expect = (head.header("expect") or "").lower()
        if expect and expect != "100-continue":
            raise WireError("417 Expectation Failed")
        length = (head.header("content-length") or "0").strip()
        has_body = bool(head.header("transfer-encoding")) or length not in ("", "0")
        if expect and head.http11 and has_body:
            # Go answers 100 Continue when the handler first reads the body; ours always does.
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
        body = await read_body(reader, head)
        path, query = parse_target(head.target)
        return HttpRequest(head, body, path, query, connection)

    async def _splice(
        self,
        head: Head,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        splice: Splice,
    ) -> None:
        """Pass the upgrade request and everything after it to the aiohttp exec backend
        and its answers back, until the backend closes (or the client, then a grace)."""
        try:
            back_reader, back_writer = await asyncio.open_unix_connection(
                self._backend_path, limit=1 << 20
            )
        except OSError:
            response = self._status(503, "ServiceUnavailable", "the exec backend is gone")
            self._answered(splice.record, splice.exchange, response.status)
            await write_response(writer, response, keep_alive=False)
            return
        back_writer.write(head.raw)
        await back_writer.drain()

        async def upstream() -> None:
            # the bytes the front end has buffered past the head come out first
            while data := await reader.read(64 * 1024):
                back_writer.write(data)
                await back_writer.drain()
            if back_writer.can_write_eof():
                back_writer.write_eof()  # the client is done: let aiohttp see the EOF

        async def downstream() -> None:
            first = b""
            while data := await back_reader.read(64 * 1024):
                if not splice.record.status and len(first) < 64:
                    first += data  # the backend's status line: what the exec got
                    pieces = first.split(b" ", 2)
                    if len(pieces) >= 2 and pieces[1].isdigit():
                        self._answered(splice.record, splice.exchange, int(pieces[1]))
                writer.write(data)
                await writer.drain()

        up = asyncio.ensure_future(upstream())
        down = asyncio.ensure_future(downstream())
        try:
            done, _ = await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
            if down not in done:
                # The client stopped sending; the backend finishes its side (a last
                # status frame) unless the client broke the connection.
                clean = up.exception() is None
                await asyncio.wait({down}, timeout=10 if clean else 0)
        finally:
            for pump in (up, down):
                pump.cancel()
            await asyncio.gather(up, down, return_exceptions=True)
            back_writer.close()
            with contextlib.suppress(Exception):
                await back_writer.wait_closed()

    # -- the answer to one request --------------------------------------------------

    def _headers(self, authenticated: bool = True) -> list[tuple[str, str]]:
        """kube-apiserver's headers; the flow-control ones only once APF has seen it."""
        headers = [
            ("Audit-Id", str(uuid.uuid4())),
            ("Cache-Control", "no-cache, private"),
            ("Content-Type", "application/json"),
        ]
        if authenticated:
            headers += [
                ("X-Kubernetes-Pf-Flowschema-Uid", self._flow_schema_uid),
                ("X-Kubernetes-Pf-Prioritylevel-Uid", self._priority_level_uid),
            ]
        return headers

    def _reply(self, data: Any, status: int = 200, *, stream: bool = False) -> Response:
        return Response(status, encode(data), self._headers(), stream=stream)

    def _status(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        *,
        authenticated: bool = True,
    ) -> Response:
        return Response(
            code, encode(status_body(code, reason, message, details)), self._headers(authenticated)
        )

    def _fault_response(self, fault: Fault) -> Response:
        assert fault.status is not None
        code = fault.status
        reason, message = FAULT_TEXT.get(code, ("", ""))
        if not reason:
            try:
                phrase = HTTPStatus(code).phrase
            except ValueError:
                phrase = "Error"
            reason, message = phrase.replace(" ", ""), phrase
        details: dict[str, Any] = {}
        retry_after = fault.retry_after_s
        if retry_after is None and code == 429:
            retry_after = 1  # APF always says when to come back
        if retry_after is not None:
            details["retryAfterSeconds"] = retry_after
        response = self._status(code, reason, fault.message or message, details)
        if retry_after is not None:
            response.headers.append(("Retry-After", str(retry_after)))
        response.body_delay_s = fault.body_delay_s
        return response

    def _authenticate(self, head: Head, cert_user: str | None) -> str | None:
        """kube-apiserver's union authenticator: a verified client certificate first,
        then a bearer token (the scheme is case-blind)."""
        if cert_user is not None:
            return cert_user
        scheme, _, token = (head.header("authorization") or "").partition(" ")
        if scheme.lower() == "bearer" and token.strip() == self.token:
            return "needle-test"
        return None

    @staticmethod
    def _answered(record: Request | None, exchange: Exchange | None, status: int) -> None:
        if exchange is not None:
            exchange.status = status
        if record is not None:
            record.status = status

    async def _answer(
        self, request: HttpRequest, cert_user: str | None
    ) -> Response | Splice | None:
        """The response to one request, a Splice for a WebSocket exec, or None to close
        the connection without answering (a fault)."""
        exchange = Exchange(request.method, request.path, request.connection)
        self.exchanges.append(exchange)
        user = self._authenticate(request.head, cert_user)
        if user is None:
            response = self._status(401, "Unauthorized", "Unauthorized", authenticated=False)
            self._answered(None, exchange, 401)
            return response
        path = request.path.rstrip("/")
        route = None if path == "/version" else parse_route(path)
        if path != "/version" and route is None:
            message = "the server could not find the requested resource"
            self._answered(None, exchange, 404)
            return self._status(404, "NotFound", message, {})
        record = None
        if route is not None:
            verb = {
                "GET": "get" if route.name else "list",
                "POST": "create",
                "DELETE": "delete",
            }.get(request.method, request.method.lower())
            if route.subresource == "exec":
                verb = "create"  # what a 1.31+ server authorizes a websocket exec as
            record = Request(
                verb,
                route.group,
                route.full_resource,
                route.namespace,
                route.name,
                connection=request.connection,
                user=user,
            )
            self.requests.append(record)
        resource = route.full_resource if route is not None else "version"
        is_exec = route is not None and route.subresource == "exec"
        fault = self.faults.pick(
            request.method, resource, route.name if route else None, rest=not is_exec
        )
        if fault is not None and record is not None:
            record.fault = fault.describe()
        after = fault is not None and fault.after and not is_exec
        if fault is not None and fault.delay_s > 0:
            await asyncio.sleep(fault.delay_s)
        if fault is not None and not after:
            if fault.close:
                return None
            if fault.status is not None:
                response = self._fault_response(fault)
                self._answered(record, exchange, response.status)
                return response
        try:
            outcome = await self._work(request, route, record, user)
        except Exception:  # noqa: BLE001 - a crash in the mock answers 500, as Go recovers
            traceback.print_exc()
            outcome = self._status(500, "InternalError", "the mock API server crashed")
        if isinstance(outcome, Splice):
            outcome.exchange = exchange
            return outcome
        if fault is not None and after:
            if fault.close:
                return None
            if fault.status is not None:
                outcome = self._fault_response(fault)
        if fault is not None and fault.body_delay_s > 0:
            outcome.body_delay_s = fault.body_delay_s
        self._answered(record, exchange, outcome.status)
        return outcome

    async def _work(
        self, request: HttpRequest, route: Route | None, record: Request | None, user: str
    ) -> Response | Splice:
        if route is None:  # /version
            return self._reply(
                {
                    "major": "1",
                    "minor": "31",
                    "gitVersion": "v1.31.0-needle-mock",
                    "gitCommit": "0" * 40,
                    "gitTreeState": "clean",
                    "buildDate": "2026-01-01T00:00:00Z",
                    "goVersion": "go1.22.0",
                    "compiler": "gc",
                    "platform": "linux/amd64",
                }
            )
        assert record is not None
        full_resource = route.full_resource
        if (record.verb, full_resource) in self.forbidden:
            where = route.namespace
            scope = f'in the namespace "{where}"' if where else "at the cluster scope"
            message = (
                f'{full_resource} is forbidden: User "{user}" cannot {record.verb} resource '
                f'"{full_resource}" in API group "{route.group}" {scope}'
            )
            return self._status(403, "Forbidden", message, {"kind": route.resource})
        if route.subresource == "exec":
            if not request.head.is_websocket_upgrade:
                return self._status(400, "BadRequest", "Upgrade request required")
            return Splice(record)
        if route.subresource is not None:
            return self._status(404, "NotFound", "the server could not find the requested resource")
        if route.resource == "selfsubjectaccessreviews":
            return self.access_review(request, route.name)
        if route.resource == "namespaces":
            return await self.namespace_call(request, route.name)
        if route.resource == "pods" and route.namespace is not None:
            return await self.pod_call(request, route.namespace, route.name)
        if request.method == "GET" and route.name is None:
            return self.list_response(request, route.resource, route.namespace)
        return self._status(405, "MethodNotAllowed", "not in the mock")

    # -- lists ------------------------------------------------------------------------

    def items_of(self, resource: str, namespace: str | None) -> list[dict[str, Any]]:
        items = list(self.objects.get(resource, []))
        if resource == "pods":
            items += list(self.pods.values())
        if resource == "namespaces":
            items = list(self.namespaces.values())
        if namespace is not None:
            items = [i for i in items if (i.get("metadata") or {}).get("namespace") == namespace]
        return items

    def list_response(self, request: HttpRequest, resource: str, namespace: str | None) -> Response:
        kind, api_version = LIST_KINDS[resource]
        selector = request.param("labelSelector")
        items = [
            i
            for i in self.items_of(resource, namespace)
            if matches((i.get("metadata") or {}).get("labels") or {}, selector)
        ]
        try:
            start = int(request.param("continue") or 0)
            limit = int(request.param("limit") or 0) or len(items) or 1
        except ValueError:
            return self._status(400, "BadRequest", "invalid continue or limit parameter")
        if self.page_size_cap:
            limit = min(limit, self.page_size_cap)
        page = items[start : start + limit]
        meta: dict[str, Any] = {"resourceVersion": str(self._version)}
        if start + limit < len(items):
            meta["continue"] = str(start + limit)
        # A real List leaves kind and apiVersion off its items.
        stripped = [{k: v for k, v in i.items() if k not in ("kind", "apiVersion")} for i in page]
        return self._reply(
            {"kind": f"{kind}List", "apiVersion": api_version, "metadata": meta, "items": stripped},
            stream=True,  # the API server streams lists: chunked, whatever their size
        )

    # -- access reviews (`kubectl auth can-i`) -----------------------------------------

    def access_review(self, request: HttpRequest, name: str | None) -> Response:
        """A SelfSubjectAccessReview, judged by `forbidden` as every other call is.
        Anyone authenticated may ask, as on a real cluster."""
        if request.method != "POST" or name is not None:
            return self._status(405, "MethodNotAllowed", "not in the mock")
        body = self._body(request, need_metadata=False)
        if isinstance(body, Response):
            return body
        attributes = (body.get("spec") or {}).get("resourceAttributes") or {}
        resource = str(attributes.get("resource") or "")
        if attributes.get("subresource"):
            resource += f"/{attributes['subresource']}"
        allowed = (str(attributes.get("verb") or ""), resource) not in self.forbidden
        status: dict[str, Any] = {"allowed": allowed}
        if allowed:
            status["reason"] = 'RBAC: allowed by ClusterRoleBinding "needle-test"'
        answer = {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": body.get("spec") or {},
            "status": status,
        }
        return self._reply(answer, 201)

    # -- namespaces -------------------------------------------------------------------

    def _body(self, request: HttpRequest, need_metadata: bool = True) -> dict[str, Any] | Response:
        try:
            body = request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or (
            need_metadata and not isinstance(body.get("metadata"), dict)
        ):
            return self._status(400, "BadRequest", "the object provided is unrecognized")
        return body

    async def namespace_call(self, request: HttpRequest, name: str | None) -> Response:
        if request.method == "GET" and name:
            if name not in self.namespaces:
                return self._status(
                    404,
                    "NotFound",
                    f'namespaces "{name}" not found',
                    {"name": name, "kind": "namespaces"},
                )
            return self._reply(self.namespaces[name])
        if request.method == "POST":
            body = self._body(request)
            if isinstance(body, Response):
                return body
            new = body["metadata"]["name"]
            if new in self.namespaces:
                return self._status(
                    409,
                    "AlreadyExists",
                    f'namespaces "{new}" already exists',
                    {"name": new, "kind": "namespaces"},
                )
            self.namespaces[new] = body
            return self._reply(body, 201)
        if request.method == "GET":
            return self.list_response(request, "namespaces", None)
        return self._status(405, "MethodNotAllowed", "not in the mock")

    # -- pods -------------------------------------------------------------------------

    async def pod_call(self, request: HttpRequest, namespace: str, name: str | None) -> Response:
        if request.method == "POST" and name is None:
            return await self.create_pod(request, namespace)
        if name is None:
            if request.method != "GET":
                return self._status(405, "MethodNotAllowed", "not in the mock")
            return self.list_response(request, "pods", namespace)
        pod = self.pods.get((namespace, name))
        if pod is None:
            return self._status(
                404, "NotFound", f'pods "{name}" not found', {"name": name, "kind": "pods"}
            )
        if request.method == "DELETE":
            del self.pods[(namespace, name)]
            self._version += 1
            await self._stop_container((namespace, name))
            return self._reply(pod)
        if request.method == "GET":
            return self._reply(pod)
        return self._status(405, "MethodNotAllowed", "not in the mock")

    async def create_pod(self, request: HttpRequest, namespace: str) -> Response:
        body = self._body(request)
        if isinstance(body, Response):
            return body
        if namespace not in self.namespaces:
            return self._status(
                404,
                "NotFound",
                f'namespaces "{namespace}" not found',
                {"name": namespace, "kind": "namespaces"},
            )
        name = body["metadata"]["name"]
        if (namespace, name) in self.pods:
            return self._status(
                409,
                "AlreadyExists",
                f'pods "{name}" already exists',
                {"name": name, "kind": "pods"},
            )
        self.created_pods.append(json.loads(json.dumps(body)))
        body.setdefault("metadata", {}).update(
            namespace=namespace,
            uid=str(uuid.uuid4()),
            creationTimestamp=_now(),
        )
        body["status"] = {"phase": "Pending"}
        self.pods[(namespace, name)] = body
        self._version += 1
        self._spawn(self._lifecycle(namespace, name))
        return self._reply(body, 201)

    def _set_status(self, key: tuple[str, str], status: dict[str, Any]) -> None:
        pod = self.pods.get(key)
        if pod is not None:
            pod["status"] = status
            self._version += 1

    async def _lifecycle(self, namespace: str, name: str) -> None:
        await asyncio.sleep(self.start_delay_s)
        key = (namespace, name)
        pod = self.pods.get(key)
        if pod is None:
            return
        node = self.nodes.get(pod["spec"].get("nodeName", ""))
        if node is None:
            return  # no kubelet for it: Pending forever, as on a real cluster
        image = pod["spec"]["containers"][0]["image"]
        # the fields a kubelet always reports (the client's models require them)
        waiting = {
            "name": "needle",
            "ready": False,
            "image": image,
            "imageID": "",
            "restartCount": 0,
        }
        if node.pod == "never-ready":
            self._set_status(
                key,
                {
                    "phase": "Pending",
                    "containerStatuses": [
                        {**waiting, "state": {"waiting": {"reason": "ContainerCreating"}}}
                    ],
                },
            )
            return
        if node.pod == "image-pull":
            message = f'failed to pull image "{image}": not found'
            self._set_status(
                key,
                {
                    "phase": "Pending",
                    "containerStatuses": [
                        {
                            **waiting,
                            "state": {"waiting": {"reason": "ErrImagePull", "message": message}},
                        }
                    ],
                },
            )
            await asyncio.sleep(0.5)
            self._set_status(
                key,
                {
                    "phase": "Pending",
                    "containerStatuses": [
                        {
                            **waiting,
                            "state": {
                                "waiting": {
                                    "reason": "ImagePullBackOff",
                                    "message": f'Back-off pulling image "{image}"',
                                }
                            },
                        }
                    ],
                },
            )
            return
        if node.pod == "rejected":
            self._set_status(
                key,
                {
                    "phase": "Failed",
                    "reason": "OutOfpods",
                    "message": "Pod was rejected: Node didn't have enough resource: pods",
                },
            )
            return
        if node.netns is not None and node.exec == "run":
            try:
                await self._start_container(key, node)
            except (TimeoutError, OSError, RuntimeError) as exc:
                self._set_status(
                    key, {"phase": "Failed", "reason": "StartError", "message": str(exc)}
                )
                return
            if key not in self.pods:  # deleted while starting
                await self._stop_container(key)
                return
        self._set_status(
            key,
            {
                "phase": "Running",
                "containerStatuses": [
                    {**waiting, "ready": True, "state": {"running": {"startedAt": _now()}}}
                ],
            },
        )

    async def _start_container(self, key: tuple[str, str], node: MockNode) -> None:
        assert node.netns is not None
        # The container gets a private /tmp, so its PID 1 (a stdlib-only reaper) runs on
        # the interpreter's real path: a venv (or a checkout) under /tmp would vanish.
        process = await asyncio.create_subprocess_exec(
            "ip",
            "netns",
            "exec",
            node.netns,
            "unshare",
            "--mount",
            "--pid",
            "--fork",
            "--mount-proc",
            "--kill-child",
            "sh",
            "-c",
            _CONTAINER_SETUP,
            "needle-mock-pod",
            *node.pod_netns,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            env={
                **os.environ,
                "NEEDLE_MOCK_PYTHON": os.path.realpath(sys.executable),
                "NEEDLE_MOCK_REAPER": _REAPER,
            },
        )
        assert process.stdout is not None and process.stderr is not None
        try:
            line = await asyncio.wait_for(process.stdout.readline(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
        if line.strip() != b"ready":
            err = await process.stderr.read()
            await process.wait()
            raise RuntimeError(f"container setup failed: {err.decode(errors='replace').strip()}")
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        self._containers[key] = Container(process, int(children[0]))

    async def _stop_container(self, key: tuple[str, str]) -> None:
        container = self._containers.pop(key, None)
        if container is None:
            return
        # PID 1 of the container's PID namespace: everything in it dies with it.
        with contextlib.suppress(ProcessLookupError):
            os.kill(container.init_pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            container.process.kill()
        await container.process.wait()

    # -- exec (the aiohttp backend behind the splice) ----------------------------------

    async def _exec_backend(self, request: web.Request) -> web.StreamResponse:
        # The front end has authenticated and authorized this request already.
        route = parse_route(request.path.rstrip("/"))
        if route is None or route.subresource != "exec":
            return _json(status_body(404, "NotFound", f"no route {request.path}"), 404)
        return await self.exec(request, route.namespace or "", route.name or "")

    async def exec(self, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
        pod = self.pods.get((namespace, name))
        if pod is None:
            return _json(status_body(404, "NotFound", f'pods "{name}" not found'), 404)
        if (pod.get("status") or {}).get("phase") != "Running":
            return _json(status_body(400, "BadRequest", "container not running"), 400)
        command = request.query.getall("command", [])
        self.exec_commands.append(command)
        node = self.nodes[pod["spec"]["nodeName"]]
        ws = web.WebSocketResponse(protocols=self.protocols, max_msg_size=0)
        await ws.prepare(request)
        is_node_script = "needle-node" in command
        if node.exec == "hang" and is_node_script:
            async for _msg in ws:
                pass  # never answers; the client gives up
            return ws
        if node.exec == "canned" or node.netns is None:
            return await self._exec_canned(ws, is_node_script)
        return await self._exec_in_container(ws, (namespace, name), command)

    async def _send(self, ws: web.WebSocketResponse, channel: int, data: bytes) -> None:
        await ws.send_bytes(bytes([channel]) + data)

    async def _finish(self, ws: web.WebSocketResponse, exit_code: int) -> None:
        if exit_code == 0:
            status: dict[str, Any] = {"metadata": {}, "status": "Success"}
        else:
            status = {
                "metadata": {},
                "status": "Failure",
                "message": f"command terminated with non-zero exit code: exit status {exit_code}",
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": str(exit_code)}]},
            }
        with contextlib.suppress(ConnectionError):
            await self._send(ws, 3, json.dumps(status).encode())
            await ws.close()

    async def _exec_canned(
        self, ws: web.WebSocketResponse, is_node_script: bool
    ) -> web.StreamResponse:
        drain = asyncio.get_running_loop().create_task(self._drain(ws))
        if is_node_script:
            pieces = 10
            step = len(self.canned) // pieces + 1
            for start in range(0, len(self.canned), step):
                await asyncio.sleep(self.canned_seconds / pieces)
                await self._send(ws, 1, self.canned[start : start + step])
        await self._finish(ws, 0 if is_node_script else 1)
        drain.cancel()
        return ws

    async def _drain(self, ws: web.WebSocketResponse) -> None:
        async for _msg in ws:
            pass

    async def _exec_in_container(
        self, ws: web.WebSocketResponse, key: tuple[str, str], command: list[str]
    ) -> web.StreamResponse:
        container = self._containers.get(key)
        if container is None:
            await self._finish(ws, 126)
            return ws
        process = await asyncio.create_subprocess_exec(
            "nsenter",
            f"--target={container.init_pid}",
            "--net",
            "--mount",
            "--pid",
            "--root",
            "--wd",
            "--",
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        self._execs.add(process)
        assert process.stdin is not None and process.stdout is not None
        assert process.stderr is not None

        async def pump(source: asyncio.StreamReader, channel: int) -> None:
            while chunk := await source.read(32 * 1024):
                with contextlib.suppress(ConnectionError):
                    await self._send(ws, channel, chunk)

        async def feed() -> None:
            assert process.stdin is not None
            async for msg in ws:
                if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                    continue
                data = msg.data if isinstance(msg.data, bytes) else msg.data.encode()
                if not data:
                    continue
                if data[0] == 0 and not process.stdin.is_closing():
                    with contextlib.suppress(ConnectionError):
                        process.stdin.write(data[1:])
                        await process.stdin.drain()
                elif data[:2] == bytes([255, 0]) and ws.ws_protocol == V5:
                    process.stdin.close()

        feeder = asyncio.get_running_loop().create_task(feed())
        pumps = asyncio.gather(pump(process.stdout, 1), pump(process.stderr, 2))
        done, _ = await asyncio.wait({feeder, pumps}, return_when=asyncio.FIRST_COMPLETED)
        if feeder in done and pumps not in done:
            # the client went away: a runtime would leave the process; we end it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        await pumps
        code = await process.wait()
        self._execs.discard(process)
        await self._finish(ws, code if code >= 0 else 128 - code)
        feeder.cancel()
        return ws


# -- helpers for tests and the benchmark ----------------------------------------------


def kubeconfig_text(
    url: str,
    token: str = TOKEN,
    ca_pem: bytes | None = None,
    client_cert_pem: bytes | None = None,
    client_key_pem: bytes | None = None,
) -> str:
    """A kubeconfig for the mock: a bearer token, or a client certificate (with its
    key) instead when one is given."""
    cluster: dict[str, Any] = {"server": url}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    user: dict[str, str]
    if client_cert_pem is not None:
        if client_key_pem is None:
            raise ValueError("a client certificate needs its key")
        user = {
            "client-certificate-data": base64.b64encode(client_cert_pem).decode(),
            "client-key-data": base64.b64encode(client_key_pem).decode(),
        }
    else:
        user = {"token": token}
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "mock", "cluster": cluster}],
        "users": [{"name": "needle-test", "user": user}],
        "contexts": [{"name": "mock", "context": {"cluster": "mock", "user": "needle-test"}}],
        "current-context": "mock",
    }
    return json.dumps(document, indent=1)


def read_kube_dir(directory: Path) -> dict[str, list[dict[str, Any]]]:
    """A lab's kube dir (List JSON per resource) as the mock's objects."""
    objects: dict[str, list[dict[str, Any]]] = {}
    for resource in ("nodes", "pods", "configmaps", "daemonsets"):
        path = directory / f"{resource}.json"
        if path.is_file():
            objects[resource] = json.loads(path.read_text())["items"]
    return objects


def synthetic_objects(
    node_names: list[str], pods_per_node: int = 3
) -> dict[str, list[dict[str, Any]]]:
    nodes = [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": n,
                "labels": {"kubernetes.io/os": "linux", "kubernetes.io/hostname": n},
            },
            "spec": {"podCIDR": f"10.244.{i % 250}.0/24"},
        }
        for i, n in enumerate(node_names)
    ]
    pods = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"web-{n}-{k}", "namespace": "default", "labels": {"app": "web"}},
            "spec": {"nodeName": n},
            "status": {"phase": "Running"},
        }
        for n in node_names
        for k in range(pods_per_node)
    ]
    configmaps = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "kube-flannel-cfg", "namespace": "kube-flannel"},
            "data": {"net-conf.json": '{"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan"}}'},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "app-settings", "namespace": "default"},
            "data": {"password-hint": "not for support tickets"},
        },
    ]
    daemonsets = [
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "kube-flannel-ds", "namespace": "kube-flannel"},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "log-shipper", "namespace": "logging"},
        },
    ]
    return {"nodes": nodes, "pods": pods, "configmaps": configmaps, "daemonsets": daemonsets}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--canned-nodes", type=int, required=True)
    parser.add_argument("--canned-seconds", type=float, default=1.0)
    parser.add_argument("--start-delay", type=float, default=0.1)
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument(
        "--chaos", type=float, default=0.0, help="share of REST requests that fail transiently"
    )
    parser.add_argument("--chaos-seed", type=int, default=1)
    parser.add_argument(
        "--body-delay",
        type=float,
        default=0.0,
        help="seconds before the tail of each REST response (a network in between)",
    )
    args = parser.parse_args()
    names = [f"node-{i:04d}" for i in range(1, args.canned_nodes + 1)]
    server = MockApiServer(
        [MockNode(n, exec="canned") for n in names],
        synthetic_objects(names),
        start_delay_s=args.start_delay,
        canned_seconds=args.canned_seconds,
        body_delay_s=args.body_delay,
    )
    server.chaos(args.chaos, args.chaos_seed)

    async def serve() -> None:
        url = await server.start_async()
        args.kubeconfig.write_text(kubeconfig_text(url))
        print(f"READY {url}", flush=True)
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, done.set)
        loop.add_reader(sys.stdin.fileno(), lambda: done.set() if not sys.stdin.read(1) else None)
        await done.wait()
        print(f"PODS-LEFT {len(server.pods)} CREATED {len(server.created_pods)}", flush=True)
        await server.stop_async()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
