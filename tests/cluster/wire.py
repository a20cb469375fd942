"""HTTP/1.1 on the wire as kube-apiserver (Go net/http) speaks it, for the mock API server.

Why hand-written: a client bug (a pooled connection released with its response body
unread) breaks the next request against Go's server but not against aiohttp, whose
framing and connection handling happened to be kind to it. What matters here is what
Go does and a client can observe:

- persistent connections by default; one request at a time per connection; close on
  `Connection: close`, on HTTP/1.0 without keep-alive, on a protocol error (a plain
  text `400 Bad Request` and `Connection: close`, as Go answers) or when idle too long;
- a complete body of at most 2048 bytes (Go's bufferBeforeChunkingSize) goes out with
  `Content-Length`, status line, headers and body in ONE write (Go's bufio flush);
  anything larger, and anything streamed (lists), goes out chunked, headers and first
  chunk together, the last chunk and the `0\r\n\r\n` terminator together;
- handler headers sorted by name, then Connection, Transfer-Encoding, Date,
  Content-Length (Go's order).

Also faults (wrong statuses, slow answers and bodies, dropped connections) that tests
inject, one at a time or at random ("chaos") with a fixed seed.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

# Go's net/http: a body that fits its 2048-byte buffer when the handler returns gets a
# Content-Length; one that does not is sent chunked as it is written.
CONTENT_LENGTH_MAX = 2048
# Payload bytes per chunk (Go's connection writer flushes 4 KiB at a time).
CHUNK_SIZE = 4096
# kube-apiserver's http.Server: MaxHeaderBytes 1 MiB, ReadHeaderTimeout 32 s,
# IdleTimeout 90 s.
MAX_HEADER_BYTES = 1 << 20
HEADER_TIMEOUT_S = 32.0
IDLE_TIMEOUT_S = 90.0
# What the old aiohttp front end accepted (client_max_size); a pod spec is far smaller.
MAX_BODY_BYTES = 16 * 1024 * 1024
TERMINATOR = b"0\r\n\r\n"
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


class Closed(Exception):
    """The client closed the connection, or sent nothing for too long: end it quietly."""


class WireError(Exception):
    """A request Go would reject before any handler sees it; the answer is plain text
    and the connection is closed afterwards."""

    def __init__(self, public: str) -> None:
        super().__init__(public)
        self.public = public  # e.g. "400 Bad Request: missing required Host header"

    def answer(self) -> bytes:
        # Byte for byte what Go's conn.serve writes for such an error.
        return (
            f"HTTP/1.1 {self.public}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Connection: close\r\n\r\n{self.public}"
        ).encode()


@dataclass
class Head:
    """A request line and its headers, as read off the wire."""

    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    raw: bytes
    """The bytes as received: what the exec splice forwards to the WebSocket backend."""

    def header(self, name: str) -> str | None:
        """The first value of a header, names compared case-blind."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    def header_values(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    def tokens(self, name: str) -> set[str]:
        """A comma-separated header's tokens (e.g. Connection: keep-alive, Upgrade)."""
        return {
            token.strip().lower()
            for value in self.header_values(name)
            for token in value.split(",")
            if token.strip()
        }

    @property
    def http11(self) -> bool:
        return self.version == "HTTP/1.1"

    @property
    def keep_alive(self) -> bool:
        """Whether the client lets the connection live past this exchange."""
        connection = self.tokens("connection")
        if self.http11:
            return "close" not in connection
        return "keep-alive" in connection  # HTTP/1.0 closes unless it asks otherwise

    @property
    def is_websocket_upgrade(self) -> bool:
        upgrade = self.header("upgrade") or ""
        return "websocket" in upgrade.lower() and "upgrade" in self.tokens("connection")


