"""Observations joined to the findings: what the probes and the captures saw, set against
what the configuration implies.

- A probe that failed where the walk of its packet dies too confirms the finding at that
  hop (its node and step); one that passed where the walk dies contradicts it.
- A probe that failed where the walk delivers, and a capture observation (loss on the
  underlay, a packet to a port nobody listens on, ...) that no finding on its nodes
  explains, become findings of their own (`observed.*`): a fault the configuration does
  not show is still a fault. Failures that share a node are one finding, on that node.
- Every evidence item says where it comes from (`source`: config, probe, capture).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from needle.analyzer.model.entities import HOST
from needle.analyzer.observe.captures import CaptureObservations
from needle.analyzer.observe.counters import STEP_COUNTERS, NodeCounters
from needle.analyzer.observe.expect import Expectations
from needle.analyzer.observe.observation import Observation
from needle.analyzer.observe.probes import ProbeResult
from needle.analyzer.rules.engine import SUBJECT_KEYS, Finding

CONFIRMED, CONTRADICTED, INFERRED = "confirmed", "contradicted", "inferred"
EXAMPLES = 3
MAX_OBSERVED = 4  # observations of one source shown on a finding; the rest counted
# capture observations that are a fault when nothing explains them, and how bad
FAULT_KINDS = {
    "underlay-loss": "error",
    "no-listener": "error",
    "vni-mismatch": "error",
    "unknown-destination": "warning",
    "frag-needed": "warning",
    "unreachable": "warning",
}
# observations that only support a finding on their nodes
SUPPORTING_KINDS = ("retransmissions", "fragments")
SIZE_WORDS = {"small": "small", "under-mtu": "full-size", "over-mtu": "over-MTU"}


@dataclass
class Joined:
    """What the observations added: findings of their own and the coverage counts."""

    findings: list[Finding] = field(default_factory=list)
    coverage: dict[str, Any] = field(default_factory=dict)


def steps_of(finding: Finding, steps: dict[str, frozenset[str]]) -> frozenset[str]:
    """The trace steps a finding describes: a walk's own, or what its rule declares."""
    if finding.rule.startswith("reachability."):
        return frozenset({finding.rule.split(".", 1)[1]})
    return steps.get(finding.rule, frozenset())


def join(
    findings: list[Finding],
    steps: dict[str, frozenset[str]],
    probes: list[ProbeResult],
    expectations: Expectations,
    captures: CaptureObservations | None,
    counters: dict[str, NodeCounters] | None = None,
) -> Joined:
    """Attach observations to `findings` (their evidence and `observed` change in place)
    and make findings of the failures nothing explains."""
    observed = bool(probes) or any(
        record.summary.packets for record in (captures.captures if captures else ())
    )
    for finding in findings:
        for item in finding.evidence:
            item.setdefault("source", "config")
        finding.observed = INFERRED if observed else None
    joined = Joined()
    unexplained: list[ProbeResult] = []
    counts = {"probes": len(probes), "passed": 0, "failed": 0, "not_judged": 0}
    counts |= {"confirming": 0, "contradicting": 0, "unexplained": 0}
    for probe in probes:
        if probe.outcome == "passed":
            counts["passed"] += 1
        elif probe.outcome in ("failed", "lossy"):
            counts["failed"] += 1
        else:
            counts["not_judged"] += 1
        verdict = _judge_probe(findings, steps, probe, expectations)
        if verdict is not None:
            counts[verdict] += 1
            if verdict == "unexplained":
                unexplained.append(probe)
    joined.findings.extend(_probe_findings(unexplained))
    kinds: dict[str, int] = {}
    for observation in captures.observations if captures is not None else ():
        kinds[observation.kind] = kinds.get(observation.kind, 0) + 1
        # the probes' own findings too: a loss they already show is the same cause
        made = _join_observation(findings + joined.findings, observation)
        if made is not None:
            joined.findings.append(made)
    for finding in findings:
        found = (counters or {}).get(finding.subject.get("node") or "")
        if found is not None:
            _add_counters(finding, found, steps)
    for finding in findings + joined.findings:
        _shorten(finding)
    joined.coverage = {
        "counters": sorted(counters or {}),
        "probes": counts,
        "captures": _capture_counts(captures),
        "observations": kinds,
    }
    return joined


