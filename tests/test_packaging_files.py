"""The packaging files are what they claim: the Containerfile builds an image with every
tool the node script calls, the in-cluster Job has exactly the access `needle rbac`
prints and runs a `needle collect` the CLI accepts, and the krew manifest that
packaging/krew/build.py renders passes krew's rules for the archive it built.

No network and no container engine: the Containerfile is parsed, not built, and the krew
archive is built around a small stand-in wheel (test_wheel.py builds the real one).
"""

from __future__ import annotations

import ast
import base64
import copy
import hashlib
import importlib.util
import io
import json
import os
import re
import shlex
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

import jsonschema
import pytest
import typer
import yaml
from needle.collector import rbac
from needle.collector.kube import debug_pod
from needle.collector.script.render import prelude
from needle.collector.spec.loader import default_spec
from needle.collector.transports import pod as pod_transport

from needle.cli import build_app

REPO = Path(__file__).resolve().parents[1]
CONTAINERFILE = REPO / "Containerfile"
CONTAINERIGNORE = REPO / ".dockerignore"
JOB_FILE = REPO / "deploy" / "collector-job.yaml"
KREW = REPO / "packaging" / "krew"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]


def _load_build_module():
    spec = importlib.util.spec_from_file_location("needle_krew_build", KREW / "build.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and typing look modules up by name
    spec.loader.exec_module(module)
    return module


krew_build = _load_build_module()


# ==== Containerfile ===================================================================

KNOWN_INSTRUCTIONS = {
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK",
    "LABEL", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
}  # fmt: skip


@dataclass
class Instruction:
    keyword: str
    value: str
    line: int

    def exec_form(self) -> list[str] | None:
        """The JSON array of ENTRYPOINT ["a", "b"], or None for the shell form."""
        if not self.value.startswith("["):
            return None
        parsed = json.loads(self.value)
        assert isinstance(parsed, list) and all(isinstance(item, str) for item in parsed)
        return parsed


@dataclass
class Stage:
    base: str  # as written, ${ARG}s not yet resolved
    name: str | None
    line: int
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [item for item in self.instructions if item.keyword == keyword]


@dataclass
class Containerfile:
    global_args: dict[str, str]
    stages: list[Stage]

    def stage(self, name: str) -> Stage | None:
        return next((stage for stage in self.stages if stage.name == name), None)

    def resolve(self, text: str) -> str:
        """${NAME} and $NAME from the ARGs before the first FROM (what FROM may use)."""

        def value(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(2)
            if name not in self.global_args:
                raise ValueError(f"FROM uses ${name}, which no ARG before FROM declares")
            return self.global_args[name]

        return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, text)

    def chain(self, stage: Stage) -> list[Stage]:
        """`stage` and the stages it is built FROM, nearest first."""
        chain = [stage]
        while (parent := self.stage(chain[-1].base)) is not None:
            assert parent not in chain, f"FROM cycle at {parent.name}"
            chain.append(parent)
        return chain

    def image_of(self, stage: Stage) -> str:
        """The registry image a stage is ultimately built on."""
        return self.resolve(self.chain(stage)[-1].base)

    @property
    def final(self) -> Stage:
        return self.stages[-1]


def parse_containerfile(text: str) -> Containerfile:
    """Dockerfile syntax: one instruction per logical line, `\\` continues a line,
    comment lines (also inside a continuation) are dropped, keywords are
    case-insensitive. Heredocs are not used here, so not supported."""
    logical: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        logical.append((start, " ".join(part for part in pending if part)))
        pending = []
    if pending:
        raise ValueError(f"line {start}: the file ends inside a continued instruction")
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for number, line in logical:
        keyword, _, value = line.partition(" ")
        keyword = keyword.upper()
        value = value.strip()
        if keyword not in KNOWN_INSTRUCTIONS:
            raise ValueError(f"line {number}: unknown instruction {keyword!r}")
        if keyword == "FROM":
            words = value.split()
            words = [word for word in words if not word.startswith("--platform")]
            if len(words) == 3 and words[1].upper() == "AS":
                stages.append(Stage(words[0], words[2], number))
            elif len(words) == 1:
                stages.append(Stage(words[0], None, number))
            else:
                raise ValueError(f"line {number}: cannot read FROM {value!r}")
        elif not stages:
            if keyword != "ARG":
                raise ValueError(f"line {number}: only ARG may come before the first FROM")
            name, _, default = value.partition("=")
            global_args[name] = default
        else:
            stages[-1].instructions.append(Instruction(keyword, value, number))
    if not stages:
        raise ValueError("no FROM")
    return Containerfile(global_args, stages)


def shell_commands(script: str) -> list[list[str]]:
    """A RUN line split into simple commands at &&, ||, ;, |."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token in {"&&", "||", ";", "|", "&"}:
            commands.append([])
        else:
            commands[-1].append(token)
    return [command for command in commands if command]


def apt_packages(stages: list[Stage]) -> set[str]:
    packages: set[str] = set()
    for stage in stages:
        for run in stage.all("RUN"):
            for command in shell_commands(run.value):
                if command[:2] == ["apt-get", "install"]:
                    packages |= {word for word in command[2:] if not word.startswith("-")}
    return packages


def arg_default(containerfile: Containerfile, name: str) -> str:
    return containerfile.global_args[name]


def _labels(stages: list[Stage]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for stage in reversed(stages):  # the base first, so nearer stages override
        for label in stage.all("LABEL"):
            for pair in shlex.split(label.value):
                key, _, value = pair.partition("=")
                labels[key] = value
    return labels


def _last(stages: list[Stage], keyword: str) -> Instruction | None:
    for stage in stages:  # nearest first
        found = stage.all(keyword)
        if found:
            return found[-1]
    return None


def _pinned(image: str) -> bool:
    """A digest, or a tag other than latest (`host:5000/name` has no tag)."""
    if "@sha256:" in image:
        return True
    repository, _, tag = image.rpartition(":")
    return bool(repository) and "/" not in tag and tag not in {"", "latest"}


BUILD_TOOLS = {"build-essential", "gcc", "g++", "make", "cmake", "clang", "cargo", "rustc"}


def containerfile_problems(text: str) -> list[str]:
    """Everything the tests demand of the Containerfile, as sentences."""
    problems: list[str] = []
    containerfile = parse_containerfile(text)
    final = containerfile.final
    chain = containerfile.chain(final)
    for stage in containerfile.stages:
        image = containerfile.resolve(stage.base)
        if containerfile.stage(stage.base) is not None:
            continue
        if not _pinned(image):
            problems.append(f"FROM {image} (line {stage.line}) is not pinned to a tag")
    image = containerfile.image_of(final)
    if not re.fullmatch(r"python:3\.11(\.\d+)?-slim-[a-z]+", image):
        problems.append(f"the final stage is built on {image}, not python:3.11-slim-<debian>")
    for stage in containerfile.stages:
        for item in stage.all("ADD"):
            if re.search(r"(^|\s)(https?|git)://|\.git(\s|$)", item.value):
                problems.append(f"ADD fetches from the network (line {item.line})")
        for item in stage.instructions:
            if re.search(r":latest\b", item.value):
                problems.append(f"a latest tag on line {item.line}")
    entrypoint = _last(chain, "ENTRYPOINT")
    if entrypoint is None or entrypoint.exec_form() != ["needle"]:
        problems.append('ENTRYPOINT is not the exec form ["needle"]')
    command = _last(chain, "CMD")
    if command is None or command.exec_form() != ["--help"]:
        problems.append('CMD is not the exec form ["--help"]')
    user = _last(chain, "USER")
    if user is None or user.value.split(":")[0] in {"0", "root"}:
        problems.append("the final stage runs as root (no non-root USER)")
    for stage in chain:
        installed = apt_packages([stage]) & BUILD_TOOLS
        if installed:
            problems.append(f"build tools {sorted(installed)} in stage {stage.name}")
        for run in stage.all("RUN"):
            if re.search(r"pip wheel|-m build\b|setup\.py", run.value):
                problems.append(f"the runtime stage {stage.name} builds (line {run.line})")
    labels = _labels(chain)
    for key in ("source", "licenses", "title", "description"):
        if not labels.get(f"org.opencontainers.image.{key}"):
            problems.append(f"no org.opencontainers.image.{key} label")
    if labels.get("org.opencontainers.image.licenses") not in {"Apache-2.0", None}:
        problems.append("the licenses label is not Apache-2.0")
    return problems


@pytest.fixture(scope="module")
def containerfile_text() -> str:
    return CONTAINERFILE.read_text()


@pytest.fixture(scope="module")
def containerfile(containerfile_text) -> Containerfile:
    return parse_containerfile(containerfile_text)


def test_containerfile_meets_every_demand(containerfile_text):
    assert containerfile_problems(containerfile_text) == []


def test_pinned_images():
    assert _pinned("python:3.11-slim-bookworm")
    assert _pinned("python@sha256:" + "0" * 64)
    assert not _pinned("python")
    assert not _pinned("python:latest")
    assert not _pinned("registry.local:5000/python")


def test_parser_reads_continuations_comments_and_stages(containerfile):
    assert [stage.name for stage in containerfile.stages] == ["build", "node", "needle"]
    assert containerfile.image_of(containerfile.final) == "python:3.11-slim-bookworm"
    assert [stage.name for stage in containerfile.chain(containerfile.final)] == [
        "needle",
        "node",
    ]
    parsed = parse_containerfile(
        "ARG BASE=python:3.11-slim-bookworm\nFROM $BASE AS one\n"
        "RUN apt-get update \\\n  # a comment inside\n"
        "  && apt-get install -y --no-install-recommends \\\n"
        "     iproute2 \\\n     tcpdump\n"
        'ENTRYPOINT ["needle"]\n'
    )
    (stage,) = parsed.stages
    assert parsed.image_of(stage) == "python:3.11-slim-bookworm"
    assert apt_packages([stage]) == {"iproute2", "tcpdump"}
    assert stage.all("RUN")[0].line == 3
    with pytest.raises(ValueError, match="unknown instruction"):
        parse_containerfile("FROM python:3.11-slim-bookworm\nRUNN true\n")
    with pytest.raises(ValueError, match="ends inside"):
        parse_containerfile("FROM python:3.11-slim-bookworm\nRUN true \\\n")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("USER 10001:10001", "USER root", "runs as root"),
        ("USER 10001:10001\n", "", "runs as root"),
        ('ENTRYPOINT ["needle"]', "ENTRYPOINT needle", "ENTRYPOINT"),
        ('CMD ["--help"]', 'CMD ["analyze"]', "CMD"),
        ("ARG PYTHON_IMAGE=python:3.11-slim-bookworm", "ARG PYTHON_IMAGE=python:latest", "pinned"),
        ("ARG PYTHON_IMAGE=python:3.11-slim-bookworm", "ARG PYTHON_IMAGE=python:3.11", "slim"),
        ("WORKDIR /work\n", "WORKDIR /work\nADD https://example.invalid/x.tgz /x\n", "network"),
        ("        util-linux \\", "        util-linux gcc \\", "build tools"),
        ('org.opencontainers.image.licenses="Apache-2.0"', "x=y", "licenses"),
    ],
)
def test_containerfile_checks_reject_a_broken_file(containerfile_text, old, new, expected):
    assert old in containerfile_text
    problems = containerfile_problems(containerfile_text.replace(old, new, 1))
    assert any(expected in problem for problem in problems), problems


# -- the tools the node script needs, and the Debian packages that bring them ---------

# Debian (bookworm) package of every command the node side runs. A tool the spec gains
# without an entry here fails test_image_has_every_tool_the_node_script_calls.
TOOL_PACKAGES = {
    "ip": "iproute2",
    "bridge": "iproute2",
    "brctl": "bridge-utils",
    "route": "net-tools",
    "arp": "net-tools",
    "ethtool": "ethtool",
    "iptables-save": "iptables",
    "ip6tables-save": "iptables",
    "nft": "nftables",
    "tcpdump": "tcpdump",
    "nsenter": "util-linux",
    "setsid": "util-linux",
    "uname": "coreutils",
    "sh": "dash",
    "cat": "coreutils",
    "ls": "coreutils",
    "mkdir": "coreutils",
    "mktemp": "coreutils",
    "mv": "coreutils",
    "rm": "coreutils",
    "sleep": "coreutils",
    "tar": "tar",
    "awk": "mawk",
    "tr": "coreutils",
    "ping": "iputils-ping",
    "nc": "netcat-openbsd",
    "socat": "socat",
    "bash": "bash",
}
# Essential: yes in Debian: in every Debian image, the slim Python ones included.
ESSENTIAL_PACKAGES = {"bash", "coreutils", "dash", "tar"}
# What prelude.sh runs outside the spec besides sh builtins (its header names some;
# mktemp and mv it uses too). Each must appear in the script (checked below).
SCRIPT_UTILITIES = {"cat", "ls", "mkdir", "mktemp", "mv", "rm", "sleep", "tar", "awk", "tr"}


def node_tools() -> set[str]:
    """Every command a debug pod runs: the spec's argv[0]s (fallbacks too), tcpdump
    for captures, what the prelude and the exec wrapper look up with `command -v`, the
    prelude's utilities, and the pod's own command."""
    spec = default_spec()
    tools = {
        item.argv[0]
        for command in spec.commands
        for item in (command, command.fallback)
        if item is not None and item.kind == "command"
    }
    if spec.captures:
        tools.add("tcpdump")
    wrapper = " ".join(pod_transport.node_command([]) + pod_transport.stop_command())
    tools |= set(re.findall(r"command -v ([A-Za-z][\w.+-]*)", prelude() + wrapper))
    tools |= SCRIPT_UTILITIES
    tools.add(pod_transport.node_command([])[0])  # sh
    settings = debug_pod.PodSettings("needle", "image", "abc123", 60)
    container = debug_pod.pod_manifest(settings, "pod", "node")["spec"]["containers"][0]
    tools.add(container["command"][0])  # sleep
    return tools


def uncovered(tools: set[str], installed: set[str]) -> list[str]:
    problems = [
        f"no Debian package known for tool {tool!r}" for tool in sorted(tools - set(TOOL_PACKAGES))
    ]
    for tool in sorted(tools & set(TOOL_PACKAGES)):
        package = TOOL_PACKAGES[tool]
        if package not in installed and package not in ESSENTIAL_PACKAGES:
            problems.append(f"{tool!r} needs package {package!r}, which is not installed")
    return problems


def test_image_has_every_tool_the_node_script_calls(containerfile):
    tools = node_tools()
    assert {"ip", "bridge", "brctl", "ethtool", "nft", "tcpdump", "nsenter", "setsid"} <= tools
    installed = apt_packages(containerfile.chain(containerfile.final))
    assert uncovered(tools, installed) == []
    # the `node` target (for --image) has them too: it is the final stage's base
    assert apt_packages([containerfile.stage("node")]) == installed


def test_prelude_utilities_are_really_called():
    text = prelude()
    for utility in SCRIPT_UTILITIES:
        assert re.search(rf"(^|[\s(|;&]){re.escape(utility)}\s", text, re.MULTILINE), utility


def test_a_new_tool_without_a_package_fails():
    assert uncovered({"ip", "conntrack"}, {"iproute2"}) == [
        "no Debian package known for tool 'conntrack'"
    ]
    assert uncovered({"tcpdump", "tar"}, set()) == [
        "'tcpdump' needs package 'tcpdump', which is not installed"
    ]


def test_image_builds_the_wheel_from_what_pyproject_names(containerfile):
    build = containerfile.stage("build")
    copied = set()
    for item in build.all("COPY"):
        words = [word for word in item.value.split() if not word.startswith("--")]
        copied |= {word.rstrip("/") for word in words[:-1]}
    setuptools = PYPROJECT["tool"]["setuptools"]
    roots = {path.split("/")[0] for path in setuptools["package-dir"].values()}
    needed = roots | {"pyproject.toml", PYPROJECT["project"]["readme"]}
    needed |= set(PYPROJECT["project"]["license-files"])
    assert needed <= copied, sorted(needed - copied)
    # the build context keeps them: .dockerignore excludes everything else
    lines = CONTAINERIGNORE.read_text().splitlines()
    ignore = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    assert "*" in ignore
    for path in copied:
        assert f"!{path}" in ignore or f"!{path}/" in ignore, path
    # only the virtual environment leaves the build stage
    for stage in containerfile.stages[1:]:
        for item in stage.all("COPY"):
            assert item.value.startswith("--from=build /opt/needle "), item.value


def test_image_labels_tell_the_truth(containerfile):
    assert arg_default(containerfile, "NEEDLE_VERSION") == VERSION
    assert arg_default(containerfile, "NEEDLE_SOURCE") == krew_build.REPOSITORY_URL
    build_run = " ".join(run.value for run in containerfile.stage("build").all("RUN"))
    # the build fails when the version label would not match the wheel
    assert 'test -f "/dist/kube_needle-${NEEDLE_VERSION}-py3-none-any.whl"' in build_run


def test_final_user_matches_the_job(containerfile):
    user = _last(containerfile.chain(containerfile.final), "USER").value
    job = next(doc for doc in _job_documents() if doc["kind"] == "Job")
    context = job["spec"]["template"]["spec"]["securityContext"]
    assert user == f"{context['runAsUser']}:{context['runAsGroup']}"


# ==== deploy/collector-job.yaml =======================================================


def _job_documents() -> list[dict]:
    return [doc for doc in yaml.safe_load_all(JOB_FILE.read_text()) if doc is not None]


def test_job_file_has_the_expected_objects():
    kinds = [doc["kind"] for doc in _job_documents()]
    assert kinds == [
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Job",
    ]


def test_job_access_is_what_needle_rbac_prints():
    docs = {doc["kind"]: doc for doc in _job_documents()}
    account = docs["ServiceAccount"]["metadata"]
    subject = rbac.Subject("ServiceAccount", account["name"], account["namespace"])
    expected = rbac.manifests(docs["Namespace"]["metadata"]["name"], [subject])
    assert [docs[doc["kind"]] for doc in expected] == expected
    assert docs["ClusterRole"]["rules"] == rbac.CLUSTER_RULES
    assert docs["Role"]["rules"] == rbac.NAMESPACE_RULES
    assert all(
        "secrets" not in rule["resources"]
        for rule in docs["ClusterRole"]["rules"] + docs["Role"]["rules"]
    )


def _collect_argv(container: dict) -> list[str]:
    """The `needle collect` argv of the Job's `sh -c SCRIPT $0 ARGS...`."""
    assert container["command"] == ["sh", "-c"]
    script, _zero, *extra = container["args"]
    lines = [line.strip() for line in script.splitlines() if line.strip().startswith("needle ")]
    assert len(lines) == 1, lines
    words = shlex.split(lines[0])
    assert words[-1] == "$@"
    return [*words[:-1], *extra]


def test_job_runs_a_needle_collect_the_cli_accepts():
    docs = {doc["kind"]: doc for doc in _job_documents()}
    pod = docs["Job"]["spec"]["template"]
    spec = pod["spec"]
    (container,) = spec["containers"]
    argv = _collect_argv(container)
    assert argv[:2] == ["needle", "collect"]
    command = typer.main.get_command(build_app()).commands["collect"]
    params = command.make_context("collect", argv[2:]).params  # raises on a bad option
    output = params["output"]
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    assert str(output.parent) in mounts
    assert "emptyDir" in volumes[mounts[str(output.parent)]]
    assert params["namespace"] in {None, docs["Role"]["metadata"]["namespace"]}
    assert docs["Job"]["metadata"]["namespace"] == docs["Role"]["metadata"]["namespace"]
    assert spec["serviceAccountName"] == docs["ServiceAccount"]["metadata"]["name"]
    assert spec["restartPolicy"] == "Never"
    assert docs["Job"]["spec"]["backoffLimit"] == 0
    assert spec["securityContext"]["runAsNonRoot"] is True
    image = container["image"]
    assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest")
    # `needle cleanup` deletes every pod with this label: never the collector itself
    key, _, value = debug_pod.ALL_RUNS_SELECTOR.partition("=")
    assert pod["metadata"].get("labels", {}).get(key) != value


def test_job_argv_check_can_fail():
    command = typer.main.get_command(build_app()).commands["collect"]
    with pytest.raises(Exception, match="No such option"):
        command.make_context("collect", ["-o", "/out/x.tar.gz", "--no-such-option"])


# ==== krew =============================================================================

SCHEMA = json.loads((KREW / "plugin.schema.json").read_text())


def test_schema_is_a_valid_json_schema_citing_krew():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert "github.com/kubernetes-sigs/krew" in SCHEMA["$comment"]


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def make_stand_in_wheel(directory: Path, version: str = VERSION) -> Path:
    """kube_needle-VERSION-py3-none-any.whl without dependencies whose kubectl-needle
    prints its arguments as JSON: installable offline, so the launcher can be run."""
    dist_info = f"kube_needle-{version}.dist-info"
    files = {
        "needle_stand_in.py": (
            b"import json, sys\n\ndef main():\n"
            b"    print(json.dumps({'argv': sys.argv[1:], 'stand_in': True}))\n"
        ),
        f"{dist_info}/METADATA": (
            f"Metadata-Version: 2.1\nName: kube-needle\nVersion: {version}\n"
        ).encode(),
        f"{dist_info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
        f"{dist_info}/entry_points.txt": (
            b"[console_scripts]\nkubectl-needle = needle_stand_in:main\n"
        ),
    }
    record = [_record_line(name, data) for name, data in files.items()]
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = directory / f"kube_needle-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zipped:
        for name, data in files.items():
            zipped.writestr(name, data)
    return wheel


def run_build(out: Path, wheel: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(KREW / "build.py"), "--out", str(out), "--wheel", str(wheel), *extra],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "SOURCE_DATE_EPOCH": "0"},
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    """build.py run for real (in a temporary directory) around the stand-in wheel."""
    work = tmp_path_factory.mktemp("krew")
    wheel = make_stand_in_wheel(work)
    out = work / "dist"
    done = run_build(out, wheel)
    assert done.returncode == 0, done.stderr
    archive = out / f"kubectl-needle-{VERSION}.tar.gz"
    manifest_path = out / "needle.yaml"
    assert done.stdout.split() == [str(archive), str(manifest_path)]
    return {
        "work": work,
        "wheel": wheel,
        "archive": archive,
        "manifest_path": manifest_path,
        "manifest": yaml.safe_load(manifest_path.read_text()),
    }


