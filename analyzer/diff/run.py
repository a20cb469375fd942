"""`needle diff` end to end: both bundles modelled in one process with one ParseCache,
then the nodes dealt into shards, each shard (a forked child, or this process) judging
and comparing its nodes in both snapshots at once.

Why this shape: two snapshots of one cluster are mostly the same bytes. Parsed once,
identical files become the same records in both models, and a shard can tell "same
bytes, same labels" by object identity and skip taking facts from them. What is left
to compare is what really changed.

Before the shards start, pods re-created under generated names are paired, and VTEP
MACs by their node (identity.py), in this process: pairing is cluster-wide (a pod and
its pair are on one node, but the pod list is the whole cluster's). Each shard pairs
its nodes' host devices by role.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from needle.analyzer.bundle import Bundle, open_and_build
from needle.analyzer.diff.compare import (
    KIND_ORDER,
    Change,
    DiffResult,
    compare_findings,
    compare_snapshots,
)
from needle.analyzer.diff.identity import Relabel, pair_pods, role_aliases, vtep_renames
from needle.analyzer.diff.snapshot import (
    Facts,
    aliases_for,
    cluster_snapshot,
    namespace_labels,
    node_snapshot,
    pod_facts,
    rename_namespaces,
    renames_for,
    unchanged_between,
)
from needle.analyzer.errors import AnalyzerError
from needle.analyzer.forked import can_fork, run_forked
from needle.analyzer.gcpause import paused_gc
from needle.analyzer.model import build_model
from needle.analyzer.model.borrow import borrow_pod_side
from needle.analyzer.model.build import ParseCache
from needle.analyzer.model.entities import Model
from needle.analyzer.observe.probes import probe_facts
from needle.analyzer.rules.catalog import RuleDocument
from needle.analyzer.rules.engine import (
    PARALLEL_FROM_NODES,
    Outcome,
    RuleResult,
    deal,
    merge_results,
    node_names,
    rule_steps,
    run_shard,
)
from needle.analyzer.rules.memory import ResultMemory


@dataclass
class ShardDiff:
    """One shard's part of a diff: its nodes' changes, both sides' rule results, and the
    facts of its pods that are not the same on both sides."""

    changes: list[Change] = field(default_factory=list)
    not_compared: list[str] = field(default_factory=list)
    old_results: list[RuleResult] = field(default_factory=list)
    new_results: list[RuleResult] = field(default_factory=list)
    old_pods: Facts = field(default_factory=dict)
    new_pods: Facts = field(default_factory=dict)
    left_out: Counter[str] = field(default_factory=Counter)


@dataclass
class DiffRun:
    result: DiffResult
    old_summary: dict[str, object]
    new_summary: dict[str, object]
    # the two models (their nodes' host side read), for a picture of what changed
    old: Model | None = None
    new: Model | None = None


def diff_shard(
    old: Model,
    new: Model,
    docs: list[RuleDocument],
    home: frozenset[str],
    only_node: str | None,
    relabel: Relabel | None = None,
    show_all: bool = False,
) -> ShardDiff:
    """`relabel` names the old snapshot's things as the new one names them (pods and
    VTEP MACs; this shard adds its nodes' devices by role); `show_all` lists per-boot
    and implied differences instead of counting them."""
    relabel = replace(relabel or Relabel(), devices=role_aliases(old, new, home))
    old.load_nodes(home)
    for name in home:  # a node whose pod side is the same bytes in both is not built twice
        borrow_pod_side(old, new, name)
    new.load_nodes(home)
    memory = ResultMemory()  # the new snapshot re-checks only what its rules read anew
    old_results = run_shard(old, docs, home, memory)
    new_results = run_shard(new, docs, home, memory)
    del memory  # and the collections it kept
    old_pods, new_pods = pod_facts(old, home, relabel), pod_facts(new, home)
    # a pod with the same facts on both sides is on the same node, so in this shard only:
    # nothing to compare, nothing to send (10^5 pods at 1,000 nodes)
    for key in [key for key, facts in old_pods.items() if new_pods.get(key) == facts]:
        del old_pods[key], new_pods[key]
    shard = ShardDiff(
        old_results=old_results,
        new_results=new_results,
        old_pods=old_pods,
        new_pods=new_pods,
    )
    unchanged = unchanged_between(old, new, home, relabel)
    before = node_snapshot(old, home, unchanged, relabel, ethtool_by_interface=show_all)
    after = node_snapshot(new, home, unchanged, ethtool_by_interface=show_all)
    old_labels, new_labels = namespace_labels(old, home, relabel), namespace_labels(new, home)
    rename_namespaces(before, renames_for(aliases_for(old_labels, new_labels), old_labels))
    rename_namespaces(after, renames_for(aliases_for(new_labels, old_labels), new_labels))
    compared = compare_snapshots(before, after, only_node, show_all)
    shard.changes, shard.not_compared = compared.changes, compared.not_compared
    shard.left_out = compared.left_out
    return shard


def run_diff(
    old_path: Path,
    new_path: Path,
    docs: list[RuleDocument],
    only_node: str | None,
    show_all: bool = False,
    backend: str | None = None,
) -> DiffRun:
    """The diff of two bundles; `show_all` lists per-boot and implied differences too."""
    cache = ParseCache()

    def build(bundle: Bundle) -> Model:
        # while the manifests are still being validated (open_and_build)
        return build_model(bundle, lazy_nodes=True, cache=cache, backend=backend)

    (old_bundle, new_bundle), (old, new) = open_and_build([old_path, new_path], build)
    with old_bundle, new_bundle, paused_gc():
        if only_node is not None and only_node not in old.nodes and only_node not in new.nodes:
            raise AnalyzerError(f"no node {only_node!r} in either bundle")
        summaries = old_bundle.summary(), new_bundle.summary()
        # while the manifests still say where the pod objects are (their owners)
        relabel = Relabel(
            pods=pair_pods(old, new, old_bundle, new_bundle), macs=vtep_renames(old, new)
        )
        mapping = redaction_mismatch(old_bundle.manifest, new_bundle.manifest)
        old_bundle.drop_manifest()
        new_bundle.drop_manifest()
        probes = probe_facts(old_bundle, old), probe_facts(new_bundle, new)
        names = node_names(old, new)
        workers = 2 if can_fork() and len(names) >= PARALLEL_FROM_NODES else 1
        tasks = [
            partial(diff_shard, old, new, docs, home, only_node, relabel, show_all)
            for home in deal(names, workers)
        ]
        shards = run_forked(tasks, "diff")
        result = _merge(old, new, shards, docs, only_node, relabel, show_all, probes)
    if mapping is not None:
        result.not_compared.insert(0, mapping)
    return DiffRun(result, summaries[0], summaries[1], old, new)


def redaction_mismatch(old: Mapping[str, Any], new: Mapping[str, Any]) -> str | None:
    """Why the two bundles' names and addresses cannot be matched, when one is redacted
    and the other not, or a random key redacted either: then everything looks changed."""
    records = [m.get("redaction") for m in (old, new)]
    redacted = [isinstance(record, Mapping) for record in records]
    if redacted == [False, False]:
        return None
    advice = "redact both originals with one key (needle redact --key-file FILE)"
    if redacted != [True, True]:
        side = "new" if redacted[1] else "old"
        return f"names and addresses: only the {side} bundle is redacted; {advice}"
    if any(r.get("key") != "from a key file" for r in records if isinstance(r, Mapping)):
        return f"names and addresses: redacted with a random key, so they never match; {advice}"
    return None


def _merge(
    old: Model,
    new: Model,
    shards: list[ShardDiff],
    docs: list[RuleDocument],
    only: str | None,
    relabel: Relabel,
    show_all: bool,
    probes: tuple[Facts, Facts] = ({}, {}),
) -> DiffResult:
    before, after = cluster_snapshot(old), cluster_snapshot(new)
    missing: str | None = None
    if probes[0] and probes[1]:
        before.kinds["probe"].update(probes[0])
        after.kinds["probe"].update(probes[1])
    elif probes[0] or probes[1]:
        missing = f"probes: absent from the {'new' if probes[0] else 'old'} bundle"
    for shard in shards:
        before.kinds["pod"].update(shard.old_pods)
        after.kinds["pod"].update(shard.new_pods)
    result = compare_snapshots(before, after, only, show_all)
    if missing is not None:
        result.not_compared.append(missing)
    result.changes += [change for shard in shards for change in shard.changes]
    for shard in shards:
        result.left_out.update(shard.left_out)
    order = {kind: rank for rank, kind in enumerate(KIND_ORDER)}
    result.changes.sort(key=lambda c: (c.node or "", order[c.kind], c.key))
    per_node = sorted(
        (line for shard in shards for line in shard.not_compared),
        key=lambda line: ("not collected" in line, line),
    )
    result.not_compared += per_node
    rule_ids = [doc.id for doc in docs]
    steps = rule_steps(docs)
    old_outcome, new_outcome = Outcome(), Outcome()
    merge_results(rule_ids, [shard.old_results for shard in shards], old_outcome, steps)
    merge_results(rule_ids, [shard.new_results for shard in shards], new_outcome, steps)
    compare_findings(old_outcome.findings, new_outcome.findings, result, only, relabel.pods)
    return result