# -- probes ----------------------------------------------------------------------------


def _judge_probe(
    findings: list[Finding],
    steps: dict[str, frozenset[str]],
    probe: ProbeResult,
    expectations: Expectations,
) -> str | None:
    """confirming, contradicting or unexplained; None when the probe says nothing more
    than the configuration (both deliver, both drop where nothing is at fault)."""
    failed = probe.outcome in ("failed", "lossy")
    if not failed and probe.outcome != "passed":
        return None
    if probe.refused_as_planned:
        return None
    if not failed and not any(
        f.subject.get("node") in (probe.node, probe.peer_node) and steps_of(f, steps)
        for f in findings
    ):
        return None  # nothing on its nodes that a passing probe could contradict
    placed, hop = expectations.failing(probe)
    if not placed:
        return "unexplained" if failed else None
    if hop is None or hop.verdict != "drop":
        return "unexplained" if failed else None
    at_hop = [
        f for f in findings if f.subject.get("node") == hop.node and hop.step in steps_of(f, steps)
    ]
    if not at_hop:
        return None  # the configuration drops it and nothing is wrong there (over the MTU)
    detail = probe.describe()
    for finding in at_hop:
        if failed:
            _add(finding, probe.file, f"probe: {detail}", "probe", CONFIRMED)
        else:
            _add(
                finding,
                probe.file,
                f"probe: {detail}, where the configuration says it dies ({hop.node} {hop.step})",
                "probe",
                CONTRADICTED,
            )
    return "confirming" if failed else "contradicting"


def _probe_findings(failed: list[ProbeResult]) -> list[Finding]:
    """Failed probes nothing explains, one finding per node they have in common."""
    edges = [p for p in failed if p.peer_node]
    found: list[Finding] = []
    while edges:
        degree: dict[str, int] = {}
        for probe in edges:
            for node in (probe.node, probe.peer_node or ""):
                degree[node] = degree.get(node, 0) + 1
        hub = max(sorted(degree), key=lambda name: degree[name])
        mine = [p for p in edges if hub in (p.node, p.peer_node)]
        edges = [p for p in edges if hub not in (p.node, p.peer_node)]
        found.append(_probe_finding(hub, mine))
    return found


def _probe_finding(hub: str, probes: list[ProbeResult]) -> Finding:
    peers = sorted({p.peer_node if p.node == hub else p.node for p in probes} - {None, hub})
    sizes = sorted({(p.packet or 0, p.size_name or "") for p in probes})
    what = " and ".join(
        f"{SIZE_WORDS.get(name, name)} ({packet:,}-byte)" if packet else name
        for packet, name in sizes
    )
    subject: dict[str, str | None] = dict.fromkeys(SUBJECT_KEYS)
    subject["node"] = hub
    subject["peer_node"] = peers[0] if len(peers) == 1 else None
    examples = "; ".join(p.describe() for p in probes[:EXAMPLES])
    return Finding(
        rule="observed.probe-failure",
        severity="error",
        title="Probes fail where the configuration shows no cause",
        message=(
            f"{what} pings between {hub} and {', '.join(peers) or 'its peers'} fail "
            f"({len(probes)} probe{'s' if len(probes) != 1 else ''}), e.g. {examples}. "
            "The configuration in the bundle delivers them (needle trace walks them "
            "through) or cannot place them: the cause is outside what the bundle shows"
        ),
        subject=subject,
        evidence=[
            {"file": p.file or "", "detail": f"probe: {p.describe()}", "source": "probe"}
            for p in probes[:EXAMPLES]
        ],
        remediation=(
            "Look at what the bundle cannot show, between these nodes: the underlay "
            "(switch ports, their MTU, a firewall or security group, a tunnel), and "
            "repeat the probe by hand: ping -M do -s SIZE TARGET"
        ),
        references=[],
        observed=CONFIRMED,
    )


# -- captures ----------------------------------------------------------------------------


