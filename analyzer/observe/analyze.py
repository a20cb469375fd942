"""The observations' part of `needle analyze`: the probes and captures read, decoded and
joined to the findings the rules and the walks made (join.py)."""

from __future__ import annotations

from collections.abc import Iterable

from needle.analyzer.bundle.reader import Bundle
from needle.analyzer.model.entities import Model
from needle.analyzer.observe.captures import observe_captures
from needle.analyzer.observe.counters import node_counters
from needle.analyzer.observe.expect import Expectations
from needle.analyzer.observe.join import join
from needle.analyzer.observe.probes import probe_results
from needle.analyzer.rules.catalog import RuleDocument
from needle.analyzer.rules.engine import Outcome, rule_steps, sort_findings
from needle.analyzer.trace.hops import NftSource


def observe(
    bundle: Bundle,
    model: Model,
    outcome: Outcome,
    docs: Iterable[RuleDocument],
    nft: NftSource | None = None,
) -> None:
    """Add to `outcome` what the bundle's observations say: evidence and `observed` on
    its findings, findings of their own, and `observations` in its coverage."""
    captures = observe_captures(bundle, model)
    probes = probe_results(bundle, model)
    counters = {
        name: found
        for name, node in model.nodes.items()
        if (found := node_counters(bundle, node)) is not None
    }
    expectations = Expectations(model, nft)
    joined = join(outcome.findings, rule_steps(docs), probes, expectations, captures, counters)
    outcome.findings.extend(joined.findings)
    sort_findings(outcome.findings)
    outcome.observations = joined.coverage
    if outcome.drawing is not None:
        outcome.drawing.probes = probes
