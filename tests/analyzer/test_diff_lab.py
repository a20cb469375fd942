"""`needle diff` in the lab: a fault shows as exactly its change and its new finding; the
reverse diff shows it resolved; an unchanged lab gives an empty diff."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from needle.lab import api as lab_api

pytestmark = [pytest.mark.root, pytest.mark.tools("nsenter")]


def collect(state, output: Path) -> Path:
    argv = [
        sys.executable,
        "-m",
        "needle",
        "collect",
        "-o",
        str(output),
        "--no-capture",
        "--kube-dir",
        state.kube_dir,
        *[arg for pair in state.netns_args() for arg in ("--netns", pair)],
    ]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return output


def diff(old: Path, new: Path, *args: str) -> tuple[int, dict]:
    result = subprocess.run(
        [sys.executable, "-m", "needle", "diff", str(old), str(new), "--format", "json", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def changes(document: dict) -> list[tuple]:
    return [(c["kind"], c["op"], c["node"], tuple(c["key"][1:])) for c in document["changes"]]


def document_of(old: Path, new: Path) -> dict:
    return diff(old, new)[1]


def configuration(document: dict) -> list[dict]:
    """The changes of the configuration, without what the probes met."""
    return [c for c in document["changes"] if c["kind"] != "probe"]


@pytest.fixture
def before(lab_factory, tmp_path):
    state = lab_factory(nodes=3, pods=2)
    return state, collect(state, tmp_path / "before.tar.gz")


def test_unchanged_lab_gives_an_empty_diff(before, tmp_path):
    state, old = before
    again = collect(state, tmp_path / "again.tar.gz")
    code, document = diff(old, again, "--fail-on-new", "warning")
    assert code == 0
    assert document["format"] == "needle.diff/v1"
    assert document["changes"] == [] and document["not_compared"] == []
    assert document["findings"]["new"] == [] and document["findings"]["resolved"] == []


def test_route_missing_is_one_removed_route_and_one_new_finding(before, tmp_path):
    state, old = before
    lab_api.fault(state.name, "route-missing")
    new = collect(state, tmp_path / "after.tar.gz")
    code, document = diff(old, new, "--fail-on-new", "error")
    assert code == 1
    assert [c for c in changes(document) if c[0] != "probe"] == [
        ("route", "removed", "lab-node-1", ("host", "main", "unicast", "10.244.2.0/24"))
    ]
    # the probes between the two nodes that answered before fail now, either way (the
    # replies from lab-node-1 to lab-node-2's pods take the same missing route)
    probes = [c for c in document["changes"] if c["kind"] == "probe"]
    assert probes and all(
        {c["node"], c["key"][3]} == {"lab-node-1", "lab-node-2"}
        and c["key"][4] in ("small", "under-mtu")
        and (c["op"], c["before"], c["after"])
        == ("changed", {"outcome": "passed"}, {"outcome": "failed"})
        for c in probes
    ), probes
    assert {c["node"] for c in probes} == {"lab-node-1", "lab-node-2"}
    assert [f["rule"] for f in document["findings"]["new"]] == [
        "flannel.route.peer-podcidr-missing"
    ]
    code, reverse = diff(new, old, "--fail-on-new", "error")
    assert code == 0
    assert [f["rule"] for f in reverse["findings"]["resolved"]] == [
        "flannel.route.peer-podcidr-missing"
    ]
    assert [c for c in changes(reverse) if c[0] != "probe"] == [
        ("route", "added", "lab-node-1", ("host", "main", "unicast", "10.244.2.0/24"))
    ]
    assert all(  # and the probes answer again
        (c["before"], c["after"]) == ({"outcome": "failed"}, {"outcome": "passed"})
        for c in reverse["changes"]
        if c["kind"] == "probe"
    )


def test_mtu_change_is_one_changed_field(before, tmp_path):
    state, old = before
    lab_api.fault(state.name, "mtu-underlay")
    _, document = diff(old, collect(state, tmp_path / "after.tar.gz"))
    (change,) = configuration(document)
    assert (change["kind"], change["node"], change["key"][1:]) == (
        "interface",
        "lab-node-1",
        ["host", "ens3"],
    )
    assert (change["before"], change["after"]) == ({"mtu": 1500}, {"mtu": 1450})
    # one cause: the mismatch with each peer folds into the node's own finding
    assert [f["rule"] for f in document["findings"]["new"]] == [
        "flannel.mtu.overlay-exceeds-underlay"
    ]


def test_orphaned_veth_is_the_pod_gone_not_a_renamed_namespace(before, tmp_path):
    state, old = before
    record = lab_api.fault(state.name, "veth-orphan")
    _, document = diff(old, collect(lab_api.status(state.name), tmp_path / "after.tar.gz"))
    assert changes(document) == [("pod", "removed", "lab-node-1", ())]
    assert document["changes"][0]["key"] == [record.pod]
    assert [f["rule"] for f in document["findings"]["new"]] == ["flannel.veth.orphaned"]


def test_node_filter_and_text_output(before, tmp_path):
    state, old = before
    lab_api.fault(state.name, "route-missing")
    new = collect(state, tmp_path / "after.tar.gz")
    _, peer = diff(old, new, "--node", "lab-node-2")
    assert configuration(peer) == [], "the route is missing on lab-node-1, not on its peer"
    # what lab-node-2's own probes met changed: the replies from lab-node-1 are lost
    assert {c["key"][3] for c in peer["changes"]} == {"lab-node-1"}
    assert len(peer["findings"]["new"]) == 1, "a finding naming the node as peer concerns it"
    _, bystander = diff(old, new, "--node", "lab-node-3")
    assert bystander["changes"] == [] and bystander["findings"]["new"] == []  # its probes too
    text = subprocess.run(
        [sys.executable, "-m", "needle", "diff", str(old), str(new)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = text.splitlines()
    assert lines[1].startswith("1 new finding, 0 resolved")
    probes = sum(1 for c in document_of(old, new)["changes"] if c["kind"] == "probe")
    assert f"{probes + 1} changes ({probes} probe changed, 1 route removed)" in lines[1], (
        "the summary counts changes by kind"
    )
    # the changes lead, most significant first: what the probes met, then the route
    assert lines[3] == "Changes:"
    assert all(" probe " in line for line in lines[4 : 4 + probes])
    assert lines[4 + probes] == (
        "  - lab-node-1: route host main unicast 10.244.2.0/24: via 10.244.2.0, dev flannel.1, "
        "flags onlink, proto boot, scope global"
    )
    assert lines.index("Findings:") > 4
