"""Benchmark: `needle redact` on a node with a huge routing table, and on synthetic
clusters of growing size.

1. lab-healthy.tar.gz with one node's host routes replaced by --routes /32 routes (to
   consecutive addresses from 10.200.0.1, via 192.168.122.254 on ens3), as
   `ip -4 -d -j route show table all` prints them (ip-route.json) and as `route -n`
   prints them (route-n.txt). Target: under 5 s on 2 cores. The redacted bundle must
   still analyze (`needle analyze OUT --format json` exits 0 or 1); how long that takes
   is printed too, but is no part of the target.
2. bench/synthetic_bundle.py clusters of --nodes sizes (x --pods pods), each redacted
   as a directory and as the .tar.gz a collector writes (manifest first), and with
   --map-out also as the .tar.gz writing the map file. Target: under 60 s at 1,000
   nodes, with memory flat in the number of nodes.

Every redaction runs in a child process of its own, with a fixed key, so its peak RSS
(VmHWM) is its own. Prints a table; asserts nothing. Not a test: CI may run it small.

    .venv/bin/python bench/redact_bundle.py       # 100,000 routes; 100, 300, 1,000 nodes
    .venv/bin/python bench/redact_bundle.py --routes 2000 --nodes 5 --pods 3 --runs 1  # CI
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SAMPLE = ROOT / "samples" / "lab-healthy.tar.gz"
ROUTE_NODE = "lab-node-1"
GATEWAY = "192.168.122.254"
FIRST_DESTINATION = (10 << 24) | (200 << 16) | 1  # 10.200.0.1
KEY = bytes(range(32))

CHILD = """
import json, sys, time
from pathlib import Path
from needle.redact.run import redact_bundle
map_out = Path(sys.argv[3]) if len(sys.argv) > 3 else None
started = time.perf_counter()
result = redact_bundle(
    Path(sys.argv[1]), Path(sys.argv[2]), secret=bytes(range(32)), map_out=map_out
)
took = time.perf_counter() - started
peak = 0
for line in Path("/proc/self/status").read_text().splitlines():
    if line.startswith("VmHWM:"):
        peak = int(line.split()[1])
print(json.dumps({"seconds": took, "peak_kib": peak, "members": result.members}))
"""


# --- the 100,000-route bundle ---------------------------------------------------------------
def _dotted(value: int) -> str:
    return ".".join(str((value >> shift) & 0xFF) for shift in (24, 16, 8, 0))


def route_json(routes: int) -> list[dict[str, object]]:
    return [
        {
            "type": "unicast",
            "dst": _dotted(FIRST_DESTINATION + index),
            "gateway": GATEWAY,
            "dev": "ens3",
            "table": "main",
            "protocol": "static",
            "scope": "global",
            "flags": [],
        }
        for index in range(routes)
    ]


def route_n_lines(routes: int) -> list[str]:
    return [
        f"{_dotted(FIRST_DESTINATION + index):<15} {GATEWAY:<15} {'255.255.255.255':<15} "
        f"{'UGH':<5} {0:<6} {0:<2} {0:>7} ens3"
        for index in range(routes)
    ]


def build_route_bundle(routes: int, archive: Path) -> None:
    """lab-healthy with ROUTE_NODE's host route tables grown by `routes` /32 routes."""
    members: list[tuple[str, bytes]] = []
    with tarfile.open(SAMPLE) as tar:
        for info in tar:
            if info.isreg():
                handle = tar.extractfile(info)
                assert handle is not None
                members.append((info.name, handle.read()))
    host = f"nodes/{ROUTE_NODE}/host/"
    grown: dict[str, bytes] = {}
    for name, data in members:
        if name == host + "ip-route.json":
            table = json.loads(data)
            # the new routes go after the main table's own, before the local table
            main = [route for route in table if route.get("table", "main") == "main"]
            rest = [route for route in table if route.get("table", "main") != "main"]
            table = main + route_json(routes) + rest
            grown[name] = json.dumps(table, separators=(",", ":")).encode()  # as ip -j
        elif name == host + "route-n.txt":
            lines = data.decode().splitlines()
            grown[name] = "\n".join([*lines, *route_n_lines(routes)]).encode() + b"\n"
    if len(grown) != 2:
        raise SystemExit(f"{SAMPLE} has no {host}ip-route.json and route-n.txt")
    manifest = json.loads(dict(members)["manifest.json"])
    for node in manifest["nodes"]:
        for command in node.get("commands", []):
            if command.get("output") in grown:
                command["bytes"] = len(grown[command["output"]])
    grown["manifest.json"] = json.dumps(manifest, indent=1).encode()
    with tarfile.open(archive, "w:gz", compresslevel=6, format=tarfile.PAX_FORMAT) as out:
        for name, data in members:  # the sample's order: the manifest first
            data = grown.get(name, data)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_795_000_000
            info.mode = 0o644
            out.addfile(info, io.BytesIO(data))


