"""The CLI as a newcomer meets it: help, errors, plurals, colour, progress, completion,
`collect -o` over an existing file, and the tx checksum offload rule that fired on every
bundle. Each test fails on the CLI as it was before these were fixed."""

from __future__ import annotations

import gzip
import io
import itertools
import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import typer
from needle.analyzer.parsers.uname import kernel_version, parse_uname
from needle.analyzer.report.markdown import render_markdown
from needle.analyzer.report.text import render_text
from needle.analyzer.rules.helpers import kernel_in
from needle.analyzer.terminal import did_you_mean, make_console, plural
from needle.collector.bundle.manifest import NodeRecord
from needle.collector.progress import Progress

from needle import cli as needle_cli
from needle.cli import build_app, kubectl_main, run
from needle.console import ColorChoice, resolve_color
from needle.help import polish

REPO = Path(__file__).resolve().parents[1]
HEALTHY = REPO / "samples" / "lab-healthy.tar.gz"
RULE_FILES = sorted((REPO / "rules").glob("*.yaml"))
MTU_UNDERLAY = REPO / "samples" / "lab-mtu-underlay.tar.gz"
ESC = "\x1b["


def needle(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    return subprocess.run(
        [sys.executable, "-m", "needle", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        env={**environ, **(env or {})},
    )


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)


# --- 1. a command without its subcommand shows help ----------------------------------


def test_bare_needle_prints_help_and_exits_0():
    result = needle()
    assert result.returncode == 0
    assert "Usage: needle" in result.stdout and "analyze" in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize("group", ["rules", "lab"])
def test_a_group_without_its_command_prints_help_and_exits_0(group, capsys):
    assert run([group], "needle") == 0
    captured = capsys.readouterr()
    assert f"Usage: needle {group}" in captured.out
    assert captured.err == ""


def test_bare_kubectl_needle_prints_help_and_exits_0(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["kubectl-needle"])
    assert kubectl_main() == 0
    captured = capsys.readouterr()
    assert "Usage: kubectl needle" in captured.out
    assert "error" not in captured.err


# --- 2. help text ---------------------------------------------------------------------


def command_paths() -> list[list[str]]:
    paths: list[list[str]] = []

    def walk(command: typer.core.TyperGroup, path: list[str]) -> None:
        paths.append(path)
        for name, sub in (getattr(command, "commands", None) or {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(build_app()), [])
    return paths


PLACEHOLDER = re.compile(r"<[A-Za-z_][\w\[\]|,. ]*>")


def description(text: str) -> list[str]:
    """The help's prose and examples: the lines between `Usage:` and the first panel,
    without the one column of padding typer gives them."""
    lines = []
    for line in text.splitlines():
        if line.startswith("╭"):
            break
        if "Usage:" not in line:
            lines.append(line.rstrip().removeprefix(" "))
    return lines


def broken_lines(lines: list[str], width: int) -> list[str]:
    """Lines ended before the next word would have run out of room (a source line
    break kept), and example lines the terminal had to wrap."""
    room = width - 2  # typer pads the description by one column on each side
    found = []
    for line, following in itertools.pairwise(lines):
        if not line or not following:
            continue
        if line.startswith("$"):
            if not following.startswith("$"):
                found.append(f"wrapped example: {line!r} / {following!r}")
            continue
        if following.startswith(("$", " ")) or line.endswith(":") or line.startswith(" "):
            continue  # a list or an example block: kept line for line on purpose
        if len(line) + 1 + len(following.split()[0]) <= room:
            found.append(f"{line!r} / {following!r}")
    return found


@pytest.mark.parametrize("width", [80, 100])
def test_every_help_page_reads_well_at_a_fixed_width(width, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", str(width))
    problems = []
    for path in command_paths():
        assert run([*path, "--help"], "needle") == 0, path
        text = capsys.readouterr().out
        where = " ".join(["needle", *path])
        problems += [f"{where}: placeholder {m}" for m in PLACEHOLDER.findall(text)]
        lines = description(text)
        problems += [f"{where}: broken line {b}" for b in broken_lines(lines, width)]
        if "Examples:" not in lines or not any(
            re.match(r"\$ (sudo )?(needle|eval) ", line) for line in lines
        ):
            problems.append(f"{where}: no Examples section")
        if any(len(line) > width for line in text.splitlines()):
            problems.append(f"{where}: a line wider than {width}")
    assert problems == []


def test_help_strings_have_no_hard_line_breaks():
    from typer._click import Context

    command = typer.main.get_command(build_app())
    polish(command, Context(command, info_name="needle", **command.context_settings))
    seen = []

    def walk(cmd: typer.core.TyperGroup) -> None:
        for param in cmd.params:
            seen.append((cmd.name, param.name, param.help or ""))
        for sub in (getattr(cmd, "commands", None) or {}).values():
            walk(sub)

    walk(command)
    assert seen and [entry for entry in seen if "\n" in entry[2]] == []


def test_the_broken_line_check_finds_a_kept_source_line_break():
    lines = ["Exit status: 0 when nothing is at or above --fail-on, 1 when", "when", "the bundle"]
    assert broken_lines(lines, 80)
    assert broken_lines(["$ needle analyze a-very-long.tar.gz --format", "json"], 80)


# --- 3. error messages in needle's words, with suggestions -----------------------------

LIBRARY_WORDING = re.compile(
    r"Value error|Input should|b'|\\x[0-9a-f]{2}|codec|surrogates|\['"
    r"|[A-Z][a-z]+(Error|Exception)\b"
)


def _one_clean_line(err: str) -> None:
    assert err.count("\n") == 1 and err.startswith("needle: error: "), err
    assert not LIBRARY_WORDING.search(err), err


@pytest.mark.parametrize(
    "args",
    [
        ["show", "b.tar.gz", "mtuu"],
        ["analyze", "b.tar.gz", "--format", "jsn"],
        ["collect", "-o", "x.tar.gz", "--concurrency", "abc"],
        ["collect", "-o", "x.tar.gz", "--concurrency", "0"],
        ["collect", "-o", "x.tar.gz", "--capture-seconds", "1000"],
        ["lab", "up", "--nodes", "many"],
        ["completion"],
        ["analyze", "b.tar.gz", "--formt", "json"],
    ],
)
def test_usage_errors_are_one_line_without_library_wording(args, capsys):
    assert run(args, "needle") == 2
    _one_clean_line(capsys.readouterr().err)


def _manifest_bundle(directory: Path, manifest: bytes) -> Path:
    directory.mkdir()
    (directory / "manifest.json").write_bytes(manifest)
    return directory


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d: (d / "a.tar.gz", (d / "a.tar.gz").write_text("hello\n"))[0], "a text file"),
        (lambda d: (d / "a.zip", (d / "a.zip").write_bytes(b"PK\x03\x04rest"))[0], "zip archive"),
        (
            lambda d: (
                d / "cut.tar.gz",
                (d / "cut.tar.gz").write_bytes(HEALTHY.read_bytes()[:900]),
            )[0],
            "cut short",
        ),
        (lambda d: _manifest_bundle(d / "b", b"{"), "not valid JSON (unexpected end"),
        (lambda d: _manifest_bundle(d / "b", b"\xff\xfe{}"), "not UTF-8 text"),
        (
            lambda d: _manifest_bundle(d / "b", b'{"format": "needle.bundle/v1"}'),
            "missing tool, created",
        ),
    ],
)
def test_broken_bundles_are_described_not_dumped(make, expected, tmp_path, capsys):
    bundle = make(tmp_path)
    assert run(["analyze", str(bundle)], "needle") == 2
    err = capsys.readouterr().err
    _one_clean_line(err)
    assert expected in err


