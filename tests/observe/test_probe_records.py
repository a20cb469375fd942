"""Probe records are bundle data like any other: hostile fields count as absent, never a
traceback; a failed probe the configuration delivers becomes `observed.probe-failure`,
naming both nodes, with the probe's output as evidence."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
LOST = b"""PING 10.244.2.2 (10.244.2.2) 56(84) bytes of data.

--- 10.244.2.2 ping statistics ---
3 packets transmitted, 0 received, 100% packet loss, time 404ms
"""


def _bundle(tmp_path: Path, results: list[object]) -> Path:
    root = tmp_path / "bundle"
    with tarfile.open(SAMPLES / "lab-healthy.tar.gz") as tar:
        tar.extractall(root, filter="data")
    probes = root / "nodes" / "lab-node-1" / "host" / "probes"
    probes.mkdir()
    (probes / "pod-10.244.2.2-small.txt").write_bytes(LOST)
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["nodes"][0]["probes"] = {"results": results}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def _needle(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "needle", *args], capture_output=True, text=True, check=False
    )


def _lost(**changes: object) -> dict[str, object]:
    record: dict[str, object] = {
        "kind": "pod",
        "target": "10.244.2.2",
        "peer_node": "lab-node-2",
        "source": "host",
        "netns": None,
        "size_name": "small",
        "size": 56,
        "df": True,
        "tool": "ping",
        "exit_code": 1,
        "missing_tool": False,
        "cut": None,
        "output": "nodes/lab-node-1/host/probes/pod-10.244.2.2-small.txt",
        "stderr": None,
    }
    return record | changes


def test_a_failed_probe_the_configuration_delivers_is_its_own_finding(tmp_path):
    bundle = _bundle(tmp_path, [_lost()])
    result = _needle("analyze", str(bundle), "--format", "json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    (finding,) = report["findings"]
    assert finding["rule"] == "observed.probe-failure" and finding["severity"] == "error"
    assert finding["subject"]["node"] == "lab-node-1"
    assert finding["subject"]["peer_node"] == "lab-node-2"
    assert "small (84-byte) pings between lab-node-1 and lab-node-2 fail" in finding["message"]
    assert finding["evidence"] == [
        {
            "file": "nodes/lab-node-1/host/probes/pod-10.244.2.2-small.txt",
            "detail": "probe: ping 84 bytes DF from lab-node-1 to pod 10.244.2.2 of "
            "lab-node-2: 0/3 answered",
            "source": "probe",
        }
    ]
    assert report["coverage"]["observations"]["probes"]["unexplained"] == 1


def test_hostile_probe_records_are_absent_data_not_a_traceback(tmp_path):
    results = [
        "not a record",
        7,
        _lost(output="../../../etc/passwd"),
        _lost(output="nodes/lab-node-1/host/probes/none.txt"),
        _lost(kind=["pod"], size="56", df="yes", peer_node={"x": 1}, source=3),
        _lost(target="<img src=x onerror=alert(1)>", output=None, cut="\x1b[31mred"),
    ]
    bundle = _bundle(tmp_path, results)
    result = _needle("analyze", str(bundle))
    assert result.returncode == 0, result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    assert "probes: 4 (0 passed, 0 failed, 4 not judged" in result.stdout
    shown = _needle("show", str(bundle), "probes")
    assert shown.returncode == 0 and "Traceback" not in shown.stderr
    assert "\x1b[31m" not in shown.stdout  # bundle text goes through the boundary


def test_findings_of_observations_take_their_place_in_the_report_order(tmp_path):
    from needle.analyzer.bundle import open_bundle
    from needle.analyzer.model import build_model
    from needle.analyzer.observe.analyze import observe
    from needle.analyzer.rules.engine import SUBJECT_KEYS, Finding, Outcome

    subject = dict.fromkeys(SUBJECT_KEYS)
    note = Finding("a.note", "info", "t", "m", {**subject, "node": "lab-node-3"}, [], "", [])
    outcome = Outcome(findings=[note])
    with open_bundle(_bundle(tmp_path, [_lost()])) as bundle:
        model = build_model(bundle)
        observe(bundle, model, outcome, [])
    assert [(f.severity, f.rule) for f in outcome.findings] == [
        ("error", "observed.probe-failure"),
        ("info", "a.note"),
    ]
    assert note.observed == "inferred" and note.evidence == []
