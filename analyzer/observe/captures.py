"""The bundle-level entry point: read every capture the manifest lists (through the
bundle reader: size-bounded, budgeted), decode each, correlate them across nodes.

A capture that cannot be read or decoded is recorded with its reason and the rest goes
on. On a large bundle the decoding is shared with a forked worker (analyzer/forked.py):
the model and the open bundle are seen there for free and only the summaries come back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from needle.analyzer.backends.base import KERNEL_VXLAN_PORT
from needle.analyzer.bundle.reader import Bundle
from needle.analyzer.errors import BundleError
from needle.analyzer.forked import can_fork, run_forked
from needle.analyzer.gcpause import paused_gc
from needle.analyzer.model.entities import Model, Node
from needle.analyzer.observe.correlate import correlate
from needle.analyzer.observe.delivery import PairDelivery
from needle.analyzer.observe.inputs import (
    CaptureRecord,
    CorrelationSettings,
    Listener,
    NodeCaptures,
)
from needle.analyzer.observe.observation import Observation
from needle.analyzer.observe.packets import DecodeLimits
from needle.analyzer.observe.pcap import DEFAULT_VXLAN_PORTS, decode_capture

KERNEL_DEFAULT_VXLAN_PORT = KERNEL_VXLAN_PORT  # a device made without a dstport
# from this many captures on, a forked worker decodes half of them (a fork costs ~10 ms;
# a 2,000-packet capture ~8 ms to decode)
PARALLEL_FROM_CAPTURES = 64


@dataclass(slots=True)
class CaptureObservations:
    captures: list[CaptureRecord] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)
    deliveries: list[PairDelivery] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "captures": [record.to_json() for record in self.captures],
            "observations": [observation.to_json() for observation in self.observations],
            "deliveries": [delivery.to_json() for delivery in self.deliveries],
        }


def listeners_of(node: Node) -> tuple[Listener, ...] | None:
    """The node's VXLAN devices as (device, port, VNI); None when the bundle has no link
    data for its host namespace (then nobody can say what it listens on)."""
    host = node.host
    if host is None or "links" not in host.present:
        return None
    found = []
    for interface in host.interfaces.values():
        vxlan = interface.link.vxlan
        if interface.kind != "vxlan" or vxlan is None:
            continue
        port = vxlan.port or KERNEL_DEFAULT_VXLAN_PORT
        found.append(Listener(interface.name, port, None if vxlan.external else vxlan.id))
    return tuple(found)


def underlay_ips_of(node: Node) -> frozenset[str]:
    """The addresses the node's VXLAN traffic leaves from and arrives at: its VXLAN
    devices' `local`, its API InternalIP and flannel's public-ip annotation."""
    found = set()
    if node.host is not None:
        for interface in node.host.interfaces.values():
            vxlan = interface.link.vxlan
            if interface.kind == "vxlan" and vxlan is not None and vxlan.local:
                found.add(vxlan.local)
    if node.api is not None:
        found.update(ip for ip in (node.api.internal_ip, node.api.public_ip) if ip)
    return frozenset(found)


def observe_captures(
    bundle: Bundle,
    model: Model,
    settings: CorrelationSettings | None = None,
    limits: DecodeLimits | None = None,
    workers: int | None = None,
) -> CaptureObservations:
    """Decode every capture of every node of `model` (as its manifest records list them)
    and correlate them. `workers` None chooses: 2 on a large bundle where fork works."""
    limits = limits or DecodeLimits()
    listeners = {name: listeners_of(node) for name, node in model.nodes.items()}
    ports = DEFAULT_VXLAN_PORTS | {
        item.port for found in listeners.values() for item in found or ()
    }
    jobs = [
        (name, record)
        for name, node in model.nodes.items()
        for record in node.captures
        if isinstance(record, dict)
    ]
    if workers is None:
        workers = 2 if can_fork() and len(jobs) >= PARALLEL_FROM_CAPTURES else 1
    with paused_gc():  # 10^5-10^6 table rows and identities, none of them garbage
        records = _decode_all(bundle, jobs, ports, limits, workers)
        return _correlate_records(model, records, listeners, settings)


def _correlate_records(
    model: Model,
    records: list[CaptureRecord],
    listeners: dict[str, tuple[Listener, ...] | None],
    settings: CorrelationSettings | None,
) -> CaptureObservations:
    by_node: dict[str, list[CaptureRecord]] = {}
    for record in records:
        if record.attempted:
            by_node.setdefault(record.node, []).append(record)
    nodes = [
        NodeCaptures(name, underlay_ips_of(node), listeners[name], by_node.get(name, []))
        for name, node in model.nodes.items()
    ]
    observations, deliveries = correlate(nodes, settings)
    return CaptureObservations(records, observations, deliveries)


def _decode_all(
    bundle: Bundle,
    jobs: list[tuple[str, dict[str, Any]]],
    ports: frozenset[int],
    limits: DecodeLimits,
    workers: int,
) -> list[CaptureRecord]:
    def shard(part: list[tuple[str, dict[str, Any]]]) -> Callable[[], list[CaptureRecord]]:
        return lambda: [_decode_one(bundle, name, record, ports, limits) for name, record in part]

    if workers <= 1 or len(jobs) < 2:
        return shard(jobs)()
    # interleaved, so that nodes with many captures spread over the workers
    tasks = [shard(jobs[index::workers]) for index in range(workers)]
    parts = run_forked(tasks, "capture decoding")
    decoded: list[CaptureRecord | None] = [None] * len(jobs)
    for index, part in enumerate(parts):
        decoded[index::workers] = part
    return [record for record in decoded if record is not None]


def _text(value: object) -> str | None:
    return value[:512] if isinstance(value, str) else None


def _number(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _decode_one(
    bundle: Bundle,
    node: str,
    record: dict[str, Any],
    ports: frozenset[int],
    limits: DecodeLimits,
) -> CaptureRecord:
    result = CaptureRecord(
        node=node,
        file=_text(record.get("file")) or "",
        interface=_text(record.get("interface")),
        role=_text(record.get("role")),
        filter=_text(record.get("filter")) or "",
        max_packets=_number(record.get("max_packets")),
        dropped_by_kernel=_number(record.get("packets_dropped_by_kernel")),
        received_by_filter=_number(record.get("packets_received_by_filter")),
    )
    skipped, error = _text(record.get("skipped")), _text(record.get("error"))
    if skipped:
        result.status, result.reason = "skipped", skipped
        return result
    if not result.file:
        result.status, result.reason = "failed", error or "the record names no file"
        return result
    try:
        data = bundle.read_bytes(result.file)
    except BundleError as exc:
        result.status, result.reason = "unreadable", str(exc)
        return result
    if data is None:
        result.status = "failed" if error else "unreadable"
        result.reason = error or "the bundle does not hold this file"
        return result
    summary = decode_capture(data, ports, limits)
    result.summary = summary
    if summary.format is None or (summary.partial is not None and not summary.packets):
        result.status, result.reason = "unreadable", summary.partial
    elif summary.partial is not None:
        result.status, result.reason = "partial", summary.partial
    return result