def test_malformed_rules_are_described_not_dumped(tmp_path, capsys):
    base = "title: a rule title\nfor_each: nodes\nassert: 'true'\nmessage: m\nremediation: r\n"
    (tmp_path / "enum.yaml").write_text(f"id: x.a\nseverity: bad\n{base}subject: {{node: x}}\n")
    (tmp_path / "key.yaml").write_text(f"id: x.b\nseverity: info\n{base}subject: {{foo: x}}\n")
    (tmp_path / "extra.yaml").write_text(
        f"id: x.c\nseverity: info\n{base}subject: {{node: x}}\nextra: 1\n"
    )
    (tmp_path / "missing.yaml").write_text("id: x.d\ntitle: a rule title\n")
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe")
    assert run(["rules", "validate", str(tmp_path)], "needle") == 2
    out = capsys.readouterr().out
    assert "severity: 'bad' is not one of error, warning, info" in out
    assert "subject: 'foo' is not one of node, peer_node" in out
    assert "unknown key 'extra'" in out
    assert "missing severity, for_each" in out
    assert "binary.yaml: not UTF-8 text (at byte 0)" in out
    assert not LIBRARY_WORDING.search(out), out


def test_bad_kube_dir_files_say_where(tmp_path, capsys):
    dump = tmp_path / "dump"
    dump.mkdir()
    (dump / "a.json").write_text("{\n")
    (dump / "b.yaml").write_text("a: [\n")
    run(["collect", "--kube-dir", str(dump), "-o", str(tmp_path / "out.tar.gz")], "needle")
    err = capsys.readouterr().err
    assert "a.json: not valid JSON (expecting property name" in err
    assert "at line 2, column 1" in err
    assert "b.yaml: not valid YAML (" in err
    assert "(char " not in err and "while parsing" not in err


