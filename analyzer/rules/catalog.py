"""Finds rule files, parses them and checks them against rules/rule.schema.json.

A broken rule file is reported by name, line and column; it never stops the
other rules from loading.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from needle.analyzer.errors import AnalyzerError

RULE_SUFFIXES = (".yaml", ".yml")
SCHEMA_NAME = "rule.schema.json"
FIXTURES_DIR = "tests"


def builtin_rules_dir() -> Traversable:
    """The built-in rules: inside the wheel, or rules/ beside the package in a checkout."""
    packaged = resources.files("needle.analyzer") / "builtin_rules"
    if packaged.is_dir():
        return packaged
    # Editable installs and source checkouts keep rules/ at the top of the repo.
    return Path(__file__).resolve().parents[2] / "rules"


@cache
def rule_schema() -> dict[str, Any]:
    return json.loads((builtin_rules_dir() / SCHEMA_NAME).read_text())


@dataclass(frozen=True)
class RuleProblem:
    """Why one rule file could not be loaded, with where in the file."""

    source: str
    message: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = self.source
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class RuleDocument:
    """A rule file that parsed and matched the schema."""

    source: str
    data: dict[str, Any]
    builtin: bool
    # where each top-level value starts in the file (1-based line, column)
    positions: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def title(self) -> str:
        return str(self.data["title"])

    @property
    def severity(self) -> str:
        return str(self.data["severity"])


@dataclass
class Catalog:
    rules: dict[str, RuleDocument] = field(default_factory=dict)
    problems: list[RuleProblem] = field(default_factory=list)


def _rule_files(root: Traversable) -> list[Traversable]:
    if root.is_file():
        return [root]
    found: list[Traversable] = []
    for entry in sorted(root.iterdir(), key=lambda item: item.name):
        if entry.is_dir():
            if entry.name != FIXTURES_DIR:  # fixtures sit beside rules, are not rules
                found.extend(_rule_files(entry))
        elif entry.name.endswith(RULE_SUFFIXES):
            found.append(entry)
    return found


def _line_of(node: yaml.Node | None, path: Iterable[Any]) -> tuple[int | None, int | None]:
    """Line and column (1-based) of the YAML node at `path`, as near as the path goes."""
    if node is None:
        return None, None
    for part in path:
        child = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    child = value
                    break
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            child = node.value[part]
        if child is None:
            break
        node = child
    return node.start_mark.line + 1, node.start_mark.column + 1


def _schema_problem(error: jsonschema.exceptions.ValidationError) -> str:
    """The schema's complaint, with lists as a person writes them (not Python reprs)."""
    instance, expected = error.instance, error.validator_value
    if error.validator == "enum" and isinstance(expected, list):
        return f"{instance!r} is not one of {', '.join(map(str, expected))}"
    if error.validator == "required" and isinstance(instance, dict):
        missing = [key for key in expected if key not in instance]
        return f"missing {', '.join(missing)}" if missing else error.message
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        extra = [key for key in instance if key not in known]
        if extra:
            return f"unknown key {', '.join(map(repr, extra))}"
    return error.message


def parse_rule(text: str, source: str, builtin: bool = False) -> RuleDocument | RuleProblem:
    try:
        tree = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if mark is None:
            return RuleProblem(source, f"not valid YAML: {problem}")
        return RuleProblem(source, f"not valid YAML: {problem}", mark.line + 1, mark.column + 1)
    if not isinstance(data, dict):
        return RuleProblem(source, "a rule file holds one YAML mapping (id, title, ...)", 1, 1)
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(rule_schema()).iter_errors(data)
    )
    if error is not None:
        line, column = _line_of(tree, error.absolute_path)
        field_path = ".".join(str(part) for part in error.absolute_path) or "(top level)"
        return RuleProblem(source, f"{field_path}: {_schema_problem(error)}", line, column)
    positions: dict[str, tuple[int, int]] = {}
    if isinstance(tree, yaml.MappingNode):
        for key, value in tree.value:
            positions[str(key.value)] = (value.start_mark.line + 1, value.start_mark.column + 1)
    return RuleDocument(source, data, builtin, positions)


def load_catalog(extra: Iterable[Path] = (), include_builtin: bool = True) -> Catalog:
    """Built-in rules, then user rules from `extra` (files or directories).

    A user rule with the id of a built-in one replaces it.
    """
    catalog = Catalog()
    roots: list[tuple[Traversable, bool]] = []
    if include_builtin:
        roots.append((builtin_rules_dir(), True))
    for path in extra:
        if not path.exists():
            raise AnalyzerError(f"rules path {path} does not exist")
        roots.append((path, False))
    for root, builtin in roots:
        for entry in _rule_files(root):
            source = entry.name if builtin else str(entry)
            try:
                text = entry.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                where = f"byte {exc.start}"
                catalog.problems.append(RuleProblem(source, f"not UTF-8 text (at {where})"))
                continue
            except OSError as exc:
                why = exc.strerror or "I/O error"
                catalog.problems.append(RuleProblem(source, f"cannot read it ({why})"))
                continue
            parsed = parse_rule(text, source, builtin)
            if isinstance(parsed, RuleProblem):
                catalog.problems.append(parsed)
            else:
                catalog.rules[parsed.id] = parsed
    return catalog
