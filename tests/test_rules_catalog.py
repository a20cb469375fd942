"""Rule files: the built-ins load, broken files are named by line and column."""

from __future__ import annotations

import json
import subprocess
import sys

from needle.analyzer.rules.catalog import RuleProblem, load_catalog, parse_rule

GOOD_RULE = """\
id: custom.node.example
title: An example rule
severity: warning
for_each: nodes
assert: "node.pod_cidr != ''"
message: "{node.name} example"
subject: {node: node.name}
remediation: do the thing
"""


def needle(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "needle", *args], capture_output=True, text=True, check=False
    )


def test_builtin_rules_load_cleanly():
    catalog = load_catalog()
    assert catalog.problems == []
    assert "flannel.route.peer-podcidr-missing" in catalog.rules
    assert all(rule.builtin for rule in catalog.rules.values())


def test_yaml_syntax_error_names_line_and_column():
    problem = parse_rule("id: x\ntitle: [unclosed\nseverity: error\n", "bad.yaml")
    assert isinstance(problem, RuleProblem)
    assert str(problem).startswith("bad.yaml:")
    assert problem.line is not None and problem.column is not None
    assert "not valid YAML" in problem.message


def test_schema_error_points_at_the_offending_field():
    text = GOOD_RULE.replace("severity: warning", "severity: critical")
    problem = parse_rule(text, "sev.yaml")
    assert isinstance(problem, RuleProblem)
    assert (problem.line, problem.column) == (3, 11)
    assert "severity" in problem.message and "critical" in problem.message


def test_missing_field_is_named():
    text = GOOD_RULE.replace("remediation: do the thing\n", "")
    problem = parse_rule(text, "r.yaml")
    assert isinstance(problem, RuleProblem)
    assert problem.message == "(top level): missing remediation"


def test_user_rule_overrides_builtin_by_id_and_broken_ones_do_not_stop_the_rest(tmp_path):
    override = GOOD_RULE.replace("custom.node.example", "kubernetes.node.podcidr-missing")
    (tmp_path / "override.yaml").write_text(override)
    (tmp_path / "broken.yml").write_text("id: [\n")
    catalog = load_catalog([tmp_path])
    rule = catalog.rules["kubernetes.node.podcidr-missing"]
    assert not rule.builtin and rule.severity == "warning"
    assert [p.source for p in catalog.problems] == [str(tmp_path / "broken.yml")]
    assert "flannel.route.peer-podcidr-missing" in catalog.rules


def test_rules_list_cli(tmp_path):
    listed = needle("rules", "list", "--format", "json")
    assert listed.returncode == 0
    ids = {row["id"] for row in json.loads(listed.stdout)}
    assert "flannel.node.duplicate-public-ip" in ids
    (tmp_path / "broken.yaml").write_text("id: x\n")
    broken = needle("rules", "list", "--rules", str(tmp_path))
    assert broken.returncode == 2
    assert "broken.yaml" in broken.stderr and "Traceback" not in broken.stderr
    assert "flannel.node.duplicate-public-ip" in broken.stdout


def test_rules_explain_cli():
    explained = needle("rules", "explain", "flannel.route.peer-podcidr-missing")
    assert explained.returncode == 0
    assert "rancher/rancher/issues/13644" in explained.stdout
    assert "remediation:" in explained.stdout
    missing = needle("rules", "explain", "nope.nope")
    assert missing.returncode == 2
    assert missing.stderr.strip() == (
        "needle: error: no rule with id 'nope.nope' (see 'needle rules list')"
    )