@pytest.mark.parametrize(
    ("args", "suggestion"),
    [
        (
            ["rules", "explain", "flannel.route.peer-podcidr-mising"],
            "'flannel.route.peer-podcidr-missing'",
        ),
        (["show", str(HEALTHY), "mtuu"], "did you mean 'mtu'?"),
        (["show", str(HEALTHY), "nodes", "--node", "lab-nod-1"], "did you mean 'lab-node-1'?"),
        (["lab", "fault", "mtu-undelay"], "did you mean 'mtu-underlay'?"),
        (["analyze", str(HEALTHY), "--fail-on", "warnig"], "did you mean 'warning'?"),
        (["analyze", str(HEALTHY), "--formt", "json"], "did you mean '--format'?"),
    ],
)
def test_mistyped_names_get_a_suggestion(args, suggestion, capsys):
    assert run(args, "needle") == 2
    err = capsys.readouterr().err
    _one_clean_line(err)
    assert suggestion in err


def test_did_you_mean_lists_only_the_closest():
    assert did_you_mean("mtuu", ["mtu", "pods", "neigh"]) == "did you mean 'mtu'?"
    assert did_you_mean("node-9", ["node-1", "node-2"]) == "did you mean 'node-1' or 'node-2'?"
    assert did_you_mean("zzz", ["mtu"]) == ""


# --- 4. plurals ------------------------------------------------------------------------


def test_plural_helper():
    assert [plural(n, "node") for n in (0, 1, 2)] == ["0 nodes", "1 node", "2 nodes"]
    assert plural(1, "process", "processes") == "1 process"
    assert plural(3, "process", "processes") == "3 processes"
    assert plural(3, "info", "info") == "3 info"


def _document(nodes: int, errors: int) -> dict:
    finding = {
        "rule": "r.x.y",
        "severity": "error",
        "title": "t",
        "message": "m",
        "subject": {},
        "evidence": [],
        "remediation": "fix",
        "references": ["https://example.org/issue/1"],
    }
    return {
        "format": "needle.report/v1",
        "bundle": {"path": "b.tar.gz", "created": "c", "nodes": nodes, "status": "complete"},
        "findings": [finding] * errors,
        "summary": {"error": errors, "warning": 0, "info": 1},
        "coverage": {
            "rules_run": 1,
            "rules_skipped": [],
            "rules_partial": [],
            "rules_invalid": [],
        },
    }


