"""Mounts the collector, analyzer and lab apps under one `needle` command.

This module only wires things together and turns failures into the CLI contract
(DESIGN.md §3): one line on stderr, exit code 2, a traceback only with --debug.
"""

from __future__ import annotations

import sys
import traceback
from importlib import metadata
from typing import Annotated

import typer

from needle.analyzer.cli import app as analyzer_app
from needle.analyzer.errors import AnalyzerError
from needle.collector.cli import app as collector_app
from needle.collector.errors import CollectorError
from needle.lab.cli import app as lab_app
from needle.lab.errors import LabError

try:  # typer >= 0.26 vendors click; older releases depend on it
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # pragma: no cover - exercised only with older typer
    from click.exceptions import ClickException, UsageError  # type: ignore[no-redef]

EXIT_USAGE = 2
USER_ERRORS = (CollectorError, AnalyzerError, LabError)
DISTRIBUTION = "kube-needle"


def _version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "0+unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"needle {_version()}")
        raise typer.Exit(0)


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="needle",
        help=(
            "Find the needle in a virtualized network: collect an offline snapshot of a "
            "Kubernetes cluster's pod networking, then analyze it anywhere."
        ),
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    @app.callback()
    def root(
        version: Annotated[
            bool,
            typer.Option(
                "--version",
                callback=_print_version,
                is_eager=True,
                help="Print needle's version and exit.",
            ),
        ] = False,
        debug: Annotated[
            bool, typer.Option("--debug", help="Show full tracebacks when something fails.")
        ] = False,
    ) -> None:
        """needle: collect and analyze Kubernetes pod networking (Flannel VXLAN first)."""

    app.add_typer(collector_app)
    app.add_typer(analyzer_app)
    app.add_typer(lab_app, name="lab")
    return app


def _wants_debug(argv: list[str]) -> bool:
    options = argv[: argv.index("--")] if "--" in argv else argv
    return "--debug" in options


EXIT_INTERRUPTED = 130


def _fail(prog: str, message: str) -> int:
    sys.stderr.write(f"{prog}: error: {message}\n")
    return EXIT_USAGE


def run(argv: list[str], prog: str) -> int:
    """Run the CLI on `argv` and return the exit code instead of exiting."""
    debug = _wants_debug(argv)
    command = typer.main.get_command(build_app())
    try:
        result = command.main(args=argv, prog_name=prog, standalone_mode=False)
    except UsageError as exc:
        where = f"{exc.ctx.command_path} --help" if exc.ctx is not None else f"{prog} --help"
        return _fail(prog, f"{exc.format_message()} (see '{where}')")
    except ClickException as exc:
        return _fail(prog, exc.format_message())
    except USER_ERRORS as exc:
        if debug:
            traceback.print_exc()
        return _fail(prog, str(exc))
    except (KeyboardInterrupt, typer.Abort):
        sys.stderr.write(f"{prog}: interrupted\n")
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the last line of defence of the CLI contract
        if debug:
            traceback.print_exc()
            return EXIT_USAGE
        return _fail(
            prog,
            f"internal error: {type(exc).__name__}: {exc} "
            "(run again with --debug for the traceback, and please report it)",
        )
    if result == EXIT_INTERRUPTED:  # typer turns Ctrl-C into Exit(130) on its own
        sys.stderr.write(f"{prog}: interrupted\n")
    return result if isinstance(result, int) else 0


def main() -> int:
    return run(sys.argv[1:], "needle")


def kubectl_main() -> int:
    """Entry point for kubectl's plugin mechanism: `kubectl needle ...`."""
    return run(sys.argv[1:], "kubectl needle")
