"""Running a command in a pod through the exec API, binary-safe, output streamed to disk.

The library's `stream()` opens the websocket (credentials, TLS, proxies, subprotocol
negotiation); the frames are then read here, one at a time, because its own buffering
decodes text unless asked not to, blocks in `read_stdout()` without a timeout, and
concatenates output in memory (slow and unbounded on large outputs).

Channels (v4.channel.k8s.io and v5.channel.k8s.io): the first byte of every message is
the channel, 0 stdin, 1 stdout, 2 stderr, 3 the exit status (a Status object), 4
resize; v5 adds 255, "close channel N", which is how stdin gets its end of file. Servers
before 1.30 speak only v4 and cannot close stdin, so what we run must end by itself.
"""

from __future__ import annotations

import json
import re
import select
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from threading import Event
from typing import Any, Protocol

import websocket
from kubernetes import client
from kubernetes.client.rest import ApiException
from kubernetes.stream import stream
from needle.collector.kube.calls import one_line
from needle.collector.kube.client import Cluster

STDIN, STDOUT, STDERR, ERROR = 0, 1, 2, 3
CLOSE = 255
V5 = "v5.channel.k8s.io"
STDIN_CHUNK = 32 * 1024
MAX_STDERR = 1024 * 1024
POLL_S = 0.2
# A frame whose first bytes arrived but whose rest does not come within this long means
# the connection is dead, not slow.
FRAME_TIMEOUT_S = 30.0
# The websocket handshake: the library gives it no timeout of its own.
CONNECT_TIMEOUT_S = 30.0
# How long a close waits for the server's answering close frame (a hung server sends none).
CLOSE_TIMEOUT_S = 1.0


class StopRequest(Protocol):
    def __call__(self) -> None:
        """Ask the command to stop and send what it has (best effort, quick)."""


@dataclass
class ExecOutcome:
    exit_code: int | None = None
    error: str | None = None
    """Why the command did not run or its result is unknown; None when it ran."""
    stderr: bytes = b""
    timed_out: bool = False
    interrupted: bool = False
    stdout_bytes: int = 0


def _handshake_error(exc: ApiException) -> str:
    """'403 Forbidden: pods "x" is forbidden: ...' from a failed websocket upgrade."""
    text = str(exc.reason or exc)
    status = re.search(r"Handshake status (\d+ [^-]*)", text)
    message = None
    body = re.search(r"b'(\{.*\})'", text, re.S)
    if body:
        try:
            message = json.loads(body.group(1).encode().decode("unicode_escape")).get("message")
        except (ValueError, UnicodeDecodeError, AttributeError):
            message = None
    head = status.group(1).strip() if status else one_line(text, 200)
    return one_line(f"{head}: {message}" if message else head)


def open_exec(cluster: Cluster, namespace: str, pod: str, command: list[str]) -> Any:
    """The connected library WSClient; raises ExecOpenError."""
    # The library opens the websocket with websocket-client's process-wide default
    # timeout and no way to pass one; without it a server that accepts the connection
    # but never answers the upgrade would hold this node (and Ctrl-C) forever.
    if websocket.getdefaulttimeout() is None:
        websocket.setdefaulttimeout(CONNECT_TIMEOUT_S)
    api = cluster.private_api_client()
    try:
        return stream(
            client.CoreV1Api(api).connect_get_namespaced_pod_exec,
            pod,
            namespace,
            command=command,
            stdin=True,
            stdout=True,
            stderr=True,
            tty=False,
            _preload_content=False,
            binary=True,
        )
    except ApiException as exc:
        raise ExecOpenError(_handshake_error(exc)) from exc
    except (OSError, websocket.WebSocketException) as exc:
        raise ExecOpenError(one_line(str(exc) or type(exc).__name__)) from exc
    finally:
        # the websocket does not use the client's connection pool
        api.close()


class ExecOpenError(Exception):
    """The exec stream could not be opened."""


def _subprotocol(wsclient: Any) -> str | None:
    found = getattr(wsclient, "subprotocol", None)
    if found:
        return str(found)
    sock = getattr(wsclient, "sock", None)
    found = getattr(sock, "subprotocol", None)
    return str(found) if found else None


def _readable(ws: websocket.WebSocket, timeout: float) -> bool:
    raw = ws.sock
    if raw is None:
        return True  # closed: let recv raise and end the loop
    # TLS decrypts whole records: frames may wait in the SSL object, invisible to poll
    if isinstance(raw, ssl.SSLSocket) and raw.pending():
        return True
    poller = select.poll()
    poller.register(raw, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(timeout * 1000))