def test_reports_count_in_words():
    stream = io.StringIO()
    render_text(_document(1, 1), stream, color=False)
    text = stream.getvalue()
    assert "b.tar.gz: 1 node, collected" in text
    assert "1 error, 0 warnings, 1 info; 1 rule ran" in text
    markdown = render_markdown(_document(1, 1))
    assert "1 node, collected" in markdown and "**1 error, 0 warnings, 1 info.**" in markdown
    assert "_1 rule ran._" in markdown
    stream = io.StringIO()
    render_text(_document(2, 2), stream, color=False)
    assert "2 nodes, collected" in stream.getvalue() and "2 errors" in stream.getvalue()


def test_collect_summary_counts_in_words(tmp_path, monkeypatch, capsys):
    output = tmp_path / "one.tar.gz"

    def fake_collect(options: object, progress: object) -> SimpleNamespace:
        output.write_bytes(b"x" * 2048)
        node = SimpleNamespace(name="n1", status="ok", errors=[])
        manifest = SimpleNamespace(nodes=[node], resources=[], errors=[], status="complete")
        return SimpleNamespace(manifest=manifest)

    monkeypatch.setattr("needle.collector.cli.collect", fake_collect)
    assert run(["collect", "--kube-dir", str(tmp_path), "-o", str(output)], "needle") == 0
    assert "1 node ok, 0 partial, 0 failed" in capsys.readouterr().err


def test_the_three_terminal_helpers_are_one_file():
    copies = {wing: (REPO / wing / "terminal.py").read_text() for wing in ("collector", "lab")}
    analyzer = (REPO / "analyzer" / "terminal.py").read_text()
    assert copies == {"collector": analyzer, "lab": analyzer}


# --- 5. colour -------------------------------------------------------------------------


def test_color_resolution():
    assert resolve_color(ColorChoice.auto, {}) is None
    assert resolve_color(ColorChoice.auto, {"NO_COLOR": "1"}) is False
    assert resolve_color(ColorChoice.auto, {"NO_COLOR": ""}) is None
    assert resolve_color(ColorChoice.auto, {"FORCE_COLOR": "1"}) is True
    assert resolve_color(ColorChoice.auto, {"NO_COLOR": "1", "FORCE_COLOR": "1"}) is False
    assert resolve_color(ColorChoice.always, {"NO_COLOR": "1"}) is True
    assert resolve_color(ColorChoice.never, {"FORCE_COLOR": "1"}) is False


@pytest.mark.parametrize(
    ("args", "env", "colored"),
    [
        ([], {}, False),
        (["--color", "always"], {}, True),
        (["--color", "always"], {"NO_COLOR": "1"}, True),
        (["--color", "never"], {"FORCE_COLOR": "1"}, False),
        ([], {"FORCE_COLOR": "1"}, True),
        ([], {"NO_COLOR": "1", "FORCE_COLOR": "1"}, False),
    ],
)
def test_report_colour_follows_the_option_and_the_environment(args, env, colored):
    result = needle(*args, "analyze", str(MTU_UNDERLAY), env=env)
    assert result.returncode == 1
    assert (ESC in result.stdout) is colored


@pytest.mark.parametrize(
    "command",
    [["show", str(HEALTHY), "nodes"], ["rules", "list"], ["rules", "explain", "nope"]],
)
def test_tables_and_errors_follow_color(command, capsys):
    run(["--color", "always", *command], "needle")
    always = capsys.readouterr()
    run(["--color", "never", *command], "needle")
    never = capsys.readouterr()
    assert ESC in always.out + always.err
    assert ESC not in never.out + never.err


def test_lab_status_follows_color(monkeypatch, capsys):
    from needle.lab.state import FaultRecord, LabState

    state = LabState(
        name="t",
        state_dir="/run/t",
        kube_dir="/run/t/kube",
        underlay_netns="t-underlay",
        status="up",
        underlay_mtu=1500,
        overlay_mtu=1450,
        created="2026-01-01T00:00:00Z",
        faults=[FaultRecord(fault="mtu-pod", node="n1", message="[x] eth0 mtu 1500")],
    )
    monkeypatch.setattr("needle.lab.cli.api.status", lambda name: state)
    monkeypatch.setattr("needle.lab.cli.api.missing_netns", lambda state: [])
    assert run(["--color", "always", "lab", "status"], "needle") == 0
    assert ESC in capsys.readouterr().out
    assert run(["--color", "never", "lab", "status"], "needle") == 0
    out = capsys.readouterr().out
    assert ESC not in out and "mtu-pod: [x] eth0 mtu 1500" in out


