#!/usr/bin/env python3
"""kubectl-needle as krew installs it: a launcher for needle's bundled wheel.

needle is a Python program with compiled dependencies (pydantic-core, orjson,
zstandard, cel-expr-python), so one self-contained file cannot serve every platform
and Python version. The krew archive therefore holds this launcher, needle's own wheel
(pure Python) and the LICENSE. On the first run the launcher makes a virtual
environment with a Python 3.11+ it finds, installs the bundled wheel into it (pip
fetches the dependencies from the package index, or from whatever PIP_INDEX_URL /
pip.conf names), then hands over to that environment's `kubectl-needle`. Later runs
only check a marker file and hand over at once.

The environment lives beside this file in the krew store (so `kubectl krew uninstall`
and upgrades remove it), or, when that directory is read-only, under
$XDG_CACHE_HOME/kubectl-needle. Everything the launcher prints goes to stderr: stdout
is needle's (`kubectl needle analyze --format json` stays parseable).

This file runs under any python3 (3.8 syntax) so that it can say which Python it needs;
build.py copies it into the archive as `kubectl-needle`.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

MIN_PYTHON = (3, 11)
# Oldest supported first: the compiled dependencies publish wheels for these.
CANDIDATES = ("python3.11", "python3.12", "python3.13", "python3")
ENV_PYTHON = "KUBECTL_NEEDLE_PYTHON"
WHEEL_GLOB = "kube_needle-*-py3-none-any.whl"
MARKER = ".kubectl-needle-installed"
EXIT_SETUP_FAILED = 2  # needle's own exit code for "could not run at all"


class SetupError(Exception):
    """Why needle cannot be started; one line for the user."""


def _say(message: str) -> None:
    sys.stderr.write(f"kubectl-needle: {message}\n")
    sys.stderr.flush()


def plugin_dir() -> Path:
    """Where krew put the archive's files (krew links kubectl-needle here)."""
    return Path(__file__).resolve().parent


def bundled_wheel(root: Path) -> Path:
    wheels = sorted(root.glob(WHEEL_GLOB))
    if len(wheels) != 1:
        raise SetupError(
            f"expected one {WHEEL_GLOB} beside the launcher in {root}, found {len(wheels)}; "
            "reinstall the plugin: kubectl krew uninstall needle && kubectl krew install needle"
        )
    return wheels[0]


def _is_supported(python: str) -> bool:
    probe = subprocess.run(
        [python, "-c", f"import sys; sys.exit(sys.version_info[:2] < {MIN_PYTHON!r})"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return probe.returncode == 0


def find_python(environ: dict[str, str]) -> str:
    """A Python >= 3.11: $KUBECTL_NEEDLE_PYTHON, else the one running this, else PATH."""
    wanted = ".".join(str(part) for part in MIN_PYTHON)
    chosen = environ.get(ENV_PYTHON)
    if chosen:
        if shutil.which(chosen) is None or not _is_supported(chosen):
            raise SetupError(f"{ENV_PYTHON}={chosen} is not a Python {wanted} or newer")
        return chosen
    if sys.version_info[:2] >= MIN_PYTHON:
        return sys.executable
    for name in CANDIDATES:
        found = shutil.which(name)
        if found and _is_supported(found):
            return found
    raise SetupError(
        f"needle needs Python {wanted} or newer, and this is "
        f"{sys.version_info[0]}.{sys.version_info[1]}; none of {', '.join(CANDIDATES)} on "
        f"PATH is newer. Install one, or set {ENV_PYTHON}=/path/to/python3"
    )


def env_dir(root: Path, wheel: Path, environ: dict[str, str]) -> Path:
    if os.access(root, os.W_OK):
        return root / "venv"
    cache = Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "kubectl-needle" / wheel.stem


def _marker_text(wheel: Path, python: str) -> str:
    return f"{wheel.name}\n{python}\n"


def is_installed(venv: Path, wheel: Path) -> bool:
    marker = venv / MARKER
    try:
        first = marker.read_text(encoding="utf-8").splitlines()[0]
    except (OSError, IndexError):
        return False
    return first == wheel.name and (venv / "bin" / "kubectl-needle").is_file()


def install(venv: Path, wheel: Path, python: str) -> None:
    """Make the environment from scratch: a half-made one is removed first."""
    if venv.exists():
        shutil.rmtree(venv)
    _say(
        f"first run: installing {wheel.name} and its dependencies into {venv} "
        "(this happens once per version)"
    )
    steps = (
        [python, "-m", "venv", str(venv)],
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(wheel),
        ],
    )
    for argv in steps:
        # pip's and venv's output goes to stderr too: stdout belongs to needle
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=sys.stderr, check=False)
        if done.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            raise SetupError(
                f"{' '.join(argv[:4])} ... failed with exit code {done.returncode} (see above); "
                "pip needs access to a package index on the first run"
            )
    (venv / MARKER).write_text(_marker_text(wheel, python), encoding="utf-8")


def prepare(root: Path, environ: dict[str, str]) -> Path:
    """The environment's kubectl-needle, installed first if needed (one at a time)."""
    wheel = bundled_wheel(root)
    venv = env_dir(root, wheel, environ)
    target = venv / "bin" / "kubectl-needle"
    if is_installed(venv, wheel):
        return target
    venv.parent.mkdir(parents=True, exist_ok=True)
    lock_path = venv.parent / f".{venv.name}.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second first run waits for the first
        if not is_installed(venv, wheel):
            install(venv, wheel, find_python(environ))
    return target


def main(argv: list[str]) -> int:
    try:
        target = prepare(plugin_dir(), dict(os.environ))
    except SetupError as exc:
        _say(str(exc))
        return EXIT_SETUP_FAILED
    except OSError as exc:
        _say(f"cannot set up needle: {exc}")
        return EXIT_SETUP_FAILED
    os.execv(str(target), [str(target), *argv])  # noqa: S606 - our own environment's script
    return EXIT_SETUP_FAILED  # not reached: execv replaces this process


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
