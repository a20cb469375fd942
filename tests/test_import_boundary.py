"""The collector, the analyzer and the lab share nothing but the bundle format.

Installed, all three live under the one `needle` package (needle.collector,
needle.analyzer, needle.lab); in the repository they stay at the top (collector/,
analyzer/, lab/), and needle/ itself is the front door that mounts them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WINGS = ("collector", "analyzer", "lab")
# A library the wings may use (the collector redacts before it writes); it uses none of them.
SHARED = "redact"
FRONT_DOOR = "needle"
# The names the wings had before they moved under needle: importing them is a mistake
# (they would collide with other distributions' packages of the same name).
BARE = set(WINGS)


def imported_modules(path: Path) -> set[tuple[str, int]]:
    """Every absolute module name imported by `path`, with its line."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[tuple[str, int]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {(alias.name, node.lineno) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add((node.module, node.lineno))
            found |= {(f"{node.module}.{alias.name}", node.lineno) for alias in node.names}
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if name in {"import_module", "__import__"} and isinstance(first, ast.Constant):
                found.add((str(first.value), node.lineno))
    return found


def part_of(module: str) -> str | None:
    """Which part of needle a module name belongs to: a wing, the front door, a bare
    (old-style) wing name, or None for anything else."""
    parts = module.split(".")
    if parts[0] in BARE:
        return f"bare {parts[0]}"
    if parts[0] != FRONT_DOOR:
        return None
    if len(parts) > 1 and parts[1] in (*WINGS, SHARED):
        return parts[1]
    return FRONT_DOOR


def violations(wing: str) -> list[str]:
    problems = []
    for path in sorted((REPO / wing).rglob("*.py")):
        for module, line in sorted(imported_modules(path)):
            owner = part_of(module)
            if owner is not None and owner not in (wing, SHARED):
                problems.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    return problems


@pytest.mark.parametrize("wing", WINGS)
def test_wing_imports_no_other_wing_and_not_the_front_door(wing):
    assert violations(wing) == []


def test_the_shared_library_imports_no_wing_and_not_the_front_door():
    problems = []
    for path in sorted((REPO / SHARED).rglob("*.py")):
        for module, line in sorted(imported_modules(path)):
            owner = part_of(module)
            if owner is not None and owner != SHARED:
                problems.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    assert problems == []


def test_the_front_door_imports_wings_only_by_their_needle_names():
    bare = []
    for path in sorted((REPO / FRONT_DOOR).rglob("*.py")):
        for module, line in sorted(imported_modules(path)):
            owner = part_of(module)
            if owner is not None and owner.startswith("bare "):
                bare.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    assert bare == []


def test_the_check_catches_a_forbidden_import(tmp_path):
    offender = tmp_path / "offender.py"
    offender.write_text(
        "import os\nfrom needle.analyzer.model import X\n"
        "importlib.import_module('needle.collector.x')\nimport analyzer.cli\n"
        "from needle import cli\n"
    )
    owners = {(part_of(module), line) for module, line in imported_modules(offender)}
    assert {("analyzer", 2), ("collector", 3), ("bare analyzer", 4), ("needle", 5)} <= owners


@pytest.mark.parametrize(
    ("wing", "others"),
    [
        ("collector", ["analyzer", "lab"]),
        ("analyzer", ["collector", "lab"]),
        ("lab", ["collector", "analyzer"]),
    ],
)
def test_importing_a_wing_loads_no_other(wing, others):
    modules = sorted(
        "needle." + ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for path in (REPO / wing).rglob("*.py")
        if path.name != "__main__.py"
    )
    loaded_others = [f"needle.{other}" for other in others]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules\n"
        f"    if m.split('.')[0] in {list(BARE)!r}\n"
        f"    or any(m == o or m.startswith(o + '.') for o in {loaded_others!r})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert result.stdout.strip() == "[]"


def test_nothing_in_the_repository_imports_the_old_bare_names():
    """Tests, benchmarks and scripts too: `analyzer`, `collector` and `lab` are not
    installed under those names any more."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    bare = []
    for name in listed:
        path = REPO / name
        if not path.is_file():
            continue
        for module, line in sorted(imported_modules(path)):
            owner = part_of(module)
            if owner is not None and owner.startswith("bare "):
                bare.append(f"{name}:{line} imports {module}")
    assert bare == []
