"""Benchmark: model, analyze and diff on synthetic clusters of growing size.

For each size it generates a healthy bundle (bench/synthetic_bundle.py) as a directory,
then measures, each in a fresh process so peak memory is its own:
  - open + model build in one process (`needle show`'s path: every node's pod side,
    host routes, neighbours and FDB read; pods' routes left to first use),
  - `needle analyze` end to end (open, model, 20 rules, report), and on the largest
    bundle packed as a .tar.gz,
  - `needle diff` against a copy with 1% of peer routes moved to the underlay device,
    as directories and as the .tar.gz a collector writes.
Memory is the peak of the whole process tree (summed PSS: analyze and diff fork workers)
and, apart, the largest single process. Targets: model < 20 s and analyze < 30 s and
< 3 GB at 1,000 nodes x 110 pods; diff of two 1,000-node bundles < 30 s. Prints numbers;
asserts nothing.

    python bench/analyze_scale.py --sizes 100,300,1000 --pods 110 --workdir /tmp/needle-bench
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

MODEL = """
import sys, time
from needle.analyzer.bundle import open_bundle
from needle.analyzer.model import build_model
started = time.perf_counter()
with open_bundle(sys.argv[1]) as bundle:
    opened = time.perf_counter()
    model = build_model(bundle)
    for node in model.nodes.values():  # what is read on first use, read now
        node.fdb, node.host and node.host.routes
print(f"{opened - started:.2f} {time.perf_counter() - opened:.2f}")
"""


def _tree(root: int) -> list[int]:
    pids, found = [root], []
    while pids:
        pid = pids.pop()
        found.append(pid)
        try:
            for task in Path(f"/proc/{pid}/task").iterdir():
                pids += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue  # gone meanwhile
    return found


def _pss_kib(pid: int) -> int:
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    for line in rollup.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def run(argv: list[str]) -> tuple[float, float, float, str]:
    """Wall seconds (of a run of its own: reading smaps_rollup of a 2 GB process takes
    the kernel long enough to slow it); peak memory of the whole process tree in MiB
    (summed PSS, sampled every 0.5 s in a second run: analyze and diff fork workers that
    share pages, so one process's RSS says too little and a sum of RSS too much); the
    largest process's peak RSS in MiB (GNU time); and stdout."""
    started = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    took = time.perf_counter() - started
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(["/usr/bin/time", "-f", "%M", *argv], stdout=out, stderr=err)
        peak = 0
        while process.poll() is None:
            peak = max(peak, sum(_pss_kib(pid) for pid in _tree(process.pid)))
            time.sleep(0.5)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode not in (0, 1):
        raise SystemExit(f"{argv} failed: {stderr}")
    largest_kib = int(stderr.strip().splitlines()[-1])
    return took, peak / 1024, largest_kib / 1024, stdout


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100,300,1000")
    parser.add_argument("--pods", type=int, default=110)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/needle-bench"))
    parser.add_argument(
        "--diff-size",
        type=int,
        default=None,
        help="node count for the diff run (default: the largest size)",
    )
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    sizes = [int(size) for size in args.sizes.split(",")]
    needle = [sys.executable, "-m", "needle"]
    print(
        f"{'nodes':>6} {'pods':>7} {'open s':>7} {'model s':>8} {'model MiB':>10} "
        f"{'analyze s':>10} {'analyze MiB':>12} {'largest MiB':>12} {'findings':>9}"
    )
    for size in sizes:
        bundle = args.workdir / f"n{size}"
        if not (bundle / "manifest.json").exists():
            subprocess.run(
                [
                    sys.executable,
                    str(HERE / "synthetic_bundle.py"),
                    "--nodes",
                    str(size),
                    "--pods",
                    str(args.pods),
                    "-o",
                    str(bundle),
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        _, model_mib, _, out = run([sys.executable, "-c", MODEL, str(bundle)])
        opened, built = out.split()
        took, analyze_mib, largest_mib, report = run(
            [*needle, "analyze", str(bundle), "--format", "json", "--fail-on", "never"]
        )
        findings = len(json.loads(report)["findings"])
        print(
            f"{size:>6} {size * args.pods:>7} {opened:>7} {built:>8} {model_mib:>10.0f} "
            f"{took:>10.2f} {analyze_mib:>12.0f} {largest_mib:>12.0f} {findings:>9}"
        )
    # the same largest bundle as the .tar.gz a collector writes (read by spooling it)
    largest = args.workdir / f"n{max(sizes)}"
    archive = args.workdir / f"n{max(sizes)}.tar.gz"
    if not archive.exists():
        sys.path.insert(0, str(HERE))
        from synthetic_bundle import pack

        pack(largest, archive)
    took, mib, largest_mib, report = run(
        [*needle, "analyze", str(archive), "--format", "json", "--fail-on", "never"]
    )
    print(
        f"analyze {archive.name} ({archive.stat().st_size >> 20} MiB): {took:.2f} s, "
        f"{mib:.0f} MiB (largest process {largest_mib:.0f} MiB), "
        f"{len(json.loads(report)['findings'])} findings"
    )
    diff_size = args.diff_size or max(sizes)
    old = args.workdir / f"n{diff_size}"
    new = args.workdir / f"n{diff_size}-changed"
    if not (new / "manifest.json").exists():
        subprocess.run(
            [
                sys.executable,
                str(HERE / "synthetic_bundle.py"),
                "--nodes",
                str(diff_size),
                "--pods",
                str(args.pods),
                "--route-changes",
                "0.01",
                "-o",
                str(new),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    sys.path.insert(0, str(HERE))
    from synthetic_bundle import pack

    for form in ("", ".tar.gz"):
        pair = [args.workdir / f"{bundle.name}{form}" for bundle in (old, new)]
        for bundle, packed in zip((old, new), pair, strict=True):
            if not packed.exists():
                pack(bundle, packed)
        took, mib, largest_mib, out = run([*needle, "diff", *map(str, pair), "--format", "json"])
        document = json.loads(out)
        print(
            f"diff {diff_size} nodes{' as .tar.gz' if form else ''}, 1% of peer routes "
            f"changed: {took:.2f} s, {mib:.0f} MiB (largest process {largest_mib:.0f} MiB), "
            f"{document['summary']['changes']} changes, "
            f"{document['summary']['new_findings']} new findings"
        )


if __name__ == "__main__":
    main()
