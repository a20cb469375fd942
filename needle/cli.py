"""Mounts the collector, analyzer and lab apps under one `needle` command.

This module only wires things together and turns failures into the CLI contract
(DESIGN.md §3): one line on stderr, exit code 2, a traceback only with --debug.
The global options (--color, --debug, --version, shell completion) are documented in
docs/cli.md.
"""

from __future__ import annotations

import os
import sys
import traceback
from dataclasses import dataclass
from importlib import metadata
from typing import Annotated

import typer

from needle.analyzer.cli import app as analyzer_app
from needle.analyzer.errors import AnalyzerError
from needle.collector.errors import CollectorError
from needle.completion import complete_var, completion
from needle.completion import enable as enable_completion
from needle.console import ColorChoice, error_line, resolve_color
from needle.help import polish
from needle.lab.errors import LabError
from needle.process import prepare_process
from needle.redact.errors import RedactError
from needle.usage import usage_message

try:  # typer >= 0.26 vendors click; older releases depend on it
    from typer._click import Context
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover - exercised only with older typer
    from click import Context  # type: ignore[assignment]
    from click.exceptions import (  # type: ignore[no-redef,assignment]
        ClickException,
        NoArgsIsHelpError,
        UsageError,
    )

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
USER_ERRORS = (CollectorError, AnalyzerError, LabError, RedactError)
DISTRIBUTION = "kube-needle"

HELP = """Find the needle in a virtualized network: collect an offline snapshot of a
Kubernetes cluster's pod networking, then analyze it anywhere.

Global options go before the command. Colour follows --color, else NO_COLOR and
FORCE_COLOR, else whether the output is a terminal.

\b
Examples:
$ needle collect -o cluster.tar.gz
$ needle analyze cluster.tar.gz
$ needle show cluster.tar.gz mtu
$ needle --color never diff before.tar.gz after.tar.gz
$ eval "$(needle completion bash)"
"""


@dataclass
class RunState:
    """What one run learns from its own command line, for reporting its failures (the
    root context's `obj`)."""

    color: bool | None = None


def _version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "0+unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"needle {_version()}")
        raise typer.Exit(0)


def _set_color(ctx: typer.Context, value: ColorChoice) -> ColorChoice:
    # every command's context inherits `color` from this one (click does that)
    ctx.color = resolve_color(ColorChoice(value), os.environ)
    if isinstance(ctx.obj, RunState):
        ctx.obj.color = ctx.color
    return value


def build_app(analyzer_only: bool = False) -> typer.Typer:
    app = typer.Typer(
        name="needle",
        help=HELP,
        no_args_is_help=True,
        add_completion=False,  # `needle completion SHELL` instead: it names its shell
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
        color: Annotated[
            ColorChoice,
            typer.Option(
                "--color",
                callback=_set_color,
                is_eager=True,
                help="Colour output: auto (only on a terminal, unless NO_COLOR or "
                "FORCE_COLOR is set), always, or never.",
            ),
        ] = ColorChoice.auto,
    ) -> None:
        """needle: collect and analyze Kubernetes pod networking (Flannel VXLAN first)."""

    app.add_typer(analyzer_app)
    if analyzer_only:
        return app
    from needle.collector.cli import app as collector_app
    from needle.lab.cli import app as lab_app
    from needle.redact.cli import app as redact_app

    app.add_typer(collector_app)
    app.add_typer(redact_app)
    app.add_typer(lab_app, name="lab")
    app.command("completion")(completion)
    return app


# the analyzer's commands: a run of one of them mounts only the analyzer, whose users
# (an air-gapped laptop, 10^6-pair bundles) need not wait for the collector's Kubernetes
# client to import (tests/test_cli.py holds this to the analyzer app's commands)
ANALYZER_COMMANDS = frozenset({"analyze", "diff", "rules", "show", "trace"})
# the root's options that take a value (the others are flags)
_VALUED = frozenset({"--color"})


def command_of(argv: list[str]) -> str | None:
    """The command `argv` runs (its first word after the root's options), if any; None
    as well when the root is asked for its help, which lists every command."""
    words = iter(argv)
    for word in words:
        if word == "--":
            return next(words, None)
        if word in ("-h", "--help"):
            return None
        if not word.startswith("-"):
            return word
        if word in _VALUED:
            next(words, None)
    return None


def _wants_debug(argv: list[str]) -> bool:
    options = argv[: argv.index("--")] if "--" in argv else argv
    return "--debug" in options


def run(argv: list[str], prog: str) -> int:
    """Run the CLI on `argv` and return the exit code instead of exiting."""
    prepare_process()
    debug = _wants_debug(argv)
    state = RunState(color=resolve_color(ColorChoice.auto, os.environ))

    def fail(message: str) -> int:
        sys.stderr.write(error_line(prog, message, sys.stderr, state.color))
        return EXIT_USAGE

    enable_completion()
    completing = complete_var(prog) in os.environ
    command = typer.main.get_command(
        build_app(analyzer_only=not completing and command_of(argv) in ANALYZER_COMMANDS)
    )
    polish(command, Context(command, info_name=prog, **command.context_settings))
    try:
        result = command.main(
            args=argv,
            prog_name=prog,
            complete_var=complete_var(prog),
            standalone_mode=False,
            obj=state,
        )
    except NoArgsIsHelpError as exc:
        # a command group given no command shows its help (already printed by rich)
        shown = exc.format_message()
        if shown.strip():
            sys.stdout.write(shown.rstrip("\n") + "\n")
        return 0
    except UsageError as exc:
        where = f"{exc.ctx.command_path} --help" if exc.ctx is not None else f"{prog} --help"
        return fail(f"{usage_message(exc)} (see '{where}')")
    except ClickException as exc:
        return fail(exc.format_message())
    except USER_ERRORS as exc:
        if debug:
            traceback.print_exc()
        return fail(str(exc))
    except (KeyboardInterrupt, typer.Abort):
        sys.stderr.write(f"{prog}: interrupted\n")
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the last line of defence of the CLI contract
        if debug:
            traceback.print_exc()
            return EXIT_USAGE
        return fail(
            f"internal error: {type(exc).__name__}: {exc} "
            "(run again with --debug for the traceback, and please report it)"
        )
    if result == EXIT_INTERRUPTED:  # typer turns Ctrl-C into Exit(130) on its own
        sys.stderr.write(f"{prog}: interrupted\n")
    return result if isinstance(result, int) else 0


def main() -> int:
    return run(sys.argv[1:], "needle")


def kubectl_main() -> int:
    """Entry point for kubectl's plugin mechanism: `kubectl needle ...`."""
    return run(sys.argv[1:], "kubectl needle")
