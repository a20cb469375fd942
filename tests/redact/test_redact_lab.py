"""Redaction on real lab bundles with probes and captures full of packets: the redacted
bundle gives the same findings (also what the observations confirm), no original
address, MAC or name is left in any file (the pcaps' headers included), and `needle
collect --redact` writes only the redacted bundle. Traffic stays between the lab's
namespaces."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from lab_bundles import analyze_json as analyze
from lab_bundles import collect_with_probes
from needle.lab import api as lab_api
from needle.lab.state import LabState
from needle.redact.run import redact_bundle
from redact_checks import finding_shape, is_capture, members, remaining

pytestmark = [pytest.mark.root, pytest.mark.tools("tcpdump", "nsenter", "ping")]

KEY = bytes(range(100, 132))


@pytest.fixture
def lab(lab_factory) -> LabState:
    return lab_factory(nodes=3, pods=2)


def collect_lab(state: LabState, output: Path, *, redact: bool = False) -> None:
    collect_with_probes(state, output, redact_secret=KEY if redact else None)


def observed_shape(report: dict) -> list[tuple[str, str, str | None]]:
    return sorted((f["rule"], f["severity"], f.get("observed")) for f in report["findings"])


def captured_packets(bundle: Path) -> int:
    manifest = json.loads(dict(members(bundle))["manifest.json"])
    return sum(
        capture.get("packets_captured") or 0
        for node in manifest["nodes"]
        for capture in node.get("captures") or []
    )


@pytest.mark.parametrize("fault", [None, "mtu-underlay", "vxlan-port-blocked"])
def test_a_lab_bundle_redacts_to_the_same_diagnosis(lab, tmp_path, fault) -> None:
    if fault is not None:
        lab_api.fault(lab.name, fault)
    original = tmp_path / "original.tar.gz"
    collect_lab(lab, original)
    redacted = tmp_path / "redacted.tar.gz"
    result = redact_bundle(original, redacted, secret=KEY)
    assert result.packets > 20 and result.captures >= 9, result
    before, after = analyze(original), analyze(redacted)
    assert observed_shape(after) == observed_shape(before)
    seen_before, seen_after = before["coverage"]["observations"], after["coverage"]["observations"]
    assert len(seen_after.pop("counters")) == len(seen_before.pop("counters"))  # node names
    assert seen_after == seen_before
    assert remaining(original, redacted) == []
    # the captures still hold their packets, and they still decode
    assert result.packets_dropped == 0 and result.problems == []
    shown = subprocess.run(
        [sys.executable, "-m", "needle", "show", str(redacted), "flows", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(shown.stdout), "no flows decoded from the redacted captures"


def test_collect_redact_writes_only_the_redacted_bundle(lab, tmp_path) -> None:
    lab_api.fault(lab.name, "route-missing")
    plain, redacted = tmp_path / "plain.tar.gz", tmp_path / "redacted.tar.gz"
    collect_lab(lab, plain)
    collect_lab(lab, redacted, redact=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.tar.gz", "redacted.tar.gz"]
    files = dict(members(redacted))
    assert json.loads(files["manifest.json"])["redaction"]["key"] == "from a key file"
    assert any(is_capture(name, data) for name, data in files.items())
    assert remaining(plain, redacted) == []
    assert finding_shape(analyze(redacted)) == finding_shape(analyze(plain))
    assert captured_packets(redacted) > 0