@dataclass
class HttpRequest:
    """One complete request: head, body and the parsed target."""

    head: Head
    body: bytes
    path: str
    query: dict[str, list[str]]
    connection: int

    @property
    def method(self) -> str:
        return self.head.method

    def header(self, name: str) -> str | None:
        return self.head.header(name)

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def params(self, name: str) -> list[str]:
        return list(self.query.get(name, []))

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Response:
    """What a handler answers; `write_response` frames it as Go would."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    """Handler headers (Content-Type, Audit-Id, ...): written sorted, as Go does."""
    stream: bool = False
    """Sent chunked whatever its size: the API server streams lists as it encodes them."""
    body_delay_s: float = 0.0
    """Seconds before the body's tail goes out: a client that releases the connection
    without reading to the end finds those bytes in front of its next response."""
    close: bool = False
    """Close the connection after this answer (sent with `Connection: close`)."""


def parse_target(target: str) -> tuple[str, dict[str, list[str]]]:
    """Origin-form `/path?query` (absolute-form tolerated) as (decoded path, query)."""
    parts = urlsplit(target)
    if not parts.path.startswith("/"):
        raise WireError("400 Bad Request")
    return unquote(parts.path), parse_qs(parts.query, keep_blank_values=True)


async def _read_line(reader: asyncio.StreamReader, budget: list[int]) -> bytes:
    try:
        line = await reader.readline()
    except (asyncio.LimitOverrunError, ValueError) as exc:  # a line beyond the reader's limit
        raise WireError("431 Request Header Fields Too Large") from exc
    budget[0] -= len(line)
    if budget[0] < 0:
        raise WireError("431 Request Header Fields Too Large")
    return line


async def read_head(
    reader: asyncio.StreamReader,
    wait_s: float,
    header_timeout_s: float = HEADER_TIMEOUT_S,
    max_header_bytes: int = MAX_HEADER_BYTES,
) -> Head:
    """The next request's head. `wait_s` bounds the wait for its first line (Go's
    IdleTimeout between requests); the rest must follow within `header_timeout_s`.

    Raises Closed on a clean end (EOF or idle timeout before any byte) and WireError on
    anything Go rejects."""
    budget = [max_header_bytes]
    try:
        first = await asyncio.wait_for(_read_line(reader, budget), wait_s)
    except TimeoutError as exc:
        raise Closed from exc
    if not first.endswith(b"\n"):
        raise Closed  # EOF before a whole request line: nobody to answer
    raw = [first]
    lines: list[bytes] = []
    try:
        async with asyncio.timeout(header_timeout_s):
            while True:
                line = await _read_line(reader, budget)
                if not line.endswith(b"\n"):
                    raise Closed  # EOF in the middle of the head: nobody to answer
                raw.append(line)
                if line in (b"\r\n", b"\n"):
                    break
                lines.append(line)
    except TimeoutError as exc:
        raise Closed from exc
    try:
        request_line = first.rstrip(b"\r\n").decode("ascii")
    except UnicodeDecodeError as exc:
        raise WireError("400 Bad Request") from exc
    pieces = request_line.split(" ")
    if len(pieces) != 3 or not pieces[0] or not pieces[1]:
        raise WireError("400 Bad Request")
    method, target, version = pieces
    if not set(method) <= _TOKEN_CHARS:
        raise WireError("400 Bad Request")
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        if version.startswith("HTTP/") and len(version) == 8:
            raise WireError("505 HTTP Version Not Supported: unsupported protocol version")
        raise WireError("400 Bad Request")
    headers: list[tuple[str, str]] = []
    for line in lines:
        text = line.rstrip(b"\r\n").decode("latin-1")
        name, colon, value = text.partition(":")
        # Go refuses obsolete line folding, names with spaces or other non-token bytes.
        if not colon or not name or not set(name) <= _TOKEN_CHARS:
            raise WireError("400 Bad Request")
        headers.append((name, value.strip(" \t")))
    head = Head(method, target, version, headers, b"".join(raw))
    if head.http11 and len(head.header_values("host")) != 1:
        raise WireError("400 Bad Request: missing required Host header")
    return head


def body_framing(head: Head) -> tuple[bool, int]:
    """(chunked, content length) of the request body, or WireError as Go answers it."""
    encodings = head.header_values("transfer-encoding")
    lengths = {v.strip() for v in head.header_values("content-length")}
    if encodings:
        if [e.strip().lower() for e in encodings] != ["chunked"]:
            raise WireError("501 Not Implemented: unsupported transfer encoding")
        if lengths:  # both: a request-smuggling shape Go refuses
            raise WireError("400 Bad Request")
        return True, 0
    if len(lengths) > 1:
        raise WireError("400 Bad Request")
    if not lengths:
        return False, 0
    (text,) = lengths
    if not text.isdigit():
        raise WireError("400 Bad Request")
    length = int(text)
    if length > MAX_BODY_BYTES:
        raise WireError("413 Request Entity Too Large")
    return False, length


async def read_body(reader: asyncio.StreamReader, head: Head) -> bytes:
    """The body by Content-Length or chunked framing (chunk extensions and trailers
    are read and dropped). An EOF inside it raises Closed."""
    chunked, length = body_framing(head)
    try:
        if not chunked:
            return await reader.readexactly(length) if length else b""
        parts: list[bytes] = []
        total = 0
        while True:
            size_line = await reader.readline()
            if not size_line.endswith(b"\n"):
                raise Closed
            size_text = size_line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError as exc:
                raise WireError("400 Bad Request") from exc
            if size < 0:
                raise WireError("400 Bad Request")
            total += size
            if total > MAX_BODY_BYTES:
                raise WireError("413 Request Entity Too Large")
            if size == 0:
                while (trailer := await reader.readline()) not in (b"\r\n", b"\n"):
                    if not trailer:
                        raise Closed
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            if await reader.readline() not in (b"\r\n", b"\n"):
                raise WireError("400 Bad Request")
    except asyncio.IncompleteReadError as exc:
        raise Closed from exc


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "status code " + str(status)  # Go's text for a code it does not know


def _frame(payload: bytes) -> bytes:
    return f"{len(payload):x}\r\n".encode() + payload + b"\r\n"


async def write_response(
    writer: asyncio.StreamWriter,
    response: Response,
    *,
    http11: bool = True,
    keep_alive: bool = True,
    head_only: bool = False,
) -> bool:
    """Frame and send one response as Go's net/http does. Returns whether the
    connection must close afterwards."""
    body = b"" if head_only else response.body
    close = response.close or not keep_alive
    chunked = (response.stream or len(response.body) > CONTENT_LENGTH_MAX) and not head_only
    unframed = chunked and not http11  # HTTP/1.0 has no chunking: the close ends the body
    if unframed:
        chunked, close = False, True
    lines = [f"{'HTTP/1.1' if http11 else 'HTTP/1.0'} {response.status} {_reason(response.status)}"]
    lines += [f"{k}: {v}" for k, v in sorted(response.headers, key=lambda kv: kv[0].lower())]
    if close and http11:
        lines.append("Connection: close")
    elif not close and not http11:
        lines.append("Connection: keep-alive")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    lines.append(f"Date: {formatdate(usegmt=True)}")
    if not chunked and not unframed:
        lines.append(f"Content-Length: {len(response.body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    delay = response.body_delay_s

    async def send(data: bytes) -> None:
        writer.write(data)
        await writer.drain()

    if not chunked:
        if delay > 0 and len(body) > 1:
            # The last part of the body comes late: a client that did not read to the
            # end has it arrive on a connection it thinks is idle.
            cut = max(len(body) // 2, len(body) - 64)
            await send(head + body[:cut])
            await asyncio.sleep(delay)
            await send(body[cut:])
        else:
            await send(head + body)
        return close
    pieces = [body[i : i + CHUNK_SIZE] for i in range(0, len(body), CHUNK_SIZE)] or [b""]
    if delay > 0 and len(pieces) == 1 and len(body) > 1:
        half = len(body) // 2  # something must come late, so one chunk becomes two
        pieces = [body[:half], body[half:]]
    if len(pieces) == 1 and delay <= 0:
        await send(head + (_frame(pieces[0]) if pieces[0] else b"") + TERMINATOR)
        return close
    if len(pieces) == 1:  # an empty body with a slow end: the terminator alone is late
        await send(head)
        await asyncio.sleep(delay)
        await send(TERMINATOR)
        return close
    await send(head + _frame(pieces[0]))
    for piece in pieces[1:-1]:
        await send(_frame(piece))
    if delay > 0:
        await asyncio.sleep(delay)
    await send(_frame(pieces[-1]) + TERMINATOR)
    return close


# -- faults ----------------------------------------------------------------------------


@dataclass
class Fault:
    """A wrong answer for the next matching request(s).

    Applied after authentication and before authorization, where kube-apiserver's
    priority and fairness (the source of 429s) sits."""

    method: str | None = None
    """HTTP method ("GET", "POST", "DELETE"), None: any."""
    resource: str | None = None
    """"pods", "namespaces", "nodes", "pods/exec", "version", ...; None: any."""
    name: str | None = None
    """Only requests for this object name (e.g. one pod); None: any."""
    status: int | None = None
    """Answer this status (a Status body, like the API server's) instead."""
    retry_after_s: int | None = None
    """Retry-After header; None gives a 429 `Retry-After: 1` as APF sends it."""
    message: str | None = None
    """The Status message; None: what the API server says for that status."""
    delay_s: float = 0.0
    """Seconds to wait before answering."""
    body_delay_s: float = 0.0
    """Seconds before the tail of the body goes out (see Response.body_delay_s)."""
    close: bool = False
    """Close the connection without answering (after reading the whole request)."""
    after: bool = False
    """Do the real work first, then answer `status` or close: the create happened but
    the client hears an error (an etcd timeout after the write). Ignored for exec."""
    times: int | None = 1
    """How many matching requests it spoils before it is used up; None: all of them."""
    hits: int = field(default=0, compare=False)
    """How many requests it has spoiled so far."""

    def matches(self, method: str, resource: str, name: str | None) -> bool:
        return (
            (self.method is None or self.method.upper() == method.upper())
            and (self.resource is None or self.resource == resource)
            and (self.name is None or self.name == name)
            and (self.times is None or self.hits < self.times)
        )

    def describe(self) -> str:
        """A short label for the request log: "429", "close", "slow", "500-after"."""
        if self.close:
            what = "close"
        elif self.status is not None:
            what = str(self.status)
        else:
            what = "slow"
        return f"{what}-after" if self.after and (self.close or self.status) else what


@dataclass
class Chaos:
    """Random transient trouble for a share of REST requests, the same for a seed."""

    rate: float
    seed: int
    statuses: tuple[int, ...]
    delay_s: float
    body_delay_s: float
    close: bool
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)  # reproducible, not secret

    def draw(self) -> Fault | None:
        """One decision per request, in arrival order: the n-th request of a run with
        a given seed gets the same fate every time."""
        roll = self.rng.random()
        kinds: list[int | str] = list(self.statuses)
        if self.delay_s > 0 or self.body_delay_s > 0:
            kinds.append("slow")
        if self.close:
            kinds.append("close")
        pick = self.rng.choice(kinds) if kinds else None  # drawn always: a fixed stream
        if roll >= self.rate or pick is None:
            return None
        if pick == "slow":
            return Fault(delay_s=self.delay_s, body_delay_s=self.body_delay_s)
        if pick == "close":
            return Fault(close=True)
        assert isinstance(pick, int)
        return Fault(status=pick, retry_after_s=1 if pick == 429 else None)


class FaultPlan:
    """The faults a test added and the chaos setting; safe to change from any thread
    while the server's loop reads it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._chaos: Chaos | None = None

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._chaos = None

    def set_chaos(self, chaos: Chaos | None) -> None:
        with self._lock:
            self._chaos = chaos

    def pending(self) -> list[Fault]:
        with self._lock:
            return [f for f in self._faults if f.times is None or f.hits < f.times]

    def pick(self, method: str, resource: str, name: str | None, *, rest: bool) -> Fault | None:
        """The first matching added fault (used once more), else a chaos draw for a REST
        request, else None."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, resource, name):
                    fault.hits += 1
                    return fault
            if rest and self._chaos is not None and self._chaos.rate > 0:
                return self._chaos.draw()
        return None
