"""What the HTML report shows: the cluster's nodes and pods, where the findings fall on
them, each node's MTU chains, the node-pair grid and the walks behind it, and every
finding with its evidence's lines (views.py). The templates only lay it out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from needle.analyzer.backends import backend_of
from needle.analyzer.model.entities import Model, Node
from needle.analyzer.report.counts import (
    dataplane_line,
    evidence_label,
    observation_lines,
    observed_line,
    reachability_lines,
    rules_ran,
    severity_counts,
)
from needle.analyzer.report.html.excerpts import Excerpts, tokens
from needle.analyzer.report.html.matrix import matrix_view, trace_views
from needle.analyzer.report.html.views import (
    ChainView,
    Edge,
    EvidenceView,
    FindingView,
    Mark,
    NodeBox,
    PodChip,
    Scene,
)
from needle.analyzer.rules.engine import Drawing

# findings shown whole (evidence, fix, references); the rest are one line each, so a
# report of 10^4 findings stays a page of a few MB
FULL_FINDINGS = 500
# one-line findings listed after those; the rest only counted (the JSON has them all)
LISTED_FINDINGS = 20_000
# pods named in a node's box; the rest are counted (a finding's pods are always named)
PODS_SHOWN = 6
# above this many nodes, nodes with nothing to show are drawn as groups
GROUP_ABOVE = 60
GROUP_SIZE = 40
# paths of one walk's cause drawn in its colour (the node's own mark says the rest)
PATHS_PER_CAUSE = 64


def _subject(subject: dict[str, Any]) -> list[tuple[str, str]]:
    return [(key, str(value)) for key, value in subject.items() if value]


def _evidence_views(finding: dict[str, Any], excerpts: Excerpts) -> list[EvidenceView]:
    """The finding's evidence, each file's lines that bear on what it names quoted once."""
    subject = finding["subject"]
    wanted = tokens(
        *(item.get("detail") for item in finding["evidence"]),
        subject.get("interface"),
        subject.get("cidr"),
        subject.get("netns"),
    )
    if subject.get("interface"):
        wanted.add(subject["interface"])
    if subject.get("pod"):
        wanted.add(subject["pod"].split("/")[-1])
    seen: set[str] = set()
    evidence = []
    for item in finding["evidence"]:
        file = item.get("file") or ""
        # one excerpt a file; the other items on it show their detail only
        excerpt = excerpts(file, wanted) if file not in seen else None
        seen.add(file)
        evidence.append(EvidenceView(evidence_label(item), file, item.get("detail") or "", excerpt))
    return evidence


def _finding_views(document: dict[str, Any], excerpts: Excerpts) -> list[FindingView]:
    views = []
    for number, finding in enumerate(document["findings"][:LISTED_FINDINGS]):
        compact = number >= FULL_FINDINGS  # the most severe come first (the report's order)
        views.append(
            FindingView(
                f"f-{number}",
                finding["severity"],
                finding["rule"],
                finding["title"],
                finding["message"],
                _subject(finding["subject"]),
                [] if compact else _evidence_views(finding, excerpts),
                finding["remediation"],
                [] if compact else [str(reference) for reference in finding["references"]],
                observed_line(finding),
                compact=compact,
            )
        )
    return views


def node_box(model: Model, node: Node) -> NodeBox:
    backend = backend_of(model)
    api = node.api
    box = NodeBox(node.name, f"n-{node.name}", collected=node.status or "no")
    if api is not None:
        box.node_ip = api.internal_ip
        box.pod_cidr = api.pod_cidr
    overlay = backend.overlay_interface(node) if node.host is not None else None
    if overlay is not None:
        box.overlay = f"{overlay.name} {overlay.mac or '-'} mtu {overlay.mtu}"
    underlay = backend.underlay_interface(node) if node.host is not None else None
    if underlay is not None:
        box.underlay = f"{underlay.name} mtu {underlay.mtu}"
    pods = [pod for pod in model.pods_by_node.get(node.name, ()) if not pod.host_network]
    box.pod_count = len(pods)
    # chips for the first few only (10^5 pods at 1,000 nodes); a marked pod gets its
    # chip when its finding is placed (NodeBox.chip)
    ordered = sorted(pods, key=lambda p: p.ref)
    box.pods = [PodChip(pod.ref, pod.ip) for pod in ordered[:PODS_SHOWN]]
    box.unshown = {pod.ref: pod.ip for pod in ordered[PODS_SHOWN:]}
    return box


def _place_marks(
    boxes: dict[str, NodeBox], findings: list[FindingView], document: dict[str, Any]
) -> tuple[list[Edge], list[Mark]]:
    edges: dict[tuple[str, str], Edge] = {}
    cluster: list[Mark] = []
    for view, finding in zip(findings, document["findings"], strict=True):
        mark = Mark(view.anchor, view.severity, finding["title"])
        subject = finding["subject"]
        node, peer = subject.get("node"), subject.get("peer_node")
        box = boxes.get(node or "")
        if box is None:
            cluster.append(mark)
            continue
        if peer and peer in boxes:
            pair = (node, peer) if node < peer else (peer, node)
            edges.setdefault(pair, Edge(*pair)).marks.append(mark)
        pod = subject.get("pod")
        chip = box.chip(pod) if pod else None
        if chip is not None:
            chip.marks.append(mark)
        else:
            box.marks.append(mark)
    return list(edges.values()), cluster


def _mark_broken_paths(
    edges: list[Edge],
    boxes: dict[str, NodeBox],
    drawing: Drawing | None,
    view_of: dict[int, FindingView],
) -> list[Edge]:
    """The overlay paths a walk's cause breaks, in its findings' colour: a finding on one
    node (its underlay MTU) says which node, the walks which of its paths (up to
    PATHS_PER_CAUSE of them: past that the node's own mark says it). `view_of`: each
    Finding's view, by id()."""
    if drawing is None:
        return edges
    by_pair = {(edge.a, edge.b): edge for edge in edges}
    for cause in drawing.reach.causes.values():
        views = [view_of[id(f)] for f in cause.findings if id(f) in view_of]
        if not views or cause.node not in boxes:
            continue
        peers = sorted(peer for peer in cause.peers if peer in boxes and peer != cause.node)
        for peer in peers[:PATHS_PER_CAUSE]:
            pair = (cause.node, peer) if cause.node < peer else (peer, cause.node)
            edge = by_pair.get(pair)
            if edge is None:
                edge = by_pair[pair] = Edge(*pair)
            held = {mark.anchor for mark in edge.marks}
            edge.marks += [
                Mark(view.anchor, view.severity, view.title)
                for view in views
                if view.anchor not in held
            ]
    return list(by_pair.values())


def _trim_pods(box: NodeBox) -> None:
    marked = sorted((chip for chip in box.pods if chip.marks), key=lambda chip: chip.ref)
    rest = [chip for chip in box.pods if not chip.marks]  # the first by name, in order
    box.pods = marked + rest[: max(0, PODS_SHOWN - len(marked))]
    box.unshown = {}


def _likeness(box: NodeBox) -> tuple[object, ...]:
    """What a node's box shows beyond its own facts: alike nodes can share one box."""
    titles = frozenset(
        (mark.severity, mark.title) for mark in box.marks + [m for p in box.pods for m in p.marks]
    )
    return (titles, box.state, bool(box.changes))


def group_quiet(boxes: list[NodeBox], keep: set[str]) -> tuple[list[NodeBox], str | None]:
    """Past GROUP_ABOVE nodes, runs of up to GROUP_SIZE alike nodes (nothing to mark, or
    the same findings' titles) drawn as one box each; the nodes in `keep` (where a walk
    found the cause) on their own."""
    if len(boxes) <= GROUP_ABOVE:
        return boxes, None
    shown: list[NodeBox] = []
    run: list[NodeBox] = []

    def close() -> None:
        if len(run) == 1:
            shown.append(run[0])
        elif run:
            names = [box.name for box in run]
            first = run[0]
            shown.append(
                NodeBox(
                    f"{len(run)} nodes",
                    f"g-{names[0]}",
                    pod_count=sum(box.pod_count for box in run),
                    marks=first.marks + [m for pod in first.pods for m in pod.marks],
                    members=names,
                    collected=", ".join(sorted({box.collected for box in run})),
                    state=first.state,
                    changes=sum(box.changes for box in run),
                    changes_anchor=first.changes_anchor,
                )
            )
        run.clear()

    for box in boxes:
        if box.name in keep:
            close()
            shown.append(box)
            continue
        if run and (_likeness(run[0]) != _likeness(box) or len(run) == GROUP_SIZE):
            close()
        run.append(box)
    close()
    groups = sum(1 for box in shown if box.members is not None)
    return shown, (
        f"{len(boxes)} nodes: alike ones (nothing to mark, or the same findings) are drawn "
        f"in {groups} groups of up to {GROUP_SIZE}; every node is in the table below"
    )


def _chain_views(drawing: Drawing | None) -> list[ChainView]:
    """Each distinct MTU chain of the cluster once, with the nodes that have it; chains
    that do not fit first."""
    if drawing is None:
        return []
    alike: dict[tuple[Any, ...], ChainView] = {}
    for node in sorted(drawing.mtu_chains):
        for chain in drawing.mtu_chains[node]:
            key = (chain.hops, chain.overhead)
            view = alike.get(key)
            if view is None:
                bottleneck, fits = bottleneck_of(chain.hops, chain.overhead)
                view = alike[key] = ChainView(list(chain.hops), bottleneck, fits, [], 0, [])
            if node not in view.nodes:
                view.nodes.append(node)
            view.pods += chain.count
            view.examples.extend(chain.pods[: max(0, 3 - len(view.examples))])
    return sorted(alike.values(), key=lambda view: (view.fits, -view.pods))


def bottleneck_of(
    hops: tuple[tuple[str, str, int | None], ...], overhead: int
) -> tuple[int | None, bool]:
    """The hop that limits the path: the smallest room for the pod's packet (after an
    overlay device, the underlay carries the packet plus `overhead`). And whether a
    packet the size of the pod's eth0 MTU fits every hop."""
    room: list[tuple[int, int]] = []
    encapsulated = False
    for number, (where, _name, mtu) in enumerate(hops):
        encapsulated = encapsulated or where == "overlay"
        if mtu is not None:
            extra = overhead if encapsulated and where == "underlay" else 0
            room.append((mtu - extra, number))
    if not room:
        return None, True
    smallest, at = min(room)
    first = hops[0][2] if hops else None
    return at, first is None or first <= smallest


# what coverage lists of rules, and how the page says why each was not (fully) run
_RULE_LISTS = (
    ("rules_skipped", "skipped"),
    ("rules_partial", "partial"),
    ("rules_not_applicable", "not run"),
    ("rules_invalid", "invalid"),
)


def not_checked(coverage: dict[str, Any]) -> list[tuple[str, str]]:
    """(what, why) for every rule not run in full and every cluster object left out."""
    items = [
        (f"rule {entry['rule']}", f"{said}: {entry['reason']}")
        for key, said in _RULE_LISTS
        for entry in coverage.get(key, [])
    ]
    items += [
        (
            f"{bad['kind']} {bad['name']}",
            f"invalid {bad['field']} in {bad['file']}: {bad['problem']} (left out)",
        )
        for bad in coverage.get("objects_invalid", [])
    ]
    return items


def _first_pods(model: Model) -> dict[str, str]:
    """A pod of each node (by name), to name a pair the grid stands for."""
    first: dict[str, str] = {}
    for name, pods in model.pods_by_node.items():
        refs = sorted(pod.ref for pod in pods if pod.ip and not pod.host_network)
        if refs:
            first[name] = refs[0]
    return first


def build_scene(
    model: Model,
    document: dict[str, Any],
    drawing: Drawing | None,
    read: Callable[[str], str | None],
    findings_order: list[Any] | None = None,
) -> Scene:
    """The page's content. `read` reads a bundle file (evidence excerpts);
    `findings_order`: the Finding objects in the document's order (to link the walks)."""
    excerpts = Excerpts(read)
    findings = _finding_views(document, excerpts)
    boxes = {name: node_box(model, model.nodes[name]) for name in sorted(model.nodes)}
    edges, cluster_marks = _place_marks(boxes, findings, document)
    # the Finding objects the walks name, to their views (as many as listed)
    view_of = {
        id(finding): view for finding, view in zip(findings_order or [], findings, strict=False)
    }
    edges = _mark_broken_paths(edges, boxes, drawing, view_of)
    traces = trace_views(drawing, view_of)
    broken = {
        name for trace in traces if trace.verdict == "dropped" for name in trace.nodes_at_fault
    }
    for box in boxes.values():
        _trim_pods(box)
    drawn, grouped = group_quiet(list(boxes.values()), broken)
    chains = _chain_views(drawing)
    for number, chain in enumerate(chains, start=1):
        for name in chain.nodes:
            if name in boxes:
                boxes[name].chains.append((f"mtu-{number}", number))
    coverage = document["coverage"]
    lines = [rules_ran(coverage)]
    lines += [line.strip() for line in reachability_lines(coverage.get("reachability"))]
    lines += [line.strip() for line in observation_lines(coverage.get("observations"))]
    items = not_checked(coverage)
    bundle = document["bundle"]
    return Scene(
        title=f"needle: {bundle['path']}",
        bundle=bundle,
        counts=severity_counts(document["summary"]),
        dataplane=dataplane_line(coverage.get("dataplane")),
        summary=document["summary"],
        nodes=drawn,
        all_nodes=list(boxes.values()),
        grouped=grouped,
        edges=edges,
        cluster_marks=cluster_marks,
        findings=findings,
        chains=chains,
        grid=matrix_view(drawing, traces, (bundle["path"], _first_pods(model)))
        if drawing is not None
        else None,
        traces=traces,
        coverage=lines,
        coverage_items=items,
        excerpts_left_out=excerpts.left_out,
        findings_left_out=max(0, len(document["findings"]) - LISTED_FINDINGS),
    )
