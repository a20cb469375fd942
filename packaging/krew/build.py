"""Builds the krew archive of `kubectl needle` and renders its plugin manifest.

    python packaging/krew/build.py [--out DIR] [--wheel WHEEL] [--repository-url URL]
    python packaging/krew/build.py --check MANIFEST [--archive ARCHIVE ...]

The first form builds needle's wheel (or takes --wheel), packs it with the launcher
(launcher.py, as `kubectl-needle`) and the LICENSE into kubectl-needle-VERSION.tar.gz,
fills needle.yaml.in with the version, the release URL and the archive's sha256, checks
the result and writes both into DIR (default dist/krew). The version is pyproject.toml's.
The archive is reproducible (fixed order, owners and times; SOURCE_DATE_EPOCH, default
0), so the same wheel always gives the same sha256. The second form only checks a
manifest, against the archives given.

"Checks" means: the JSON Schema in plugin.schema.json, then the rules of krew's own
validation that a schema cannot state (`rule_errors`), then, for each archive, what
`kubectl krew install` would do with it (`install_errors`).

Nothing here downloads anything; only `python -m build` (when no --wheel is given) may
fetch its build requirements.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import posixpath
import re
import shutil
import string
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import zipfile
from collections.abc import Mapping
from fnmatch import fnmatchcase
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TEMPLATE = HERE / "needle.yaml.in"
SCHEMA = HERE / "plugin.schema.json"
LAUNCHER_SOURCE = HERE / "launcher.py"

# The one place the project's home is named: the manifest's homepage and every release
# URL derive from it (tests keep the Containerfile's NEEDLE_SOURCE label equal to it).
REPOSITORY_URL = "https://github.com/OWNER/needle"
RELEASE_URI = "{repository}/releases/download/v{version}/{archive}"

PLUGIN = "needle"
DISTRIBUTION = "kube_needle"
LAUNCHER = "kubectl-needle"
ARCHIVE = "kubectl-needle-{version}.tar.gz"
MANIFEST_NAME = f"{PLUGIN}.yaml"

# krew: internal/index/validation/validate.go and cmd/validate-krew-manifest/main.go
SAFE_PLUGIN_NAME = re.compile(r"^[A-Za-z0-9_-]+$")  # Go's \w is ASCII
WINDOWS_FORBIDDEN = frozenset(
    ["CON", "PRN", "AUX", "NUL", *(f"{port}{i}" for port in ("COM", "LPT") for i in range(1, 10))]
)
# the <os, arch> pairs krew is released for; every platform must match one, none twice
KREW_PLATFORMS = (
    ("windows", "386"),
    ("windows", "amd64"),
    ("windows", "arm64"),
    ("linux", "386"),
    ("linux", "amd64"),
    ("linux", "arm"),
    ("linux", "arm64"),
    ("linux", "ppc64le"),
    ("darwin", "386"),
    ("darwin", "amd64"),
    ("darwin", "arm64"),
)
LICENSE_FILES = frozenset(
    f"{stem}{suffix}"
    for stem in ("license", "licenses", "copying")
    for suffix in ("", ".txt", ".md")
) - {"copying.md"}
# validate-krew-manifest warns past these line lengths; here they are errors
LINE_LIMITS = {"shortDescription": 70, "description": 80, "caveats": 80}
# krew-index naming guide: lowercase words joined by hyphens, no kube- stutter
NAMING_GUIDE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
SEMVER = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")
GLOB_CHARS = frozenset("*?[")


class BuildError(Exception):
    """Why the archive or manifest cannot be made; one line."""


# ---- the version, the wheel, the archive --------------------------------------------


def project_version(repo: Path = REPO) -> str:
    """pyproject.toml's version; krew needs X.Y.Z (it becomes vX.Y.Z)."""
    with (repo / "pyproject.toml").open("rb") as handle:
        version = str(tomllib.load(handle)["project"]["version"])
    if not SEMVER.match(version):
        raise BuildError(
            f"version {version!r} is not X.Y.Z; krew needs a semantic version, "
            "so map this one by hand"
        )
    return version


def wheel_name(version: str) -> str:
    return f"{DISTRIBUTION}-{version}-py3-none-any.whl"


def build_wheel(out_dir: Path, repo: Path = REPO) -> Path:
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out_dir), str(repo)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    wheels = sorted(out_dir.glob(f"{DISTRIBUTION}-*.whl"))
    if len(wheels) != 1:
        raise BuildError(f"python -m build made {len(wheels)} wheels in {out_dir}, not one")
    return wheels[0]


