"""The pieces of the HTML report's content, as plain data the templates lay out.

Strings here are the bundle's, exact: the page's one boundary (page.py) escapes them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from needle.analyzer.report.html.excerpts import Excerpt
from needle.analyzer.rules.engine import SEVERITIES


@dataclass
class Mark:
    """A finding as the drawing shows it: a link and a title."""

    anchor: str
    severity: str
    title: str


@dataclass
class PodChip:
    ref: str
    ip: str | None
    marks: list[Mark] = field(default_factory=list)


@dataclass
class NodeBox:
    name: str
    anchor: str
    node_ip: str | None = None
    pod_cidr: str | None = None
    overlay: str | None = None  # "flannel.1 ae:7c:... mtu 1450"
    underlay: str | None = None  # "ens3 mtu 1500"
    collected: str = "no"
    pods: list[PodChip] = field(default_factory=list)
    pod_count: int = 0
    # the node's other pods (ref -> IP), drawn only if a finding marks them
    unshown: dict[str, str | None] = field(default_factory=dict)
    marks: list[Mark] = field(default_factory=list)
    # a group of nodes drawn as one box: their names (None: one node)
    members: list[str] | None = None
    # in a diff: "added" or "removed" (None: in both), and how many changes it has
    state: str | None = None
    changes: int = 0
    changes_anchor: str | None = None
    # the MTU chains its pods have: (the chain's figure, its number on the page)
    chains: list[tuple[str, int]] = field(default_factory=list)
    # in a diff: what changed of its MTUs ("ens3 mtu 1500 → 1450")
    mtu_changes: list[str] = field(default_factory=list)

    def chip(self, ref: str) -> PodChip | None:
        """The pod's chip (made now for a pod not drawn so far), None if it is not this
        node's."""
        found = next((chip for chip in self.pods if chip.ref == ref), None)
        if found is None and ref in self.unshown:
            found = PodChip(ref, self.unshown.pop(ref))
            self.pods.append(found)
        return found

    @property
    def severity(self) -> str | None:
        ranks = [mark.severity for mark in self.marks] + [
            mark.severity for pod in self.pods for mark in pod.marks
        ]
        return min(ranks, key=SEVERITIES.index) if ranks else None


@dataclass
class Edge:
    """A path between two nodes a finding is about."""

    a: str
    b: str
    marks: list[Mark] = field(default_factory=list)


@dataclass
class ChainView:
    hops: list[tuple[str, str, int | None]]  # (where, interface, mtu)
    bottleneck: int | None  # index of the hop that limits the path
    fits: bool  # whether the pod's eth0-sized packet fits every hop
    nodes: list[str]
    pods: int
    examples: list[str]


@dataclass
class EvidenceView:
    label: str
    file: str
    detail: str
    excerpt: Excerpt | None


@dataclass
class FindingView:
    anchor: str
    severity: str
    rule: str
    title: str
    message: str
    subject: list[tuple[str, str]]
    evidence: list[EvidenceView]
    remediation: str
    references: list[str]
    observed: str | None
    # past FULL_FINDINGS a finding is one line (message and subject); JSON has the rest
    compact: bool = False


@dataclass
class TraceView:
    """The walk that stands for some broken cells of the grid."""

    anchor: str
    verdict: str
    source: str
    target: str
    size: int
    hops: list[dict[str, Any]]
    findings: list[Mark]
    cells: int = 0  # grid cells it stands for
    nodes_at_fault: set[str] = field(default_factory=set)


@dataclass
class Scene:
    title: str
    bundle: dict[str, Any]
    counts: str
    dataplane: str | None
    summary: dict[str, int]
    nodes: list[NodeBox]  # as drawn: past a size, some in groups
    all_nodes: list[NodeBox]
    grouped: str | None  # why some nodes are drawn as groups
    edges: list[Edge]
    cluster_marks: list[Mark]  # findings that name no node
    findings: list[FindingView]
    chains: list[ChainView]
    grid: Any | None  # matrix.MatrixView
    traces: list[TraceView]
    coverage: list[str]
    coverage_items: list[tuple[str, str]]  # (what, why) not checked
    excerpts_left_out: int = 0
    findings_left_out: int = 0  # past scene.LISTED_FINDINGS
