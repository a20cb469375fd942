"""`needle diff` says when the two bundles' names and addresses cannot match: one is
redacted and the other not, or a random key redacted them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from needle.redact.run import redact_bundle

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def not_compared(old: Path, new: Path) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-m", "needle", "diff", str(old), str(new), "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)["not_compared"]


def test_a_redacted_and_an_original_bundle_are_said_not_to_match(tmp_path):
    original = SAMPLES / "lab-healthy.tar.gz"
    redacted = tmp_path / "r.tar.gz"
    redact_bundle(original, redacted, secret=bytes(32))
    assert "only the new bundle is redacted" in not_compared(original, redacted)[0]
    assert "only the old bundle is redacted" in not_compared(redacted, original)[0]


def test_a_random_key_is_said_never_to_match(tmp_path):
    first, second = tmp_path / "a.tar.gz", tmp_path / "b.tar.gz"
    redact_bundle(SAMPLES / "lab-healthy.tar.gz", first)
    redact_bundle(SAMPLES / "lab-route-missing.tar.gz", second)
    assert "random key" in not_compared(first, second)[0]


def test_one_key_diffs_like_the_originals(tmp_path):
    first, second = tmp_path / "a.tar.gz", tmp_path / "b.tar.gz"
    redact_bundle(SAMPLES / "lab-healthy.tar.gz", first, secret=bytes(32))
    redact_bundle(SAMPLES / "lab-route-missing.tar.gz", second, secret=bytes(32))
    redacted = not_compared(first, second)
    original = not_compared(SAMPLES / "lab-healthy.tar.gz", SAMPLES / "lab-route-missing.tar.gz")
    assert not any("redact" in line for line in redacted)
    assert len(redacted) == len(original)