def _tar_member(name: str, data: bytes, mode: int, mtime: int) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info, data


def build_archive(wheel: Path, out_dir: Path, version: str, mtime: int = 0) -> Path:
    """kubectl-needle-VERSION.tar.gz: launcher (0755), wheel, LICENSE; reproducible."""
    members = sorted(
        [
            _tar_member(LAUNCHER, LAUNCHER_SOURCE.read_bytes(), 0o755, mtime),
            _tar_member(wheel.name, wheel.read_bytes(), 0o644, mtime),
            _tar_member("LICENSE", (REPO / "LICENSE").read_bytes(), 0o644, mtime),
        ],
        key=lambda member: member[0].name,
    )
    archive = out_dir / ARCHIVE.format(version=version)
    with (
        archive.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=mtime) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar,
    ):
        for info, data in members:
            tar.addfile(info, BytesIO(data))
    return archive


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def release_uri(version: str, archive_name: str, repository_url: str = REPOSITORY_URL) -> str:
    return RELEASE_URI.format(
        repository=repository_url.rstrip("/"), version=version, archive=archive_name
    )


def render_manifest(
    version: str, archive: Path, wheel: str, repository_url: str = REPOSITORY_URL
) -> str:
    """needle.yaml.in filled in; its header comment replaced by one saying where from."""
    template = TEMPLATE.read_text(encoding="utf-8")
    lines = template.splitlines(keepends=True)
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    body = string.Template("".join(lines)).substitute(
        version=f"v{version}",
        homepage=repository_url.rstrip("/"),
        uri=release_uri(version, archive.name, repository_url),
        sha256=sha256_of(archive),
        wheel=wheel,
    )
    header = (
        f"# Generated by packaging/krew/build.py from needle.yaml.in for kube-needle {version}.\n"
        f"# sha256 is that of {archive.name} as built from this source tree; the release\n"
        "# job rebuilds both and uploads that archive with this manifest.\n"
    )
    return header + body


# ---- checks -------------------------------------------------------------------------


def load_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return schema


def schema_errors(manifest: object) -> list[str]:
    validator = jsonschema.Draft202012Validator(load_schema())
    return sorted(
        f"{'/'.join(str(part) for part in error.absolute_path) or '(top)'}: {error.message}"
        for error in validator.iter_errors(manifest)
    )


def selector_matches(selector: Mapping[str, Any], os_name: str, arch: str) -> bool:
    """A Kubernetes label selector (matchLabels AND matchExpressions) on {os, arch}."""
    labels = {"os": os_name, "arch": arch}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        value = labels.get(expression["key"])
        values = expression.get("values") or []
        operator = expression["operator"]
        if (
            (operator == "In" and value not in values)
            or (operator == "NotIn" and value in values)
            or (operator == "Exists" and value is None)
            or (operator == "DoesNotExist" and value is not None)
        ):
            return False
    return True


def _escapes(path: str) -> bool:
    clean = posixpath.normpath(path)
    return clean.startswith("/") or clean == ".." or clean.startswith("../")


def _is_glob(pattern: str) -> bool:
    return any(char in GLOB_CHARS for char in pattern)


def _default_files() -> list[dict[str, str]]:
    return [{"from": "*", "to": "."}]  # krew's default when `files` is left out


def _bin_is_a_target(bin_path: str, files: list[dict[str, str]]) -> bool:
    """Whether some file operation puts a file (or a directory holding it) at `bin`,
    by krew's move rules: a plain `from` goes to `to` (its own name when `to` is
    "."); a glob's matches go into directory `to` under their own names."""
    wanted = posixpath.normpath(bin_path)
    for operation in files:
        source, to = operation["from"], posixpath.normpath(operation["to"])
        if not _is_glob(source):
            target = posixpath.basename(posixpath.normpath(source)) if to == "." else to
            if wanted == target or wanted.startswith(f"{target}/"):
                return True
            continue
        inside = wanted if to == "." else wanted.removeprefix(f"{to}/")
        if (to == "." or wanted.startswith(f"{to}/")) and fnmatchcase(
            inside.split("/")[0], posixpath.basename(source)
        ):
            return True
    return False


def _line_too_long(text: str, limit: int) -> str | None:
    for line in text.splitlines():
        if len(line) > limit and " " in line.strip():
            return line
    return None


