"""`needle diff` without root: on the bundled samples and on bundles lacking data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from needle.analyzer.bundle import open_bundle

REPO = Path(__file__).resolve().parents[2]
HEALTHY = REPO / "samples" / "lab-healthy.tar.gz"


def diff(old: Path, new: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "needle", "diff", str(old), str(new), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_bundle_against_itself_is_empty():
    result = diff(HEALTHY, HEALTHY, "--format", "json")
    document = json.loads(result.stdout)
    assert result.returncode == 0
    assert document["summary"] == {
        "changes": 0,
        "new_findings": 0,
        "resolved_findings": 0,
        "unchanged_findings": len(document["findings"]["unchanged"]),
        "by_kind": {},
        "left_out": {"per_boot": 0, "implied": 0},
    }


def test_what_one_bundle_lacks_is_stated_not_reported_as_removed(tmp_path):
    with open_bundle(HEALTHY) as bundle:
        bundle.export(tmp_path / "b")
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    node = manifest["nodes"][0]
    node["commands"] = [c for c in node["commands"] if c["id"] != "ip-route"]
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(manifest))
    document = json.loads(diff(HEALTHY, tmp_path / "b", "--format", "json").stdout)
    assert document["changes"] == []
    assert document["not_compared"] == [f"{node['name']}: routes absent from the new bundle"]


def test_markdown_pastes_into_a_ticket_and_errors_are_one_line(tmp_path):
    markdown = diff(HEALTHY, REPO / "samples" / "lab-route-missing.tar.gz", "--format", "markdown")
    assert markdown.stdout.startswith("## needle diff")
    assert "- NEW error: lab-node-1 has no route to lab-node-2's pod CIDR" in markdown.stdout
    missing = diff(HEALTHY, tmp_path / "nope.tar.gz")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