@pytest.mark.parametrize("color", [True, False])
def test_collect_progress_follows_color(color):
    stream = io.StringIO()
    record = NodeRecord(name="n1", transport="netns", dir="nodes/n1", duration_s=1.0)
    Progress(stream, live=False, color=color).finished(record, "netns x")
    assert "n1: ok in 1.0s" in re.sub(r"\x1b\[[0-9;]*m", "", stream.getvalue())
    assert (ESC in stream.getvalue()) is color


def test_always_colours_even_a_dumb_terminal(monkeypatch):
    monkeypatch.setenv("TERM", "dumb")
    stream = io.StringIO()
    make_console(stream, True).print("[red]x[/]")
    assert ESC in stream.getvalue()
    stream = io.StringIO()
    make_console(stream, False).print("[bold red]x[/]")
    assert stream.getvalue() == "x\n"


# --- 6. references in the text report ----------------------------------------------------


def test_text_report_shows_each_findings_references():
    result = needle("analyze", str(MTU_UNDERLAY))
    assert "    see: https://github.com/flannel-io/flannel/issues/841" in result.stdout
    markdown = needle("analyze", str(MTU_UNDERLAY), "--format", "markdown").stdout
    assert "References: <https://github.com/flannel-io/flannel/issues/841>" in markdown


# --- 7. collect -o over an existing file ---------------------------------------------------


