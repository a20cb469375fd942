"""Runs rules over a model: compiles their CEL, iterates their collections, and turns
every item that fails its assertion into a finding (DESIGN.md §5).

One CEL evaluation per rule (per node for node_pairs) filters the whole collection:
`items.filter(x, WHERE && !(ASSERT))`, so the comprehension runs in the CEL runtime,
not in a Python loop.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from needle.analyzer.backends import backend_of
from needle.analyzer.forked import can_fork, run_forked
from needle.analyzer.gcpause import paused_gc
from needle.analyzer.model.entities import Model
from needle.analyzer.model.sources import NODE_DATA
from needle.analyzer.rules.catalog import RuleDocument, RuleProblem
from needle.analyzer.rules.causes import fold_peers, fold_same_cause
from needle.analyzer.rules.cel_adapter import (
    CelCompileError,
    CelEnvironment,
    CelEvalError,
    CompiledExpression,
    HelperFunction,
)
from needle.analyzer.rules.facts import (
    COLLECTION_BUILDERS,
    COLLECTION_INPUTS,
    Collection,
    Fact,
    Home,
    netconf_fact,
    node_facts,
)
from needle.analyzer.rules.grouping import alike as group_alike
from needle.analyzer.rules.helpers import PAIRWISE, ModelHelpers, helper_signatures
from needle.analyzer.rules.memory import ResultMemory, RuleInputs

if TYPE_CHECKING:  # reach and trace build on the engine, not the other way
    from needle.analyzer.trace.hops import NftSource
from needle.analyzer.rules.placeholders import (
    FieldPath,
    HelperCall,
    field_path,
    helper_call,
    value_of,
)

SEVERITIES = ("error", "warning", "info")
SINGLE = {
    "nodes": "node",
    "pods": "pod",
    "veths": "veth",
    "vtep_fdb": "entry",
    "vtep_neighbours": "entry",
}
PAIRS = "node_pairs"
COLLECTIONS = (*SINGLE, PAIRS)
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
INDEX = "_i"
ROW_PREFIX = "_no_"  # a node's row of a pairwise helper: the peers it is false for
# cel-expr-python stops an evaluation after 10,000 comprehension steps; a filter and the
# map after it may both walk a whole chunk
BUDGET = 4500
# A pair chunk is sized for the filter's steps alone (nodes x peers), the usual case of
# few failing pairs; a chunk whose failures overrun the budget is checked again in halves.
PAIR_STEPS = 9500
_OVERRUN = "Iteration budget exceeded"
# the loop variables of every collection: a collection added to SINGLE is projected too
_VARIABLES = "|".join(sorted({*SINGLE.values(), "node", "peer"}))
_FIELD = re.compile(rf"\b({_VARIABLES})\.([A-Za-z_][A-Za-z0-9_]*)")
_CALL = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*\(")
_WHOLE = re.compile(rf"\b({_VARIABLES})\b(?!\s*\.)")


def _projection(expressions: list[str], variable: str) -> tuple[str, ...] | None:
    """The fields of `variable` the expressions read, or None when they use it whole
    (then every field travels). A CEL call converts all of its input, so sending only
    what a rule reads keeps a 1,000 x 1,000 pair rule cheap."""
    if any(m.group(1) == variable for text in expressions for m in _WHOLE.finditer(text)):
        return None
    fields = {
        m.group(2) for text in expressions for m in _FIELD.finditer(text) if m.group(1) == variable
    }
    if variable in {"node", "peer"}:
        fields.add("name")
    return tuple(sorted(fields))


def _project(items: list[Fact], fields: tuple[str, ...] | None, offset: int = 0) -> list[Fact]:
    if fields is None:
        return [{**item, INDEX: index} for index, item in enumerate(items, offset)]
    return [
        {**{f: item[f] for f in fields if f in item}, INDEX: index}
        for index, item in enumerate(items, offset)
    ]


@dataclass
class Finding:
    rule: str
    severity: str
    title: str
    message: str
    subject: dict[str, str | None]
    evidence: list[dict[str, str]]
    remediation: str
    references: list[str]
    # what the bundle's probes and captures say of it (analyzer/observe/join.py):
    # confirmed, contradicted, inferred (nothing observed concerns it); None: the bundle
    # has no observations
    observed: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "title": self.title,
            "message": self.message,
            "subject": self.subject,
            "evidence": self.evidence,
            "remediation": self.remediation,
            "references": self.references,
            "observed": self.observed,
        }


@dataclass
class Outcome:
    findings: list[Finding] = field(default_factory=list)
    rules_run: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    # rules written for other data planes than the cluster's (not run)
    not_applicable: list[dict[str, str]] = field(default_factory=list)
    # the data plane the rules judged (backends.detection.Detection.to_json())
    dataplane: dict[str, Any] | None = None
    partial: list[dict[str, str]] = field(default_factory=list)
    problems: list[RuleProblem] = field(default_factory=list)
    # cluster objects' invalid fields (the model's objects_invalid), as report entries
    objects_invalid: list[dict[str, str]] = field(default_factory=list)
    # what the walks of every pair found (analyzer/reach/: Reachability.to_json())
    reachability: dict[str, Any] | None = None
    # what the probes and captures showed, and how it joined the findings
    # (analyzer/observe/join.py: Joined.coverage)
    observations: dict[str, Any] | None = None
    # what a picture of the cluster needs beyond the report (evaluate(drawn=True))
    drawing: Drawing | None = None


@dataclass
class Drawing:
    """The walks' causes (reach.judge.Reachability, each with the findings that tell of
    it), each node pair's verdict (reach.grid.Grid) and each node's distinct MTU chains
    (reach.signatures.NodeFacts.mtu_chains), for the HTML report."""

    reach: Any
    grid: Any
    mtu_chains: dict[str, list[Any]]
    # what the probes saw (observe.probes.ProbeResult), added by observe()
    probes: list[Any] = field(default_factory=list)


def _variables(for_each: str) -> dict[str, str]:
    if for_each == PAIRS:
        return {"node": "map", "peer": "map", "netconf": "map"}
    return {SINGLE[for_each]: "map", "netconf": "map"}


SUBJECT_KEYS = ("node", "peer_node", "netns", "pod", "interface", "cidr")


@dataclass
class CompiledRule:
    doc: RuleDocument
    filter_expression: CompiledExpression
    placeholders: dict[str, CompiledExpression]
    subject: dict[str, CompiledExpression]
    # the fields each loop variable's items carry into the filter (None: all of them)
    projections: dict[str, tuple[str, ...] | None]
    # placeholders and subject values worked out without CEL (rules/placeholders.py)
    paths: dict[str, FieldPath]
    calls: dict[str, HelperCall] = field(default_factory=dict)
    # node_pairs: the PAIRWISE helpers the rule calls as h(node.name, peer.name), and
    # the filter that reads their answers from each node's row instead (_row_filter)
    pairwise: tuple[str, ...] = ()
    row_filter: CompiledExpression | None = None

    @property
    def id(self) -> str:
        return self.doc.id


def _position(doc: RuleDocument, key: str, error: CelCompileError) -> tuple[int | None, int | None]:
    start = doc.positions.get(key)
    if start is None or error.line is None:
        return error.line, error.column
    line, column = start
    if error.line == 1:
        return line, column + (error.column or 1) - 1
    return line + error.line - 1, error.column


def _compile(
    env: CelEnvironment, doc: RuleDocument, key: str, expression: str
) -> CompiledExpression:
    try:
        return env.compile(expression)
    except CelCompileError as exc:
        line, column = _position(doc, key, exc)
        raise RuleCompileFailure(
            RuleProblem(doc.source, f"{key}: {exc.message}", line, column)
        ) from None


class RuleCompileFailure(Exception):
    def __init__(self, problem: RuleProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def _templates(doc: RuleDocument) -> Iterable[tuple[str, str]]:
    yield "message", str(doc.data["message"])
    yield "remediation", str(doc.data["remediation"])
    for index, entry in enumerate(doc.data.get("evidence", [])):
        yield f"evidence[{index}]", str(entry.get("file", "")) + "\n" + str(entry.get("detail", ""))


def compile_rule(doc: RuleDocument, helpers: list[HelperFunction]) -> CompiledRule:
    """Compile every expression of a rule, or raise RuleCompileFailure naming line/column."""
    for_each = str(doc.data["for_each"])
    if for_each not in COLLECTIONS:
        line, column = doc.positions.get("for_each", (None, None))
        raise RuleCompileFailure(
            RuleProblem(
                doc.source,
                f"for_each: unknown collection {for_each!r} (one of {', '.join(COLLECTIONS)})",
                line,
                column,
            )
        )
    unknown = [
        need
        for need in doc.data.get("needs", [])
        if str(need).startswith("node.") and str(need).removeprefix("node.") not in NODE_DATA
    ]
    if unknown:
        line, column = doc.positions.get("needs", (None, None))
        known = ", ".join(f"node.{kind}" for kind in sorted(NODE_DATA))
        raise RuleCompileFailure(
            RuleProblem(
                doc.source,
                f"needs: unknown node data {', '.join(map(str, unknown))} (one of {known})",
                line,
                column,
            )
        )
    env = CelEnvironment(_variables(for_each), helpers)
    where = str(doc.data.get("where") or "true")
    check = str(doc.data["assert"])
    _compile(env, doc, "where", where)
    _compile(env, doc, "assert", check)
    pairwise: tuple[str, ...] = ()
    row_filter = None
    if for_each == PAIRS:
        loop_env = CelEnvironment({"nodes": "list", "peers": "list", "netconf": "map"}, helpers)
        combined = _pairs_filter(where, check)
        variables: tuple[str, ...] = ("node", "peer")
        pairwise, rows = _row_filter(where, check)
        if pairwise:
            row_filter = _compile(loop_env, doc, "assert", rows)
    else:
        variable = SINGLE[for_each]
        loop_env = CelEnvironment({"items": "list", "netconf": "map"}, helpers)
        combined = (
            f"items.filter({variable}, ({where}) && !({check})).map({variable}, {variable}.{INDEX})"
        )
        variables = (variable,)
    filter_expression = _compile(loop_env, doc, "assert", combined)
    projections = {name: _projection([where, check], name) for name in variables}
    placeholders: dict[str, CompiledExpression] = {}
    for key, template in _templates(doc):
        for expression in _PLACEHOLDER.findall(template):
            if expression not in placeholders:
                placeholders[expression] = _compile(env, doc, key, expression)
    subject = {
        key: _compile(env, doc, "subject", str(value))
        for key, value in (doc.data.get("subject") or {}).items()
    }
    rendered = [*placeholders.values(), *subject.values()]
    paths = {
        expression.source: path
        for expression in rendered
        if (path := field_path(expression.source)) is not None
    }
    by_name = {helper.name: helper for helper in helpers}
    calls = {
        expression.source: call
        for expression in rendered
        if (call := helper_call(expression.source, by_name)) is not None
    }
    return CompiledRule(
        doc,
        filter_expression,
        placeholders,
        subject,
        projections,
        paths,
        calls,
        pairwise,
        row_filter,
    )


def _pairs_filter(where: str, check: str) -> str:
    return (
        f"nodes.map(node, peers.filter(peer, peer.name != node.name && ({where})"
        f" && !({check})).map(peer, peer.{INDEX}))"
    )


_PAIRWISE_CALL = re.compile(rf"\b({'|'.join(PAIRWISE)})\(\s*node\.name\s*,\s*peer\.name\s*\)")
# strings _STRING cannot tell apart: raw ones (a backslash ends nothing) and triple-quoted
_RAW_OR_TRIPLE = re.compile(r"\b[rR]['\"]|'''|\"\"\"")
_STRING = re.compile(r"'(?:[^'\\\n]|\\.)*'" + r'|"(?:[^"\\\n]|\\.)*"')


def _row_filter(where: str, check: str) -> tuple[tuple[str, ...], str]:
    """The pairwise helpers `where` and `check` call as h(node.name, peer.name), and the
    pair filter with each such call read from the node's row: `node._no_h`, the peers
    it is false for (Engine._fill_rows). ((), "") when there are none, or when one is
    spelled inside a string literal (rewriting the text would change the string)."""
    texts = (where, check)
    if not any(_PAIRWISE_CALL.search(text) for text in texts):
        return (), ""
    if any(_RAW_OR_TRIPLE.search(text) for text in texts) or any(
        _PAIRWISE_CALL.search(text) for text in texts for text in _STRING.findall(text)
    ):
        return (), ""
    names = tuple(sorted({m.group(1) for text in texts for m in _PAIRWISE_CALL.finditer(text)}))

    def read(match: re.Match[str]) -> str:
        return f"(!(peer.{INDEX} in node.{ROW_PREFIX}{match.group(1)}))"

    return names, _pairs_filter(_PAIRWISE_CALL.sub(read, where), _PAIRWISE_CALL.sub(read, check))


def _render(template: str, rule: CompiledRule, bindings: dict[str, Any]) -> str:
    def substitute(match: re.Match[str]) -> str:
        expression = rule.placeholders[match.group(1)]
        value = value_of(expression, bindings, rule.paths, rule.calls)
        if isinstance(value, list):
            return ", ".join(str(item) for item in value) or "none"
        if isinstance(value, bool):
            return str(value).lower()
        return "" if value is None else str(value)

    return " ".join(_PLACEHOLDER.sub(substitute, template).split())


def _finding(rule: CompiledRule, bindings: dict[str, Any]) -> Finding:
    data = rule.doc.data
    subject: dict[str, str | None] = dict.fromkeys(SUBJECT_KEYS)
    for key, expression in rule.subject.items():
        value = value_of(expression, bindings, rule.paths, rule.calls)
        subject[key] = None if value in (None, "") else str(value)
    evidence = []
    for entry in data.get("evidence", []):
        item = {"file": _render(str(entry["file"]), rule, bindings)}
        if entry.get("detail"):
            item["detail"] = _render(str(entry["detail"]), rule, bindings)
        evidence.append(item)
    return Finding(
        rule=rule.id,
        severity=str(data["severity"]),
        title=str(data["title"]),
        message=_render(str(data["message"]), rule, bindings),
        subject=subject,
        evidence=evidence,
        remediation=_render(str(data["remediation"]), rule, bindings),
        references=list(data.get("references", [])),
    )


@dataclass
class RuleResult:
    """One rule's result on one shard of the nodes (the whole cluster when unsharded)."""

    rule: str
    # "run", "skipped" (no data for the whole rule), "failed", or "not-applicable" (the
    # rule is for other data planes)
    status: str
    reason: str = ""
    # whether this shard had items the rule could check, and items at all
    had_items: bool = False
    had_source: bool = False
    lacking: list[str] = field(default_factory=list)  # "<node> lacks <data>"
    findings: list[Finding] = field(default_factory=list)


