"""`needle analyze`, `needle diff`, `needle show` and `needle rules ...`."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from needle.analyzer.backends import CHOICES as BACKEND_CHOICES
from needle.analyzer.bundle import Bundle, open_and_build
from needle.analyzer.diff.document import diff_document
from needle.analyzer.diff.render import render_markdown as render_diff_markdown
from needle.analyzer.diff.render import render_text as render_diff_text
from needle.analyzer.diff.run import run_diff
from needle.analyzer.errors import AnalyzerError
from needle.analyzer.model import Model, build_model
from needle.analyzer.observe.analyze import observe
from needle.analyzer.progress import WorkProgress
from needle.analyzer.report.document import report_document
from needle.analyzer.report.html.diff_scene import build_diff_scene
from needle.analyzer.report.html.page import render_diff_page, render_page
from needle.analyzer.report.html.scene import build_scene
from needle.analyzer.report.markdown import render_markdown
from needle.analyzer.report.text import render_text
from needle.analyzer.rules.catalog import load_catalog
from needle.analyzer.rules.catalogue_doc import catalogue_markdown
from needle.analyzer.rules.engine import SEVERITIES, compile_rules, evaluate
from needle.analyzer.rules.fixtures import run_fixtures
from needle.analyzer.show.observed import BUNDLE_VIEWS
from needle.analyzer.show.render import print_json, print_table
from needle.analyzer.show.views import VIEWS
from needle.analyzer.signals import signals_interrupt
from needle.analyzer.terminal import did_you_mean, make_console, plural, safe_text
from needle.analyzer.trace.document import render_text as render_trace
from needle.analyzer.trace.document import trace_document
from needle.analyzer.trace.endpoints import resolve as resolve_endpoint
from needle.analyzer.trace.nft_source import nft_source
from needle.analyzer.trace.walk import Packet, Walker
from rich.table import Table

app = typer.Typer()
rules_app = typer.Typer(
    help="""List, explain, validate and test rules.

    \b
    Examples:
    $ needle rules list
    $ needle rules explain flannel.route.peer-podcidr-missing
    $ needle rules validate my-rules/
    $ needle rules test rules/tests
    """,
    no_args_is_help=True,
)
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
    html = "html"


BackendChoice = StrEnum("BackendChoice", {name: name for name in BACKEND_CHOICES})  # type: ignore[misc]

BackendOption = Annotated[
    BackendChoice | None,
    typer.Option(
        "--backend",
        help="The data plane, instead of the one detected from the bundle: "
        + ", ".join(BACKEND_CHOICES[:4])
        + " (others are recognised, not analysed).",
        show_choices=False,
    ),
]


class FailOn(StrEnum):
    error = "error"
    warning = "warning"
    info = "info"
    never = "never"


@app.command(rich_help_panel="Analyze")
def analyze(
    ctx: typer.Context,
    bundle_path: Annotated[
        Path,
        typer.Argument(
            metavar="BUNDLE", help="A bundle: .tar.gz, .tar.zst or an unpacked directory."
        ),
    ],
    output_format: Annotated[
        ReportFormat,
        typer.Option(
            "--format",
            help="text (to read), json (needle.report/v1, for scripts), markdown (to paste "
            "into a ticket) or html (one page that opens offline: the cluster drawn with "
            "its faults, for people who will not run a CLI).",
        ),
    ] = ReportFormat.text,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", metavar="FILE", help="Write the report here."),
    ] = None,
    rules: RulesOption = None,
    backend: BackendOption = None,
    fail_on: Annotated[
        FailOn,
        typer.Option("--fail-on", help="Exit 1 when a finding is at or above this severity."),
    ] = FailOn.error,
) -> None:
    """Report what is wrong in a bundle, where, with the evidence and the fix.

    Exit status: 0 when nothing is at or above --fail-on, 1 when something is, 2 when
    the bundle or a rule cannot be read. On a terminal, stderr shows what is being done.

    \b
    Examples:
    $ needle analyze cluster.tar.gz
    $ needle analyze cluster.tar.gz --fail-on warning
    $ needle analyze cluster.tar.gz --format markdown -o report.md
    $ needle analyze cluster.tar.gz --format html -o report.html
    $ needle analyze cluster.tar.gz --rules my-rules/ --format json
    """
    drawn = output_format is ReportFormat.html
    with signals_interrupt(), WorkProgress() as progress:
        progress.step(f"reading {bundle_path}")
        catalog = load_catalog(rules or [])
        # each node's pod side is read by the worker process that checks the node
        bundle, model = _open_model(
            bundle_path, pod_details=True, lazy_nodes=True, backend=_chosen(backend)
        )
        with bundle:
            about = bundle.summary()
            # rules read routes, neighbours and FDBs as they need them, from the open
            # bundle; the manifest (10^6 command records at 1,000 nodes) is not needed
            nft = nft_source(bundle)  # which file holds each node's nft ruleset
            bundle.drop_manifest()
            progress.step(
                f"checking {plural(len(catalog.rules), 'rule')} on "
                f"{plural(len(model.nodes), 'node')}"
            )
            outcome = evaluate(
                model, catalog.rules.values(), reachability=True, nft=nft, drawn=drawn
            )
            progress.step("reading the probes and captures")
            observe(bundle, model, outcome, catalog.rules.values(), nft)
            outcome.problems[:0] = catalog.problems
            document = report_document(outcome, about)
            page = None
            if drawn:  # while the bundle is open: the page quotes the evidence files
                progress.step("drawing the page")
                scene = build_scene(
                    model, document, outcome.drawing, bundle.read_text, outcome.findings
                )
                page = render_page(scene)
    if page is not None:
        _write(page, output)
    elif output_format is ReportFormat.json:
        _write(json.dumps(document, indent=2) + "\n", output)
    elif output_format is ReportFormat.markdown:
        _write(render_markdown(document), output)
    elif output is None:
        render_text(document, sys.stdout, color=ctx.color)
    else:
        buffer = io.StringIO()
        render_text(document, buffer, color=False)
        _write(buffer.getvalue(), output)
    _report_problems(outcome.problems)
    if outcome.problems:
        # the valid rules ran and reported, but the input was partly invalid (DESIGN §3)
        raise typer.Exit(2)
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
    output_format: Annotated[
        ReportFormat,
        typer.Option(
            "--format",
            help="text, json (needle.diff/v1), markdown, or html (one page that opens "
            "offline: what changed drawn on the cluster, and the findings delta).",
        ),
    ] = ReportFormat.text,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", metavar="FILE", help="Write the diff here."),
    ] = None,
    node: Annotated[str | None, typer.Option("--node", help="Only this node.")] = None,
    rules: RulesOption = None,
    backend: BackendOption = None,
    fail_on_new: Annotated[
        FailOnNew | None,
        typer.Option(
            "--fail-on-new",
            help="Exit 1 when NEW has findings at or above this severity that OLD did not.",
        ),
    ] = None,
    show_all: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Also list per-boot differences (new MACs, veth and generated pod names, "
            "ifindexes, namespace ids) and the facts implied by pods that came or went.",
        ),
    ] = False,
) -> None:
    """Show what changed in the network between two bundles, and what it fixed or broke.

    \b
    Examples:
    $ needle diff before.tar.gz after.tar.gz
    $ needle diff before.tar.gz after.tar.gz --node lab-node-2
    $ needle diff before.tar.gz after.tar.gz --fail-on-new error
    $ needle diff before.tar.gz after.tar.gz --all
    $ needle diff before.tar.gz after.tar.gz --format html -o diff.html
    """
    catalog = load_catalog(rules or [])
    _report_problems(catalog.problems)
    compiled, problems = compile_rules(catalog.rules.values())
    _report_problems(problems)
    with signals_interrupt(), WorkProgress() as progress:
        progress.step(f"comparing {old_path} and {new_path}")
        run = run_diff(
            old_path, new_path, [rule.doc for rule in compiled], node, show_all, _chosen(backend)
        )
    result = run.result
    document = diff_document(result, run.old_summary, run.new_summary, show_all)
    if output_format is ReportFormat.json:
        text = json.dumps(document, indent=2) + "\n"
    elif output_format is ReportFormat.markdown:
        text = render_diff_markdown(document)
    elif output_format is ReportFormat.html:
        assert run.old is not None and run.new is not None
        text = render_diff_page(build_diff_scene(run.old, run.new, document))
    else:
        text = render_diff_text(document)
    _write(text, output)
    if catalog.problems or problems:
        raise typer.Exit(2)  # the valid rules ran, but the input was partly invalid
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
    probes = "probes"
    flows = "flows"
    counters = "counters"


@app.command(rich_help_panel="Analyze")
def show(
    ctx: typer.Context,
    bundle_path: Annotated[
        Path,
        typer.Argument(
            metavar="BUNDLE", help="A bundle: .tar.gz, .tar.zst or an unpacked directory."
        ),
    ],
    view: Annotated[
        ShowView,
        typer.Argument(
            metavar="VIEW",
            help="nodes, pods, links, routes, neigh, fdb, veths, mtu, captures, probes, flows "
            "or counters.",
        ),
    ],
    node: Annotated[
        str | None, typer.Option("--node", metavar="NAME", help="Only this node.")
    ] = None,
    output_format: Annotated[
        ListFormat, typer.Option("--format", help="table (to read) or json (for scripts).")
    ] = ListFormat.table,
    backend: BackendOption = None,
) -> None:
    """Browse a bundle offline: nodes, pods, links, routes, neigh, fdb, veths, mtu, captures,
    probes (what each probe met), flows (the packets the captures hold), counters (what
    grew over the capture window).

    \b
    Examples:
    $ needle show cluster.tar.gz nodes
    $ needle show cluster.tar.gz mtu
    $ needle show cluster.tar.gz routes --node lab-node-1
    $ needle show cluster.tar.gz pods --format json
    $ needle show cluster.tar.gz probes --node lab-node-1
    """
    with signals_interrupt():
        with WorkProgress() as progress:
            progress.step(f"reading {bundle_path}")
            bundle, model = _open_model(bundle_path, backend=_chosen(backend))
        with bundle:
            if node is not None and node not in model.nodes:
                raise AnalyzerError(_unknown_node(node, bundle_path, sorted(model.nodes)))
            # rows are made as they are printed (pod routes read as shown): the first
            # is out before the last is made (analyzer/show/render.py)
            rows = (
                BUNDLE_VIEWS[view.value](bundle, model, node)
                if view.value in BUNDLE_VIEWS
                else VIEWS[view.value](model, node)
            )
            if output_format is ListFormat.json:
                print_json(rows)
            else:
                print_table(
                    rows,
                    f"no {view.value} in {bundle_path}" + (f" for node {node}" if node else ""),
                    color=ctx.color,
                )


class TraceFormat(StrEnum):
    text = "text"
    json = "json"


class Proto(StrEnum):
    icmp = "icmp"
    tcp = "tcp"
    udp = "udp"


@app.command(rich_help_panel="Analyze")
def trace(
    ctx: typer.Context,
    bundle_path: Annotated[
        Path,
        typer.Argument(
            metavar="BUNDLE", help="A bundle: .tar.gz, .tar.zst or an unpacked directory."
        ),
    ],
    source: Annotated[
        str, typer.Argument(metavar="FROM", help="NAMESPACE/POD, a pod name, a node, or an IP.")
    ],
    target: Annotated[
        str,
        typer.Argument(
            metavar="TO",
            help="NAMESPACE/POD, a pod name, a node, an IP, or a Service ClusterIP (with --port).",
        ),
    ],
    proto: Annotated[Proto, typer.Option("--proto")] = Proto.icmp,
    port: Annotated[
        int | None, typer.Option("--port", min=1, max=65535, help="Destination port (tcp, udp).")
    ] = None,
    size: Annotated[
        int,
        typer.Option(
            "--size", min=28, max=65535, help="The IP packet's length in bytes (ping's: 84)."
        ),
    ] = 84,
    no_df: Annotated[
        bool, typer.Option("--no-df", help="Let the packet be fragmented (DF off).")
    ] = False,
    output_format: Annotated[TraceFormat, typer.Option("--format")] = TraceFormat.text,
    backend: BackendOption = None,
) -> None:
    """Follow a packet through the snapshot, hop by hop, there and back.

    Exit status: 0 when it is delivered both ways, 1 when it is dropped (or a hop cannot
    be judged), 2 when the bundle or an endpoint cannot be read.

    \b
    Examples:
    $ needle trace cluster.tar.gz default/web-1 default/api-2
    $ needle trace cluster.tar.gz default/web-1 lab-node-3 --size 1450
    $ needle trace cluster.tar.gz 10.244.1.2 10.244.2.3 --format json
    $ needle trace cluster.tar.gz default/web-1 10.96.0.10 --proto udp --port 53
    """
    with signals_interrupt():
        with WorkProgress() as progress:
            progress.step(f"reading {bundle_path}")
            bundle, model = _open_model(bundle_path, lazy_nodes=True, backend=_chosen(backend))
        with bundle:
            start = resolve_endpoint(model, source)
            end = resolve_endpoint(model, target, source=start, proto=proto.value, port=port)
            packet = Packet(proto=proto.value, size=size, df=not no_df, port=port)
            forward, back = Walker(model, packet, nft=nft_source(bundle)).trace(start, end)
    document = trace_document(start, end, packet, forward, back)
    if output_format is TraceFormat.json:
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        render_trace(document, sys.stdout, color=ctx.color)
    if document["verdict"] != "delivered":
        raise typer.Exit(1)


def _write(text: str, output: Path | None) -> None:
    """`text` to `output`, or to stdout when there is none."""
    if output is None:
        sys.stdout.write(text)
        return
    try:
        with output.open("w") as stream:
            stream.write(text)
    except OSError as exc:
        raise AnalyzerError(f"cannot write {output}: {exc.strerror}") from None


def _unknown_node(node: str, bundle_path: Path, known: list[str]) -> str:
    suggestion = did_you_mean(node, known)
    if suggestion:
        return f"no node {node!r} in {bundle_path}; {suggestion}"
    return f"no node {node!r} in {bundle_path} (nodes: {', '.join(known) or 'none'})"


def _chosen(backend: BackendChoice | None) -> str | None:
    return None if backend is None else str(backend.value)


def _open_model(path: Path, **build_options: Any) -> tuple[Bundle, Model]:
    """The bundle at `path` and its model, built while the manifest is still being
    validated (see open_and_build); the caller closes the bundle."""
    (bundle,), (model,) = open_and_build([path], lambda b: build_model(b, **build_options))
    return bundle, model


def _report_problems(problems: Iterable[object]) -> None:
    """One line on stderr per invalid rule (a user's rule file is untrusted text too)."""
    for problem in problems:
        sys.stderr.write(f"needle: invalid rule: {safe_text(problem)}\n")


RulesOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--rules",
        metavar="PATH",
        help="Extra rule files or directories (repeatable); same id overrides.",
    ),
]


