"""Benchmark: `needle analyze --format html` on synthetic clusters, and the page in a
browser.

For each bundle: `analyze --format json` and `--format html` in alternation (each in a
fresh process; wall time and the process tree's peak memory as analyze_scale.run
measures them), the page's size, and how long headless Chromium (Debian's package,
driven as tests/htmlreport/ drives it) takes from navigation to the load event, with
any console error or request it made. Targets (issue #22): at 1,000 nodes a page under
10 MB, made in under 15 s, that opens in under 5 s. Prints numbers; asserts nothing.

    python bench/html_report.py /tmp/needle-bench/n1000 /tmp/needle-bench/n1000-changed
    python bench/html_report.py --nodes 100 --pods 110   # generates the bundle first
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "htmlreport"))
from analyze_scale import run  # noqa: E402
from browser import browser  # noqa: E402

NEEDLE = [sys.executable, "-m", "needle"]


def generated(nodes: int, pods: int, workdir: Path) -> Path:
    bundle = workdir / f"n{nodes}x{pods}"
    if not bundle.exists():
        subprocess.run(
            [
                sys.executable,
                str(HERE / "synthetic_bundle.py"),
                "--nodes",
                str(nodes),
                "--pods",
                str(pods),
                "-o",
                str(bundle),
            ],
            check=True,
        )
    return bundle


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("bundles", type=Path, nargs="*")
    parser.add_argument("--nodes", type=int, default=0, help="generate a bundle this big")
    parser.add_argument("--pods", type=int, default=110)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/needle-bench"))
    args = parser.parse_args()
    bundles = list(args.bundles)
    if args.nodes:
        args.workdir.mkdir(parents=True, exist_ok=True)
        bundles.append(generated(args.nodes, args.pods, args.workdir))
    with tempfile.TemporaryDirectory() as scratch:
        for bundle in bundles:
            page = Path(scratch) / f"{bundle.name}.html"
            times: dict[str, list[tuple[float, float]]] = {"json": [], "html": []}
            for _ in range(args.runs):
                for form in ("json", "html"):
                    out = page if form == "html" else Path(scratch) / "report.json"
                    argv = [*NEEDLE, "analyze", str(bundle), "--format", form, "-o", str(out)]
                    took, tree_mib, _largest, _ = run(argv)
                    times[form].append((took, tree_mib))
            with browser() as chromium:
                visits = [chromium.visit(page) for _ in range(3)]
                nodes = chromium.evaluate("document.querySelectorAll('g.node').length")
                rows = chromium.evaluate("document.querySelectorAll('#nodes tbody tr').length")
            print(f"{bundle.name}:")
            for form, measured in times.items():
                seconds = [t for t, _ in measured]
                memory = max(m for _, m in measured)
                print(
                    f"  analyze --format {form}: {min(seconds):.2f}-{max(seconds):.2f} s "
                    f"(mean {statistics.mean(seconds):.2f}), peak {memory:.0f} MiB"
                )
            loads = [visit.load_seconds for visit in visits]
            print(
                f"  page {page.stat().st_size / 1e6:.2f} MB; opens in "
                f"{min(loads):.2f}-{max(loads):.2f} s; {nodes} node boxes drawn, "
                f"{rows} rows in the nodes table; errors {visits[0].errors}, "
                f"requests {visits[0].requests}",
                flush=True,
            )


if __name__ == "__main__":
    main()
