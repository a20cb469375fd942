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
    assert "analyzer/builtin_rules/rule.schema.json" in names
    assert "analyzer/schemas/manifest.v1.schema.json" in names
    rules = sorted(REPO.glob("rules/*.yaml"))
    assert rules and {f"analyzer/builtin_rules/{r.name}" for r in rules} <= names
    assert not any(name.startswith(("tests/", "rules/")) for name in names)


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
