"""A small Kubernetes API server for tests: REST for objects and pods, and pod exec over
a WebSocket (v4.channel.k8s.io / v5.channel.k8s.io), driven by the real client.

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
import signal
import ssl
import sys
import tarfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

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
GROUP_OF = {"nodes": "", "pods": "", "configmaps": "", "namespaces": "", "daemonsets": "apps"}

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
    """One API call as the authorizer sees it (verb, group, resource, namespace)."""

    verb: str
    group: str
    resource: str
    namespace: str | None
    name: str | None


@dataclass
class Container:
    process: asyncio.subprocess.Process
    init_pid: int


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
    return web.Response(
        body=json.dumps(data).encode(), status=status, content_type="application/json"
    )


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
    ) -> None:
        self.nodes = {node.name: node for node in nodes}
        self.objects = {key: list(value) for key, value in (objects or {}).items()}
        self.token = token
        self.forbidden = forbidden or set()
        """(verb, resource) pairs answered with 403, e.g. ("list", "configmaps")."""
        self.protocols = protocols
        self.ssl_context = ssl_context
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
        self.created_pods: list[dict[str, Any]] = []
        self.exec_commands: list[list[str]] = []
        self._containers: dict[tuple[str, str], Container] = {}
        self._execs: set[asyncio.subprocess.Process] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._version = 1
        self.url = ""

    # -- lifecycle ------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def start_async(self, port: int = 0) -> str:
        self._loop = asyncio.get_running_loop()
        self._runner = web.AppRunner(self.app(), handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port, ssl_context=self.ssl_context)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        scheme = "https" if self.ssl_context else "http"
        self.url = f"{scheme}://{host}:{port}"
        return self.url

    async def stop_async(self) -> None:
        for key in list(self._containers):
            await self._stop_container(key)
        for process in list(self._execs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        if self._runner is not None:
            await self._runner.cleanup()

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

    # -- dispatch -------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or token != self.token:  # the scheme is case-blind
            return _json(status_body(401, "Unauthorized", "Unauthorized"), 401)
        path = request.path.rstrip("/")
        if path == "/version":
            return _json(
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
        parts = [p for p in path.split("/") if p]
        if parts[:2] == ["api", "v1"]:
            group, rest = "", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, rest = parts[1], parts[3:]
        else:
            return _json(status_body(404, "NotFound", f"no route {path}"), 404)
        namespace = name = subresource = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, resource = rest[1], rest[2]
            name = rest[3] if len(rest) > 3 else None
            subresource = rest[4] if len(rest) > 4 else None
        elif rest:
            resource = rest[0]
            name = rest[1] if len(rest) > 1 else None
        else:
            return _json(status_body(404, "NotFound", f"no route {path}"), 404)
        if GROUP_OF.get(resource) != group:
            return _json(status_body(404, "NotFound", f"the server could not find {path}"), 404)
        verb = {
            "GET": "get" if name else "list",
            "POST": "create",
            "DELETE": "delete",
        }.get(request.method, request.method.lower())
        full_resource = f"{resource}/{subresource}" if subresource else resource
        if subresource == "exec":
            verb = "create"  # what a 1.31+ server authorizes a websocket exec as
        self.requests.append(Request(verb, group, full_resource, namespace, name))
        if (verb, full_resource) in self.forbidden:
            scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
            message = (
                f'{full_resource} is forbidden: User "needle-test" cannot {verb} resource '
                f'"{full_resource}" in API group "{group}" {scope}'
            )
            return _json(status_body(403, "Forbidden", message, {"kind": resource}), 403)
        if subresource == "exec":
            return await self.exec(request, namespace or "", name or "")
        if resource == "namespaces":
            return await self.namespace_call(request, name)
        if resource == "pods" and namespace is not None:
            return await self.pod_call(request, namespace, name)
        if request.method == "GET" and name is None:
            return self.list_response(request, resource, namespace)
        return _json(status_body(405, "MethodNotAllowed", "not in the mock"), 405)

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

    def list_response(
        self, request: web.Request, resource: str, namespace: str | None
    ) -> web.Response:
        kind, api_version = LIST_KINDS[resource]
        selector = request.query.get("labelSelector")
        items = [
            i
            for i in self.items_of(resource, namespace)
            if matches((i.get("metadata") or {}).get("labels") or {}, selector)
        ]
        start = int(request.query.get("continue") or 0)
        limit = int(request.query.get("limit") or 0) or len(items) or 1
        if self.page_size_cap:
            limit = min(limit, self.page_size_cap)
        page = items[start : start + limit]
        meta: dict[str, Any] = {"resourceVersion": str(self._version)}
        if start + limit < len(items):
            meta["continue"] = str(start + limit)
        # A real List leaves kind and apiVersion off its items.
        stripped = [{k: v for k, v in i.items() if k not in ("kind", "apiVersion")} for i in page]
        return _json(
            {"kind": f"{kind}List", "apiVersion": api_version, "metadata": meta, "items": stripped}
        )

    # -- namespaces -------------------------------------------------------------------

    async def namespace_call(self, request: web.Request, name: str | None) -> web.Response:
        if request.method == "GET" and name:
            if name not in self.namespaces:
                return _json(status_body(404, "NotFound", f'namespaces "{name}" not found'), 404)
            return _json(self.namespaces[name])
        if request.method == "POST":
            body = await request.json()
            new = body["metadata"]["name"]
            if new in self.namespaces:
                return _json(status_body(409, "AlreadyExists", "exists"), 409)
            self.namespaces[new] = body
            return _json(body, 201)
        return self.list_response(request, "namespaces", None)

    # -- pods -------------------------------------------------------------------------

    async def pod_call(
        self, request: web.Request, namespace: str, name: str | None
    ) -> web.Response:
        if request.method == "POST":
            return await self.create_pod(request, namespace)
        if name is None:
            return self.list_response(request, "pods", namespace)
        pod = self.pods.get((namespace, name))
        if pod is None:
            return _json(status_body(404, "NotFound", f'pods "{name}" not found'), 404)
        if request.method == "DELETE":
            del self.pods[(namespace, name)]
            self._version += 1
            await self._stop_container((namespace, name))
            return _json(pod)
        return _json(pod)

    async def create_pod(self, request: web.Request, namespace: str) -> web.Response:
        body = await request.json()
        if namespace not in self.namespaces:
            return _json(status_body(404, "NotFound", f'namespaces "{namespace}" not found'), 404)
        name = body["metadata"]["name"]
        if (namespace, name) in self.pods:
            return _json(status_body(409, "AlreadyExists", f'pods "{name}" already exists'), 409)
        self.created_pods.append(json.loads(json.dumps(body)))
        body.setdefault("metadata", {}).update(
            namespace=namespace,
            uid=str(uuid.uuid4()),
            creationTimestamp=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )
        body["status"] = {"phase": "Pending"}
        self.pods[(namespace, name)] = body
        self._version += 1
        asyncio.get_running_loop().create_task(self._lifecycle(namespace, name))
        return _json(body, 201)

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
        waiting = {"name": "needle", "ready": False, "image": image}
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
                    {**waiting, "ready": True, "state": {"running": {"startedAt": "now"}}}
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

    # -- exec -------------------------------------------------------------------------

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


def kubeconfig_text(url: str, token: str = TOKEN, ca_pem: bytes | None = None) -> str:
    cluster: dict[str, Any] = {"server": url}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "mock", "cluster": cluster}],
        "users": [{"name": "needle-test", "user": {"token": token}}],
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
    args = parser.parse_args()
    names = [f"node-{i:04d}" for i in range(1, args.canned_nodes + 1)]
    server = MockApiServer(
        [MockNode(n, exec="canned") for n in names],
        synthetic_objects(names),
        start_delay_s=args.start_delay,
        canned_seconds=args.canned_seconds,
    )

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
