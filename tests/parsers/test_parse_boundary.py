"""The parsers stay pure: standard library only, no other wing, no mutable module state."""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "analyzer" / "parsers"
MODULES = sorted(PACKAGE.glob("*.py"))


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_only_stdlib_sibling_parsers_and_orjson(path):
    foreign = {
        name
        for name in imports_of(path)
        if name.split(".")[0] not in sys.stdlib_module_names
        and not name.startswith("needle.analyzer.parsers")
        and name != "__future__"
        # the one exception: orjson decodes ip -j output ~2x faster (10^6 records a bundle)
        and name != "orjson"
    }
    assert foreign == set()


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_every_module_says_what_it_parses(path):
    module = importlib.import_module(f"needle.analyzer.parsers.{path.stem}")
    assert module.__doc__ and len(module.__doc__.strip()) > 40


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_no_mutable_module_state(path):
    # Lookup tables are frozensets, tuples or read-only mappings: nothing a call can change
    # for the next one.
    module = importlib.import_module(f"needle.analyzer.parsers.{path.stem}")
    mutable = {
        name: type(value).__name__
        for name, value in vars(module).items()
        if isinstance(value, list | dict | set | bytearray) and not name.startswith("__")
    }
    assert mutable == {}
