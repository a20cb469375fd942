"""The whole pipeline in the lab: inject each fault, collect, analyze; the right rule
names the right node, interface and CIDR, and the healthy lab has no error or warning."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from needle.lab import api as lab_api

pytestmark = [pytest.mark.root, pytest.mark.tools("nsenter", "tcpdump")]

# fault -> (rule that must fire, subject fields it must name)
EXPECTED = {
    "mtu-underlay": (
        "flannel.mtu.overlay-exceeds-underlay",
        {"node": "lab-node-1", "interface": "ens3"},
    ),
    "mtu-pod": ("flannel.mtu.pod-above-overlay", {"node": "lab-node-1", "interface": "eth0"}),
    "route-missing": (
        "flannel.route.peer-podcidr-missing",
        {
            "node": "lab-node-1",
            "peer_node": "lab-node-2",
            "interface": "flannel.1",
            "cidr": "10.244.2.0/24",
        },
    ),
    "podcidr-mismatch": (
        "flannel.node.bridge-podcidr-mismatch",
        {"node": "lab-node-1", "interface": "cni0"},
    ),
    "veth-orphan": ("flannel.veth.orphaned", {"node": "lab-node-1"}),
    "duplicate-public-ip": (
        "flannel.node.duplicate-public-ip",
        {"node": "lab-node-1", "peer_node": "lab-node-2"},
    ),
    "ip-forward-off": ("kernel.sysctl.ip-forward-off", {"node": "lab-node-1"}),
}


def collect_and_analyze(state, workdir: Path) -> dict:
    bundle = workdir / f"{state.name}.tar.gz"
    argv = [
        sys.executable,
        "-m",
        "needle",
        "collect",
        "-o",
        str(bundle),
        "--capture-seconds",
        "1",
        "--kube-dir",
        state.kube_dir,
        *[arg for pair in state.netns_args() for arg in ("--netns", pair)],
    ]
    collected = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert collected.returncode == 0, collected.stderr
    analyzed = subprocess.run(
        [
            sys.executable,
            "-m",
            "needle",
            "analyze",
            str(bundle),
            "--format",
            "json",
            "--fail-on",
            "never",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert analyzed.returncode == 0, analyzed.stderr
    return json.loads(analyzed.stdout)


def test_healthy_lab_has_no_error_or_warning(lab_factory, tmp_path):
    report = collect_and_analyze(lab_factory(nodes=3, pods=2), tmp_path)
    assert [f["message"] for f in report["findings"] if f["severity"] != "info"] == []
    assert report["coverage"]["rules_skipped"] == []


@pytest.mark.parametrize("fault", sorted(EXPECTED))
def test_each_fault_is_named_by_its_rule(lab_factory, tmp_path, fault):
    state = lab_factory(nodes=3, pods=2)
    record = lab_api.fault(state.name, fault)
    rule, subject = EXPECTED[fault]
    if fault == "mtu-pod":
        subject = {**subject, "pod": record.pod}
    report = collect_and_analyze(lab_api.status(state.name), tmp_path)
    fired = [f for f in report["findings"] if f["rule"] == rule]
    assert any(all(f["subject"].get(k) == v for k, v in subject.items()) for f in fired), (
        fault,
        [(f["rule"], f["subject"]) for f in report["findings"]],
    )
    assert report["summary"]["error"] + report["summary"]["warning"] >= 1
