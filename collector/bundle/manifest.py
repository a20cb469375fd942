"""The manifest of a bundle as the collector builds it (format needle.bundle/v1).

Field names and meanings are the contract of docs/bundle-format.md; the analyzer
validates them against its JSON Schema, never against these classes.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

FORMAT = "needle.bundle/v1"

Source = Literal["kube-api", "kube-dir", "local", "netns", "pod"]
Transport = Literal["local", "netns", "pod"]
NodeStatus = Literal["ok", "partial", "failed"]
ResourceStatus = Literal["ok", "forbidden", "not-found", "error"]
BundleStatus = Literal["complete", "partial", "interrupted"]


def utc_timestamp(moment: datetime | None = None) -> str:
    """RFC 3339 UTC with second precision, as every timestamp in the manifest."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class CaptureSettings:
    enabled: bool = False
    seconds: float = 0
    max_packets: int = 0
    max_bytes: int = 0
    snaplen: int = 0


@dataclass
class ResourceRecord:
    resource: str
    status: ResourceStatus
    file: str | None = None
    items: int | None = None
    error: str | None = None


@dataclass(slots=True)  # thousands per bundle: no per-instance __dict__
class NetnsRecord:
    id: str
    dir: str
    inode: int | None = None
    nsid: int | None = None
    name: str | None = None
    pids: list[int] = field(default_factory=list)


@dataclass(slots=True)  # thousands per bundle: no per-instance __dict__
class CommandRecord:
    id: str
    argv: list[str]
    exit_code: int | None
    timed_out: bool
    output: str | None
    netns: str | None = None
    interface: str | None = None
    duration_s: float | None = None
    truncated: bool = False
    missing_tool: bool = False
    bytes: int | None = None
    stderr: str | None = None


@dataclass(slots=True)  # thousands per bundle: no per-instance __dict__
class CaptureRecord:
    interface: str
    filter: str
    file: str | None
    netns: str | None = None
    seconds: float = 0
    max_packets: int = 0
    max_bytes: int = 0
    snaplen: int = 0
    packets_captured: int | None = None
    packets_received_by_filter: int | None = None
    packets_dropped_by_kernel: int | None = None
    exit_code: int | None = None
    error: str | None = None
    # which devices the capture was for, found by kind on the node: overlay, bridge, underlay
    role: str | None = None
    # why no capture was taken for the role, by design (no pod bridge on a routed-pod
    # node, no VXLAN port to filter for); not an error
    skipped: str | None = None


@dataclass(slots=True)
class ProbeResult:
    """One probe as the node ran it; what it saw is in its raw output (`output`)."""

    kind: str
    """node-gateway, pod (ICMP echo) or vxlan-port (one UDP datagram)."""
    target: str
    peer_node: str
    source: str
    """Where it started: host (the host namespace) or pod (the node's probing pod)."""
    netns: str | None
    """The pod namespace's netns id when source is pod."""
    port: int | None = None
    size_name: str | None = None
    """small, under-mtu, over-mtu (echoes); None for a datagram."""
    size: int | None = None
    """ping's payload bytes (-s: the IP packet is 28 more), or the datagram's."""
    df: bool = False
    tool: str | None = None
    exit_code: int | None = None
    duration_s: float | None = None
    missing_tool: bool = False
    cut: str | None = None
    """Why it never ran although planned (the window ended, no pod namespace)."""
    output: str | None = None
    stderr: str | None = None


@dataclass
class NodeProbes:
    """The node's probe plan (as the collector made it, with what the node changed:
    the MTU from its own subnet.env) and one result per probe it ran or had to cut."""

    plan: dict[str, Any] | None = None
    skipped: str | None = None
    """Why the node ran no probes (--no-probe, not a Node object, no peers)."""
    mtu: int | None = None
    mtu_source: str | None = None
    sizes: dict[str, int] = field(default_factory=dict)
    """The echo payload sizes the node used (small, under-mtu, over-mtu)."""
    ping: str | None = None
    """The ping the node had (None: none); df false when it cannot set DF (busybox)."""
    df: bool = False
    udp_tool: str | None = None
    ping_argv: list[str] = field(default_factory=list)
    """What ran for each echo: {size} and {target} stand for the result's own."""
    udp_argv: list[str] = field(default_factory=list)
    """What ran for each datagram: {target} and {port} stand for the result's own."""
    source_netns: str | None = None
    """The pod namespace probes started from."""
    results: list[ProbeResult] = field(default_factory=list)


