"""`needle analyze` walks every pair: a fault that breaks pod traffic and that no rule
names is one error naming the node and the hop, with evidence; a fault a rule names is
that rule's finding, with the walk as evidence; a healthy cluster stays clean."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from path_faults import PATH_FAULTS

SAMPLES = Path(__file__).resolve().parents[2] / "samples"

# sample -> (node, step) of the one error: faults no rule names
UNNAMED = {
    **PATH_FAULTS,
    "lab-canal-neigh-stale-pod": ("lab-node-1", "neigh"),
    "lab-canal-pod-device-forwarding-off": ("lab-node-1", "neigh"),
}
# sample -> the rule whose finding the walk joins
NAMED = {
    "lab-ip-forward-off": "kernel.sysctl.ip-forward-off",
    "lab-route-missing": "flannel.route.peer-podcidr-missing",
    "lab-mtu-pod": "flannel.mtu.pod-above-overlay",
    "lab-canal-proxy-arp-off": "canal.veth.proxy-arp-off",
    "lab-vxlan-directrouting-vxlan-route-no-fdb": "flannel.route.peer-podcidr-wrong-way",
}
HEALTHY = [
    "lab-healthy",
    "lab-host-gw-healthy",
    "lab-canal-healthy",
    "lab-vxlan-directrouting-healthy",
]


def analyze(sample: str) -> dict:
    result = subprocess.run(
        [
            *(sys.executable, "-m", "needle", "analyze", str(SAMPLES / f"{sample}.tar.gz")),
            *("--format", "json", "--fail-on", "never"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


@pytest.mark.parametrize("sample", sorted(UNNAMED))
def test_a_fault_no_rule_names_is_one_error_at_its_hop(sample):
    report = analyze(sample)
    errors = [f for f in report["findings"] if f["severity"] == "error"]
    node, step = UNNAMED[sample]
    assert [(f["rule"], f["subject"]["node"]) for f in errors] == [(f"reachability.{step}", node)]
    finding = errors[0]
    assert node in finding["message"] and "breaks" in finding["message"]
    assert finding["evidence"] and all(item["file"] for item in finding["evidence"])
    assert any(item["detail"].startswith("needle trace ") for item in finding["evidence"])
    coverage = report["coverage"]["reachability"]
    assert coverage["dropped"] > 0
    assert coverage["pairs"] == coverage["delivered"] + coverage["dropped"] + coverage["unknown"]


@pytest.mark.parametrize("sample", sorted(NAMED))
def test_a_fault_a_rule_names_keeps_the_rule_and_gains_the_walk(sample):
    report = analyze(sample)
    errors = [f for f in report["findings"] if f["severity"] == "error"]
    assert [f["rule"] for f in errors] == [NAMED[sample]]
    assert any(item["detail"].startswith("reachability: ") for item in errors[0]["evidence"])


@pytest.mark.parametrize("sample", HEALTHY)
def test_a_healthy_cluster_delivers_every_pair(sample):
    report = analyze(sample)
    assert [f for f in report["findings"] if f["severity"] == "error"] == []
    coverage = report["coverage"]["reachability"]
    assert coverage["pairs"] == coverage["delivered"] == 42
    assert coverage["not_checked"] == []
