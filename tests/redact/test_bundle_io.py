"""`needle redact` end to end: inputs it must refuse (one line, nothing left behind),
the forms it reads and writes, the command line, the map file, keys across runs and
bundles, and `needle diff` through the redaction."""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from lab_bundles import analyze_json as analyze
from needle.redact import archive
from needle.redact.run import RedactError, redact_bundle
from redact_checks import finding_shape

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
HEALTHY = SAMPLES / "lab-healthy.tar.gz"
ROUTE_MISSING = SAMPLES / "lab-route-missing.tar.gz"
KEY = bytes(range(32))
NODES = ("lab-node-1", "lab-node-2", "lab-node-3")


def files(bundle: Path) -> dict[str, bytes]:
    with tarfile.open(bundle) as tar:  # reads .tar.gz; .tar.zst is read by analyze
        return {
            info.name: tar.extractfile(info).read()  # type: ignore[union-attr]
            for info in tar
            if info.isreg()
        }


def manifest(bundle: Path) -> dict:
    return json.loads(files(bundle)["manifest.json"])


def node_token(bundle: Path, original: str, names: dict[str, str]) -> str:
    token = names[original]
    assert any(name.startswith(f"nodes/{token}/") for name in files(bundle))
    return token


def needle(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "needle", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def write_tar(path: Path, entries: list[tuple[str, bytes | str]]) -> Path:
    """A .tar.gz of regular files (bytes) and symlinks (str: the target)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, content in entries:
            info = tarfile.TarInfo(name)
            if isinstance(content, str):
                info.type = tarfile.SYMTYPE
                info.linkname = content
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return path


def sample_entries(replace: dict[str, bytes] | None = None) -> list[tuple[str, bytes | str]]:
    entries: list[tuple[str, bytes | str]] = list(files(HEALTHY).items())
    return [(name, (replace or {}).get(name, data)) for name, data in entries]


# --- refused inputs: one line, no OUT, no temporary directory -----------------------------
def _truncated(tmp: Path) -> Path:
    data = HEALTHY.read_bytes()
    (tmp / "half.tar.gz").write_bytes(data[: len(data) // 2])
    return tmp / "half.tar.gz"


def _tar_cut_at_a_member(tmp: Path) -> Path:
    # an uncompressed bundle cut where a member begins: no end-of-archive blocks
    raw = gzip.decompress(HEALTHY.read_bytes())
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        offsets = [info.offset for info in tar]
    (tmp / "cut.tar").write_bytes(raw[: offsets[len(offsets) // 2]])
    return tmp / "cut.tar"


def _not_a_bundle(tmp: Path) -> Path:
    (tmp / "notes.txt").write_text("lab-node-1 10.244.1.2\n" * 50)
    return tmp / "notes.txt"


def _symlink(tmp: Path) -> Path:
    entries = sample_entries()
    entries.insert(3, ("nodes/lab-node-1/host/passwd.txt", "/etc/passwd"))
    return write_tar(tmp / "symlink.tar.gz", entries)


def _climbing(tmp: Path) -> Path:
    return write_tar(tmp / "climb.tar.gz", [*sample_entries(), ("../x", b"out of the bundle\n")])


def _no_manifest(tmp: Path) -> Path:
    entries = [entry for entry in sample_entries() if entry[0] != "manifest.json"]
    return write_tar(tmp / "nomanifest.tar.gz", entries)


def _manifest_not_json(tmp: Path) -> Path:
    bad = sample_entries({"manifest.json": b'{"format": "needle.bundle/v1", nodes: [}'})
    return write_tar(tmp / "badmanifest.tar.gz", bad)


def _manifest_with_trailing_data(tmp: Path) -> Path:
    # two JSON objects one after the other: not JSON; json.loads refuses it too
    original = files(HEALTHY)["manifest.json"]
    bad = sample_entries({"manifest.json": original + b'\n{"format": "needle.bundle/v1"}\n'})
    return write_tar(tmp / "trailing.tar.gz", bad)


def _already_redacted(tmp: Path) -> Path:
    redact_bundle(HEALTHY, tmp / "once.tar.gz", secret=KEY)
    return tmp / "once.tar.gz"


REFUSED = {
    "truncated .tar.gz": (_truncated, r"truncated or corrupt"),
    "not a bundle": (_not_a_bundle, r"is not a bundle"),
    "symlink member": (_symlink, r"passwd\.txt.*not a regular file"),
    "../ member": (_climbing, r"unsafe member name '\.\./x'"),
    "no manifest": (_no_manifest, r"no manifest\.json"),
    "manifest not JSON": (_manifest_not_json, r"manifest\.json is not valid JSON"),
    "already redacted": (_already_redacted, r"already redacted"),
}


def _assert_refused(source: Path, out_dir: Path, pattern: str) -> None:
    out = out_dir / "redacted.tar.gz"
    with pytest.raises(RedactError) as caught:
        redact_bundle(source, out, secret=KEY)
    message = str(caught.value)
    assert "\n" not in message and re.search(pattern, message), message
    assert not out.exists()
    assert os.listdir(out_dir) == []  # no .needle-redact-* left behind


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_bad_input_is_refused_in_one_line_leaving_nothing(case: str, tmp_path: Path) -> None:
    make, pattern = REFUSED[case]
    inputs, out_dir = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    out_dir.mkdir()
    _assert_refused(make(inputs), out_dir, pattern)


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("nodes/n1/netns/ns-1/ip-link.json", True),
        ("nodes/n1/.hidden/a..b", True),
        ("...", True),
        ("", False),
        ("/etc/passwd", False),
        ("nodes/", False),
        ("nodes//a", False),
        ("./a", False),
        ("a/./b", False),
        ("a/..", False),
        ("..\\x", False),
        ("a\nb", False),
        ("a\x7f", False),
    ],
)
def test_member_names_that_could_climb_out_or_mislead_are_unsafe(name: str, safe: bool) -> None:
    try:
        archive._check_name(name, Path("b.tar"))
    except archive.ArchiveError:
        assert not safe
    else:
        assert safe


def test_a_manifest_with_data_after_the_object_is_refused(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    _assert_refused(_manifest_with_trailing_data(tmp_path), tmp_path / "out", "not valid JSON")


def test_an_uncompressed_bundle_cut_at_a_member_boundary_is_refused(tmp_path: Path) -> None:
    # A .tar ends with two zero blocks; without them half the bundle went missing, and a
    # redacted copy of the first half must not come out as if it were the whole.
    (tmp_path / "out").mkdir()
    _assert_refused(_tar_cut_at_a_member(tmp_path), tmp_path / "out", "truncated")


def test_an_output_directory_that_does_not_exist(tmp_path: Path) -> None:
    out = tmp_path / "missing" / "redacted.tar.gz"
    with pytest.raises(RedactError, match=r"does not exist") as caught:
        redact_bundle(HEALTHY, out, secret=KEY)
    assert "\n" not in str(caught.value)
    assert os.listdir(tmp_path) == []


def test_a_map_file_that_cannot_be_written_leaves_no_bundle(tmp_path: Path) -> None:
    # --map-out into a directory that does not exist: a one-line error and no OUT (the
    # bundle must not appear without the map the user asked for)
    out = tmp_path / "redacted.tar.gz"
    with pytest.raises(RedactError):
        redact_bundle(HEALTHY, out, secret=KEY, map_out=tmp_path / "nowhere" / "map.json")
    assert os.listdir(tmp_path) == []


# --- forms read and written ---------------------------------------------------------------
def _without_created(document: dict) -> dict:
    document = json.loads(json.dumps(document))
    del document["redaction"]["created"]
    return document


def test_a_directory_bundle_gives_the_same_result_as_its_tar_gz(tmp_path: Path) -> None:
    unpacked = tmp_path / "bundle"
    with tarfile.open(HEALTHY) as tar:
        tar.extractall(unpacked, filter="data")
    from_tar, from_dir = tmp_path / "tar.tar.gz", tmp_path / "dir.tar.gz"
    redact_bundle(HEALTHY, from_tar, secret=KEY)
    redact_bundle(unpacked, from_dir, secret=KEY)
    a, b = files(from_tar), files(from_dir)
    assert sorted(a) == sorted(b)
    assert len(a) == len(files(HEALTHY))
    for name in a:
        if name != "manifest.json":
            assert a[name] == b[name], name
    assert _without_created(json.loads(a["manifest.json"])) == _without_created(
        json.loads(b["manifest.json"])
    )
    # nothing of the original node names in the member names
    assert not any(node in name for name in a for node in NODES)


def test_a_bundle_repacked_inside_a_folder_is_read(tmp_path: Path) -> None:
    # `tar czf b.tgz bundle/` (archive.py says this is read too): members sorted by name,
    # so bundle/cluster/... comes before bundle/manifest.json
    repacked = write_tar(
        tmp_path / "repacked.tar.gz",
        sorted((f"bundle/{name}", data) for name, data in files(HEALTHY).items()),
    )
    (tmp_path / "out").mkdir()
    redact_bundle(repacked, tmp_path / "out" / "r.tar.gz", secret=KEY)
    redact_bundle(HEALTHY, tmp_path / "plain.tar.gz", secret=KEY)
    assert sorted(files(tmp_path / "out" / "r.tar.gz")) == sorted(files(tmp_path / "plain.tar.gz"))


def test_a_tar_zst_output_is_a_bundle_the_analyzer_reads(tmp_path: Path) -> None:
    out = tmp_path / "redacted.tar.zst"
    redact_bundle(ROUTE_MISSING, out, secret=KEY)
    assert out.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"
    before, after = analyze(ROUTE_MISSING), analyze(out)  # asserts exit 0 or 1
    assert after["summary"] == before["summary"] and after["summary"]["error"] >= 1
    assert finding_shape(after) == finding_shape(before)
    assert [name for name in os.listdir(tmp_path)] == ["redacted.tar.zst"]


# --- the command line -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("key") / "site.key"
    path.write_bytes(KEY)
    return path


def test_cli_redacts_and_says_so(tmp_path: Path, key_file: Path) -> None:
    out = tmp_path / "r.tar.gz"
    result = needle("redact", HEALTHY, "-o", out, "--key-file", key_file)
    assert result.returncode == 0, result.stderr
    assert out.is_file() and manifest(out)["redaction"]["key"] == "from a key file"
    assert f"into {out}" in result.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    return lines[0]


def test_cli_refuses_a_short_key_file(tmp_path: Path) -> None:
    short = tmp_path / "short.key"
    short.write_bytes(os.urandom(16))
    out = tmp_path / "r.tar.gz"
    line = _one_line_error(needle("redact", HEALTHY, "-o", out, "--key-file", short))
    assert "16 bytes" in line and "at least 32" in line and "head -c 32 /dev/urandom" in line
    assert sorted(os.listdir(tmp_path)) == ["short.key"]


def test_cli_refuses_a_missing_input(tmp_path: Path, key_file: Path) -> None:
    missing = tmp_path / "nope.tar.gz"
    line = _one_line_error(
        needle("redact", missing, "-o", tmp_path / "r.tar.gz", "--key-file", key_file)
    )
    assert str(missing) in line
    assert os.listdir(tmp_path) == []


def test_map_out_is_private_and_holds_the_names(tmp_path: Path, key_file: Path) -> None:
    out, mapping = tmp_path / "r.tar.gz", tmp_path / "map.json"
    mapping.write_text("stale")
    mapping.chmod(0o644)
    result = needle("redact", HEALTHY, "-o", out, "--key-file", key_file, "--map-out", mapping)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(mapping.stat().st_mode) == 0o600
    document = json.loads(mapping.read_text())
    names = document["names"]
    assert set(NODES) <= set(names)
    assert "web-mgcn8tkxjm-hrg7v" in names
    for node in NODES:
        node_token(out, node, names)  # the node directories carry the mapped names
    assert "veth4d2cdbc3" in document["interfaces"]
    assert sorted(os.listdir(tmp_path)) == ["map.json", "r.tar.gz"]
    # addresses and MACs too: each original's mapped value is what the bundle holds
    with tarfile.open(out) as tar:
        nodes = json.loads(tar.extractfile("cluster/nodes.json").read())["items"]
    with tarfile.open(HEALTHY) as tar:
        originals = json.loads(tar.extractfile("cluster/nodes.json").read())["items"]
    for before, after in zip(originals, nodes, strict=True):
        ip = before["status"]["addresses"][0]["address"]
        assert document["addresses"][ip] == after["status"]["addresses"][0]["address"]
        assert (
            document["addresses"][before["spec"]["podCIDR"].split("/")[0]]
            == (after["spec"]["podCIDR"].split("/")[0])
        )
    assert document["macs"] and all(a != b for a, b in document["macs"].items())


# --- keys ---------------------------------------------------------------------------------
def test_without_a_key_every_run_maps_differently(tmp_path: Path) -> None:
    runs = []
    for index in (1, 2):
        out, mapping = tmp_path / f"r{index}.tar.gz", tmp_path / f"m{index}.json"
        redact_bundle(HEALTHY, out, map_out=mapping)
        assert manifest(out)["redaction"]["key"] == "random, not kept"
        runs.append((out, json.loads(mapping.read_text())["names"]))
    (first, names1), (second, names2) = runs
    assert set(names1) == set(names2)
    assert all(names1[name] != names2[name] for name in names1)
    assert files(first)["cluster/nodes.json"] != files(second)["cluster/nodes.json"]


def _node_addresses(bundle: Path) -> dict[str, list[str]]:
    nodes = json.loads(files(bundle)["cluster/nodes.json"])["items"]
    return {
        node["metadata"]["name"]: sorted(
            address["address"]
            for address in node["status"]["addresses"]
            if address["type"] == "InternalIP"
        )
        for node in nodes
    }


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict, dict]:
    """lab-healthy and lab-route-missing redacted with one key, with their maps."""
    where = tmp_path_factory.mktemp("pair")
    out = []
    for sample in (HEALTHY, ROUTE_MISSING):
        target, mapping = where / sample.name, where / f"{sample.name}.map.json"
        redact_bundle(sample, target, secret=KEY, map_out=mapping)
        out.append((target, json.loads(mapping.read_text())["names"]))
    (old, old_names), (new, new_names) = out
    return old, new, old_names, new_names


def test_one_key_maps_two_bundles_alike(pair) -> None:
    old, new, old_names, new_names = pair
    assert {node: old_names[node] for node in NODES} == {node: new_names[node] for node in NODES}
    before = _node_addresses(HEALTHY)
    assert before == _node_addresses(ROUTE_MISSING)  # the same lab, the same addresses
    mapped_old, mapped_new = _node_addresses(old), _node_addresses(new)
    assert set(mapped_old) == {old_names[node] for node in NODES}
    assert mapped_old == mapped_new
    for node in NODES:
        assert mapped_old[old_names[node]] != before[node]


def _diff(old: Path, new: Path) -> dict:
    result = needle("diff", old, new, "--format", "json")
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


def test_diff_of_redacted_bundles_reports_the_same_changes(pair) -> None:
    old, new, names, _ = pair
    original, redacted = _diff(HEALTHY, ROUTE_MISSING), _diff(old, new)
    assert original["summary"]["changes"] >= 1
    assert redacted["summary"] == original["summary"]
    kinds = sorted(
        (c["kind"], c["op"], names.get(c["node"], c["node"])) for c in original["changes"]
    )
    assert sorted((c["kind"], c["op"], c["node"]) for c in redacted["changes"]) == kinds
    rules = sorted(f["rule"] for f in original["findings"]["new"])
    assert sorted(f["rule"] for f in redacted["findings"]["new"]) == rules
