"""`needle analyze`, `needle diff`, `needle show` and `needle rules ...`."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from needle.analyzer.bundle import Bundle, open_and_build
from needle.analyzer.diff.document import diff_document
from needle.analyzer.diff.render import render_markdown as render_diff_markdown
from needle.analyzer.diff.render import render_text as render_diff_text
from needle.analyzer.diff.run import run_diff
from needle.analyzer.errors import AnalyzerError
from needle.analyzer.model import Model, build_model
from needle.analyzer.report.document import report_document
from needle.analyzer.report.markdown import render_markdown
from needle.analyzer.report.text import render_text
from needle.analyzer.rules.catalog import Catalog, load_catalog
from needle.analyzer.rules.catalogue_doc import catalogue_markdown
from needle.analyzer.rules.engine import SEVERITIES, compile_rules, evaluate
from needle.analyzer.rules.fixtures import run_fixtures
from needle.analyzer.show.render import print_json, print_table
from needle.analyzer.show.views import VIEWS
from rich.console import Console
from rich.table import Table

app = typer.Typer()
rules_app = typer.Typer(help="List, explain, validate and test rules.", no_args_is_help=True)
app.add_typer(rules_app, name="rules", rich_help_panel="Analyze")


class ListFormat(StrEnum):
    table = "table"
    json = "json"


class RulesListFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


class ReportFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"


class FailOn(StrEnum):
    error = "error"
    warning = "warning"
    info = "info"
    never = "never"


@app.command(rich_help_panel="Analyze")
def analyze(
    bundle_path: Annotated[
        Path,
        typer.Argument(
            metavar="BUNDLE", help="A bundle: .tar.gz, .tar.zst or an unpacked directory."
        ),
    ],
    output_format: Annotated[ReportFormat, typer.Option("--format")] = ReportFormat.text,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the report here.")
    ] = None,
    rules: RulesOption = None,
    fail_on: Annotated[
        FailOn,
        typer.Option("--fail-on", help="Exit 1 when a finding is at or above this severity."),
    ] = FailOn.error,
) -> None:
    """Report what is wrong in a bundle, where, with the evidence and the fix.

    Exit status: 0 when nothing is at or above --fail-on, 1 when something is, 2 when
    the bundle or a rule cannot be read.
    """
    catalog = load_catalog(rules or [])
    # each node's pod side is read by the worker process that checks the node
    bundle, model = _open_model(bundle_path, pod_details=False, lazy_nodes=True)
    with bundle:
        about = bundle.summary()
        # rules read routes, neighbours and FDBs as they need them, from the open bundle;
        # the manifest (10^6 command records at 1,000 nodes) is no longer needed
        bundle.drop_manifest()
        outcome = evaluate(model, catalog.rules.values())
    outcome.problems[:0] = catalog.problems
    document = report_document(outcome, about)
    if output_format is ReportFormat.json:
        text = json.dumps(document, indent=2) + "\n"
    elif output_format is ReportFormat.markdown:
        text = render_markdown(document)
    else:
        text = None
    if output is not None:
        try:
            with output.open("w") as stream:
                if text is None:
                    render_text(document, stream, color=False)
                else:
                    stream.write(text)
        except OSError as exc:
            raise AnalyzerError(f"cannot write {output}: {exc.strerror}") from None
    elif text is None:
        render_text(document, sys.stdout)
    else:
        sys.stdout.write(text)
    for problem in outcome.problems:
        sys.stderr.write(f"needle: invalid rule: {problem}\n")
    if fail_on is not FailOn.never:
        threshold = SEVERITIES.index(fail_on.value)
        if any(SEVERITIES.index(f.severity) <= threshold for f in outcome.findings):
            raise typer.Exit(1)


class FailOnNew(StrEnum):
    error = "error"
    warning = "warning"
    info = "info"


@app.command(rich_help_panel="Analyze")
def diff(
    old_path: Annotated[Path, typer.Argument(metavar="OLD", help="The bundle before.")],
    new_path: Annotated[Path, typer.Argument(metavar="NEW", help="The bundle after.")],
    output_format: Annotated[ReportFormat, typer.Option("--format")] = ReportFormat.text,
    node: Annotated[str | None, typer.Option("--node", help="Only this node.")] = None,
    rules: RulesOption = None,
    fail_on_new: Annotated[
        FailOnNew | None,
        typer.Option(
            "--fail-on-new",
            help="Exit 1 when NEW has findings at or above this severity that OLD did not.",
        ),
    ] = None,
) -> None:
    """Show what changed in the network between two bundles, and what it fixed or broke."""
    catalog = load_catalog(rules or [])
    _report_problems(catalog)
    compiled, problems = compile_rules(catalog.rules.values())
    for problem in problems:
        sys.stderr.write(f"needle: invalid rule: {problem}\n")
    run = run_diff(old_path, new_path, [rule.doc for rule in compiled], node)
    result = run.result
    document = diff_document(result, run.old_summary, run.new_summary)
    if output_format is ReportFormat.json:
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    elif output_format is ReportFormat.markdown:
        sys.stdout.write(render_diff_markdown(document))
    else:
        sys.stdout.write(render_diff_text(document))
    if fail_on_new is not None:
        threshold = SEVERITIES.index(fail_on_new.value)
        if any(SEVERITIES.index(f.severity) <= threshold for f in result.new_findings):
            raise typer.Exit(1)


class ShowView(StrEnum):
    nodes = "nodes"
    pods = "pods"
    links = "links"
    routes = "routes"
    neigh = "neigh"
    fdb = "fdb"
    veths = "veths"
    mtu = "mtu"
    captures = "captures"


@app.command(rich_help_panel="Analyze")
def show(
    bundle_path: Annotated[
        Path,
        typer.Argument(
            metavar="BUNDLE", help="A bundle: .tar.gz, .tar.zst or an unpacked directory."
        ),
    ],
    view: Annotated[
        ShowView,
        typer.Argument(
            metavar="VIEW", help="nodes, pods, links, routes, neigh, fdb, veths, mtu or captures."
        ),
    ],
    node: Annotated[str | None, typer.Option("--node", help="Only this node.")] = None,
    output_format: Annotated[ListFormat, typer.Option("--format")] = ListFormat.table,
) -> None:
    """Browse a bundle offline: nodes, pods, links, routes, neigh, fdb, veths, mtu, captures."""
    bundle, model = _open_model(bundle_path)
    with bundle:
        if node is not None and node not in model.nodes:
            known = ", ".join(sorted(model.nodes)) or "none"
            raise AnalyzerError(f"no node {node!r} in {bundle_path} (nodes: {known})")
        rows = VIEWS[view.value](model, node)  # inside: pod routes are read as shown
    if output_format is ListFormat.json:
        print_json(rows)
    else:
        print_table(
            rows, f"no {view.value} in {bundle_path}" + (f" for node {node}" if node else "")
        )


def _open_model(path: Path, **build_options: bool) -> tuple[Bundle, Model]:
    """The bundle at `path` and its model, built while the manifest is still being
    validated (see open_and_build); the caller closes the bundle."""
    (bundle,), (model,) = open_and_build([path], lambda b: build_model(b, **build_options))
    return bundle, model


def _report_problems(catalog: Catalog) -> None:
    for problem in catalog.problems:
        sys.stderr.write(f"needle: invalid rule: {problem}\n")


RulesOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--rules", help="Extra rule files or directories (repeatable); same id overrides."
    ),
]


@rules_app.command("list")
def list_rules(
    rules: RulesOption = None,
    output_format: Annotated[
        RulesListFormat,
        typer.Option("--format", help="table, json, or markdown (the rule catalogue page)."),
    ] = RulesListFormat.table,
) -> None:
    """List the rules needle runs: built-in ones and those given with --rules."""
    catalog = load_catalog(rules or [])
    ordered = sorted(catalog.rules.values(), key=lambda rule: rule.id)
    if output_format is RulesListFormat.markdown:
        sys.stdout.write(catalogue_markdown(ordered))
    elif output_format is RulesListFormat.json:
        rows = [
            {
                "id": r.id,
                "severity": r.severity,
                "title": r.title,
                "source": "built-in" if r.builtin else r.source,
            }
            for r in ordered
        ]
        typer.echo(json.dumps(rows, indent=2))
    else:
        table = Table(box=None, pad_edge=False)
        for column in ("ID", "SEVERITY", "TITLE", "SOURCE"):
            table.add_column(column)
        for rule in ordered:
            table.add_row(
                rule.id, rule.severity, rule.title, "built-in" if rule.builtin else rule.source
            )
        Console(width=200 if not sys.stdout.isatty() else None).print(table)
    _report_problems(catalog)
    if catalog.problems:
        raise typer.Exit(2)


@rules_app.command("explain")
def explain_rule(
    rule_id: Annotated[str, typer.Argument(metavar="ID")],
    rules: RulesOption = None,
) -> None:
    """Show what a rule checks, why it matters, and how to fix what it finds."""
    catalog = load_catalog(rules or [])
    rule = catalog.rules.get(rule_id)
    if rule is None:
        raise AnalyzerError(f"no rule with id {rule_id!r} (see 'needle rules list')")
    data = rule.data
    lines = [
        f"{rule.id}  [{rule.severity}]",
        rule.title,
        "",
    ]
    if data.get("description"):
        lines += [" ".join(str(data["description"]).split()), ""]
    lines.append(
        f"checks:       for each {data['for_each']}"
        + (f" where {data['where']}" if data.get("where") else "")
    )
    lines.append(f"asserts:      {data['assert']}")
    lines.append(f"reports:      {data['message']}")
    if data.get("needs"):
        lines.append(f"needs:        {', '.join(data['needs'])}")
    lines += ["", "remediation:  " + " ".join(str(data["remediation"]).split())]
    for reference in data.get("references", []):
        lines.append(f"see:          {reference}")
    lines.append(f"source:       {'built-in ' if rule.builtin else ''}{rule.source}")
    typer.echo("\n".join(lines))


@rules_app.command("validate")
def validate_rules(
    paths: Annotated[
        list[Path], typer.Argument(metavar="PATH...", help="Rule files or directories.")
    ],
) -> None:
    """Check rule files: YAML, schema, and that every CEL expression compiles."""
    catalog = load_catalog(paths, include_builtin=False)
    compiled, problems = compile_rules(catalog.rules.values())
    for rule in sorted(compiled, key=lambda r: r.id):
        typer.echo(f"ok       {rule.id} ({rule.doc.source})")
    for problem in [*catalog.problems, *problems]:
        typer.echo(f"invalid  {problem}")
    if not compiled and not catalog.problems and not problems:
        raise AnalyzerError(f"no rule files (*.yaml) under {', '.join(map(str, paths))}")
    if catalog.problems or problems:
        raise typer.Exit(2)


@rules_app.command("test")
def test_rules(
    path: Annotated[
        Path,
        typer.Argument(
            metavar="PATH", help="A fixture file, or a directory of them (rules/tests)."
        ),
    ],
    rules: RulesOption = None,
) -> None:
    """Run rules against their fixtures: each must fire where it should and only there."""
    if not path.exists():
        raise AnalyzerError(f"{path} does not exist")
    catalog = load_catalog(rules or [])
    _report_problems(catalog)
    results = run_fixtures(path, catalog.rules)
    if not results:
        raise AnalyzerError(f"no fixture cases under {path}")
    for result in results:
        mark = "PASS" if result.passed else "FAIL"
        typer.echo(f"{mark}  {result.rule}: {result.name}")
        for detail in result.details:
            typer.echo(f"      {detail}")
    failed = sum(1 for r in results if not r.passed)
    typer.echo(f"{len(results) - failed} passed, {failed} failed")
    if failed:
        raise typer.Exit(1)
