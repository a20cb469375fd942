"""The rule engine: compile errors by line and column, skips for absent data, user
rules, and the report contract (DESIGN.md §5)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from needle.analyzer.bundle import open_bundle
from needle.analyzer.model import build_model
from needle.analyzer.rules.catalog import load_catalog, parse_rule
from needle.analyzer.rules.engine import compile_rules, evaluate

REPO = Path(__file__).resolve().parents[2]
HEALTHY = REPO / "samples" / "lab-healthy.tar.gz"
ROUTE_MISSING = REPO / "samples" / "lab-route-missing.tar.gz"

RULE = """\
id: custom.node.example
title: An example rule
severity: warning
for_each: nodes
where: "node.collected"
assert: "node.overlay_mtu >= 1450"
message: "{node.name} has overlay MTU {node.overlay_mtu}"
subject: {node: node.name}
remediation: raise it on {node.name}
"""


def needle(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "needle", *args], capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="module")
def healthy_model():
    with open_bundle(HEALTHY) as bundle:  # open while rules read routes on first use
        yield build_model(bundle)


def test_cel_syntax_error_is_named_by_line_and_column():
    doc = parse_rule(RULE.replace('"node.overlay_mtu >= 1450"', '"node.overlay_mtu >= "'), "r.yaml")
    _, problems = compile_rules([doc])
    (problem,) = problems
    assert problem.source == "r.yaml" and problem.line == 6
    assert problem.column is not None and problem.column > 9
    assert "assert" in problem.message and "Syntax error" in problem.message


def test_cel_type_error_is_caught_at_compile_time():
    doc = parse_rule(RULE.replace('"node.collected"', "\"node.collected + 1 == 'x'\""), "t.yaml")
    _, problems = compile_rules([doc])
    assert problems and problems[0].line == 5 and "where" in problems[0].message


def test_unknown_helper_and_collection_are_named():
    doc = parse_rule(RULE.replace("node.overlay_mtu >= 1450", "no_such_helper(node.name)"), "h")
    assert "undeclared reference" in compile_rules([doc])[1][0].message
    doc = parse_rule(RULE.replace("for_each: nodes", "for_each: planets"), "c")
    assert "unknown collection 'planets'" in compile_rules([doc])[1][0].message


def test_a_broken_rule_does_not_stop_the_others(healthy_model):
    good = parse_rule(RULE, "good.yaml")
    bad = parse_rule(
        RULE.replace("custom.node.example", "custom.node.broken").replace(
            '"node.collected"', '"node.collected &&"'
        ),
        "bad.yaml",
    )
    outcome = evaluate(healthy_model, [bad, good])
    assert [p.source for p in outcome.problems] == ["bad.yaml"]
    assert outcome.rules_run == ["custom.node.example"]


def test_rules_without_their_data_are_skipped_with_the_reason(tmp_path):
    from needle.analyzer.rules.catalog import load_catalog

    with open_bundle(HEALTHY) as bundle:
        root = tmp_path / "b"

        bundle.export(root)
    manifest = json.loads((root / "manifest.json").read_text())
    for resource in manifest["cluster"]["resources"]:
        if resource["resource"] == "nodes":
            resource.update(status="forbidden", file=None, error="nodes is forbidden")
    for node in manifest["nodes"]:
        node["commands"] = [c for c in node["commands"] if c["id"] != "sysctl-net"]
    (root / "manifest.json").write_text(json.dumps(manifest))
    with open_bundle(root) as bundle:
        outcome = evaluate(build_model(bundle), load_catalog().rules.values())
    skipped = {s["rule"]: s["reason"] for s in outcome.skipped}
    assert skipped["kubernetes.node.podcidr-missing"].startswith("no data: cluster.nodes")
    assert "forbidden" in skipped["flannel.node.duplicate-public-ip"]
    assert "lacks sysctl" in skipped["kernel.sysctl.ip-forward-off"]
    assert "flannel.mtu.overlay-exceeds-underlay" in outcome.rules_run


def test_rule_messages_name_node_cidr_and_values():
    with open_bundle(ROUTE_MISSING) as bundle:
        outcome = evaluate(build_model(bundle), load_catalog().rules.values())
    (finding,) = [f for f in outcome.findings if f.severity == "error"]
    assert finding.message == "lab-node-1 has no route to lab-node-2's pod CIDR 10.244.2.0/24"
    assert finding.evidence[0]["file"].startswith("nodes/lab-node-1/")
    assert (
        "ip route replace 10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink" in finding.remediation
    )


def test_analyze_json_is_the_report_contract():
    result = needle("analyze", str(ROUTE_MISSING), "--format", "json")
    assert result.returncode == 1, result.stderr  # an error finding, default --fail-on error
    report = json.loads(result.stdout)
    assert report["format"] == "needle.report/v1"
    assert set(report) == {"format", "bundle", "findings", "summary", "coverage"}
    assert report["bundle"]["nodes"] == 3 and report["bundle"]["created"]
    finding = next(f for f in report["findings"] if f["severity"] == "error")
    assert set(finding) == {
        "rule",
        "severity",
        "title",
        "message",
        "subject",
        "evidence",
        "remediation",
        "references",
        "observed",
    }
    # the sample's captures are empty and it has no probes: nothing observed to say
    assert finding["observed"] is None
    assert {item["source"] for item in finding["evidence"]} == {"config"}
    assert set(finding["subject"]) == {"node", "peer_node", "netns", "pod", "interface", "cidr"}
    # the tx checksum offload rule is quiet on the lab's current kernel
    assert report["summary"] == {"error": 1, "warning": 0, "info": 0}
    # every rule ran but those written for other data planes, which say so
    coverage = report["coverage"]
    others = {entry["rule"] for entry in coverage["rules_not_applicable"]}
    assert coverage["rules_run"] == len(load_catalog().rules) - len(others)
    assert coverage["rules_skipped"] == []
    catalog = load_catalog().rules
    assert others == {
        rule for rule, doc in catalog.items() if "vxlan" not in doc.data.get("backends", ["vxlan"])
    }
    assert coverage["dataplane"]["backend"] == "vxlan" and coverage["dataplane"]["analysed"]


@pytest.mark.parametrize(
    ("fail_on", "bundle", "code"),
    [
        ("error", HEALTHY, 0),
        ("info", HEALTHY, 0),  # the healthy lab is clean at every severity
        ("info", ROUTE_MISSING, 1),
        ("never", ROUTE_MISSING, 0),
        ("warning", ROUTE_MISSING, 1),
    ],
)
def test_exit_codes_follow_fail_on(fail_on, bundle, code):
    assert needle("analyze", str(bundle), "--fail-on", fail_on).returncode == code


def test_markdown_and_text_and_output_file(tmp_path):
    markdown = needle("analyze", str(ROUTE_MISSING), "--format", "markdown", "--fail-on", "never")
    assert markdown.stdout.startswith("## needle analysis")
    assert "| ERROR | lab-node-1 has no route" in markdown.stdout
    text = needle("analyze", str(ROUTE_MISSING), "-o", str(tmp_path / "r.txt"))
    assert text.returncode == 1 and text.stdout == ""
    saved = (tmp_path / "r.txt").read_text()
    assert "ERRORS (1)" in saved and "\x1b[" not in saved, "no colour in a file"


def test_user_rules_override_builtins_and_broken_ones_are_reported(tmp_path):
    (tmp_path / "override.yaml").write_text(
        RULE.replace("custom.node.example", "flannel.route.peer-podcidr-missing").replace(
            "node.overlay_mtu >= 1450", "false"
        )
    )
    (tmp_path / "broken.yaml").write_text(RULE.replace('"node.collected"', '"(("'))
    result = needle("analyze", str(HEALTHY), "--rules", str(tmp_path), "--format", "json")
    report = json.loads(result.stdout)
    overridden = [
        f for f in report["findings"] if f["rule"] == "flannel.route.peer-podcidr-missing"
    ]
    assert len(overridden) == 3 and overridden[0]["severity"] == "warning"
    assert "broken.yaml:5" in result.stderr
    assert report["coverage"]["rules_invalid"]
    assert result.returncode == 2, "invalid input, though the valid rules still report"
    diff = needle("diff", str(HEALTHY), str(HEALTHY), "--rules", str(tmp_path))
    assert diff.returncode == 2 and "broken.yaml:5" in diff.stderr
    assert "No changes." in diff.stdout


def test_rules_validate_cli(tmp_path):
    assert needle("rules", "validate", str(REPO / "rules")).returncode == 0
    (tmp_path / "bad.yaml").write_text(RULE.replace('"node.collected"', '"node.collected +"'))
    result = needle("rules", "validate", str(tmp_path))
    assert result.returncode == 2
    assert f"{tmp_path / 'bad.yaml'}:5:" in result.stdout


def test_rules_test_cli_runs_the_builtin_fixtures():
    result = needle("rules", "test", str(REPO / "rules" / "tests"))
    assert result.returncode == 0, result.stdout
    assert result.stdout.strip().splitlines()[-1].endswith(" passed, 0 failed")


def test_the_rule_catalogue_page_is_generated_from_the_rules():
    result = needle("rules", "list", "--format", "markdown")
    committed = (REPO / "docs" / "rule-catalogue.md").read_text()
    assert result.stdout == committed, (
        "docs/rule-catalogue.md is stale: needle rules list --format markdown > "
        "docs/rule-catalogue.md"
    )


def test_messages_render_fields_lists_and_flags_and_an_absent_field_fails_the_rule(
    healthy_model,
):
    """Field placeholders are looked up without CEL: what they render, and how a
    missing field fails, must be what CEL gives."""
    shown = RULE.replace("node.overlay_mtu >= 1450", "false").replace(
        '"{node.name} has overlay MTU {node.overlay_mtu}"',
        "\"{node.name} {node.overlay_mtu} {node.collected} {node.data} {node.name + '!'}\"",
    )
    # helpers called on fields are called directly too
    shown = shown.replace(
        "remediation: raise it on {node.name}",
        'remediation: "{cidr_network(node.pod_cidr)} {route_dev( node.name , node.pod_cidr )}"',
    )
    outcome = evaluate(healthy_model, [parse_rule(shown, "shown.yaml")], workers=1)
    first = outcome.findings[0]
    name, mtu, collected, *data, bang = first.message.split(" ")
    node = healthy_model.nodes[name]
    assert mtu == str(node.interface("flannel.1").mtu) and collected == "true"
    assert data and data[0].endswith(",") and bang == f"{name}!"
    assert first.subject["node"] == name
    network = node.pod_cidr.split("/")[0]
    assert (
        first.remediation
        == f"{network} {','.join(r.dev for r in node.host.routes if r.dst == node.pod_cidr)}"
    )
    absent = shown.replace("{node.collected}", "{node.no_such_field}")
    outcome = evaluate(healthy_model, [parse_rule(absent, "absent.yaml")], workers=1)
    assert outcome.findings == []
    (skipped,) = outcome.skipped
    assert skipped["rule"] == "custom.node.example" and "no_such_field" in skipped["reason"]


def test_only_helper_calls_on_fields_and_quoted_text_skip_cel():
    from needle.analyzer.rules.helpers import helper_signatures
    from needle.analyzer.rules.placeholders import helper_call

    helpers = {helper.name: helper for helper in helper_signatures()}
    helper, arguments = helper_call("has_route(node.name, peer.pod_cidr, '')", helpers)
    assert helper.name == "has_route" and arguments == (("node", "name"), ("peer", "pod_cidr"), "")
    for expression in (
        "has_route(node.name, peer.pod_cidr)",  # an argument short: CEL says so
        "route_via(node.name, peer.pod_cidr + '/24')",
        "route_via(node.name, 'it\\'s')",
        "no_such_helper(node.name)",
        "size(node.data)",
        "cidr_network(peer.pod_cidr) + 'x'",
    ):
        assert helper_call(expression, helpers) is None, expression


def test_a_need_no_node_data_can_meet_is_an_invalid_rule():
    """A typo in `needs` would skip the rule on every node as "lacking" data: refused."""
    doc = parse_rule(RULE + "needs: [node.neigh]\n", "typo.yaml")
    _, problems = compile_rules([doc])
    (problem,) = problems
    assert "unknown node data node.neigh" in problem.message
    assert "node.neighbours" in problem.message


def test_every_collection_has_one_builder_and_its_variable_is_projected(healthy_model):
    """SINGLE (what for_each takes) and the facts' builders name the same collections,
    each with the loop variable the engine projects fields of."""
    from needle.analyzer.rules import engine
    from needle.analyzer.rules.facts import COLLECTION_BUILDERS

    assert set(engine.SINGLE) == {"nodes", *COLLECTION_BUILDERS}
    for name, build in COLLECTION_BUILDERS.items():
        variable = build(healthy_model, None).variable
        assert engine.SINGLE[name] == variable
        assert engine._projection([f"{variable}.some_field == 1"], variable) == ("some_field",)