def rule_errors(manifest: Mapping[str, Any], file_name: str) -> list[str]:
    """krew's rules that plugin.schema.json cannot state (the manifest must already
    pass the schema): names, selectors against krew's platforms, file operations."""
    problems: list[str] = []
    name = manifest["metadata"]["name"]
    stem, dot, extension = file_name.rpartition(".")
    if not dot or extension != "yaml":
        problems.append(f"the manifest file {file_name!r} must be named <plugin>.yaml")
    if not SAFE_PLUGIN_NAME.match(name) or name.upper() in WINDOWS_FORBIDDEN:
        problems.append(f"plugin name {name!r} is not allowed by krew")
    if dot and name != stem:
        problems.append(f"plugin name {name!r} differs from the file name {file_name!r}")
    if not NAMING_GUIDE.match(name) or name.startswith(("kube-", "kubernetes-")):
        problems.append(
            f"plugin name {name!r} breaks krew's naming guide "
            "(lowercase words and hyphens, no kube- prefix)"
        )
    spec = manifest["spec"]
    for field, limit in LINE_LIMITS.items():
        line = _line_too_long(spec.get(field, ""), limit)
        if line is not None:
            problems.append(f"spec.{field} has a line over {limit} characters: {line!r}")
    platforms = spec["platforms"]
    for index, platform in enumerate(platforms):
        where = f"spec.platforms[{index}]"
        if not any(selector_matches(platform["selector"], *pair) for pair in KREW_PLATFORMS):
            problems.append(f"{where}.selector matches none of the platforms krew runs on")
        files = platform.get("files", _default_files())
        for operation in files:
            to = operation["to"]
            if to != posixpath.normpath(to) or _escapes(to):
                problems.append(
                    f"{where}.files: `to` {to!r} must be a clean relative path "
                    f"({posixpath.normpath(to)!r}) inside the plugin directory"
                )
            if _escapes(operation["from"]):
                problems.append(f"{where}.files: `from` {operation['from']!r} leaves the archive")
        if _escapes(platform["bin"]):
            problems.append(f"{where}.bin {platform['bin']!r} leaves the plugin directory")
        elif not _bin_is_a_target(platform["bin"], files):
            problems.append(f"{where}.bin {platform['bin']!r} is not among the files installed")
    for os_name, arch in KREW_PLATFORMS:
        matching = [
            index
            for index, platform in enumerate(platforms)
            if selector_matches(platform["selector"], os_name, arch)
        ]
        if len(matching) > 1:
            problems.append(f"spec.platforms {matching} overlap: all select {os_name}/{arch}")
    return problems


