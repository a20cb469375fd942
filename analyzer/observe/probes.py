"""What each node's probes saw: the manifest's probe records (the collector's plan and
one result per probe) joined with the tool's raw output, parsed (parsers/probes.py).

A record is hostile input like the rest of the bundle: a field of the wrong type is
taken as absent, an output that cannot be read leaves the probe `unknown` with why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from needle.analyzer.bundle.reader import Bundle
from needle.analyzer.errors import BundleError
from needle.analyzer.model.entities import Model, Node
from needle.analyzer.parsers.probes import IcmpError, parse_ping

ECHO_KINDS = ("node-gateway", "pod")
IP_AND_ICMP_HEADERS = 28  # ping -s N sends an IPv4 packet of N + 28 bytes


@dataclass(slots=True)
class ProbeResult:
    node: str  # the node that sent it
    source: str  # "host" or "pod"
    netns: str | None  # the pod namespace's id when source is "pod"
    kind: str  # node-gateway, pod, vxlan-port
    target: str
    peer_node: str | None
    port: int | None
    size_name: str | None  # small, under-mtu, over-mtu
    size: int | None  # ping's payload (-s)
    df: bool
    # passed, lossy, failed (no answer), unknown (output unreadable), not-run (cut,
    # missing tool), sent (a UDP datagram: nothing comes back to judge it by)
    outcome: str
    sent: int | None = None
    received: int | None = None
    rtt_avg_ms: float | None = None
    errors: list[str] = field(default_factory=list)  # ICMP errors as the tool said them
    reported_mtu: int | None = None  # the smallest MTU an error named
    local_error: bool = False  # the sender's own stack refused it (larger than its MTU)
    file: str | None = None
    why: str | None = None  # why it did not run or could not be read

    @property
    def packet(self) -> int | None:
        """The IPv4 packet's size in bytes."""
        return None if self.size is None else self.size + IP_AND_ICMP_HEADERS

    @property
    def echo(self) -> bool:
        return self.kind in ECHO_KINDS

    @property
    def refused_as_planned(self) -> bool:
        """One byte over the MTU the configuration implies, refused by the sender's own
        stack: as planned (a smaller MTU in the error is a path MTU it learnt, and the
        under-MTU probe shows that)."""
        return (
            self.outcome in ("failed", "lossy")
            and self.local_error
            and (self.size_name == "over-mtu")
        )

    def describe(self) -> str:
        """One line a person reads: who sent what to whom, and what came of it."""
        where = self.node if self.source == "host" else f"a pod of {self.node}"
        what = (
            f"ping {self.packet} bytes{' DF' if self.df else ''}"
            if self.echo
            else f"UDP to port {self.port}"
        )
        target = f"{self.kind} {self.target}" + (f" of {self.peer_node}" if self.peer_node else "")
        if self.outcome in ("passed", "lossy", "failed"):
            result = f"{self.received}/{self.sent} answered"
        else:
            result = self.outcome + (f" ({self.why})" if self.why else "")
        if self.errors:
            result += ": " + "; ".join(dict.fromkeys(self.errors))
        return f"{what} from {where} to {target}: {result}"

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "source": self.source,
            "netns": self.netns,
            "kind": self.kind,
            "target": self.target,
            "peer_node": self.peer_node,
            "port": self.port,
            "size_name": self.size_name,
            "size": self.size,
            "packet": self.packet,
            "df": self.df,
            "outcome": self.outcome,
            "sent": self.sent,
            "received": self.received,
            "rtt_avg_ms": self.rtt_avg_ms,
            "errors": self.errors,
            "reported_mtu": self.reported_mtu,
            "local_error": self.local_error,
            "file": self.file,
            "why": self.why,
        }


def probe_results(bundle: Bundle, model: Model) -> list[ProbeResult]:
    """Every probe of every node, in node and manifest order."""
    found: list[ProbeResult] = []
    for name in sorted(model.nodes):
        node = model.nodes[name]
        for record in _records(node):
            found.append(_result(bundle, node, record))
    return found


def probes_enabled(model: Model) -> bool:
    """Whether any node's record says probes ran (or were planned)."""
    return any(node.probes is not None for node in model.nodes.values())


def _records(node: Node) -> list[dict[str, Any]]:
    probes = node.probes
    results = probes.get("results") if isinstance(probes, dict) else None
    return [item for item in results if isinstance(item, dict)] if isinstance(results, list) else []


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _read(bundle: Bundle, path: str | None) -> tuple[bytes | None, str | None]:
    if path is None:
        return None, None
    try:
        return bundle.read_bytes(path), None
    except BundleError as error:
        return None, str(error)


def _result(bundle: Bundle, node: Node, record: dict[str, Any]) -> ProbeResult:
    kind = _text(record.get("kind")) or "?"
    result = ProbeResult(
        node=node.name,
        source="pod" if record.get("source") == "pod" else "host",
        netns=_text(record.get("netns")),
        kind=kind,
        target=_text(record.get("target")) or "?",
        peer_node=_text(record.get("peer_node")),
        port=_int(record.get("port")),
        size_name=_text(record.get("size_name")),
        size=_int(record.get("size")),
        df=record.get("df") is True,
        outcome="unknown",
        file=_text(record.get("output")),
    )
    cut, missing = _text(record.get("cut")), record.get("missing_tool") is True
    if cut or missing:
        result.outcome, result.why = "not-run", cut or f"no {record.get('tool') or 'tool'}"
        return result
    if kind not in ECHO_KINDS:
        result.outcome = "sent" if record.get("exit_code") == 0 else "unknown"
        return result
    stdout, problem = _read(bundle, result.file)
    stderr, problem_err = _read(bundle, _text(record.get("stderr")))
    if stdout is None and stderr is None:
        result.why = problem or problem_err or "no output in the bundle"
        return result
    runs = parse_ping((stdout or b"") + b"\n" + (stderr or b"")).records
    if not runs:
        result.why = "the output holds no ping run"
        return result
    run = runs[0]
    result.outcome = run.outcome
    result.sent, result.received, result.rtt_avg_ms = run.sent, run.received, run.rtt_avg_ms
    result.errors = [_error_text(error) for error in run.icmp_errors]
    result.reported_mtu = run.reported_mtu
    result.local_error = any(e.source is None for e in run.icmp_errors)
    if result.outcome == "unknown" and result.local_error:
        result.outcome = "failed"
    return result


def _error_text(error: IcmpError) -> str:
    origin = f"from {error.source}" if error.source else "local"
    return f"{origin}: {error.text}"


def probe_facts(bundle: Bundle, model: Model) -> dict[tuple[str, ...], dict[str, Any]]:
    """Each probe by what it tests (sender, from where, what kind of target on which
    peer, which size), with what came of it: two snapshots of one cluster probe the same
    things, whatever the target pod's IP is this time (needle diff)."""
    facts: dict[tuple[str, ...], dict[str, Any]] = {}
    for probe in probe_results(bundle, model):
        key = (
            probe.node,
            probe.source,
            probe.kind,
            probe.peer_node or probe.target,
            probe.size_name or str(probe.port or ""),
        )
        facts[key] = {"outcome": probe.outcome}
    return facts