def test_rendered_manifest_validates_and_matches_its_archive(built):
    manifest, archive = built["manifest"], built["archive"]
    jsonschema.validate(manifest, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert krew_build.check_manifest(manifest, "needle.yaml", {archive.name: archive}) == []
    (platform,) = manifest["spec"]["platforms"]
    assert platform["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert manifest["spec"]["version"] == f"v{VERSION}"
    assert platform["uri"] == (
        f"{krew_build.REPOSITORY_URL}/releases/download/v{VERSION}/{archive.name}"
    )
    assert manifest["spec"]["homepage"] == krew_build.REPOSITORY_URL
    with tarfile.open(archive) as tar:
        members = {member.name: member.mode for member in tar}
    assert members == {
        "LICENSE": 0o644,
        "kubectl-needle": 0o755,
        built["wheel"].name: 0o644,
    }
    # the --check form agrees
    check = subprocess.run(
        [
            *(sys.executable, str(KREW / "build.py")),
            *("--check", str(built["manifest_path"]), "--archive", str(archive)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr


def test_rendered_manifest_is_the_committed_template(built):
    """Only the ${...} fields and the header differ from needle.yaml.in."""
    template = (KREW / "needle.yaml.in").read_text()
    placeholders = {match[1] or match[0] for match in re.findall(r"\$\{(\w+)\}|\$(\w+)", template)}
    assert placeholders == {"version", "homepage", "uri", "sha256", "wheel"}
    platform = built["manifest"]["spec"]["platforms"][0]
    rendered = Template(template).substitute(
        version=f"v{VERSION}",
        homepage=krew_build.REPOSITORY_URL,
        uri=platform["uri"],
        sha256=platform["sha256"],
        wheel=built["wheel"].name,
    )
    assert yaml.safe_load(rendered) == built["manifest"]


def test_archive_is_reproducible(built, tmp_path):
    again = run_build(tmp_path / "again", built["wheel"])
    assert again.returncode == 0, again.stderr
    archive = tmp_path / "again" / built["archive"].name
    assert archive.read_bytes() == built["archive"].read_bytes()


def test_build_refuses_a_wheel_of_another_version(tmp_path):
    wheel = make_stand_in_wheel(tmp_path, "9.9.9")
    done = run_build(tmp_path / "out", wheel)
    assert done.returncode == 1
    assert "is not the wheel of this version" in done.stderr
    assert not (tmp_path / "out" / "needle.yaml").exists()


def _krew_install(archive: Path, manifest: dict, root: Path) -> Path:
    """What `kubectl krew install` does: unpack, apply `files`, link bin into bin/."""
    store = root / "store" / "needle" / manifest["spec"]["version"]
    store.mkdir(parents=True)
    (platform,) = manifest["spec"]["platforms"]
    with tarfile.open(archive) as tar:
        tar.extractall(root / "unpacked", filter="data")
    for operation in platform["files"]:
        source = root / "unpacked" / operation["from"]
        target = store / (source.name if operation["to"] == "." else operation["to"])
        source.rename(target)
    (root / "bin").mkdir()
    link = root / "bin" / "kubectl-needle"
    link.symlink_to(store / platform["bin"])
    return link


def _launcher_env(root: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PIP_", "KUBECTL_NEEDLE_", "VIRTUAL_ENV", "PYTHON"))
    }
    # offline: pip reads no configuration and no index, the wheel has no dependencies
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_NO_INDEX="1",
        HOME=str(root / "home"),
        XDG_CACHE_HOME=str(root / "cache"),
    )
    return env


@pytest.mark.slow
def test_launcher_installs_once_and_hands_over(built, tmp_path):
    link = _krew_install(built["archive"], built["manifest"], tmp_path)
    store = link.resolve().parent
    assert os.access(link, os.X_OK)
    assert link.resolve().read_text().startswith("#!/usr/bin/env python3\n")
    argv = ["analyze", "bundle.tar.gz", "--format", "json"]
    env = _launcher_env(tmp_path)
    first = subprocess.run(
        [sys.executable, str(link), *argv],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=tmp_path,
    )
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"argv": argv, "stand_in": True}  # stdout is needle's
    assert "first run" in first.stderr
    assert (store / "venv" / ".kubectl-needle-installed").is_file()
    second = subprocess.run(
        [sys.executable, str(link), "--version"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=tmp_path,
    )
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["argv"] == ["--version"]
    assert second.stderr == ""


def test_launcher_says_which_python_it_needs(built, tmp_path):
    link = _krew_install(built["archive"], built["manifest"], tmp_path)
    old_python = tmp_path / "python3.9"
    old_python.write_text("#!/bin/sh\nexit 1\n")  # fails the version probe
    old_python.chmod(0o755)
    done = subprocess.run(
        [sys.executable, str(link), "--version"],
        capture_output=True,
        text=True,
        check=False,
        env={**_launcher_env(tmp_path), "KUBECTL_NEEDLE_PYTHON": str(old_python)},
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert "is not a Python 3.11 or newer" in done.stderr
    assert not (link.resolve().parent / "venv").exists()


def test_launcher_runs_under_an_old_python3():
    """It must start under an old python3 to say which Python it needs (checked by hand
    with 3.8: it names the newer one it found, or fails with exit 2 and why)."""
    source = (KREW / "launcher.py").read_text()
    ast.parse(source, feature_version=(3, 8))
    assert "from __future__ import annotations" in source  # annotations stay strings
    for newer in ("removeprefix", "removesuffix", "match ", "tomllib", "ExceptionGroup"):
        assert newer not in source, newer


# -- each check rejects what it should ------------------------------------------------


def _mutated(manifest: dict, change) -> dict:
    broken = copy.deepcopy(manifest)
    change(broken)
    return broken


def _platform(manifest: dict) -> dict:
    return manifest["spec"]["platforms"][0]


SCHEMA_BREAKS = {
    "uppercase sha256": lambda m: _platform(m).update(sha256=_platform(m)["sha256"].upper()),
    "short sha256": lambda m: _platform(m).update(sha256="abc"),
    "no bin": lambda m: _platform(m).pop("bin"),
    "no selector": lambda m: _platform(m).pop("selector"),
    "old apiVersion": lambda m: m.update(
        apiVersion="krew.googlecontainertools.github.com/v1alpha1"
    ),
    "version without v": lambda m: m["spec"].update(version=VERSION),
    "version with leading zero": lambda m: m["spec"].update(version="v0.01.0"),
    "two-line shortDescription": lambda m: m["spec"].update(shortDescription="a\nb"),
    "long shortDescription": lambda m: m["spec"].update(shortDescription="x " * 40),
    "misspelt field": lambda m: m["spec"].update(shortdescription="typo"),
    "selector key": lambda m: _platform(m).update(selector={"matchLabels": {"distro": "debian"}}),
    "empty matchLabels": lambda m: _platform(m).update(selector={"matchLabels": {}}),
    "In without values": lambda m: _platform(m).update(
        selector={"matchExpressions": [{"key": "os", "operator": "In"}]}
    ),
    "empty files": lambda m: _platform(m).update(files=[]),
    "no platforms": lambda m: m["spec"].update(platforms=[]),
    "unsafe name": lambda m: m["metadata"].update(name="needle/x"),
}


@pytest.mark.parametrize("case", sorted(SCHEMA_BREAKS))
def test_schema_rejects(built, case):
    broken = _mutated(built["manifest"], SCHEMA_BREAKS[case])
    assert krew_build.schema_errors(broken) != []
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA, cls=jsonschema.Draft202012Validator)


RULE_BREAKS = {
    # (file name, change, expected words)
    "name is not the file name": ("kubectl-needle.yaml", lambda m: None, "differs from the file"),
    "not a .yaml file": ("needle.yml", lambda m: None, "must be named"),
    "windows device name": ("con.yaml", lambda m: m["metadata"].update(name="con"), "not allowed"),
    "naming guide": ("Needle_X.yaml", lambda m: m["metadata"].update(name="Needle_X"), "naming"),
    "kube- prefix": (
        "kube-needle.yaml",
        lambda m: m["metadata"].update(name="kube-needle"),
        "naming",
    ),
    "bin not installed": ("needle.yaml", lambda m: _platform(m).update(bin="needle"), "not among"),
    "bin escapes": (
        "needle.yaml",
        lambda m: _platform(m).update(bin="../kubectl-needle"),
        "leaves",
    ),
    "unclean to": (
        "needle.yaml",
        lambda m: _platform(m)["files"][0].update(to="./kubectl-needle"),
        "clean relative path",
    ),
    "no krew platform": (
        "needle.yaml",
        lambda m: _platform(m).update(selector={"matchLabels": {"os": "plan9"}}),
        "matches none",
    ),
    "overlapping platforms": (
        "needle.yaml",
        lambda m: m["spec"]["platforms"].append(
            {**_platform(m), "selector": {"matchLabels": {"os": "linux", "arch": "amd64"}}}
        ),
        "overlap",
    ),
    "long caveats line": (
        "needle.yaml",
        lambda m: m["spec"].update(caveats=m["spec"]["caveats"] + "word " * 20 + "\n"),
        "over 80",
    ),
}


@pytest.mark.parametrize("case", sorted(RULE_BREAKS))
def test_krew_rules_reject(built, case):
    file_name, change, expected = RULE_BREAKS[case]
    broken = _mutated(built["manifest"], change)
    assert krew_build.schema_errors(broken) == []  # only krew's extra rules can tell
    problems = krew_build.rule_errors(broken, file_name)
    assert any(expected in problem for problem in problems), problems


def test_bin_targets_follow_krews_move_rules():
    targets = krew_build._bin_is_a_target
    assert targets("kubectl-needle", [{"from": "kubectl-needle", "to": "."}])
    assert targets("tool", [{"from": "dist/kubectl-needle", "to": "tool"}])
    assert targets("bin/run.sh", [{"from": "*/*.sh", "to": "bin"}])
    assert targets("anything/below", [{"from": "*", "to": "."}])  # krew's default
    assert not targets("run.sh", [{"from": "*/*.sh", "to": "bin"}])
    assert not targets("kubectl-needle", [{"from": "LICENSE", "to": "."}])


def _archive(path: Path, members: dict[str, tuple[bytes, int]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, (data, mode) in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return path


def _pointing_at(manifest: dict, archive: Path) -> dict:
    changed = copy.deepcopy(manifest)
    platform = _platform(changed)
    platform["uri"] = platform["uri"].rsplit("/", 1)[0] + "/" + archive.name
    platform["sha256"] = hashlib.sha256(archive.read_bytes()).hexdigest()
    return changed


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        ({"kubectl-needle": (b"#!", 0o644), "LICENSE": (b"", 0o644)}, "not executable"),
        ({"kubectl-needle": (b"#!", 0o755)}, "no LICENSE"),
        ({"other": (b"#!", 0o755), "LICENSE": (b"", 0o644)}, "matches `from`"),
    ],
)
def test_install_check_rejects(built, tmp_path, members, expected):
    wheel = built["wheel"].name
    members = {**members, wheel: (b"wheel", 0o644)}
    archive = _archive(tmp_path / "kubectl-needle-broken.tar.gz", members)
    manifest = _pointing_at(built["manifest"], archive)
    problems = krew_build.check_manifest(manifest, "needle.yaml", {archive.name: archive})
    assert any(expected in problem for problem in problems), problems


def test_install_check_rejects_a_wrong_sha256(built):
    archive = built["archive"]
    manifest = _mutated(built["manifest"], lambda m: _platform(m).update(sha256="0" * 64))
    problems = krew_build.check_manifest(manifest, "needle.yaml", {archive.name: archive})
    assert any("sha256 is 000" in problem for problem in problems), problems
    missing = krew_build.check_manifest(built["manifest"], "needle.yaml", {})
    assert any("no archive" in problem for problem in missing), missing
