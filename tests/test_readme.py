"""The README runs as written: every `sh` block, verbatim and in order, on a fresh copy
of the repository with a fresh virtual environment, as a newcomer (as root) would type
them into one shell. A block that cannot run here says why in a marker comment above it:

    <!-- readme-test: skip: needs a live cluster -->
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
FENCE = re.compile(
    r"(?:<!-- readme-test: (?P<marker>[^>]*?) -->\n)?```(?P<info>[^\n]*)\n(?P<body>.*?)```",
    re.S,
)
SKIP_REASONS = {
    "needs a live cluster",
    "installs outside the repository",
    "needs a container engine",
    "needs krew",
    "the test suite itself; .ci/run runs this line verbatim",
}
# The lab's default name, which the README's lab block uses.
LAB = "needle-lab"


@dataclass(frozen=True)
class Block:
    line: int
    body: str
    skip: str | None


def shell_blocks(text: str) -> list[Block]:
    blocks = []
    for match in FENCE.finditer(text):
        if match.group("info").split()[:1] != ["sh"]:
            continue
        marker = match.group("marker")
        skip = None
        if marker is not None:
            assert marker.startswith("skip: "), f"unknown marker {marker!r}"
            skip = marker.removeprefix("skip: ")
        line = text.count("\n", 0, match.start("body")) + 1
        blocks.append(Block(line, match.group("body"), skip))
    return blocks


def test_every_block_runs_or_says_why_it_cannot():
    blocks = shell_blocks(README.read_text())
    assert len([b for b in blocks if b.skip is None]) >= 5
    ci = (REPO / ".ci" / "run").read_text()
    for block in blocks:
        syntax = subprocess.run(["bash", "-n"], input=block.body, text=True, check=False)
        assert syntax.returncode == 0, f"README.md:{block.line} is not valid shell"
        assert "sudo " not in block.body, f"README.md:{block.line}: root needs no sudo"
        if block.skip is None:
            continue
        assert block.skip in SKIP_REASONS, f"README.md:{block.line}: {block.skip!r}"
        if block.skip.startswith("the test suite itself"):
            assert block.body.strip() in ci, "CI runs the README's test command verbatim"


def test_the_block_parser_sees_markers(tmp_path):
    text = (
        "intro\n```sh\necho one\n```\n"
        "<!-- readme-test: skip: needs a live cluster -->\n```sh\nkubectl get nodes\n```\n"
        "```\nnot shell\n```\n"
    )
    blocks = shell_blocks(text)
    assert [(b.body, b.skip) for b in blocks] == [
        ("echo one\n", None),
        ("kubectl get nodes\n", "needs a live cluster"),
    ]


def fresh_copy(target: Path) -> None:
    """The repository as a clone would have it (tracked and new files, nothing ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = REPO / name.decode()
        if not source.is_file():
            continue  # deleted in the working tree
        destination = target / name.decode()
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)


def newcomer_environment(home: Path) -> dict[str, str]:
    """A login shell's environment: no virtual environment active, no needle on PATH."""
    ours = {str(Path(sys.prefix) / "bin"), str(Path(sys.executable).parent)}
    path = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d and d not in ours]
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    env.update(PATH=os.pathsep.join(path), HOME=str(home), NO_COLOR="1")
    env.pop("NEEDLE_LAB_NAME", None)
    return env


def lab_exists() -> bool:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    names = [line.split()[0] for line in listed.stdout.splitlines() if line.strip()]
    return (
        any(name.startswith(f"{LAB}-") for name in names) or Path(f"/run/needle-lab/{LAB}").exists()
    )


@pytest.mark.root
@pytest.mark.slow
@pytest.mark.tools("tcpdump", "ethtool", "bridge", "brctl", "git")
def test_the_readme_runs_as_written(tmp_path):
    if lab_exists():
        pytest.fail(
            f"a lab named {LAB} exists on this machine: the README test uses that name and "
            f"will not touch a lab it did not make (`needle lab down --name {LAB}`)",
            pytrace=False,
        )
    copy = tmp_path / "needle"
    fresh_copy(copy)
    home = tmp_path / "home"
    home.mkdir()
    script = "set -euo pipefail\n" + "".join(
        f"# README.md:{block.line}\n{block.body}"
        for block in shell_blocks(README.read_text())
        if block.skip is None
    )
    try:
        result = subprocess.run(
            ["bash", "-c", script],
            cwd=copy,
            env=newcomer_environment(home),
            capture_output=True,
            text=True,
            check=False,
            timeout=900,
        )
    finally:
        if lab_exists():  # the lab block failed half-way: take down what it made
            subprocess.run(
                [sys.executable, "-m", "needle", "lab", "down", "--name", LAB],
                capture_output=True,
                check=False,
                timeout=120,
            )
    assert result.returncode == 0, (
        f"exit {result.returncode}\n--- stdout\n{result.stdout[-3000:]}\n"
        f"--- stderr\n{result.stderr[-3000:]}"
    )
    assert (copy / ".venv" / "bin" / "needle").exists()
    for made in ("report.md", "node.tar.gz", "lab.tar.gz"):
        assert (copy / made).stat().st_size > 0, made
    assert "underlay" in result.stdout.lower()  # the lab bundle's MTU fault is reported
    assert not lab_exists()