def test_collect_refuses_an_existing_output_before_any_work(tmp_path, monkeypatch, capsys):
    existing = tmp_path / "old.tar.gz"
    existing.write_bytes(b"old")

    def forbidden(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("cluster work started before the output was checked")

    monkeypatch.setattr("needle.collector.cli.collect", forbidden)
    monkeypatch.setattr("needle.collector.cli.connect", forbidden)
    assert run(["collect", "-o", str(existing), "--context", "prod"], "needle") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already exists" in err and "--force" in err
    assert existing.read_bytes() == b"old"
    assert run(["collect", "-o", str(tmp_path), "--context", "prod"], "needle") == 2
    assert "is a directory" in capsys.readouterr().err


def test_collect_force_replaces_the_file_in_one_rename(tmp_path, monkeypatch, capsys):
    dump = tmp_path / "dump"
    dump.mkdir()
    (dump / "nodes.json").write_text(
        json.dumps({"kind": "List", "items": [{"kind": "Node", "metadata": {"name": "n1"}}]})
    )
    output = tmp_path / "site.tar.gz"
    output.write_bytes(b"old")
    renames: list[tuple[str, str, bytes]] = []
    original = Path.replace

    def recording_replace(self: Path, target: Path) -> Path:
        renames.append((self.name, Path(target).name, Path(target).read_bytes()))
        return original(self, target)

    monkeypatch.setattr(Path, "replace", recording_replace)
    run(["collect", "--kube-dir", str(dump), "-o", str(output), "--force"], "needle")
    assert renames == [("site.tar.gz.partial", "site.tar.gz", b"old")]
    with gzip.open(output) as bundle:
        assert bundle.read(512)  # a real bundle replaced the old bytes
    assert sorted(path.name for path in tmp_path.iterdir()) == ["dump", "site.tar.gz"]
    assert "wrote" in capsys.readouterr().err


# --- 8. the tx checksum offload rule ---------------------------------------------------


def test_a_healthy_current_bundle_has_no_offload_finding():
    report = json.loads(needle("analyze", str(HEALTHY), "--format", "json").stdout)
    assert [f for f in report["findings"] if "checksum" in f["rule"]] == []
    assert report["summary"] == {"error": 0, "warning": 0, "info": 0}


def test_uname_and_kernel_versions():
    line = b"Linux node-1 5.4.0-104-generic #118-Ubuntu SMP Wed Mar 2 x86_64 GNU/Linux\n"
    (record,) = parse_uname(line).records
    assert (record.kernel_name, record.nodename, record.release) == (
        "Linux",
        "node-1",
        "5.4.0-104-generic",
    )
    assert parse_uname(b"").records == () and parse_uname(b"Linux\n").unparsed == ("Linux",)
    assert kernel_version("3.10.0-1127.el7.x86_64") == (3, 10, 0, 1127)
    assert kernel_version("5.10.53") == (5, 10, 53)
    assert kernel_version("weird") == ()
    assert kernel_in("5.4.0-26-generic", "4.20", "5.4.0-32")
    assert not kernel_in("5.4.0-104-generic", "4.20", "5.4.0-32")
    assert kernel_in("5.4.40", "5.4.1", "5.4.41") and not kernel_in("5.4.41", "5.4.1", "5.4.41")
    assert not kernel_in("", "0", "9") and not kernel_in("weird", "0", "9")


# --- 9. progress on a terminal only ------------------------------------------------------


def _with_pty_stderr(*args: str) -> tuple[str, str, int]:
    """Run needle with stderr on a pseudo-terminal and stdout on a pipe."""
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "100"}
    process = subprocess.Popen(
        [sys.executable, "-m", "needle", *args],
        stdout=subprocess.PIPE,
        stderr=slave,
        cwd=REPO,
        env=env,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert process.stdout is not None
    stdout = process.stdout.read().decode()
    return stdout, b"".join(chunks).decode(errors="replace"), process.wait()


@pytest.mark.parametrize(
    ("args", "step"),
    [
        (["analyze", str(HEALTHY)], f"needle: checking {len(RULE_FILES)} rules on 3 nodes"),
        (["analyze", str(HEALTHY), "--format", "json"], "needle: reading"),
        (["diff", str(HEALTHY), str(MTU_UNDERLAY)], "needle: comparing"),
        (["show", str(HEALTHY), "mtu"], "needle: reading"),
    ],
)
def test_progress_shows_on_a_terminal_and_nowhere_else(args, step):
    piped = needle(*args)
    assert piped.stderr == "", "no progress when stderr is not a terminal"
    stdout, terminal, _ = _with_pty_stderr(*args)
    assert step in terminal
    assert stdout == piped.stdout


def test_progress_with_analyze_to_a_file_still_shows(tmp_path):
    report = tmp_path / "report.txt"
    stdout, terminal, code = _with_pty_stderr("analyze", str(HEALTHY), "-o", str(report))
    assert code == 0 and stdout == "" and "needle: checking" in terminal
    assert "0 errors" in report.read_text()


# --- 10. shell completion -----------------------------------------------------------------


def test_completion_scripts():
    bash = needle("completion", "bash")
    assert bash.returncode == 0
    assert "complete -o default -F _needle_completion needle" in bash.stdout
    assert "_NEEDLE_COMPLETE=complete_bash" in bash.stdout
    assert "compdef _needle_completion needle" in needle("completion", "zsh").stdout
    assert "complete --command needle" in needle("completion", "fish").stdout


@pytest.mark.parametrize(
    ("words", "cword", "expected"),
    [
        ("needle sh", 1, ["show"]),
        ("needle show b.tar.gz mt", 3, ["mtu"]),
        ("needle --color n", 2, ["never"]),
    ],
)
def test_completion_answers_through_the_environment(words, cword, expected):
    result = needle(
        env={"_NEEDLE_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword)}
    )
    assert result.returncode == 0
    assert result.stdout.split() == expected


def test_global_options_and_completion_are_documented():
    text = (REPO / "docs" / "cli.md").read_text()
    for option in ("--color auto|always|never", "NO_COLOR", "--debug", "--version"):
        assert option.replace("|", "\\|") in text or option in text
    assert "needle completion bash" in text and "needle completion zsh" in text


def test_run_keeps_the_colour_it_parsed_for_its_own_errors(capsys):
    assert run(["--color", "always", "rules", "explain", "nope"], "needle") == 2
    assert "\x1b[1;31merror\x1b[0m" in capsys.readouterr().err
    assert needle_cli.ColorChoice.never.value == "never"
