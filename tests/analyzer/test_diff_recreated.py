"""`needle diff` of a lab torn down and re-created between two collections: new pod
names (a new ReplicaSet hash and suffix), new veth names, new MACs, new namespace
inodes, and one MTU changed. The diff is that MTU, in its first lines, not a thousand
lines of renamed veths; `--all` still shows the per-boot differences; a real change
made after the re-creation still shows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from needle.lab import api as lab_api

pytestmark = [pytest.mark.root, pytest.mark.tools("nsenter")]

MTU_CHANGE = {
    "kind": "interface",
    "op": "changed",
    "node": "lab-node-1",
    "key": ["lab-node-1", "host", "ens3"],
    "before": {"mtu": 1500},
    "after": {"mtu": 1450},
    "noise": None,
}


def collect(state: lab_api.LabState, output: Path) -> Path:
    argv = [sys.executable, "-m", "needle", "collect", "-o", str(output), "--no-capture"]
    argv += ["--no-probe"]  # what is compared here is the configuration
    argv += ["--kube-dir", state.kube_dir]
    argv += [arg for pair in state.netns_args() for arg in ("--netns", pair)]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return output


def needle_diff(old: Path, new: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "needle", "diff", str(old), str(new), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def pods_of(state: lab_api.LabState) -> dict[str, str]:
    """Pod name -> host veth name."""
    return {pod.name: pod.host_veth for node in state.nodes for pod in node.pods}


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """One lab, collected (`before`); torn down and re-created, its underlay MTU lowered
    on one node, collected (`after`); then a route removed too (`route`). One lab name
    throughout (the same cluster), unique to this test process, always torn down."""
    base = tmp_path_factory.mktemp("recreated")
    name = f"ndlr-{os.getpid()}"
    try:
        first = lab_api.up(name=name, nodes=3, pods=2)
        before = collect(first, base / "before.tar.gz")
        lab_api.down(name)
        second = lab_api.up(name=name, nodes=3, pods=2)
        # what a re-creation really changes, or this test would prove nothing
        assert not set(pods_of(first)) & set(pods_of(second)), "pod names were reused"
        assert not set(pods_of(first).values()) & set(pods_of(second).values())
        lab_api.fault(name, "mtu-underlay")
        after = collect(second, base / "after.tar.gz")
        lab_api.fault(name, "route-missing")
        route = collect(second, base / "route.tar.gz")
        yield {"before": before, "after": after, "route": route}
    finally:
        lab_api.down(name)


def test_the_mtu_change_leads_a_short_diff(bundles):
    text = needle_diff(bundles["before"], bundles["after"])
    lines = text.splitlines()
    mtu = [i for i, line in enumerate(lines) if "interface host ens3: mtu 1500 -> 1450" in line]
    assert mtu and mtu[0] < 5, text
    assert len(lines) < 20, text
    document = json.loads(needle_diff(bundles["before"], bundles["after"], "--format", "json"))
    assert document["format"] == "needle.diff/v1" and document["view"] == "changes"
    assert document["changes"] == [MTU_CHANGE]
    # one cause, one finding: the mismatch with each peer is the node's own MTU fault
    assert [f["rule"] for f in document["findings"]["new"]] == [
        "flannel.mtu.overlay-exceeds-underlay"
    ]
    assert document["findings"]["resolved"] == []
    assert document["summary"]["changes"] == 1
    assert document["summary"]["by_kind"] == {"interface": {"changed": 1}}
    # every pod's name, veth, namespace and MACs changed: counted, not listed
    assert document["summary"]["left_out"]["per_boot"] >= 20
    assert document["not_compared"] == []


def test_all_lists_the_per_boot_differences(bundles):
    document = json.loads(
        needle_diff(bundles["before"], bundles["after"], "--format", "json", "--all")
    )
    assert document["view"] == "all"
    assert document["summary"]["left_out"] == {"per_boot": 0, "implied": 0}
    changes = document["changes"]
    mtu = [c for c in changes if c["noise"] is None]
    assert len(mtu) == 1 and mtu[0]["key"] == MTU_CHANGE["key"]
    assert mtu[0]["after"]["mtu"] == 1450 and "mac" in mtu[0]["after"], "and its new MAC"
    per_boot = [c for c in changes if c["noise"] == "per-boot"]
    assert len(per_boot) == len(changes) - 1
    renamed = [c for c in per_boot if c["kind"] == "pod" and "name" in c["after"]]
    assert len(renamed) == 9, "6 app pods and 3 flannel pods, each paired with its successor"
    for change in renamed:
        assert change["key"] == [f"{change['key'][0].split('/')[0]}/{change['after']['name']}"]
        assert change["before"]["name"] != change["after"]["name"]
    veths = [
        c
        for c in per_boot
        if c["kind"] == "interface" and c["key"][2].startswith("veth to ") and "name" in c["after"]
    ]
    assert len(veths) == 6
    macs = {
        tuple(c["key"][1:]) for c in per_boot if c["kind"] == "interface" and "mac" in c["after"]
    }
    assert {("host", "flannel.1"), ("host", "cni0")} <= macs
    assert {c["kind"] for c in per_boot} >= {"node", "pod", "interface", "neighbour", "fdb"}
    text = needle_diff(bundles["before"], bundles["after"], "--all").splitlines()
    assert "interface host ens3: mtu 1500 -> 1450" in text[4], "the real change still leads"
    assert sum(line.endswith("(per-boot)") for line in text) == len(per_boot)


def test_a_real_change_after_the_re_creation_still_shows(bundles):
    document = json.loads(needle_diff(bundles["before"], bundles["route"], "--format", "json"))
    assert [(c["kind"], c["op"], c["key"][1:]) for c in document["changes"]] == [
        ("interface", "changed", ["host", "ens3"]),
        ("route", "removed", ["host", "main", "unicast", "10.244.2.0/24"]),
    ]
    assert "flannel.route.peer-podcidr-missing" in {f["rule"] for f in document["findings"]["new"]}
    lines = needle_diff(bundles["before"], bundles["route"]).splitlines()
    assert "MTU changed" in lines[1] and "route removed" in lines[1]
    assert "mtu 1500 -> 1450" in lines[4] and "route host main unicast 10.244.2.0/24" in lines[5]
    assert len(lines) < 20
