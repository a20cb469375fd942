"""The wheel is complete: installed into a fresh venv, both commands work and the
built-in rules and schemas ship inside it."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(REPO)],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("kube_needle-*.whl")
    return built


def test_wheel_ships_rules_and_schemas(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "needle/analyzer/builtin_rules/rule.schema.json" in names
    assert "needle/analyzer/schemas/manifest.v1.schema.json" in names
    assert "needle/collector/spec/node.yaml" in names
    assert "needle/collector/script/prelude.sh" in names
    rules = sorted(REPO.glob("rules/*.yaml"))
    assert rules and {f"needle/analyzer/builtin_rules/{r.name}" for r in rules} <= names
    fixtures = sorted(REPO.glob("rules/tests/*.yaml"))
    assert fixtures and {f"needle/analyzer/builtin_rules/tests/{r.name}" for r in fixtures} <= names
    # the HTML report's templates, style sheet and script
    page = sorted(
        p.relative_to(REPO / "analyzer/report/html")
        for p in (REPO / "analyzer/report/html").glob("*/*")
        if p.suffix in (".j2", ".css", ".js")
    )
    assert {str(p) for p in page} >= {
        "templates/report.html.j2",
        "templates/diff.html.j2",
        "templates/macros.html.j2",
        "assets/report.css",
        "assets/report.js",
    }
    assert {f"needle/analyzer/report/html/{p}" for p in page} <= names


def test_wheel_installs_one_top_level_package_with_every_module(wheel):
    """Only `needle` at the top (no `analyzer` or `lab` to collide with other
    distributions), and every module of the repository's wings inside it."""
    names = set(zipfile.ZipFile(wheel).namelist())
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"needle"}
    expected = {
        f"needle/{path.relative_to(REPO)}"
        for wing in ("collector", "analyzer", "lab")
        for path in (REPO / wing).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    expected |= {f"{path.relative_to(REPO)}" for path in (REPO / "needle").glob("*.py")}
    assert expected <= names, sorted(expected - names)
    assert any(name.endswith("dist-info/licenses/LICENSE") for name in names)


@pytest.mark.slow
def test_fresh_venv_install(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    pip = env_dir / "bin" / "pip"
    subprocess.run([str(pip), "install", "--quiet", str(wheel)], check=True, capture_output=True)
    listed = subprocess.run(
        [str(env_dir / "bin" / "needle"), "rules", "list"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert listed.returncode == 0, listed.stderr
    assert "flannel.route.peer-podcidr-missing" in listed.stdout
    version = subprocess.run(
        [str(env_dir / "bin" / "kubectl-needle"), "--version"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert version.stdout.startswith("needle ")
