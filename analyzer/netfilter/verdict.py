"""What the evaluator is asked about (a Packet) and what it answers (a Verdict)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Packet:
    """One packet at one netfilter hook, as far as the trace knows it.

    ``None`` means "not known here" (``iif`` at a locally generated packet's OUTPUT hook,
    ``mark`` before anything set it): a rule that matches on an unknown field can only
    give ``unknown``. The defaults describe the first packet of a connection: conntrack
    state NEW, and for ICMP an echo-request (type 8), the first packet of a ping."""

    src: str
    dst: str
    proto: str  # "icmp" | "tcp" | "udp"
    sport: int | None = None
    dport: int | None = None
    iif: str | None = None
    oif: str | None = None
    state: str = "NEW"
    mark: int | None = None
    length: int | None = None
    icmp_type: int | None = 8


@dataclass(frozen=True)
class Verdict:
    """What one built-in chain of one table does with a packet.

    ``chain`` is the built-in chain traversed; ``decided_in`` the chain holding the
    deciding rule (a user chain such as KUBE-SEP-...) or the built-in one for its policy.
    ``mark`` is the packet's mark after the traversal (MARK targets change it; KUBE-MARK-MASQ
    sets 0x4000 that nat POSTROUTING reads), None when it is not known. ``alternatives``
    holds one verdict per random choice (kube-proxy's endpoints), in rule order."""

    verdict: str  # "accept" | "drop" | "unknown"
    table: str
    chain: str
    rule: str | None
    reason: str
    path: tuple[str, ...] = ()
    nat: tuple[str, ...] = ()
    alternatives: tuple[Verdict, ...] = ()
    mark: int | None = None
    decided_in: str | None = None
