"""Every REST call to the Kubernetes API goes through `KubeCalls.call`: it owns the
response's connection and the retries.

Connections: the client library hands back urllib3 responses whose connection goes back
to the pool on `release_conn()`, read or not. A connection returned with part of a body
still unread is poison on a keep-alive server (kube-apiserver is Go's net/http): the next
request on it reads those bytes as its status line (BadStatusLine, ResponseNotReady,
"Connection aborted"). So a response leaves here in one of two states only: read to its
end and then released, or its connection closed (an error, a timeout, Ctrl-C mid-body).

Retries: only where repeating cannot do harm, and bounded in attempts and time.
- reads (GET) and deletes (a delete answered 404 after a lost answer means it is gone);
- creates of objects whose name this run chose: a repeat answered 409 AlreadyExists means
  the first attempt made it, and the caller treats 409 as "exists".
Retried: 429 (after its Retry-After, as client-go does), 500/502/503/504, and a
connection that failed or was dropped. Anything else is answered at once.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from threading import Event
from typing import Any

import urllib3
from kubernetes.client.rest import ApiException

# (connect, read) seconds for one REST call. A list page or a pod read is small and
# quick; a server that takes longer is overloaded or gone.
REQUEST_TIMEOUT = (5.0, 30.0)
# kube-apiserver answers these when it is busy or between leaders, and they pass.
TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    """Tries in all, the first one included."""
    budget_s: float = 20.0
    """Time spent waiting between tries, at most, whatever Retry-After asks."""
    first_delay_s: float = 0.25
    max_delay_s: float = 4.0
    retry_after_cap_s: float = 10.0
    """A Retry-After longer than this is cut to it (APF asks for 1 s)."""

    def delay(self, attempt: int, retry_after_s: float | None, rng: random.Random) -> float:
        """Seconds to wait before try `attempt + 1` (attempt counts from 1)."""
        if retry_after_s is not None:
            return min(max(retry_after_s, 0.0), self.retry_after_cap_s)
        backoff = min(self.first_delay_s * 2 ** (attempt - 1), self.max_delay_s)
        # jitter: ten workers throttled at once must not come back at once
        return backoff * (0.5 + rng.random() / 2)


DEFAULT_POLICY = RetryPolicy()
# The first call of a run: an unreachable API must not hold the user long.
PROBE_POLICY = RetryPolicy(attempts=2, budget_s=2.0)
ONE_TRY = RetryPolicy(attempts=1)


@dataclass
class Reply:
    status: int
    body: bytes
    attempts: int

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not (a proxy's error page)."""
        return json.loads(self.body)

    def object(self, what: str) -> dict[str, Any]:
        """The body as a JSON object (every Kubernetes answer is one); ValueError naming
        `what` ("a pod", "a list page") when it is not."""
        found = self.json()
        if not isinstance(found, dict):
            raise ValueError(f"{what} is not a JSON object")
        return found


class KubeCallError(Exception):
    """A call that failed for good: the server's answer or the transport's failure, with
    how many tries it took. `status` is None when no HTTP answer came."""

    def __init__(
        self,
        what: str,
        status: int | None,
        detail: str,
        attempts: int,
        elapsed_s: float,
        interrupted: bool = False,
    ) -> None:
        self.what = what
        self.status = status
        self.detail = detail
        self.attempts = attempts
        self.elapsed_s = elapsed_s
        self.interrupted = interrupted
        super().__init__(what)

    def __str__(self) -> str:
        return self.text

    @property
    def text(self) -> str:
        """'503 Service Unavailable: ... (5 tries in 12.3 s)': the detail and the tries."""
        if self.interrupted:
            return f"{self.detail} (interrupted while retrying)"
        if self.attempts > 1:
            return f"{self.detail} ({self.attempts} tries in {self.elapsed_s:.1f} s)"
        return self.detail


def one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def api_error_text(exc: ApiException) -> str:
    """'403 Forbidden: configmaps is forbidden: User ...' from an ApiException."""
    message = None
    body = exc.body
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    if body:
        try:
            status = json.loads(body)
            if isinstance(status, dict):
                message = status.get("message")
        except ValueError:
            message = body
    head = f"{exc.status} {exc.reason}".strip() if exc.status else str(exc.reason or "error")
    return one_line(f"{head}: {message}" if message else head)


