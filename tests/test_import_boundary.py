"""The collector, the analyzer and the lab share nothing but the bundle format."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WINGS = ("needle", "collector", "analyzer", "lab")
# Who may import whom: the front door mounts everything; the wings stay apart.
ALLOWED = {
    "needle": {"collector", "analyzer", "lab"},
    "collector": set(),
    "analyzer": set(),
    "lab": set(),
}


def imported_top_levels(path: Path) -> set[tuple[str, int]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[tuple[str, int]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {(alias.name.split(".")[0], node.lineno) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add((node.module.split(".")[0], node.lineno))
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if name in {"import_module", "__import__"} and isinstance(first, ast.Constant):
                found.add((str(first.value).split(".")[0], node.lineno))
    return found


def violations(wing: str) -> list[str]:
    forbidden = set(WINGS) - {wing} - ALLOWED[wing]
    problems = []
    for path in sorted((REPO / wing).rglob("*.py")):
        for module, line in sorted(imported_top_levels(path)):
            if module in forbidden:
                problems.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    return problems


@pytest.mark.parametrize("wing", ["collector", "analyzer", "lab"])
def test_wing_imports_no_other_wing(wing):
    assert violations(wing) == []


def test_the_check_catches_a_forbidden_import(tmp_path):
    offender = tmp_path / "offender.py"
    offender.write_text(
        "import os\nfrom analyzer.model import X\nimportlib.import_module('collector.x')\n"
    )
    assert {("analyzer", 2), ("collector", 3)} <= imported_top_levels(offender)


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
        ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for path in (REPO / wing).rglob("*.py")
    )
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {others!r}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert result.stdout.strip() == "[]"