class Engine:
    """Compiled rules bound to one model, checking the items of the `home` nodes (all
    nodes when None). Pairs pair each home node with every node of the cluster.
    With a `memory`, a rule that looks nothing up in the model (its verdicts and
    messages depend only on its items) reuses a result kept for the same items."""

    def __init__(self, model: Model, home: Home = None, memory: ResultMemory | None = None) -> None:
        self.model = model
        self.home = home
        self.memory = memory
        model.load_nodes(home)  # this shard's nodes' pod side, when the build left it
        self.model_helpers = ModelHelpers(model)
        self.helpers = self.model_helpers.functions()
        # helpers that read the model (routes): a rule calling one depends on more
        # than its items
        self.lookups = {helper.name for helper in self.helpers if inspect.ismethod(helper.impl)}
        nodes = node_facts(model)
        self.node_items = nodes.items
        self.collections: dict[str, Collection] = {"nodes": nodes}
        self.uses: dict[str, int] = {}
        self.netconf = netconf_fact(model)
        self.backend = backend_of(model)
        self.data_by_node = {item["name"]: set(item["data"]) for item in self.node_items}

    def _collection(self, name: str) -> Collection:
        if name not in self.collections:
            build, describe, memory = (
                COLLECTION_BUILDERS[name],
                COLLECTION_INPUTS.get(name),
                self.memory,
            )
            if memory is None or describe is None:
                self.collections[name] = build(self.model, self.home)
            else:  # a diff's second snapshot: the first one's, if made of the same inputs
                inputs = describe(self.model, self.home)
                found = memory.collection(name, inputs)
                if found is None:
                    found = build(self.model, self.home)
                    memory.keep_collection(name, inputs, found)
                self.collections[name] = found
        return self.collections[name]

    def _home_nodes(self) -> Collection:
        nodes = self.collections["nodes"]
        if self.home is None:
            return nodes
        kept = [item for item in nodes.items if item["name"] in self.home]
        return Collection(nodes.variable, kept, [item["name"] for item in kept])

    def _release(self, name: str) -> None:
        """Drop a large collection once no rule left to run iterates it."""
        self.uses[name] = self.uses.get(name, 1) - 1
        if self.uses[name] <= 0 and name != "nodes":
            self.collections.pop(name, None)

    def _missing_cluster_data(self, needs: list[str]) -> str | None:
        for need in needs:
            if need.startswith("node."):
                continue
            if need in self.model.missing:
                return f"{need}: {self.model.missing[need]}"
        return None

    def _absent(self, nodes: Iterable[str | None], needs: list[str]) -> dict[str | None, list[str]]:
        """Per node, the node data of `needs` the bundle lacks for it."""
        node_needs = [need.removeprefix("node.") for need in needs if need.startswith("node.")]
        if not node_needs:
            return {}
        absent: dict[str | None, list[str]] = {}
        for node in set(nodes):
            have = self.data_by_node.get(node or "", set())
            absent[node] = [need for need in node_needs if need not in have]
        return absent

    def _eligible(self, collection: Collection, needs: list[str]) -> tuple[list[Fact], list[str]]:
        absent = self._absent(collection.nodes, needs)  # per node, worked out once
        if not any(absent.values()):  # the usual case: every item, and no copy of 10^6
            return collection.items, []
        kept, lacking = [], set()
        for item, node in zip(collection.items, collection.nodes, strict=True):
            missing = absent[node]
            if missing:
                lacking.add(f"{node or '(no node)'} lacks {', '.join(missing)}")
                continue
            kept.append(item)
        return kept, sorted(lacking)

    def run(self, rules: list[CompiledRule]) -> list[RuleResult]:
        for rule in rules:
            name = str(rule.doc.data["for_each"])
            self.uses[name] = self.uses.get(name, 0) + 1
        results = []
        for rule in rules:
            results.append(self._run_one(rule))
            self._release(str(rule.doc.data["for_each"]))
        return results

    def _run_one(self, rule: CompiledRule) -> RuleResult:
        backends = rule.doc.data.get("backends")
        if backends and self.backend.name not in backends:
            return RuleResult(
                rule.id,
                "not-applicable",
                f"for {', '.join(map(str, backends))}; the cluster runs {self.backend.label}",
            )
        needs = list(rule.doc.data.get("needs", []))
        missing = self._missing_cluster_data(needs)
        if missing is not None:
            return RuleResult(rule.id, "skipped", f"no data: {missing}")
        for_each = str(rule.doc.data["for_each"])
        pairs_or_nodes = for_each in (PAIRS, "nodes")
        source = self._home_nodes() if pairs_or_nodes else self._collection(for_each)
        if self._judges_shared(rule, source, needs):
            return self._run_shared(rule, SINGLE[for_each], source)
        items, lacking = self._eligible(source, needs)
        inputs = None
        if self.memory is not None and self._reads_only_items(rule):
            peers = self.node_items if for_each == PAIRS else None
            inputs = RuleInputs(for_each, items, peers, lacking, bool(source.items), self.netconf)
            known = self.memory.recall(rule.id, inputs)
            if known is not None:
                return known
        result = RuleResult(
            rule.id, "run", had_items=bool(items), had_source=bool(source.items), lacking=lacking
        )
        try:
            if for_each == PAIRS:
                self._run_pairs(rule, items, result.findings)
                result.findings = fold_peers(result.findings, len(self.node_items) - 1)
            else:
                self._run_single(rule, SINGLE[for_each], items, result.findings)
        except CelEvalError as exc:
            result = RuleResult(rule.id, "failed", f"evaluation failed: {exc}")
        if inputs is not None and self.memory is not None:
            self.memory.keep(rule.id, inputs, result)
        return result

    def _judges_shared(self, rule: CompiledRule, source: Collection, needs: list[str]) -> bool:
        """Whether the rule can judge each distinct fact of a shared collection once:
        it reads neither the item's node nor its file, every node holding entries has
        the data it needs, and no diff compares its items one by one."""
        shared = source.shared
        if shared is None or self.memory is not None:
            return False
        fields = rule.projections[SINGLE[str(rule.doc.data["for_each"])]]
        if fields is None or "node" in fields or "file" in fields:
            return False
        return not any(self._absent(shared.holders(), needs).values())

    def _run_shared(self, rule: CompiledRule, variable: str, source: Collection) -> RuleResult:
        shared = source.shared
        assert shared is not None
        held = bool(shared.holders())
        result = RuleResult(rule.id, "run", had_items=held, had_source=held)
        try:
            bad = set(self._failing_items(rule, variable, shared.facts))
        except CelEvalError as exc:
            return RuleResult(rule.id, "failed", f"evaluation failed: {exc}")
        for node, file, indexes in shared.held if bad else ():
            for index in indexes:
                if index in bad:
                    bindings = {variable: shared.item(node, file, index), "netconf": self.netconf}
                    result.findings.append(_finding(rule, bindings))
        return result

    def _reads_only_items(self, rule: CompiledRule) -> bool:
        data = rule.doc.data
        texts = [str(data.get("where") or ""), str(data["assert"])]
        texts += [expression.source for expression in rule.placeholders.values()]
        texts += [expression.source for expression in rule.subject.values()]
        calls = {name for text in texts for name in _CALL.findall(text)}
        return not calls & self.lookups

    def _run_single(
        self, rule: CompiledRule, variable: str, items: list[Fact], findings: list[Finding]
    ) -> None:
        for index in self._failing_items(rule, variable, items):
            bindings = {variable: items[index], "netconf": self.netconf}
            findings.append(_finding(rule, bindings))

    def _failing_items(self, rule: CompiledRule, variable: str, items: list[Fact]) -> list[int]:
        fields = rule.projections[variable]
        alike = group_alike(items, fields, BUDGET) if fields is not None else None
        if alike is None:
            return self._failing(rule, items, fields)
        # a verdict depends only on the fields the rule reads: ask CEL once per distinct
        # set of values (10^5 pods of a healthy cluster hold a few)
        shown = list(alike.first.values())
        bad = self._failing(rule, [items[index] for index in shown], fields)
        bad_keys = {alike.keys[shown[index]] for index in bad}
        return [i for i, key in enumerate(alike.keys) if key in bad_keys] if bad else []

    def _failing(
        self, rule: CompiledRule, items: list[Fact], fields: tuple[str, ...] | None
    ) -> list[int]:
        failing: list[int] = []
        # projected a chunk at a time: never a second copy of a 10^6-item collection
        for start in range(0, len(items), BUDGET):
            chunk = _project(items[start : start + BUDGET], fields, offset=start)
            failing += rule.filter_expression.evaluate({"items": chunk, "netconf": self.netconf})
        return [int(index) for index in failing]

    def _run_pairs(self, rule: CompiledRule, nodes: list[Fact], findings: list[Finding]) -> None:
        peers = _project(self.node_items, rule.projections["peer"])
        outer = _project(nodes, rule.projections["node"])
        expression = rule.filter_expression
        if rule.row_filter is not None and self._fill_rows(rule.pairwise, outer):
            expression = rule.row_filter
        step = max(1, PAIR_STEPS // (len(peers) + 1))
        for start in range(0, len(outer), step):
            chunk = outer[start : start + step]
            results = self._failing_pairs(expression, chunk, peers)
            for node, failing in zip(chunk, results, strict=True):
                for index in failing:
                    bindings = {
                        "node": nodes[int(node[INDEX])],
                        "peer": self.node_items[int(index)],
                        "netconf": self.netconf,
                    }
                    findings.append(_finding(rule, bindings))

    def _failing_pairs(
        self, expression: CompiledExpression, chunk: list[Fact], peers: list[Fact]
    ) -> list[list[int]]:
        """Per node of `chunk`, the indexes of the peers it fails with."""
        try:
            return expression.evaluate({"nodes": chunk, "peers": peers, "netconf": self.netconf})
        except CelEvalError as exc:
            if _OVERRUN not in str(exc) or len(chunk) == 1:
                raise
            half = len(chunk) // 2  # many failing pairs: their map took the steps
            return self._failing_pairs(expression, chunk[:half], peers) + self._failing_pairs(
                expression, chunk[half:], peers
            )

    def _fill_rows(self, helpers: tuple[str, ...], outer: list[Fact]) -> bool:
        """Each node's row of each pairwise helper (the peers, by index, it is false for),
        asked of the helpers in Python: CEL calling back once a pair costs more than the
        answer. False when a helper raised on some pair: the rule then calls it from CEL
        as written, where only the pairs its `where` admits reach it."""
        names = [item["name"] for item in self.node_items]
        failing = self.model_helpers.failing
        try:
            for item in outer:
                for helper in helpers:
                    item[ROW_PREFIX + helper] = failing(helper, item["name"], names)
        except Exception:  # noqa: BLE001 - any error: the written form decides
            return False
        return True


def merge_results(
    rule_ids: list[str],
    shards: list[list[RuleResult]],
    outcome: Outcome,
    steps: dict[str, frozenset[str]],
) -> None:
    """One outcome from every shard's results: a rule that failed anywhere is skipped
    (with none of its findings); one that no shard could check for lack of data is
    skipped; one some nodes lacked data for is partial. Findings of rules that see one
    cause at one hop (`steps`: see rule_steps) are folded into one (rules/causes.py)."""
    by_rule: dict[str, list[RuleResult]] = {rule: [] for rule in rule_ids}
    for shard in shards:
        for result in shard:
            by_rule[result.rule].append(result)
    for rule, results in by_rule.items():
        other = next((r for r in results if r.status == "not-applicable"), None)
        if other is not None:
            outcome.not_applicable.append({"rule": rule, "reason": other.reason})
            continue
        failed = next((r for r in results if r.status != "run"), None)
        if failed is not None:
            outcome.skipped.append({"rule": rule, "reason": failed.reason})
            continue
        lacking = sorted({entry for r in results for entry in r.lacking})
        if not any(r.had_items for r in results) and any(r.had_source for r in results):
            outcome.skipped.append({"rule": rule, "reason": "no data: " + "; ".join(lacking[:5])})
            continue
        if lacking:
            more = f" (+{len(lacking) - 5} more)" if len(lacking) > 5 else ""
            outcome.partial.append({"rule": rule, "reason": "; ".join(lacking[:5]) + more})
        outcome.findings.extend(finding for r in results for finding in r.findings)
        outcome.rules_run.append(rule)
    outcome.findings = fold_same_cause(outcome.findings, steps)
    sort_findings(outcome.findings)


def sort_findings(findings: list[Finding]) -> None:
    """In the report's order: severity (error first), then rule id, then subject."""
    order = {severity: rank for rank, severity in enumerate(SEVERITIES)}
    findings.sort(
        key=lambda f: (order.get(f.severity, 9), f.rule, [str(v) for v in f.subject.values()])
    )


def compile_rules(docs: Iterable[RuleDocument]) -> tuple[list[CompiledRule], list[RuleProblem]]:
    return compile_rules_with(docs, helper_signatures())


# Below this many nodes a second process costs more than it saves.
PARALLEL_FROM_NODES = 64


def evaluate(
    model: Model,
    docs: Iterable[RuleDocument],
    workers: int | None = None,
    reachability: bool = False,
    nft: NftSource | None = None,
    drawn: bool = False,
) -> Outcome:
    """Compile and run `docs` against `model`; broken rules are reported, not fatal.

    With `workers` > 1 (by default: two on a multi-core machine, for clusters of
    PARALLEL_FROM_NODES nodes or more) the nodes are split into that many shards, each
    checked in a forked child that shares the model; node-pair rules pair a shard's
    nodes with every node, so the findings are the same as in one process.
    `reachability`: walk every pair too (analyzer/reach/), with each node's nft ruleset
    read by `nft` where the caller has one. `drawn`: keep what a picture of the cluster
    needs as well (Outcome.drawing: each node pair's verdict, each node's MTU chains).
    """
    if workers is None:
        workers = 2 if can_fork() and len(model.nodes) >= PARALLEL_FROM_NODES else 1
    with paused_gc():
        return _evaluate(model, list(docs), workers, reachability, nft, drawn)


def deal(names: list[str], shards: int) -> list[frozenset[str]]:
    """`names` dealt round-robin into `shards` sets (sorted names: neighbours by name,
    often alike in size, end up in different shards)."""
    return [frozenset(names[index::shards]) for index in range(shards)]


def node_names(*models: Model) -> list[str]:
    """Every node name of the models, and pods' node names they have no node for."""
    return sorted(
        {name for model in models for name in model.nodes}
        | {pod.node or "" for model in models for pod in model.pods}
    )


def shard_nodes(model: Model, shards: int) -> list[frozenset[str]]:
    """The nodes (and pods' node names the cluster has no node for) dealt round-robin."""
    return deal(node_names(model), shards)


def run_shard(
    model: Model, docs: list[RuleDocument], home: Home, memory: ResultMemory | None = None
) -> list[RuleResult]:
    """Every rule's result for the `home` nodes (valid rules only: see compile_rules)."""
    engine = Engine(model, home, memory)
    compiled, _ = compile_rules_with(docs, engine.helpers)
    return engine.run(compiled)


def compile_rules_with(
    docs: Iterable[RuleDocument], helpers: list[HelperFunction]
) -> tuple[list[CompiledRule], list[RuleProblem]]:
    compiled, problems = [], []
    for doc in docs:
        try:
            compiled.append(compile_rule(doc, helpers))
        except RuleCompileFailure as failure:
            problems.append(failure.problem)
    return compiled, problems


def rule_steps(docs: Iterable[RuleDocument]) -> dict[str, frozenset[str]]:
    """Rule id -> the trace steps it declares (`step:`), for rules that declare some."""
    return {doc.id: _steps(doc.data.get("step")) for doc in docs if doc.data.get("step")}


def _steps(value: object) -> frozenset[str]:
    """A rule's `step`: one step, or the list of them its cause shows at."""
    return frozenset(map(str, value)) if isinstance(value, list) else frozenset({str(value)})


def run_shard_and_signatures(
    model: Model,
    docs: list[RuleDocument],
    home: Home,
    nft: NftSource | None = None,
    drawn: bool = False,
) -> tuple[list[RuleResult], list[Any]]:
    """A shard's rule results and its nodes' reachability signatures (analyzer/reach/),
    taken while the shard holds its nodes' pod side (with their MTU chains if `drawn`)."""
    from needle.analyzer.reach.facts import collect_facts  # reach builds on the engine

    results = run_shard(model, docs, home)
    return results, collect_facts(model, home, nft, mtu_chains=drawn)


def _evaluate(
    model: Model,
    docs: list[RuleDocument],
    workers: int,
    reachability: bool = False,
    nft: NftSource | None = None,
    drawn: bool = False,
) -> Outcome:
    outcome = Outcome()
    outcome.objects_invalid = [problem.to_json() for problem in model.objects_invalid]
    backend_of(model)  # detected now if the model was built without it
    outcome.dataplane = model.dataplane.to_json() if model.dataplane is not None else None
    # compiled here only to report broken rules; each shard compiles its own, bound to
    # its helpers (0.04 s for 20 rules)
    compiled, problems = compile_rules_with(docs, helper_signatures())
    outcome.problems.extend(problems)
    valid = [rule.doc for rule in compiled]
    homes = shard_nodes(model, workers) if workers > 1 else [None]
    tasks = [
        partial(run_shard_and_signatures, model, valid, home, nft, drawn)
        if reachability
        else partial(run_shard, model, valid, home)
        for home in homes
    ]
    done: list[Any] = run_forked(tasks, "rule evaluation") if workers > 1 else [tasks[0]()]
    steps = rule_steps(valid)
    if not reachability:
        merge_results([rule.id for rule in compiled], done, outcome, steps)
        return outcome
    merge_results([rule.id for rule in compiled], [results for results, _ in done], outcome, steps)
    from needle.analyzer.reach.findings import merge
    from needle.analyzer.reach.grid import Grid
    from needle.analyzer.reach.judge import judge

    facts = [fact for _, shard_facts in done for fact in shard_facts]
    grid = Grid(model) if drawn else None
    reach = judge(model, facts, nft=nft, grid=grid)
    outcome.findings = merge(outcome.findings, reach, steps)
    sort_findings(outcome.findings)
    outcome.reachability = reach.to_json()
    if drawn:
        assert grid is not None
        outcome.drawing = Drawing(reach, grid, {fact.name: fact.mtu_chains for fact in facts})
    return outcome
