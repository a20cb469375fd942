"""Every built-in rule proves on real lab bundles that it fires where it should and only
there (rules/tests/*.yaml, the same cases `needle rules test rules/tests` runs)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from needle.analyzer.rules.catalog import load_catalog
from needle.analyzer.rules.fixtures import fixture_files, run_case

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "rules" / "tests"
CATALOG = load_catalog()


def cases():
    for fixture in fixture_files(FIXTURES):
        document = yaml.safe_load(fixture.read_text())
        for case in document["cases"]:
            yield pytest.param(
                fixture, document["rule"], case, id=f"{document['rule']}: {case['name']}"
            )


@pytest.mark.parametrize(("fixture", "rule_id", "case"), list(cases()))
def test_fixture_case(fixture, rule_id, case):
    result = run_case(fixture, CATALOG.rules[rule_id], case)
    assert result.passed, result.details
    # a finding without the bundle file that proves it sends the reader hunting
    for finding in result.findings:
        assert finding.evidence, f"{rule_id}: a finding with no evidence"
        assert all(item["file"] for item in finding.evidence), finding.evidence


def test_every_builtin_rule_has_a_firing_and_a_quiet_case():
    coverage: dict[str, set[bool]] = {rule_id: set() for rule_id in CATALOG.rules}
    for fixture in fixture_files(FIXTURES):
        document = yaml.safe_load(fixture.read_text())
        for case in document["cases"]:
            coverage[document["rule"]].add(bool(case.get("expect")))
    lacking = {rule: sorted(kinds) for rule, kinds in coverage.items() if kinds != {True, False}}
    assert lacking == {}
