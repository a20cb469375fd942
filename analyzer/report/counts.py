"""The counting sentences the text and markdown reports share, with plurals done once."""

from __future__ import annotations

from typing import Any

from needle.analyzer.terminal import plural


def bundle_line(bundle: dict[str, Any]) -> str:
    """ "cluster.tar.gz: 1 node, collected 2026-01-02T03:04:05Z (complete)"."""
    return (
        f"{bundle['path']}: {plural(bundle['nodes'], 'node')}, "
        f"collected {bundle['created']} ({bundle['status']})"
    )


def dataplane_line(dataplane: dict[str, Any] | None) -> str | None:
    """ "data plane: flannel vxlan (detected: cluster/configmaps.json)"; None when the
    report predates data-plane detection."""
    if not dataplane:
        return None
    how = {"option": "chosen with --backend", "detected": "detected"}.get(
        dataplane["source"], "not detected"
    )
    files = sorted({item["file"] for item in dataplane.get("evidence", []) if item["file"]})
    where = f": {', '.join(files[:3])}" if files and dataplane["source"] == "detected" else ""
    verdict = "" if dataplane["analysed"] else "; recognised, not analysed"
    return f"data plane: {dataplane['label']} ({how}{where}{verdict})"


def severity_counts(summary: dict[str, int]) -> str:
    """ "1 error, 0 warnings, 3 info"."""
    return (
        f"{plural(summary['error'], 'error')}, {plural(summary['warning'], 'warning')}, "
        f"{plural(summary['info'], 'info', 'info')}"
    )


def rules_ran(coverage: dict[str, Any]) -> str:
    """ "20 rules ran, 1 skipped"."""
    text = f"{plural(coverage['rules_run'], 'rule')} ran"
    if coverage["rules_skipped"]:
        text += f", {len(coverage['rules_skipped'])} skipped"
    others = coverage.get("rules_not_applicable") or []
    if others:
        text += f", {plural(len(others), 'rule')} for other data planes not run"
    return text


def summary_line(summary: dict[str, int], coverage: dict[str, Any]) -> str:
    """ "1 error, 0 warnings, 3 info; 20 rules ran, 1 skipped"."""
    return f"{severity_counts(summary)}; {rules_ran(coverage)}"


def reachability_lines(reach: dict[str, Any] | None) -> list[str]:
    """ "reachability: 42 pairs (3 classes, 6 walks): 42 delivered, 0 dropped, 0 not
    decidable", then one line per reason a walk could not decide; none when not run."""
    if not reach:
        return []
    classes = plural(reach["classes"], "class", "classes")
    pairs = f"{reach['pairs']:,} pair{'' if reach['pairs'] == 1 else 's'}"
    lines = [
        f"reachability: {pairs} ({classes}, {plural(reach['walks'], 'walk')}): "
        f"{reach['delivered']:,} delivered, {reach['dropped']:,} dropped, "
        f"{reach['unknown']:,} not decidable"
    ]
    for item in reach.get("not_checked", [])[:10]:
        nodes = item.get("nodes", 1)
        where = f"{item['node']}" + (
            f" and {plural(nodes - 1, 'more node')} alike" if nodes > 1 else ""
        )
        lines.append(
            f"  not decidable at {item['step']} on {where}: {item['reason']} "
            f"({item['pairs']:,} pair{'' if item['pairs'] == 1 else 's'})"
        )
    return lines


def evidence_label(item: dict[str, Any]) -> str:
    """ "evidence" for what the configuration shows, else where it was seen ("probe",
    "capture", "counters")."""
    source = item.get("source")
    return "evidence" if source in (None, "config") else f"observed ({source})"


OBSERVED = {
    "confirmed": "observed: confirmed by the probes or captures (below)",
    "contradicted": "observed: CONTRADICTED: a probe passed where this says traffic dies",
    "inferred": "observed: not seen by the probes or captures (inferred from the configuration)",
}


def observed_line(finding: dict[str, Any]) -> str | None:
    """What the observations say of a finding, when the bundle had any."""
    status = finding.get("observed")
    return OBSERVED.get(status) if isinstance(status, str) else None


def observation_lines(observations: dict[str, Any] | None) -> list[str]:
    """ "probes: 36 (30 passed, 6 failed: 4 confirm findings, 2 unexplained); captures:
    9 decoded"; none when the report has no observations."""
    if not observations:
        return []
    probes = observations.get("probes") or {}
    captures = observations.get("captures") or {}
    parts = []
    if probes.get("probes"):
        parts.append(
            f"probes: {probes['probes']:,} ({probes['passed']:,} passed, "
            f"{probes['failed']:,} failed, {probes['not_judged']:,} not judged; "
            f"{probes['confirming']:,} confirm a finding, {probes['contradicting']:,} "
            f"contradict one, {probes['unexplained']:,} unexplained)"
        )
    else:
        parts.append("probes: none in the bundle")
    if captures:
        parts.append(
            "captures: " + ", ".join(f"{n:,} {status}" for status, n in sorted(captures.items()))
        )
    kinds = observations.get("observations") or {}
    lines = ["; ".join(parts)]
    if kinds:
        lines.append(
            "  seen in the captures: "
            + ", ".join(f"{kind} ({n:,})" for kind, n in sorted(kinds.items()))
        )
    return lines
