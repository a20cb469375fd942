"""Parser for the output of the probes' ``ping`` (iputils and busybox): the echo replies,
the ICMP errors routers sent back (``Frag needed and DF set (mtu = 1400)``, destination
unreachable, time exceeded), the local errors of a DF echo larger than the path MTU
(``ping: local error: message too long, mtu=1450``, ``ping: sendmsg: Message too long``),
and the statistics (sent, received, errors, loss, rtt min/avg/max).

A probe's stdout and stderr are parsed together (``parse_ping(stdout + stderr)``): iputils
prints the local errors on stderr. One run gives one ``PingRun`` record; a cut or garbled
output gives what could be read, the rest as ``unparsed`` lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from needle.analyzer.parsers.common import Parsed, lines_of

Flavour = Literal["iputils", "busybox"]
IcmpKind = Literal[
    "frag-needed",
    "net-unreachable",
    "host-unreachable",
    "port-unreachable",
    "protocol-unreachable",
    "prohibited",
    "unreachable",
    "time-exceeded",
    "message-too-long",
    "local-error",
]
Outcome = Literal["passed", "lossy", "failed", "unknown"]


@dataclass(frozen=True, slots=True)
class PingReply:
    source: str
    seq: int | None
    bytes: int | None
    ttl: int | None
    rtt_ms: float | None


@dataclass(frozen=True, slots=True)
class IcmpError:
    """An ICMP error a router sent back (``source`` set) or one the local stack raised."""

    kind: IcmpKind
    source: str | None
    seq: int | None
    mtu: int | None
    """The next-hop MTU of a frag-needed, or the MTU of a local message-too-long."""
    text: str


@dataclass(frozen=True, slots=True)
class PingRun:
    flavour: Flavour | None
    target: str | None
    payload: int | None
    """Bytes of ICMP payload (ping -s)."""
    packet: int | None
    """Bytes of the whole IP packet, when the tool said (iputils: ``56(84)``)."""
    sent: int | None
    received: int | None
    errors: int | None
    loss_pct: float | None
    rtt_min_ms: float | None
    rtt_avg_ms: float | None
    rtt_max_ms: float | None
    replies: tuple[PingReply, ...]
    icmp_errors: tuple[IcmpError, ...]
    complete: bool
    """True when the statistics were printed (the run was not cut short)."""

    @property
    def outcome(self) -> Outcome:
        """passed: every echo answered; lossy: some; failed: none (or only errors)."""
        if self.sent is None or self.received is None:
            if self.icmp_errors and not self.replies:
                return "failed"
            return "unknown"
        if self.sent > 0 and self.received >= self.sent:
            return "passed"
        return "lossy" if self.received > 0 else "failed"

    @property
    def reported_mtu(self) -> int | None:
        """The smallest MTU any error named (the path MTU a frag-needed revealed)."""
        found = [error.mtu for error in self.icmp_errors if error.mtu is not None]
        return min(found) if found else None


_NUM = r"(\d{1,9})"
_FLOAT = r"(\d{1,9}(?:\.\d{1,9})?)"
_HEAD_IPUTILS = re.compile(rf"^PING (\S+) \((\S+)\) {_NUM}\({_NUM}\) bytes of data\.$")
_HEAD_BUSYBOX = re.compile(rf"^PING (\S+) \((\S+)\): {_NUM} data bytes$")
_REPLY = re.compile(
    rf"^{_NUM} bytes from (\S+?):? (?:icmp_seq|seq)={_NUM} ttl={_NUM} time={_FLOAT} ms"
)
_FROM_ERROR = re.compile(rf"^From (\S+?)(?: \(\S+\))?:? icmp_seq={_NUM} (.+)$")
_FRAG = re.compile(rf"Frag needed and DF set \(mtu = {_NUM}\)")
_LOCAL_MTU = re.compile(rf"message too long, mtu={_NUM}", re.IGNORECASE)
_SENT = re.compile(
    rf"^{_NUM} packets transmitted, {_NUM} (?:packets )?received"
    rf"(?:, \+{_NUM} errors)?(?:, \+\d+ duplicates)?(?:, \+\d+ corrupted)?"
    rf"(?:, {_FLOAT}% packet loss)?"
)
_RTT = re.compile(rf"^(?:rtt|round-trip) min/avg/max(?:/mdev)? = {_FLOAT}/{_FLOAT}/{_FLOAT}")
_ERROR_KINDS: tuple[tuple[str, IcmpKind], ...] = (
    ("destination net unreachable", "net-unreachable"),
    ("destination host unreachable", "host-unreachable"),
    ("destination port unreachable", "port-unreachable"),
    ("destination protocol unreachable", "protocol-unreachable"),
    ("prohibited", "prohibited"),
    ("time to live exceeded", "time-exceeded"),
    ("unreachable", "unreachable"),
)


def _router_error(source: str, seq: str, text: str) -> IcmpError:
    frag = _FRAG.search(text)
    if frag:
        return IcmpError("frag-needed", source, int(seq), int(frag.group(1)), text)
    lowered = text.lower()
    kind: IcmpKind = next((k for needle, k in _ERROR_KINDS if needle in lowered), "unreachable")
    return IcmpError(kind, source, int(seq), None, text)


def _local_error(line: str) -> IcmpError | None:
    """ping's own complaints: an oversized DF echo, an unroutable target, a busybox
    warning about an ICMP error it received."""
    lowered = line.lower()
    if not lowered.startswith("ping: "):
        return None
    mtu = _LOCAL_MTU.search(line)
    if mtu or "message too long" in lowered:
        return IcmpError("message-too-long", None, None, int(mtu.group(1)) if mtu else None, line)
    if "got icmp" in lowered and "unreachable" in lowered:
        return IcmpError("unreachable", None, None, None, line)
    return IcmpError("local-error", None, None, None, line)


@dataclass(slots=True)
class _Reading:
    flavour: Flavour | None = None
    target: str | None = None
    payload: int | None = None
    packet: int | None = None
    sent: int | None = None
    received: int | None = None
    errors: int | None = None
    loss: float | None = None
    rtt: tuple[float, float, float] | None = None
    complete: bool = False


def _read_line(
    line: str, state: _Reading, replies: list[PingReply], errors: list[IcmpError]
) -> bool:
    """Fold one line into the run; False when it says nothing we know."""
    if head := _HEAD_IPUTILS.match(line):
        state.flavour, state.target = "iputils", head.group(2)
        state.payload, state.packet = int(head.group(3)), int(head.group(4))
    elif head := _HEAD_BUSYBOX.match(line):
        state.flavour, state.target, state.payload = "busybox", head.group(2), int(head.group(3))
    elif reply := _REPLY.match(line):
        size, source, seq, ttl, rtt = reply.groups()
        replies.append(PingReply(source, int(seq), int(size), int(ttl), float(rtt)))
    elif error := _FROM_ERROR.match(line):
        errors.append(_router_error(*error.groups()))
    elif line.startswith("--- ") and line.endswith(" ping statistics ---"):
        state.complete = True
    elif sent := _SENT.match(line):
        state.sent, state.received = int(sent.group(1)), int(sent.group(2))
        state.errors = int(sent.group(3)) if sent.group(3) else 0
        state.loss = float(sent.group(4)) if sent.group(4) else None
    elif rtt := _RTT.match(line):
        state.rtt = (float(rtt.group(1)), float(rtt.group(2)), float(rtt.group(3)))
    elif local := _local_error(line):
        errors.append(local)
    else:
        return line.startswith("pipe ")  # iputils' count of echoes in flight: no news
    return True


def parse_ping(data: bytes) -> Parsed[PingRun]:
    """One ``PingRun`` from a probe's output (stdout and stderr together, any order)."""
    state = _Reading()
    replies: list[PingReply] = []
    errors: list[IcmpError] = []
    unparsed: list[str] = []
    for raw in lines_of(data):
        line = raw.strip()
        if line and not _read_line(line, state, replies, errors):
            unparsed.append(raw)
    if state.flavour is None and state.sent is None and not replies and not errors:
        return Parsed((), tuple(unparsed), truncated=False)
    rtt = state.rtt or (None, None, None)
    run = PingRun(
        flavour=state.flavour,
        target=state.target,
        payload=state.payload,
        packet=state.packet,
        sent=state.sent,
        received=state.received,
        errors=state.errors,
        loss_pct=state.loss,
        rtt_min_ms=rtt[0],
        rtt_avg_ms=rtt[1],
        rtt_max_ms=rtt[2],
        replies=tuple(replies),
        icmp_errors=tuple(errors),
        complete=state.complete and state.sent is not None,
    )
    return Parsed((run,), tuple(unparsed), truncated=not run.complete)