def transport_error_text(exc: BaseException) -> str:
    """The root cause of a urllib3 connection failure, without the retry wrapping."""
    reason = getattr(exc, "reason", None) or exc
    text = str(reason)
    # urllib3 prefixes the connection object's repr; the errno text is what helps
    if "]" in text and "Errno" in text:
        text = text[text.index("[Errno") :]
    return one_line(text)


def _retry_after(exc: ApiException) -> float | None:
    headers = exc.headers or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None  # an HTTP date: fall back to our own backoff


def _transient_transport(exc: urllib3.exceptions.HTTPError) -> bool:
    """A dropped, refused or timed-out connection passes; a TLS or URL problem does not."""
    reason = getattr(exc, "reason", None) or exc
    return not isinstance(
        reason, urllib3.exceptions.SSLError | urllib3.exceptions.LocationValueError
    )


def _read_to_end(response: Any) -> bytes:
    """The whole body, then the connection back to the pool; on any failure or
    interruption the connection is closed instead, so no unread byte is pooled."""
    done = False
    try:
        body = bytes(response.data or b"")
        done = True
        return body
    finally:
        if not done:
            with contextlib.suppress(Exception):
                response.close()
        # a closed connection goes back too: the pool reconnects it, its slot is kept
        with contextlib.suppress(Exception):
            response.release_conn()


class KubeCalls:
    """REST calls through one ApiClient (thread-safe: it keeps no state of its own)."""

    def __init__(
        self,
        timeout: tuple[float, float] = REQUEST_TIMEOUT,
        policy: RetryPolicy = DEFAULT_POLICY,
    ) -> None:
        self.timeout = timeout
        self.policy = policy
        self._rng = random.Random()  # noqa: S311 - jitter, not secrecy

    def call(
        self,
        what: str,
        method: Callable[..., Any],
        *args: Any,
        policy: RetryPolicy | None = None,
        stop: Event | None = None,
        deadline: float | None = None,
        timeout: tuple[float, float] | None = None,
        **kwargs: Any,
    ) -> Reply:
        """Call a generated API method (e.g. CoreV1Api.read_namespace) and read its answer.

        `what` names the call in errors ("create pod needle/x"); `policy=ONE_TRY` for a
        call that is not safe to repeat. Retries stop early when `stop` is set or would wait
        past `deadline` (time.monotonic()). Raises KubeCallError.
        """
        policy = policy or self.policy
        started = time.monotonic()
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            try:
                response = method(
                    *args,
                    _preload_content=False,
                    _request_timeout=timeout or self.timeout,
                    **kwargs,
                )
                body = _read_to_end(response)
                return Reply(int(response.status), body, attempt)
            except ApiException as exc:
                # the library read the error body to its end: the connection is clean
                status = exc.status or None
                failure = KubeCallError(
                    what, status, api_error_text(exc), attempt, time.monotonic() - started
                )
                if status not in TRANSIENT_STATUS:
                    raise failure from exc
                if status == 429:
                    retry_after = _retry_after(exc)
                cause: BaseException = exc
            except urllib3.exceptions.HTTPError as exc:
                failure = KubeCallError(
                    what, None, transport_error_text(exc), attempt, time.monotonic() - started
                )
                if not _transient_transport(exc):
                    raise failure from exc
                cause = exc
            if attempt >= policy.attempts:
                raise failure from cause
            delay = policy.delay(attempt, retry_after, self._rng)
            if waited + delay > policy.budget_s:
                raise failure from cause
            if deadline is not None and time.monotonic() + delay > deadline:
                raise failure from cause
            if _wait(delay, stop):
                failure.interrupted = True
                raise failure from cause
            waited += delay


def _wait(seconds: float, stop: Event | None) -> bool:
    """Sleep; True when `stop` was set meanwhile (Ctrl-C in the main thread raises)."""
    if stop is not None:
        return stop.wait(seconds)
    time.sleep(seconds)
    return False