@dataclass
class ProbeSettingsRecord:
    """collection.probes: what was asked of every node."""

    enabled: bool = False
    reason: str | None = None
    """Why probes are off: --no-probe, or no cluster objects to take targets from."""
    peers: int = 0
    window_s: float = 0
    count: int = 0
    interval_s: float = 0
    deadline_s: float = 0
    parallel: int = 0
    sources: list[str] = field(default_factory=list)


@dataclass
class NodeRecord:
    name: str
    transport: Transport
    dir: str
    target: str | None = None
    status: NodeStatus = "ok"
    errors: list[str] = field(default_factory=list)
    started: str | None = None
    duration_s: float | None = None
    netns: list[NetnsRecord] = field(default_factory=list)
    commands: list[CommandRecord] = field(default_factory=list)
    captures: list[CaptureRecord] = field(default_factory=list)
    probes: NodeProbes | None = None

    def fail(self, error: str) -> None:
        """Record an error that cost this node everything (nothing usable collected)."""
        self.errors.append(error)
        self.status = "failed"

    def degrade(self, error: str) -> None:
        """Record an error that cost this node some of its data."""
        self.errors.append(error)
        if self.status == "ok":
            self.status = "partial"


@dataclass
class Manifest:
    tool_version: str
    created: str = field(default_factory=utc_timestamp)
    finished: str | None = None
    status: BundleStatus = "complete"
    sources: list[Source] = field(default_factory=list)
    command: list[str] = field(default_factory=list)
    collector_host: str | None = None
    capture: CaptureSettings = field(default_factory=CaptureSettings)
    probes: ProbeSettingsRecord = field(default_factory=ProbeSettingsRecord)
    cluster_source: Literal["kube-api", "kube-dir"] | None = None
    cluster_origin: str | None = None
    resources: list[ResourceRecord] = field(default_factory=list)
    nodes: list[NodeRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_json(self, with_nodes: bool = True) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "tool": {"name": "needle", "version": self.tool_version},
            "created": self.created,
            "finished": self.finished,
            "status": self.status,
            "collection": {
                "sources": list(self.sources),
                "command": list(self.command),
                "collector_host": self.collector_host,
                "capture": dataclasses.asdict(self.capture),
                "probes": dataclasses.asdict(self.probes),
                # start and end of the window, as commands with ids <id>.start, <id>.end
                "counters": {"enabled": True, "phases": ["start", "end"]},
            },
            "cluster": {
                "source": self.cluster_source,
                "origin": self.cluster_origin,
                "resources": [dataclasses.asdict(r) for r in self.resources],
            },
            "nodes": [dataclasses.asdict(n) for n in self.nodes] if with_nodes else [],
            "errors": list(self.errors),
        }

    def write_json(self, out: TextIO) -> None:
        """What `to_json()` holds, written node by node: a 5,000-node manifest is never
        copied into one dict and one string at once."""
        head = self.to_json(with_nodes=False)
        text = json.dumps(head, indent=1)
        before, after = text.split('"nodes": []', 1)
        out.write(before + '"nodes": [')
        for index, node in enumerate(self.nodes):
            out.write(("," if index else "") + "\n" + _node_text(dataclasses.asdict(node)))
        out.write("\n]" + after)

    def settle_status(self, interrupted: bool) -> None:
        """Derive the bundle status from what every part recorded."""
        if interrupted:
            self.status = "interrupted"
        elif (
            self.errors
            or any(node.status != "ok" for node in self.nodes)
            or any(res.status != "ok" for res in self.resources)
        ):
            self.status = "partial"
        else:
            self.status = "complete"


def _node_text(node: dict[str, Any]) -> str:
    """A node's record with one netns, command, capture or probe result per line: as
    easy to read and grep as indented JSON, and a fifth smaller (a 1,000-node x
    110-pod manifest holds ~800,000 such records, under the reader's manifest cap)."""
    fields = []
    for key, value in node.items():
        text = json.dumps(value)
        if isinstance(value, list) and value and isinstance(value[0], dict):
            text = "[\n  " + ",\n  ".join(json.dumps(item) for item in value) + "]"
        elif key == "probes" and isinstance(value, dict) and value.get("results"):
            rest = json.dumps({k: v for k, v in value.items() if k != "results"})
            results = ",\n  ".join(json.dumps(item) for item in value["results"])
            text = rest[:-1] + ',\n "results": [\n  ' + results + "]}"
        fields.append(f" {json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(fields) + "\n}"
