"""The CLI contract of DESIGN.md §3: help, version, one-line errors, exit codes."""

from __future__ import annotations

import subprocess
import sys

from needle.cli import run


def needle(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "needle", *args], capture_output=True, text=True, check=False
    )


def test_version():
    result = needle("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("needle 0.")


def test_help_lists_every_command_group():
    result = needle("--help")
    assert result.returncode == 0
    for command in ("collect", "cleanup", "rbac", "analyze", "diff", "show", "rules", "lab"):
        assert command in result.stdout


def test_usage_error_is_one_line_that_points_to_help():
    result = needle("no-such-command")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "needle --help" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_option_value_is_one_line():
    result = needle("rules", "list", "--format", "yaml")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "needle rules list --help" in result.stderr


def test_debug_shows_the_traceback_of_a_user_error():
    plain = needle("rules", "explain", "no.such.rule")
    assert plain.returncode == 2
    assert "Traceback" not in plain.stderr
    debug = needle("--debug", "rules", "explain", "no.such.rule")
    assert debug.returncode == 2
    assert "Traceback" in debug.stderr and "no rule with id 'no.such.rule'" in debug.stderr


def test_internal_error_is_one_line_without_debug(monkeypatch, capsys):
    import needle.analyzer.cli

    def explode(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(needle.analyzer.cli, "load_catalog", explode)
    assert run(["rules", "list"], "needle") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "internal error: RuntimeError: boom" in err and "--debug" in err


def test_kubectl_plugin_name_in_messages(capsys):
    from needle.cli import run as run_cli

    assert run_cli(["nope"], "kubectl needle") == 2
    assert "kubectl needle --help" in capsys.readouterr().err


def test_an_analyzer_command_mounts_only_the_analyzer():
    """`needle analyze` (air-gapped, 10^6-pair bundles) does not wait for the collector's
    Kubernetes client to import; its help and errors are the same."""
    import typer
    from needle.analyzer.cli import app as analyzer_app

    from needle.cli import ANALYZER_COMMANDS, command_of

    assert set(typer.main.get_command(analyzer_app).commands) == ANALYZER_COMMANDS
    assert command_of(["--color", "never", "--debug", "analyze", "b.tar.gz"]) == "analyze"
    assert command_of(["--color=never", "diff"]) == "diff"
    assert command_of(["--", "show"]) == "show"
    assert command_of(["--version"]) is None
    assert command_of(["--help", "analyze"]) is None  # the root's help lists every command
    rooted = needle("-h", "analyze")
    assert rooted.returncode == 0 and "collect" in rooted.stdout and "lab" in rooted.stdout
    probe = (
        "import sys\n"
        "from needle.cli import run\n"
        "code = run(sys.argv[1:], 'needle')\n"
        "print(code, 'needle.collector.cli' in sys.modules, 'kubernetes' in sys.modules)\n"
    )
    for args, loaded in ((["rules", "list"], "False False"), (["rbac", "--help"], "True True")):
        done = subprocess.run(
            [sys.executable, "-c", probe, *args], capture_output=True, text=True, check=False
        )
        assert done.stdout.strip().splitlines()[-1] == f"0 {loaded}", done.stderr
    shown = needle("--color", "never", "analyze", "--help")
    assert shown.returncode == 0 and "--format" in shown.stdout
