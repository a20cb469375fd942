"""What the rules' tests share: a small synthetic cluster, generated once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory) -> Path:
    """bench/synthetic_bundle.py's cluster of 30 healthy nodes with 2 pods each (a
    directory bundle: tests copy it before they edit it)."""
    bundle = tmp_path_factory.mktemp("synthetic") / "n30"
    subprocess.run(
        [
            *(sys.executable, str(REPO / "bench" / "synthetic_bundle.py")),
            *("--nodes", "30", "--pods", "2", "-o", str(bundle)),
        ],
        check=True,
        capture_output=True,
    )
    return bundle
