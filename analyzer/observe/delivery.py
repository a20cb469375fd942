"""Judging delivery between nodes: VXLAN packets one node's capture shows leaving for
another node, set against what that node's capture shows arriving (underlay-loss), or
why it cannot be judged (underlay-unverified).

Loss is claimed only where it can be shown (an observation must not lie): a packet A
sent to B that B's capture lacks counts only if it must have arrived while B's capture
was running and keeping every identity. B's window runs from its first captured packet
to its last identity kept (tcpdump stopped at -c, a decode cap, or the window's end),
moved into A's clock by the shift packets both captured show, or, with nothing matched,
assuming the clocks agree within `assumed_skew` (said so in the details) and narrowing
the window by that much. A receiver whose tcpdump reports kernel drops or that has no
readable capture with packets makes `underlay-unverified`, with the reason.

Packets are matched by identity (summary.PacketIdentities) with set operations per outer
address pair, so the Python-level work is per packet lost, not per packet sent.
"""

from __future__ import annotations

import socket
import statistics
from collections import Counter
from dataclasses import dataclass
from itertools import islice
from typing import Any

from needle.analyzer.observe.inputs import (
    CaptureRecord,
    CorrelationSettings,
    NodeCaptures,
    filter_ports,
)
from needle.analyzer.observe.observation import Observation
from needle.analyzer.observe.summary import PacketIdentities

MATCHED, ASSUMED = "matched packets", "assumed in sync"
SHIFT_SAMPLE = 1001  # matched packets the clock shift is the median of


@dataclass(slots=True)
class PairDelivery:
    """VXLAN packets sender -> receiver within the receiver's capture window, and how
    many of them the receiver's capture holds (loss = sent - seen)."""

    sender: str
    receiver: str
    sent: int  # sent while the receiver's capture ran (what loss is judged on)
    seen: int
    outside_window: int  # sent, but when the receiver's capture was not keeping them
    clock: str  # how the two clocks were aligned: "matched packets" or "assumed in sync"
    shift: float  # s: a packet's time in the receiver's capture minus its time in the sender's

    @property
    def lost(self) -> int:
        return self.sent - self.seen

    def to_json(self) -> dict[str, Any]:
        return {
            "sender": self.sender,
            "receiver": self.receiver,
            "sent": self.sent,
            "seen": self.seen,
            "lost": self.lost,
            "outside_window": self.outside_window,
            "clock": self.clock,
            "shift_s": round(self.shift, 6),
        }


@dataclass(slots=True)
class _Seen:
    """What one node captured of one outer address pair: each identity's first time,
    and its count where some identity came more than once."""

    times: dict[bytes, float]
    counts: Counter[bytes] | None  # None: every identity once
    files: list[str]


def _seen_by(node: NodeCaptures) -> dict[bytes, _Seen]:
    """The node's captured VXLAN identities by outer src+dst (8 bytes). Two captures
    holding the same pair (the same device twice) count each identity as often as the
    one that saw it most, never the sum."""
    found: dict[bytes, _Seen] = {}
    for capture in node.captures:
        for addresses, (packed, times) in capture.summary.identities.pairs.items():
            keys = PacketIdentities.split(packed)
            # built in C; reversed so that each identity keeps its first time
            first = dict(zip(reversed(keys), reversed(times), strict=True))
            counts = Counter(keys) if len(first) != len(keys) else None
            held = found.get(addresses)
            if held is None:
                found[addresses] = _Seen(first, counts, [capture.file])
                continue
            held.counts = (held.counts or Counter(held.times)) | (counts or Counter(first))
            for key, ts in first.items():
                if ts < held.times.get(key, ts + 1):
                    held.times[key] = ts
            held.files.append(capture.file)
    return found


def cannot_judge(receiver: NodeCaptures) -> str | None:
    """Why `receiver`'s captures cannot say whether packets reached it, if they cannot."""
    usable = [capture for capture in receiver.captures if _records_vxlan(capture)]
    if not usable:
        if not receiver.captures:
            return "it has no capture in the bundle"
        if all(capture.summary.format is None for capture in receiver.captures):
            return "its captures could not be read: " + "; ".join(
                f"{c.file}: {c.reason or c.summary.partial}" for c in receiver.captures
            )
        unwritten = [c for c in receiver.captures if c.unwritten and not c.summary.packets]
        if unwritten:
            return (
                "its tcpdump counted packets but wrote none: "
                + ", ".join(f"{c.file} ({c.unwritten} received by its filter)" for c in unwritten)
                + (
                    " (tcpdump without --immediate-mode writes in blocks, and the last block "
                    "was not written when the capture stopped)"
                )
            )
        return "its captures hold no VXLAN packet at all, so when they ran is unknown"
    dropped = [c for c in usable if c.dropped_by_kernel]
    if dropped:
        return "its tcpdump reports packets dropped by the kernel: " + ", ".join(
            f"{c.file} ({c.dropped_by_kernel})" for c in dropped
        )
    return None