def archive_files(archive: Path) -> dict[str, int]:
    """Regular files in a .tar.gz or .zip archive, with their permission bits."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zipped:
            return {
                posixpath.normpath(info.filename): (info.external_attr >> 16) & 0o7777
                for info in zipped.infolist()
                if not info.is_dir()
            }
    with tarfile.open(archive, "r:gz") as tar:
        return {posixpath.normpath(member.name): member.mode for member in tar if member.isfile()}


def simulate_install(
    files_in_archive: Mapping[str, int], operations: list[dict[str, str]]
) -> tuple[dict[str, int], list[str]]:
    """What `kubectl krew install` leaves in the plugin directory: {path: mode}."""
    installed: dict[str, int] = {}
    problems: list[str] = []
    directories = set()
    for name in files_in_archive:
        parts = name.split("/")
        directories |= {"/".join(parts[:depth]) for depth in range(1, len(parts))}

    def move(source: str, target: str) -> None:
        if source in files_in_archive:
            installed[target] = files_in_archive[source]
            return
        for name, mode in files_in_archive.items():  # a directory moves as a whole
            if name.startswith(f"{source}/"):
                installed[posixpath.normpath(f"{target}/{name[len(source) + 1 :]}")] = mode

    for operation in operations:
        source, to = posixpath.normpath(operation["from"]), posixpath.normpath(operation["to"])
        if source in files_in_archive or source in directories:
            move(source, posixpath.basename(source) if to == "." else to)
            continue
        pattern = source.split("/")
        matches = sorted(
            path
            for path in set(files_in_archive) | directories
            if len(path.split("/")) == len(pattern)
            and all(
                fnmatchcase(part, want) for part, want in zip(path.split("/"), pattern, strict=True)
            )
        )
        if not matches:
            problems.append(f"no file in the archive matches `from` {operation['from']!r}")
        for match in matches:
            move(match, posixpath.normpath(f"{to}/{posixpath.basename(match)}"))
    return installed, problems


def install_errors(manifest: Mapping[str, Any], archives: Mapping[str, Path]) -> list[str]:
    """For each platform whose archive is given (by file name, the uri's last part):
    its sha256, then a simulated install: bin installed and executable, a LICENSE."""
    problems: list[str] = []
    for index, platform in enumerate(manifest["spec"]["platforms"]):
        where = f"spec.platforms[{index}]"
        archive_name = posixpath.basename(urlsplit(platform["uri"]).path)
        archive = archives.get(archive_name)
        if archive is None:
            problems.append(f"{where}: no archive {archive_name!r} to check its uri against")
            continue
        actual = sha256_of(archive)
        if platform["sha256"] != actual:
            problems.append(
                f"{where}.sha256 is {platform['sha256']}, but {archive_name} has {actual}"
            )
        installed, failures = simulate_install(
            archive_files(archive), platform.get("files", _default_files())
        )
        problems += [f"{where}: {failure}" for failure in failures]
        bin_path = posixpath.normpath(platform["bin"])
        if bin_path not in installed:
            problems.append(f"{where}: bin {bin_path!r} is not installed from {archive_name}")
        elif not installed[bin_path] & 0o111:
            problems.append(f"{where}: bin {bin_path!r} is not executable in {archive_name}")
        if not any(posixpath.basename(path).lower() in LICENSE_FILES for path in installed):
            problems.append(f"{where}: no LICENSE file is installed from {archive_name}")
    return problems


def check_manifest(
    manifest: object, file_name: str, archives: Mapping[str, Path] | None = None
) -> list[str]:
    """Every problem krew (or krew-index's CI) would find; [] when there is none."""
    problems = schema_errors(manifest)
    if problems or not isinstance(manifest, Mapping):
        return problems  # the other rules read the structure the schema guarantees
    problems = rule_errors(manifest, file_name)
    if archives is not None:
        problems += install_errors(manifest, archives)
    return problems


# ---- command line -------------------------------------------------------------------


def build(
    out_dir: Path,
    wheel: Path | None = None,
    repository_url: str = REPOSITORY_URL,
    mtime: int = 0,
) -> tuple[Path, Path]:
    """The archive and its manifest in `out_dir`, checked."""
    version = project_version()
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="needle-krew-") as scratch:
        if wheel is None:
            wheel = build_wheel(Path(scratch))
        if wheel.name != wheel_name(version):
            raise BuildError(
                f"{wheel.name} is not the wheel of this version ({wheel_name(version)})"
            )
        staged = Path(scratch) / wheel.name
        if wheel.resolve() != staged.resolve():
            shutil.copyfile(wheel, staged)
        archive = build_archive(staged, out_dir, version, mtime)
    text = render_manifest(version, archive, wheel_name(version), repository_url)
    problems = check_manifest(yaml.safe_load(text), MANIFEST_NAME, {archive.name: archive})
    if problems:
        raise BuildError("the rendered manifest is not valid: " + "; ".join(problems))
    manifest = out_dir / MANIFEST_NAME
    manifest.write_text(text, encoding="utf-8")
    return archive, manifest


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="build.py", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=REPO / "dist" / "krew")
    parser.add_argument("--wheel", type=Path, help="use this wheel instead of building one")
    parser.add_argument("--repository-url", default=REPOSITORY_URL)
    parser.add_argument("--check", type=Path, metavar="MANIFEST", help="only check MANIFEST")
    parser.add_argument("--archive", type=Path, action="append", default=[])
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = _arguments(argv)
    try:
        if args.check is not None:
            manifest = yaml.safe_load(args.check.read_text(encoding="utf-8"))
            archives = {archive.name: archive for archive in args.archive} or None
            problems = check_manifest(manifest, args.check.name, archives)
            for problem in problems:
                sys.stderr.write(f"{args.check}: {problem}\n")
            return 1 if problems else 0
        mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
        archive, manifest_path = build(args.out, args.wheel, args.repository_url, mtime)
    except (BuildError, OSError, yaml.YAMLError, subprocess.CalledProcessError) as exc:
        sys.stderr.write(f"build.py: {exc}\n")
        return 1
    sys.stdout.write(f"{archive}\n{manifest_path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
