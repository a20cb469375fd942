"""A corpus of hostile, malformed and odd-but-valid bundles, built by code (no blobs).

Each case starts from a real bundle (samples/lab-healthy.tar.gz, unpacked into a
directory) and changes it the way somebody else's cluster might: hostile strings,
wrong types, absurd sizes, archive tricks. Cases register themselves with `@case`; the
runner (test_corpus.py) puts every case through analyze (text, json, markdown), every
show view and diff, each in a resource-limited child process, and checks what a user
would see: no traceback, an exit code of the contract, JSON that parses, and no raw
control characters or markup from the bundle in human-readable output.

    .venv/bin/python tests/hostile/corpus.py OUTDIR   # write every case for a look
"""

from __future__ import annotations

import json
import shutil
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "samples" / "lab-healthy.tar.gz"

Build = Callable[[Path], Path | None]
"""Changes the unpacked bundle at the path in place; returns the path of the bundle to
read when it is not that directory (e.g. an archive it packed)."""


@dataclass(frozen=True)
class Case:
    name: str
    classes: tuple[str, ...]
    """Which kinds of trouble it is (sanitise, markup, types, nesting, duplicates,
    budget, archive, signals, nonsense, ...)."""
    build: Build
    expect_exit: frozenset[int] = frozenset({0, 1, 2})
    must_report: tuple[str, ...] = ()
    """Text that the json report, or the error, must contain (e.g. the bad object's name)."""
    extra: dict[str, Any] = field(default_factory=dict)
    base: Path = BASE
    """The sample the case starts from (default: the healthy one)."""


CASES: dict[str, Case] = {}


def case(
    name: str,
    *classes: str,
    expect_exit: set[int] | None = None,
    must_report: tuple[str, ...] = (),
    base: Path = BASE,
) -> Callable[[Build], Build]:
    def register(build: Build) -> Build:
        if name in CASES:
            raise ValueError(f"two corpus cases are called {name}")
        exits = frozenset(expect_exit or {0, 1, 2})
        CASES[name] = Case(name, classes, build, exits, must_report, base=base)
        return build

    return register


def unpack_base(target: Path, base: Path = BASE) -> Path:
    """The sample `base` (the healthy one unless said) as a directory bundle at `target`."""
    target.mkdir(parents=True)
    with tarfile.open(base) as tar:
        tar.extractall(target, filter="data")
    return target


def build_case(item: Case, where: Path) -> Path:
    """The case's bundle under `where` (a fresh directory); returns what to read."""
    bundle = unpack_base(where / item.name, item.base)
    made = item.build(bundle)
    return made if made is not None else bundle


# -- helpers for cases ------------------------------------------------------------------


def load(bundle: Path, relpath: str) -> Any:
    return json.loads((bundle / relpath).read_text())


def save(bundle: Path, relpath: str, data: Any) -> None:
    (bundle / relpath).write_text(json.dumps(data))


def edit_items(bundle: Path, resource: str, change: Callable[[list[dict[str, Any]]], None]) -> None:
    """Change cluster/<resource>.json's items in place."""
    listing = load(bundle, f"cluster/{resource}.json")
    change(listing["items"])
    save(bundle, f"cluster/{resource}.json", listing)


def node_dirs(bundle: Path) -> list[Path]:
    return sorted(p for p in (bundle / "nodes").iterdir() if p.is_dir())


def pack(bundle: Path, name: str = "bundle.tar.gz") -> Path:
    """The directory bundle as an archive beside it, as the collector writes one."""
    archive = bundle.parent / f"{bundle.name}-{name}"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(bundle.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(bundle)), recursive=False)
    return archive


def load_all() -> dict[str, Case]:
    """Every case module under this package (cases_*.py) registers on import."""
    import importlib

    for module in sorted(Path(__file__).parent.glob("cases_*.py")):
        importlib.import_module(module.stem)
    return CASES


def main() -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    out = Path(sys.argv[1])
    if out.exists():
        shutil.rmtree(out)
    # as a script this module is __main__; the cases register with `corpus`, imported
    # under its own name
    import corpus

    for item in corpus.load_all().values():
        print(corpus.build_case(item, out))


if __name__ == "__main__":
    main()
