"""`needle analyze`, `needle diff`, `needle show` and `needle rules ...`."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from analyzer.errors import AnalyzerError, NotBuiltYet
from analyzer.rules.catalog import Catalog, load_catalog

app = typer.Typer()
rules_app = typer.Typer(help="List, explain, validate and test rules.", no_args_is_help=True)
app.add_typer(rules_app, name="rules", rich_help_panel="Analyze")


class ListFormat(StrEnum):
    table = "table"
    json = "json"


@app.command(rich_help_panel="Analyze")
def analyze() -> None:
    """Report what is wrong in a bundle, where, with the evidence and the fix."""
    raise NotBuiltYet("analyze", 7)


@app.command(rich_help_panel="Analyze")
def diff() -> None:
    """Show what changed in the network between two bundles, and what it fixed or broke."""
    raise NotBuiltYet("diff", 8)


@app.command(rich_help_panel="Analyze")
def show() -> None:
    """Browse a bundle offline: nodes, pods, links, routes, neigh, fdb, veths, mtu, captures."""
    raise NotBuiltYet("show", 6)


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
    output_format: Annotated[ListFormat, typer.Option("--format")] = ListFormat.table,
) -> None:
    """List the rules needle runs: built-in ones and those given with --rules."""
    catalog = load_catalog(rules or [])
    ordered = sorted(catalog.rules.values(), key=lambda rule: rule.id)
    if output_format is ListFormat.json:
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
def validate_rules(path: Annotated[Path, typer.Argument(metavar="PATH")]) -> None:
    """Check rule files: YAML, schema, and that every CEL expression compiles."""
    raise NotBuiltYet("rules validate", 7)


@rules_app.command("test")
def test_rules(path: Annotated[Path, typer.Argument(metavar="PATH")]) -> None:
    """Run rules against their fixtures: each must fire where it should and only there."""
    raise NotBuiltYet("rules test", 7)