def _join_observation(findings: list[Finding], observation: Observation) -> Finding | None:
    severity = FAULT_KINDS.get(observation.kind)
    if severity is None and observation.kind not in SUPPORTING_KINDS:
        return None  # what the captures could not tell (coverage says so), not evidence
    nodes = {observation.node, observation.peer_node} - {None}
    near = [
        f for f in findings if f.severity in ("error", "warning") and f.subject.get("node") in nodes
    ]
    detail = f"capture: {observation.message}"
    file = next((e.get("file", "") for e in observation.evidence), "")
    for finding in near:  # retransmissions and fragments support, they do not confirm
        _add(finding, file, detail, "capture", CONFIRMED if severity else None)
    if near or severity is None:
        return None
    subject: dict[str, str | None] = dict.fromkeys(SUBJECT_KEYS)
    subject["node"] = observation.node
    subject["peer_node"] = observation.peer_node
    return Finding(
        rule=f"observed.{observation.kind}",
        severity=severity,
        title="The captures show " + observation.kind.replace("-", " ") + " no finding explains",
        message=(
            f"{observation.message}. Nothing in the configuration the bundle holds explains it"
        ),
        subject=subject,
        evidence=[{**item, "source": "capture"} for item in observation.evidence],
        remediation=(
            "Look at what the bundle cannot show between these nodes (the underlay, a "
            "firewall outside the nodes), and capture on both ends again"
        ),
        references=[],
        observed=CONFIRMED,
    )


def _add_counters(
    finding: Finding, counters: NodeCounters, steps: dict[str, frozenset[str]]
) -> None:
    """Counters that grew over the window where the finding's hop would lose packets:
    its host interface's losses, and the protocol counters of its steps. They support a
    finding; alone they confirm nothing (any traffic makes some grow)."""
    interface = finding.subject.get("interface")
    if interface and not finding.subject.get("netns"):
        grown = counters.losses(HOST, interface)
        if grown:
            detail = ", ".join(f"{name} +{value:,}" for name, value in grown)
            file = counters.files.get(f"links:{HOST}", "")
            _add(finding, file, f"counters: {interface} {detail} over the window", "counters", None)
    names = tuple(
        dict.fromkeys(
            name
            for step in sorted(steps_of(finding, steps))
            for name in STEP_COUNTERS.get(step, ())
        )
    )
    grown = counters.grown(names) if names else []
    if grown:
        detail = ", ".join(f"{name} +{value:,}" for name, value in grown)
        file = counters.files.get("protocol", "")
        _add(finding, file, f"counters: {counters.node} {detail} over the window", "counters", None)


def _shorten(finding: Finding) -> None:
    """At most MAX_OBSERVED items of each source of observation on a finding: the rest
    alike are one line saying how many (`needle show BUNDLE probes` lists them all)."""
    kept: list[dict[str, str]] = []
    left: dict[str, int] = {}
    first_left: dict[str, str] = {}
    seen: dict[str, int] = {}
    for item in finding.evidence:
        source = item.get("source", "config")
        if source in ("config", "counters"):
            kept.append(item)
            continue
        seen[source] = seen.get(source, 0) + 1
        if seen[source] <= MAX_OBSERVED:
            kept.append(item)
        else:
            left[source] = left.get(source, 0) + 1
            first_left.setdefault(source, item.get("file", ""))
    for source, count in left.items():
        view = "probes" if source == "probe" else "flows"
        kept.append(
            {
                "file": first_left[source],
                "detail": f"{source}: this and {count - 1} more alike (needle show BUNDLE {view})",
                "source": source,
            }
        )
    finding.evidence = kept


def _capture_counts(captures: CaptureObservations | None) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in captures.captures if captures is not None else ():
        counts[record.status] = counts.get(record.status, 0) + 1
    return counts


def _add(finding: Finding, file: str | None, detail: str, source: str, status: str | None) -> None:
    finding.evidence.append({"file": file or "", "detail": detail, "source": source})
    if status is not None and finding.observed != CONTRADICTED:
        finding.observed = status  # a contradiction stays: it is what the reader must see


def observed_findings(findings: Iterable[Finding]) -> list[Finding]:
    """The findings only observations made (no rule, no walk)."""
    return [f for f in findings if f.rule.startswith("observed.")]