# --- running ----------------------------------------------------------------------------------
def redact(source: Path, output: Path, map_out: bool = False) -> tuple[float, float]:
    """(seconds inside redact_bundle, peak RSS in MiB) of one redaction in a fresh process,
    writing the map beside `output` with `map_out`."""
    mapping = [str(output.with_name(output.name + ".map.json"))] if map_out else []
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(source), str(output), *mapping],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"redacting {source} failed:\n{done.stderr}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    for path in mapping:
        Path(path).unlink()
    return report["seconds"], report["peak_kib"] / 1024


def analyze(bundle: Path) -> tuple[float, int, int]:
    """(seconds, exit code, findings) of `needle analyze --format json`."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "needle", "analyze", str(bundle), "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    took = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"analyze {bundle} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return took, done.returncode, len(json.loads(done.stdout)["findings"])


def _check(output: Path) -> None:
    took, code, findings = analyze(output)
    print(f"  analyze of the redacted bundle: exit {code}, {findings} findings, {took:.2f} s")


def _row(case: str, size_mib: float, times: list[float], peak_mib: float) -> str:
    return (
        f"{case:<40} {size_mib:>9.1f} {min(times):>8.2f} {statistics.median(times):>8.2f} "
        f"{len(times):>4} {peak_mib:>9.0f}"
    )


def _size_mib(path: Path) -> float:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20
    return path.stat().st_size / 2**20


def bench_routes(routes: int, runs: int, workdir: Path, check: bool) -> None:
    source = workdir / f"routes-{routes}.tar.gz"
    output = workdir / f"routes-{routes}.redacted.tar.gz"
    build_route_bundle(routes, source)
    times, peaks = [], []
    for _ in range(runs):
        took, peak = redact(source, output)
        times.append(took)
        peaks.append(peak)
    print(_row(f"{routes:,} routes, .tar.gz", _size_mib(source), times, max(peaks)), flush=True)
    if check:
        _check(output)
    source.unlink()
    output.unlink()


def bench_nodes(
    sizes: list[int], pods: int, runs: int, workdir: Path, check: bool, map_out: bool
) -> None:
    sys.path.insert(0, str(HERE))
    from synthetic_bundle import generate, pack

    for size in sizes:
        directory = workdir / f"nodes-{size}"
        archive = workdir / f"nodes-{size}.tar.gz"
        output = workdir / f"nodes-{size}.redacted.tar.gz"
        started = time.perf_counter()
        generate(directory, size, pods, 0.0, 1)
        pack(directory, archive)
        print(
            f"  (made {size} nodes x {pods} pods in {time.perf_counter() - started:.0f} s)",
            flush=True,
        )
        forms = [("directory", directory, False), (".tar.gz", archive, False)]
        if map_out:
            forms.append((".tar.gz, --map-out", archive, True))
        for form, source, mapping in forms:
            times, peaks = [], []
            for _ in range(runs):
                took, peak = redact(source, output, mapping)
                times.append(took)
                peaks.append(peak)
            case = f"{size} nodes x {pods} pods, {form}"
            print(_row(case, _size_mib(source), times, max(peaks)), flush=True)
        if check:
            _check(output)
        shutil.rmtree(directory)
        archive.unlink()
        output.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--routes", type=int, default=100_000, help="0 skips the route case")
    parser.add_argument(
        "--nodes", default="100,300,1000", help="comma-separated sizes; empty skips them"
    )
    parser.add_argument("--pods", type=int, default=110)
    parser.add_argument("--runs", type=int, default=3, help="redactions per case")
    parser.add_argument(
        "--node-runs", type=int, default=None, help="redactions per synthetic case (--runs)"
    )
    parser.add_argument("--no-analyze", action="store_true", help="skip the analyze check")
    parser.add_argument(
        "--map-out", action="store_true", help="also time each .tar.gz writing the map file"
    )
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/needle-redact-bench"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(
        f"{'case':<40} {'in MiB':>9} {'min s':>8} {'median s':>8} {'runs':>4} {'peak MiB':>9}",
        flush=True,
    )
    if args.routes > 0:
        bench_routes(args.routes, args.runs, args.workdir, not args.no_analyze)
    sizes = [int(size) for size in args.nodes.split(",") if size.strip()]
    if sizes:
        runs = args.node_runs or args.runs
        bench_nodes(sizes, args.pods, runs, args.workdir, not args.no_analyze, args.map_out)


if __name__ == "__main__":
    main()
