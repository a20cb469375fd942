"""Sizes, archives and signals: bundles that try to exhaust memory, disk or time, and
archive tricks (docs/untrusted-bundles.md, "Sizes, archives and signals").

Each case stays small on disk and quick to build: sizes past a cap are declared (a
sparse file, a tar header) rather than written out where the cap is checked before the
bytes are read.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

from corpus import case, load, pack, save

MiB = 1024 * 1024
NODE = "nodes/lab-node-1"
ROUTES = f"{NODE}/host/ip-route.json"


def _repack(bundle: Path, extra: list[tarfile.TarInfo], name: str = "bundle.tar.gz") -> Path:
    """The bundle as a .tar.gz (manifest first), with `extra` headers (no data) added
    after the manifest; each member's data follows its header as tarfile writes it."""
    archive = bundle.parent / f"{bundle.name}-{name}"
    with tarfile.open(archive, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        tar.add(bundle / "manifest.json", arcname="manifest.json")
        for info in extra:
            tar.addfile(info, io.BytesIO(bytes(info.size)))
        for path in sorted(bundle.rglob("*")):
            if path.name != "manifest.json" or path.parent != bundle:
                tar.add(path, arcname=str(path.relative_to(bundle)), recursive=False)
    return archive


@case(
    "huge-manifest-directory",
    "budget",
    expect_exit={2},
    must_report=("NEEDLE_MAX_MANIFEST_BYTES",),
)
def huge_manifest(bundle: Path) -> None:
    """A directory bundle whose manifest.json is 300 MiB (sparse: it costs no disk).
    Read whole, it took one run to 10.5 GB; refused now from its size, unread."""
    with (bundle / "manifest.json").open("r+b") as manifest:
        manifest.truncate(300 * MiB)


@case("bomb-member-archive", "budget", "archive", expect_exit={2}, must_report=("cap",))
def bomb_member(bundle: Path) -> Path:
    """A ~300 KB .tar.gz whose one extra member is 300 MiB of zeros: over the per-file
    cap, refused from its header before the zeros are decompressed."""
    archive = bundle.parent / f"{bundle.name}-bomb.tar.gz"
    tar_path = pack(bundle, "plain.tar.gz")
    with (
        tarfile.open(tar_path) as source,
        gzip.open(archive, "wb", compresslevel=1) as out,
        tarfile.open(fileobj=out, mode="w|") as tar,
    ):
        for info in source.getmembers():
            tar.addfile(info, source.extractfile(info) if info.isfile() else None)
            if info.name == "manifest.json":
                zeros = tarfile.TarInfo(f"{NODE}/host/zeros.bin")
                zeros.size = 300 * MiB
                tar.addfile(zeros, _Zeros(zeros.size))
    tar_path.unlink()
    return archive


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


@case("many-tiny-files", "budget", expect_exit={0, 1})
def many_tiny_files(bundle: Path) -> None:
    """20,000 one-byte files, 2,000 of them named by the manifest as command outputs:
    everything reads them in a few seconds."""
    manifest = load(bundle, "manifest.json")
    node = manifest["nodes"][0]
    spam = bundle / NODE / "host" / "spam"
    spam.mkdir()
    for i in range(20_000):
        (spam / f"f{i}.txt").write_bytes(b"x")
    for i in range(2_000):
        node["commands"].append(
            {
                "id": f"spam-{i}",
                "netns": None,
                "argv": ["true"],
                "exit_code": 0,
                "timed_out": False,
                "output": f"{NODE}/host/spam/f{i}.txt",
                "stderr": None,
            }
        )
    save(bundle, "manifest.json", manifest)


@case("routes-100k-one-node", "budget", expect_exit={0, 1})
def many_routes(bundle: Path) -> None:
    """10^5 routes on one node: `show routes` streams its table (it was laid out whole
    by rich at ~0.7 ms a row: 70 s before the first line)."""
    routes = load(bundle, ROUTES)
    for i in range(100_000):
        routes.append(
            {
                "type": "unicast",
                "dst": f"10.{100 + i // 65536}.{(i // 256) % 256}.{i % 256}/32",
                "gateway": "192.168.122.1",
                "dev": "ens3",
                "table": "main",
                "protocol": "static",
                "scope": "global",
                "flags": [],
            }
        )
    save(bundle, ROUTES, routes)


@case(
    "pax-negative-size",
    "archive",
    expect_exit={2},
    must_report=("negative size",),
)
def pax_negative_size(bundle: Path) -> Path:
    """A member whose pax header says size=-1 (it spun for 11 s before failing)."""
    bad = tarfile.TarInfo(f"{NODE}/host/negative.txt")
    bad.size = 0
    bad.pax_headers = {"size": "-1"}
    return _repack(bundle, [bad])


@case(
    "member-name-newline-dotdot",
    "archive",
    "sanitise",
    expect_exit={2},
    must_report=("unsafe member path",),
)
def member_newline(bundle: Path) -> Path:
    """A member named "nodes/..\\n/evil": "..\\n" is no ".." segment, yet it forges a
    line wherever the name is printed. Refused, named on one line."""
    evil = tarfile.TarInfo("nodes/..\n/evil.txt")
    evil.size = 0
    return _repack(bundle, [evil])


@case(
    "manifest-duplicate-key",
    "duplicates",
    expect_exit={2},
    must_report=("'status' twice",),
)
def duplicate_key(bundle: Path) -> None:
    """manifest.json says "status" twice: JSON decoders keep the last silently."""
    manifest = load(bundle, "manifest.json")
    text = json.dumps(manifest)
    assert text.startswith("{")
    (bundle / "manifest.json").write_text('{"status": "complete", ' + text[1:])


@case(
    "markup-in-route-fields",
    "markup",
    "sanitise",
    expect_exit={0, 1},
    must_report=("[bold]dev[/bold]", "[/]", "\\x1b[2J"),
)
def markup_in_routes(bundle: Path) -> None:
    """A route whose device, protocol and table hold console markup and escapes: `show
    routes` prints them as typed (a bare "[/]" crashed six views; "[bold]" vanished)."""
    routes = load(bundle, ROUTES)
    routes.append(
        {
            "type": "unicast",
            "dst": "10.250.0.0/24",
            "gateway": "192.168.122.1",
            "dev": "[bold]dev[/bold]",
            "table": "[/]",
            "protocol": "\x1b[2J\x1b]0;owned\x07",
            "scope": "global",
            "flags": ["[red]x"],
        }
    )
    save(bundle, ROUTES, routes)