@rules_app.command("list")
def list_rules(
    ctx: typer.Context,
    rules: RulesOption = None,
    output_format: Annotated[
        RulesListFormat,
        typer.Option("--format", help="table, json, or markdown (the rule catalogue page)."),
    ] = RulesListFormat.table,
) -> None:
    """List the rules needle runs: built-in ones and those given with --rules.

    \b
    Examples:
    $ needle rules list
    $ needle rules list --rules my-rules/ --format json
    $ needle rules list --format markdown > docs/rule-catalogue.md
    """
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
        width = None if sys.stdout.isatty() else 200
        make_console(sys.stdout, ctx.color, width=width).print(table)
    _report_problems(catalog.problems)
    if catalog.problems:
        raise typer.Exit(2)


@rules_app.command("explain")
def explain_rule(
    rule_id: Annotated[
        str, typer.Argument(metavar="ID", help="A rule id, as `needle rules list` shows it.")
    ],
    rules: RulesOption = None,
) -> None:
    """Show what a rule checks, why it matters, and how to fix what it finds.

    \b
    Examples:
    $ needle rules explain flannel.route.peer-podcidr-missing
    $ needle rules explain my.rule --rules my-rules/
    """
    catalog = load_catalog(rules or [])
    rule = catalog.rules.get(rule_id)
    if rule is None:
        suggestion = did_you_mean(rule_id, sorted(catalog.rules))
        hint = f"; {suggestion}" if suggestion else " (see 'needle rules list')"
        raise AnalyzerError(f"no rule with id {rule_id!r}{hint}")
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
    # a user rule is somebody's file too: no raw control characters reach the terminal
    typer.echo("\n".join(safe_text(line) for line in lines))


