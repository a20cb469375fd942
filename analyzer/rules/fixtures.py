"""Rule fixtures: each rule proves on real bundles that it fires where it should and
stays quiet where it should not.

A fixture file (rules/tests/<rule id>.yaml) names the rule and its cases. A case takes a
bundle (a path relative to the fixture file), optionally patches files inside a private
copy of it, and lists the findings the rule must give, by subject fields:

    rule: flannel.route.peer-podcidr-missing
    cases:
      - name: fires when a node lost a peer's route
        bundle: ../../samples/lab-route-missing.tar.gz
        expect: [{node: lab-node-1, peer_node: lab-node-2, cidr: 10.244.2.0/24}]
      - name: quiet on a healthy cluster
        bundle: ../../samples/lab-healthy.tar.gz
        expect: []

Patches: {file: PATH, replace: {old: TEXT, new: TEXT}} (old must occur),
{file: PATH, json_set: {path: "items[metadata.name=n1].spec.podCIDR", value: V}},
{file: PATH, delete: true}.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from needle.analyzer.bundle import open_bundle
from needle.analyzer.errors import AnalyzerError
from needle.analyzer.model import build_model
from needle.analyzer.rules.catalog import RuleDocument
from needle.analyzer.rules.engine import Finding, evaluate

_STEP = re.compile(r'\.?([^.\[\]"]+)|\["([^"]*)"\]|\[([^\]]*)\]')


@dataclass
class CaseResult:
    fixture: str
    rule: str
    name: str
    passed: bool
    details: list[str] = field(default_factory=list)
    fires: bool = False  # the case expects findings
    findings: list[Finding] = field(default_factory=list)  # what the rule reported


def _tokens(path: str) -> list[tuple[str, str]]:
    """`items[metadata.name=n1].metadata.annotations["a.b/c"]` -> steps: ("key", ...),
    ("select", "metadata.name=n1") or ("index", "0")."""
    steps: list[tuple[str, str]] = []
    for match in _STEP.finditer(path):
        key, quoted, selector = match.groups()
        if key is not None:
            steps.append(("key", key))
        elif quoted is not None:
            steps.append(("key", quoted))
        elif selector.isdigit():
            steps.append(("index", selector))
        else:
            steps.append(("select", selector))
    return steps


def _walk(document: Any, path: str) -> tuple[Any, str | int]:
    """The container holding the last step of `path`, and that step's key or index."""
    steps = _tokens(path)
    if not steps:
        raise KeyError(path)
    current = document
    for kind, value in steps[:-1]:
        if kind == "key":
            current = current.setdefault(value, {})
        elif kind == "index":
            current = current[int(value)]
        else:
            field_path, _, wanted = value.partition("=")
            current = next(item for item in current if _get(item, field_path) == wanted)
    kind, value = steps[-1]
    if kind == "select":
        raise KeyError(path)
    return current, int(value) if kind == "index" else value


def _get(document: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        document = document.get(part) if isinstance(document, dict) else None
    return document


def _apply(root: Path, patch: dict[str, Any], where: str) -> None:
    relpath = str(patch.get("file", ""))
    target = (root / relpath).resolve()
    if not relpath or root.resolve() not in target.parents:
        raise AnalyzerError(f"{where}: patch file {relpath!r} is not inside the bundle")
    if patch.get("delete"):
        target.unlink(missing_ok=True)
        return
    if not target.is_file():
        raise AnalyzerError(f"{where}: the bundle has no {relpath}")
    if "replace" in patch:
        old, new = str(patch["replace"]["old"]), str(patch["replace"]["new"])
        text = target.read_text()
        if old not in text:
            raise AnalyzerError(f"{where}: {relpath} does not contain {old!r}")
        target.write_text(text.replace(old, new))
    elif "json_set" in patch:
        document = json.loads(target.read_text())
        try:
            container, key = _walk(document, str(patch["json_set"]["path"]))
            container[key] = patch["json_set"]["value"]
        except (KeyError, IndexError, StopIteration, TypeError):
            raise AnalyzerError(f"{where}: no {patch['json_set']['path']} in {relpath}") from None
        target.write_text(json.dumps(document))
    else:
        raise AnalyzerError(f"{where}: a patch needs replace, json_set or delete")


def _matches(expected: dict[str, Any], subject: dict[str, Any]) -> bool:
    return all(
        subject.get(key) == (None if value is None else str(value))
        for key, value in expected.items()
    )


def run_case(fixture: Path, rule: RuleDocument, case: dict[str, Any]) -> CaseResult:
    name = str(case.get("name", "unnamed case"))
    expected = list(case.get("expect") or [])
    result = CaseResult(str(fixture), rule.id, name, passed=False, fires=bool(expected))
    bundle_path = (fixture.parent / str(case.get("bundle", ""))).resolve()
    with tempfile.TemporaryDirectory(prefix="needle-fixture-") as scratch:
        with open_bundle(bundle_path) as original:
            copy = Path(scratch) / "bundle"
            original.export(copy)
        for patch in case.get("patch") or []:
            _apply(copy, patch, f"{fixture.name}: {name}")
        with open_bundle(copy) as bundle:
            outcome = evaluate(build_model(bundle), [rule])
    if outcome.problems:
        result.details = [str(problem) for problem in outcome.problems]
        return result
    other_plane = [s["reason"] for s in outcome.not_applicable if s["rule"] == rule.id]
    if other_plane and not expected:
        # written for other data planes: quiet by design, which is what the case expects
        result.passed = True
        return result
    if rule.id not in outcome.rules_run:
        reasons = [s["reason"] for s in outcome.skipped if s["rule"] == rule.id] + other_plane
        result.details = [f"the rule did not run: {'; '.join(reasons)}"]
        return result
    result.findings = list(outcome.findings)
    remaining = [finding.subject for finding in outcome.findings]
    for want in expected:
        match = next((s for s in remaining if _matches(want, s)), None)
        if match is None:
            result.details.append(f"expected a finding with {want}, got none")
        else:
            remaining.remove(match)
    for extra in remaining:
        shown = {k: v for k, v in extra.items() if v is not None}
        result.details.append(f"unexpected finding {shown}")
    result.passed = not result.details
    return result


def fixture_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.suffix in {".yaml", ".yml"})


def run_fixtures(path: Path, rules: dict[str, RuleDocument]) -> list[CaseResult]:
    results: list[CaseResult] = []
    for fixture in fixture_files(path):
        try:
            document = yaml.safe_load(fixture.read_text())
        except yaml.YAMLError as exc:
            raise AnalyzerError(f"{fixture}: not valid YAML ({exc})") from None
        if not isinstance(document, dict) or "rule" not in document:
            raise AnalyzerError(f"{fixture}: a fixture file names its rule and cases")
        rule = rules.get(str(document["rule"]))
        if rule is None:
            results.append(
                CaseResult(
                    str(fixture),
                    str(document["rule"]),
                    "(all)",
                    False,
                    [f"no rule {document['rule']!r}"],
                )
            )
            continue
        for case in document.get("cases") or []:
            results.append(run_case(fixture, rule, case))
    return results
