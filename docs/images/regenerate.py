"""Remake the report screenshots in this directory from the sample bundles, with
Debian's headless Chromium (`python docs/images/regenerate.py`)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "htmlreport"))
from browser import browser  # noqa: E402

SHOTS = {
    "report-mtu-underlay.png": ["analyze", "samples/lab-mtu-underlay.tar.gz"],
    "report-healthy.png": ["analyze", "samples/lab-healthy.tar.gz"],
    "diff-vxlan-local-gone.png": [
        "diff",
        "samples/lab-healthy.tar.gz",
        "samples/lab-vxlan-local-gone.tar.gz",
    ],
}


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch, browser() as chromium:
        for name, argv in SHOTS.items():
            page = Path(scratch) / "page.html"
            command = [sys.executable, "-m", "needle", *argv, "--format", "html", "-o", str(page)]
            subprocess.run(command, cwd=REPO, check=False)
            chromium.visit(page, width=1280, height=1400)
            chromium.screenshot(HERE / name, full_page=False)
            print(HERE / name)


if __name__ == "__main__":
    main()