@rules_app.command("validate")
def validate_rules(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH", help="Rule files or directories.")],
) -> None:
    """Check rule files: YAML, schema, and that every CEL expression compiles.

    \b
    Examples:
    $ needle rules validate my-rules/
    $ needle rules validate my-rules/mtu.yaml other.yaml
    """
    catalog = load_catalog(paths, include_builtin=False)
    compiled, problems = compile_rules(catalog.rules.values())
    for rule in sorted(compiled, key=lambda r: r.id):
        typer.echo(safe_text(f"ok       {rule.id} ({rule.doc.source})"))
    for problem in [*catalog.problems, *problems]:
        typer.echo(safe_text(f"invalid  {problem}"))
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
    """Run rules against their fixtures: each must fire where it should and only there.

    \b
    Examples:
    $ needle rules test rules/tests
    $ needle rules test my-rules/tests --rules my-rules/
    """
    if not path.exists():
        raise AnalyzerError(f"{path} does not exist")
    catalog = load_catalog(rules or [])
    _report_problems(catalog.problems)
    results = run_fixtures(path, catalog.rules)
    if not results:
        raise AnalyzerError(f"no fixture cases under {path}")
    for result in results:
        mark = "PASS" if result.passed else "FAIL"
        typer.echo(safe_text(f"{mark}  {result.rule}: {result.name}"))
        for detail in result.details:
            typer.echo(safe_text(f"      {detail}"))
    failed = sum(1 for r in results if not r.passed)
    typer.echo(f"{len(results) - failed} passed, {failed} failed")
    if failed:
        raise typer.Exit(1)