def _records_vxlan(capture: CaptureRecord) -> bool:
    """The capture demonstrably records VXLAN packets: only such a capture's time span
    says when the node was capturing them (a bridge or overlay capture, or one filtered
    for pod networks, runs at the same time but cannot see them)."""
    return len(capture.summary.identities) > 0


def judge_delivery(
    nodes: list[NodeCaptures], packed_owner: dict[bytes, str], settings: CorrelationSettings
) -> tuple[list[Observation], list[PairDelivery]]:
    """underlay-loss and underlay-unverified observations, and the delivery table."""
    seen = {node.name: _seen_by(node) for node in nodes}
    by_name = {node.name: node for node in nodes}
    reasons = {node.name: cannot_judge(node) for node in nodes}
    observations: list[Observation] = []
    deliveries: list[PairDelivery] = []
    unverified: dict[str, dict[str, int]] = {}  # receiver -> sender -> packets
    for sender in nodes:
        # the pairs of addresses this node's captures show it sending from, by receiver
        towards: dict[str, list[bytes]] = {}
        for addresses in seen[sender.name]:
            src, dst = packed_owner.get(addresses[:4]), packed_owner.get(addresses[4:8])
            if src == sender.name and dst is not None and dst != sender.name:
                towards.setdefault(dst, []).append(addresses)
        for receiver_name, pairs in towards.items():
            receiver = by_name[receiver_name]
            if reasons[receiver_name] is not None:
                packets = sum(_total(seen[sender.name][pair]) for pair in pairs)
                unverified.setdefault(receiver_name, {})[sender.name] = packets
                continue
            delivery, lost = _delivery(sender, receiver, pairs, seen, settings)
            deliveries.append(delivery)
            if delivery.sent == 0 and delivery.outside_window:
                unverified.setdefault(receiver_name, {})[sender.name] = delivery.outside_window
            if delivery.lost > 0:
                files = sorted({f for pair in pairs for f in seen[sender.name][pair].files})
                observations.append(_loss(delivery, receiver, lost, files, settings))
    for receiver_name, senders in unverified.items():
        observations.append(_unverified(by_name[receiver_name], senders))
    return observations, deliveries


def _total(seen: _Seen) -> int:
    return len(seen.times) if seen.counts is None else sum(seen.counts.values())


def _arrival_shift(
    pairs: list[bytes], at_sender: dict[bytes, _Seen], at_receiver: dict[bytes, _Seen]
) -> tuple[float, str]:
    """What to add to a send time in A's clock to get its arrival in B's: the median of
    (time at B - time at A) over packets A -> B both captured (clock offset + delay).
    With none, packets B -> A give offset - delay (the delay, under a millisecond on an
    underlay, is taken as 0); with none either, the clocks are assumed in sync."""
    for direction in (1, -1):
        deltas: list[float] = []
        for pair in pairs:
            key = pair if direction == 1 else pair[4:8] + pair[:4]
            sent, got = at_sender.get(key), at_receiver.get(key)
            if direction == -1:
                sent, got = got, sent  # B sent these; A got them
            if sent is None or got is None:
                continue
            common = islice(sent.times.keys() & got.times.keys(), SHIFT_SAMPLE)
            deltas += [
                (got.times[k] - sent.times[k]) * direction
                for k in common  # B's clock minus A's, either way round
            ]
        if deltas:
            return statistics.median(deltas), MATCHED
    return 0.0, ASSUMED


def _windows(
    receiver: NodeCaptures,
    ports: frozenset[int],
    shift: float,
    clock: str,
    settings: CorrelationSettings,
) -> list[tuple[float, float]]:
    """When packets must have been sent, in the sender's clock, to arrive while the
    receiver's captures were keeping every packet to `ports` (from its first captured
    packet to its last identity kept, less the time one may still be in flight). A
    capture whose filter leaves one of the ports out does not count."""
    margin = settings.assumed_skew if clock == ASSUMED else 0.0
    windows = []
    for capture in receiver.captures:
        summary = capture.summary
        if not _records_vxlan(capture) or summary.first_ts is None:
            continue
        allowed = filter_ports(capture.filter)
        if allowed is not None and not ports <= allowed:
            continue
        start = summary.first_ts - shift + margin
        end = (summary.identities_until or summary.first_ts) - shift - margin - settings.in_flight
        if end > start:
            windows.append((start, end))
    return windows


