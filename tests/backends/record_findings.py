"""Records what `needle analyze` finds in every sample bundle, for the regression test
of the data-plane backends (test_vxlan_unchanged.py): run once on the commit before the
backend interface landed, its output is the promise that a Flannel VXLAN bundle gives
the same findings after it.

    python tests/backends/record_findings.py > tests/backends/findings-before-backends.json
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def findings_of(bundle: Path) -> list[dict[str, object]]:
    result = subprocess.run(
        [sys.executable, "-m", "needle", "analyze", str(bundle), "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    document = json.loads(result.stdout)
    return [
        {key: finding[key] for key in ("rule", "severity", "message", "subject", "evidence")}
        for finding in document["findings"]
    ]


def main() -> None:
    recorded = {
        path.name: findings_of(path) for path in sorted((REPO / "samples").glob("*.tar.gz"))
    }
    json.dump(recorded, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
