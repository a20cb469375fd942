"""What correlation takes in: each node's decoded captures, underlay addresses and VXLAN
listeners, and the settings that bound what it may claim."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from needle.analyzer.observe.summary import CaptureSummary


@dataclass(frozen=True, slots=True)
class Listener:
    """A VXLAN device of a node: the UDP port it receives on and its VNI."""

    device: str
    port: int
    vni: int | None  # None: a collect-metadata (`external`) device takes every VNI


# what became of a capture record: decoded; partial (decoded up to `reason`); unreadable
# (nothing could be decoded: `reason`); skipped (by the collector, by design: `reason`
# is its `skipped`); failed (the capture itself failed: `reason` is its `error`)
STATUSES = ("decoded", "partial", "unreadable", "skipped", "failed")


@dataclass(slots=True)
class CaptureRecord:
    """One capture of a node: what its manifest record says, what became of it, and what
    it holds (an empty summary when nothing could be decoded)."""

    node: str
    file: str
    interface: str | None
    role: str | None
    filter: str
    summary: CaptureSummary = field(default_factory=CaptureSummary)
    max_packets: int | None = None
    dropped_by_kernel: int | None = None
    status: str = "decoded"  # one of STATUSES
    reason: str | None = None
    received_by_filter: int | None = None  # tcpdump's own count, from the manifest

    @property
    def unwritten(self) -> int:
        """Packets tcpdump counted but the file lacks: still in libpcap's buffer when the
        capture was stopped (tcpdump without --immediate-mode writes in blocks)."""
        if self.received_by_filter is None or self.summary.partial is not None or self.full:
            return 0  # a full capture stopped at -c: tcpdump counts what came after
        return max(0, self.received_by_filter - self.summary.packets)

    @property
    def full(self) -> bool:
        """tcpdump stopped at -c: the capture ends at its last packet, not the window's."""
        return self.max_packets is not None and self.summary.packets >= self.max_packets

    @property
    def attempted(self) -> bool:
        """A file was meant to hold packets (neither skipped nor failed by the collector)."""
        return self.status not in ("skipped", "failed")

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "file": self.file or None,
            "interface": self.interface,
            "role": self.role,
            "filter": self.filter,
            "status": self.status,
            "reason": self.reason,
            "unwritten": self.unwritten,
            "summary": self.summary.to_json() if self.summary.format else None,
        }


@dataclass(slots=True)
class NodeCaptures:
    """A node as correlation needs it: its underlay addresses, its VXLAN listeners (None
    when the bundle does not say which devices it has) and its decoded captures."""

    name: str
    underlay_ips: frozenset[str]
    listeners: tuple[Listener, ...] | None
    captures: list[CaptureRecord] = field(default_factory=list)  # those `attempted`


@dataclass(frozen=True, slots=True)
class CorrelationSettings:
    in_flight: float = 0.05  # s: a packet sent this close to B's last one may still arrive
    assumed_skew: float = 0.5  # s: how far apart clocks no matched packet aligned may be
    examples: int = 3  # examples kept per observation


_PORT_WORDS = re.compile(r"\bport\s+(\d{1,5})\b")


def filter_ports(text: str) -> frozenset[int] | None:
    """The UDP ports a capture filter as the collector writes it lets through (`udp port
    P`, `(udp port P) or (udp port Q)`); None for no filter or one without ports. The
    text is hostile: it is matched by a bounded pattern, never evaluated."""
    return frozenset(int(port) for port in _PORT_WORDS.findall(text[:4096])) or None
