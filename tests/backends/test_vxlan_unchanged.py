"""A Flannel VXLAN bundle gives the same findings through the backend interface as it
gave before it: every sample's findings (rule, severity, message, subject, evidence)
against those recorded on the commit before the interface (record_findings.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from record_findings import findings_of

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RECORDED = json.loads((HERE / "findings-before-backends.json").read_text())
# rule ids that named a device and were renamed with the interface
RENAMED = {"flannel.node.cni0-podcidr-mismatch": "flannel.node.bridge-podcidr-mismatch"}
# findings folded since into another of the same cause (analyzer/rules/causes.py): one
# node's too-small underlay was also a mismatch with each peer
FOLDED = {"lab-mtu-underlay.tar.gz": {"flannel.mtu.underlay-mismatch"}}


def _as_before(finding: dict[str, object]) -> dict[str, object]:
    return {**finding, "rule": RENAMED.get(str(finding["rule"]), finding["rule"])}


def _without_evidence(finding: dict[str, object]) -> dict[str, object]:
    return {key: value for key, value in finding.items() if key != "evidence"}


@pytest.mark.parametrize("sample", sorted(RECORDED))
def test_a_vxlan_sample_gives_the_findings_it_gave_before(sample):
    """The same findings, each with at least the evidence it had (rules that had none
    gained some since)."""
    assert (REPO / "samples" / sample).exists()
    folded = FOLDED.get(sample, set())
    recorded = [_as_before(finding) for finding in RECORDED[sample]]
    expected = [finding for finding in recorded if finding["rule"] not in folded]
    found = findings_of(REPO / "samples" / sample)
    details = [str(item["detail"]) for finding in found for item in finding["evidence"]]
    for gone in (finding for finding in recorded if finding["rule"] in folded):
        # its message is evidence of the finding it was folded into (the first of a
        # rule's folded findings whole; the others by their node-side evidence)
        assert any(str(gone["message"]).split(" (")[0] in detail for detail in details) or all(
            item["detail"] in details for item in gone["evidence"]
        ), gone
    assert [_without_evidence(f) for f in found] == [_without_evidence(f) for f in expected]
    for now, before in zip(found, expected, strict=True):
        # evidence says its source since (config, probe, capture, counters)
        had = [{k: v for k, v in item.items() if k != "source"} for item in now["evidence"]]
        assert all(item in had for item in before["evidence"]), now["rule"]
        assert now["evidence"], now["rule"]


def test_the_record_covers_every_fault_sample():
    """A fault sample must find something, or the comparison proves little."""
    assert RECORDED["lab-healthy.tar.gz"] == []
    assert all(findings for name, findings in RECORDED.items() if name != "lab-healthy.tar.gz")
    assert len(RECORDED) >= 8
