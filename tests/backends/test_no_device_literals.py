"""Only a backend package names a data plane's devices, port or overhead: `flannel.1`,
`cni0`, `cali*`, 8472, the 50 (70 over IPv6) bytes of VXLAN. Everything else asks the
backend (analyzer/backends/, lab/backends/; the collector finds devices by kind), so
a data plane after these costs one package and its rules, not edits across the tree.
Comments and docstrings may explain a data plane; code, rule expressions and rendered
text may not name one."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
NAMES = re.compile(r"flannel\.1|cni0|\bcali(?!co)|\b8472\b")  # calico is a project
NUMBERS = {"50", "70", "8472"}
# numbers that are something else where they stand: (file, how the line starts, why)
NOT_AN_OVERHEAD = {
    ("analyzer/netfilter/nft_rules.py", "PRIORITIES = {"): "nftables' security priority, 50",
}
# code that must ask a backend; lab/ has its own check (tests/lab/test_lab_backends_plan.py)
AREAS = ("analyzer", "collector", "needle")
BACKEND_PACKAGES = ("analyzer/backends/",)
# fields of a rule that are prose about the data plane it was written for, not output
PROSE = {"description", "references"}
DOCSTRING_OPENERS = ('"""', "'''", 'r"""')


def _python_files() -> list[Path]:
    return sorted(
        path
        for area in AREAS
        for path in (REPO / area).rglob("*.py")
        if not str(path.relative_to(REPO)).startswith(BACKEND_PACKAGES)
    )


def _named_in_code(path: Path) -> list[str]:
    found = []
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
    previous = None
    for token in tokens:
        if token.type == tokenize.STRING and NAMES.search(token.string):
            # a docstring is a string statement on its own: prose, allowed
            starts_statement = previous is None or previous.type in (
                tokenize.INDENT,
                tokenize.NEWLINE,
                tokenize.NL,
            )
            if starts_statement and token.line.strip().startswith(DOCSTRING_OPENERS):
                previous = token
                continue
            found.append(f"{path.relative_to(REPO)}:{token.start[0]}: {token.string[:60]}")
        elif token.type == tokenize.NUMBER and token.string in NUMBERS:
            where = str(path.relative_to(REPO))
            if any(
                where == file and token.line.startswith(start) for file, start in NOT_AN_OVERHEAD
            ):
                previous = token
                continue
            found.append(f"{path.relative_to(REPO)}:{token.start[0]}: {token.line.strip()[:60]}")
        if token.type not in (tokenize.COMMENT, tokenize.NL):
            previous = token
    return found


@pytest.mark.parametrize("path", _python_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_python_outside_a_backend_names_no_device(path):
    assert _named_in_code(path) == []


def test_collector_spec_and_script_name_no_device():
    found = []
    for path in sorted((REPO / "collector").rglob("*")):
        if path.suffix not in (".yaml", ".sh") or not path.is_file():
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if NAMES.search(code):
                found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()[:60]}")
    assert found == []


def _rule_texts(document: dict[str, object]) -> list[str]:
    texts = []
    for key, value in document.items():
        if key in PROSE:
            continue
        if isinstance(value, dict):
            texts += _rule_texts(value)
        elif isinstance(value, list):
            for item in value:
                texts += _rule_texts(item) if isinstance(item, dict) else [str(item)]
        else:
            texts.append(str(value))
    return texts


@pytest.mark.parametrize("path", sorted((REPO / "rules").glob("*.yaml")), ids=lambda p: p.name)
def test_a_rule_names_no_device_outside_its_prose(path):
    document = yaml.safe_load(path.read_text())
    named = [text for text in _rule_texts(document) if NAMES.search(text)]
    overheads = [text for text in _rule_texts(document) if re.search(r"[+-]\s*(50|70)\b", text)]
    assert named == [] and overheads == []