def exit_status(raw: bytes) -> tuple[int | None, str | None]:
    """(exit code, error) from the error channel's Status object."""
    if not raw.strip():
        return None, None
    try:
        status = json.loads(raw)
    except ValueError:
        return None, one_line(raw.decode(errors="replace"))
    if not isinstance(status, dict):
        return None, one_line(raw.decode(errors="replace"))
    if status.get("status") == "Success":
        return 0, None
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode" and str(cause.get("message", "")).isdigit():
            return int(cause["message"]), None
    return None, one_line(str(status.get("message") or "the exec failed"))


def send_stdin(wsclient: Any, data: bytes, close: bool) -> None:
    ws: websocket.WebSocket = wsclient.sock
    for start in range(0, len(data), STDIN_CHUNK):
        ws.send_binary(bytes([STDIN]) + data[start : start + STDIN_CHUNK])
    if close and _subprotocol(wsclient) == V5:
        ws.send_binary(bytes([CLOSE, STDIN]))


def run_exec(
    wsclient: Any,
    stdin: bytes,
    stream_to: Path,
    deadline_s: float,
    stop: Event,
    grace_s: float,
    request_stop: StopRequest,
) -> ExecOutcome:
    """Feed `stdin`, write stdout to `stream_to` as it comes, until the command ends.

    At the deadline or when `stop` is set, `request_stop` asks the command to wrap up;
    after `grace_s` more the connection is closed whatever came.
    """
    outcome = ExecOutcome()
    ws: websocket.WebSocket = wsclient.sock
    ws.settimeout(FRAME_TIMEOUT_S)
    status = bytearray()
    stderr = bytearray()
    started = time.monotonic()
    give_up_at: float | None = None
    with stream_to.open("wb") as out:
        try:
            send_stdin(wsclient, stdin, close=True)
            while True:
                now = time.monotonic()
                if give_up_at is None and (stop.is_set() or now - started > deadline_s):
                    outcome.interrupted = stop.is_set()
                    outcome.timed_out = not outcome.interrupted
                    give_up_at = now + grace_s
                    request_stop()
                if give_up_at is not None and time.monotonic() > give_up_at:
                    break
                if not _readable(ws, POLL_S):
                    continue
                opcode, frame = ws.recv_data_frame(True)
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    break
                if opcode not in (websocket.ABNF.OPCODE_BINARY, websocket.ABNF.OPCODE_TEXT):
                    continue  # ping/pong are answered by the library
                data = frame.data if isinstance(frame.data, bytes) else frame.data.encode()
                if not data:
                    continue
                channel, payload = data[0], data[1:]
                if channel == STDOUT:
                    out.write(payload)
                    outcome.stdout_bytes += len(payload)
                elif channel == STDERR:
                    stderr += payload[: max(0, MAX_STDERR - len(stderr))]
                elif channel == ERROR:
                    status += payload
        except websocket.WebSocketTimeoutException:
            outcome.error = f"the exec stream stalled for {FRAME_TIMEOUT_S:g} s mid-message"
        except (websocket.WebSocketConnectionClosedException, ConnectionError, ssl.SSLError):
            pass  # the server hung up: the status (or its absence) says the rest
        except OSError as exc:
            outcome.error = f"the exec stream failed: {exc}"
        finally:
            wsclient.close(timeout=CLOSE_TIMEOUT_S)
    outcome.stderr = bytes(stderr)
    outcome.exit_code, status_error = exit_status(bytes(status))
    if outcome.error is None and status_error is not None:
        outcome.error = status_error
    if (
        outcome.exit_code is None
        and outcome.error is None
        and not (outcome.timed_out or outcome.interrupted)
    ):
        outcome.error = "the exec stream ended without an exit status (connection lost?)"
    return outcome


def run_short(wsclient: Any, timeout_s: float) -> ExecOutcome:
    """Run a small command with no input to its end (or `timeout_s`); keeps no output."""
    scratch_out = ExecOutcome()
    ws: websocket.WebSocket = wsclient.sock
    ws.settimeout(timeout_s)
    status = bytearray()
    deadline = time.monotonic() + timeout_s
    try:
        send_stdin(wsclient, b"", close=True)
        while time.monotonic() < deadline:
            if not _readable(ws, POLL_S):
                continue
            opcode, frame = ws.recv_data_frame(True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                break
            data = frame.data if isinstance(frame.data, bytes) else b""
            if data[:1] == bytes([ERROR]):
                status += data[1:]
    except (websocket.WebSocketException, OSError) as exc:
        scratch_out.error = one_line(str(exc) or type(exc).__name__)
    finally:
        wsclient.close(timeout=CLOSE_TIMEOUT_S)
    scratch_out.exit_code, error = exit_status(bytes(status))
    scratch_out.error = scratch_out.error or error
    return scratch_out
