"""`needle analyze` on real lab bundles collected with probes and captures (#20's "done
when"): a healthy lab's probes all answer (but those one byte over the MTU, refused by
the sender as planned) and no finding comes from observations alone; an underlay MTU
fault's findings are confirmed by the probes, which say what size fails between which
nodes; each lab fault that breaks traffic between nodes is confirmed by probe or capture
evidence naming both. Probes go only between the lab's namespaces."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lab_bundles import analyze_json, collect_with_probes
from needle.lab import api as lab_api
from needle.lab.state import LabState

pytestmark = [pytest.mark.root, pytest.mark.tools("tcpdump", "nsenter", "ping")]

WINDOW = 2
# faults that cut pod traffic between lab-node-1 and another node (on the first node)
BETWEEN_NODES = [
    "route-missing",
    "mtu-underlay",
    "ip-forward-off",
    "policy-route-unreachable",
    "forward-policy-drop",
    "vxlan-local-gone",
    "vxlan-port-blocked",
    "peer-ip-unreachable",
    "vxlan-fdb-wrong-port",
    "underlay-port-mtu",
    "bridge-mtu-stale",
    "pod-device-forwarding-off",
    # the node's first pod's: the pod the probes start from (its replies are cut)
    "veth-down",
    "neigh-stale-pod",
    "fdb-static-wrong-port",
    "pod-eth0-down",
    "snat-pod-traffic",
    "pod-ip-duplicate",
]
# faults no configuration in a bundle shows (the underlay switch's port)
OUTSIDE_THE_BUNDLE = {"underlay-port-mtu"}
# bridge-ports-isolated cuts only pods of one node from each other: probes go between
# nodes, so it stays inferred


@pytest.fixture
def lab(lab_factory) -> LabState:
    return lab_factory(nodes=3, pods=2)


def analyze(state: LabState, output: Path) -> dict[str, Any]:
    return analyze_json(collect_with_probes(state, output, capture_seconds=WINDOW))


def observed(finding: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in finding["evidence"] if e["source"] in ("probe", "capture")]


def test_a_healthy_lab_is_seen_healthy(lab, tmp_path):
    report = analyze(lab, tmp_path / "healthy.tar.gz")
    probes = report["coverage"]["observations"]["probes"]
    assert probes["probes"] > 0 and probes["unexplained"] == 0 and probes["contradicting"] == 0
    assert report["findings"] == [], report["findings"]


@pytest.mark.parametrize("fault", BETWEEN_NODES)
def test_a_fault_between_nodes_is_confirmed_naming_both(lab, tmp_path, fault):
    record = lab_api.fault(lab.name, fault)
    report = analyze(lab, tmp_path / f"{fault}.tar.gz")
    errors = [f for f in report["findings"] if f["severity"] == "error"]
    assert errors, report["coverage"]
    confirmed = [f for f in errors if f["observed"] == "confirmed"]
    assert confirmed, [(f["rule"], f["observed"], f["subject"]) for f in errors]
    alone = [f for f in errors if f["rule"].startswith("observed.")]
    if fault in OUTSIDE_THE_BUNDLE:  # what the probes met is the only sign of it
        assert alone and all(f["subject"]["node"] == record.node for f in alone), alone
    else:  # the configuration explains what the probes met: no finding from them alone
        assert not alone, alone
    nodes = {n.name for n in lab.nodes} - {record.node}
    details = [e["detail"] for f in confirmed for e in observed(f)]
    assert any(record.node in d and any(n in d for n in nodes) for d in details), details


def test_an_underlay_mtu_fault_is_confirmed_with_the_size_that_fails(lab, tmp_path):
    lab_api.fault(lab.name, "mtu-underlay")  # lab-node-1's ens3 MTU 1500 -> 1450
    report = analyze(lab, tmp_path / "mtu-underlay.tar.gz")
    (finding,) = [
        f for f in report["findings"] if f["rule"] == "flannel.mtu.overlay-exceeds-underlay"
    ]
    assert finding["observed"] == "confirmed"
    probes = [e["detail"] for e in finding["evidence"] if e["source"] == "probe"]
    # full-size (1450-byte) pings between lab-node-1 and each other node fail
    full = [d for d in probes if "ping 1450 bytes DF" in d and "0/" in d]
    assert full, probes
    assert all("lab-node-1" in d for d in full)
    assert {n for n in ("lab-node-2", "lab-node-3") if any(n in d for d in full)} == {
        "lab-node-2",
        "lab-node-3",
    }
    # small ones answer: nothing of that size is in the evidence
    assert not [d for d in probes if "ping 84 bytes" in d]
    assert report["coverage"]["observations"]["probes"]["unexplained"] == 0