def _delivery(
    sender: NodeCaptures,
    receiver: NodeCaptures,
    pairs: list[bytes],
    seen: dict[str, dict[bytes, _Seen]],
    settings: CorrelationSettings,
) -> tuple[PairDelivery, list[tuple[bytes, float]]]:
    at_sender, at_receiver = seen[sender.name], seen[receiver.name]
    ports = frozenset(
        row.tunnel.port
        for capture in sender.captures
        for row in capture.summary.tunnels
        if row.tunnel.dst in receiver.underlay_ips
    )
    shift, clock = _arrival_shift(pairs, at_sender, at_receiver)
    windows = _windows(receiver, ports, shift, clock, settings)
    in_window = got = outside = 0
    lost: list[tuple[bytes, float]] = []  # (src+dst+identity, send time)
    for pair in pairs:
        sent, arrived = at_sender[pair], at_receiver.get(pair)
        arrived_times = arrived.times if arrived is not None else {}
        if sent.counts is None and (arrived is None or arrived.counts is None):
            # each identity once on both sides: sets do the matching
            missing = sent.times.keys() - arrived_times.keys()
            got += len(sent.times) - len(missing)
            in_window += len(sent.times) - len(missing)
            shortfall = dict.fromkeys(missing, 1)
        else:
            sent_counts = sent.counts or Counter(sent.times)
            arrived_counts = (arrived.counts or Counter(arrived.times)) if arrived else Counter()
            shortfall = {}
            for key, count in sent_counts.items():
                matched = min(count, arrived_counts.get(key, 0))
                got += matched
                in_window += matched
                if matched < count:
                    shortfall[key] = count - matched
        # a packet B captured shows B's capture ran then; one it lacks must fall in a window
        for key, count in shortfall.items():
            ts = sent.times[key]
            if any(start <= ts <= end for start, end in windows):
                in_window += count
                lost.append((pair + key, ts))
            else:
                outside += count
    lost.sort(key=lambda row: row[1])
    delivery = PairDelivery(sender.name, receiver.name, in_window, got, outside, clock, shift)
    return delivery, lost


def _describe(key: bytes, ts: float) -> dict[str, Any]:
    return {
        "ts": ts,
        "src": socket.inet_ntoa(key[:4]),
        "dst": socket.inet_ntoa(key[4:8]),
        "ip_id": int.from_bytes(key[8:10], "big"),
        "udp_sport": int.from_bytes(key[10:12], "big"),
    }


def _loss(
    delivery: PairDelivery,
    receiver: NodeCaptures,
    lost: list[tuple[bytes, float]],
    files: list[str],
    settings: CorrelationSettings,
) -> Observation:
    receiving = [c.file for c in receiver.captures if _records_vxlan(c)]
    full = [c.file for c in receiver.captures if c.full]
    clock = (
        "clocks aligned by packets both captured"
        if delivery.clock == MATCHED
        else f"clocks assumed within {settings.assumed_skew} s (no packet matched to align them)"
    )
    message = (
        f"{delivery.sender} sent {delivery.sent} VXLAN packets to {delivery.receiver} while "
        f"{delivery.receiver}'s capture ran; {delivery.receiver} captured {delivery.seen} of "
        f"them: {delivery.lost} lost on the underlay or dropped before capture ({clock})"
    )
    return Observation(
        kind="underlay-loss",
        node=delivery.sender,
        peer_node=delivery.receiver,
        message=message,
        counts={"sent": delivery.sent, "seen": delivery.seen, "lost": delivery.lost},
        details={
            **delivery.to_json(),
            "receiver_capture_full": bool(full),
            "examples": [_describe(key, ts) for key, ts in lost[: settings.examples]],
        },
        evidence=[{"file": file, "detail": f"packets {delivery.sender} sent"} for file in files]
        + [{"file": file, "detail": f"packets {delivery.receiver} got"} for file in receiving],
    )


def _unverified(receiver: NodeCaptures, senders: dict[str, int]) -> Observation:
    reason = cannot_judge(receiver) or (
        "none was sent while its capture was keeping every packet (before its first "
        "captured packet, after its capture stopped, or on a port its filter leaves out)"
    )
    total = sum(senders.values())
    named = sorted(senders.items(), key=lambda item: (-item[1], item[0]))
    return Observation(
        kind="underlay-unverified",
        node=receiver.name,
        peer_node=named[0][0] if len(named) == 1 else None,
        message=(
            f"{total} VXLAN packets sent to {receiver.name} by {len(named)} node(s) cannot be "
            f"checked against {receiver.name}'s capture: {reason}"
        ),
        counts={"packets": total, "senders": len(named)},
        details={
            "reason": reason,
            "senders": [{"node": name, "packets": count} for name, count in named[:20]],
        },
        evidence=[
            {"file": c.file, "detail": c.reason or c.summary.partial or c.status}
            for c in receiver.captures
        ],
    )
