"""`needle diff` matches things by identity, without root: the samples are each a lab of
its own (`samples/regenerate.py` brings a lab up per scenario), so any two of them are a
re-created cluster: new generated pod names, veth names, MACs and namespace inodes.
Edited copies of them add what the lab does not do (a renamed underlay, a stale VTEP
MAC); unit tests pin the pairing rules."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from needle.analyzer.bundle import open_bundle
from needle.analyzer.diff.identity import owner_identity, pair_leftovers
from needle.analyzer.model.entities import Pod

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"
HEALTHY = SAMPLES / "lab-healthy.tar.gz"


def needle_diff(old: Path, new: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "needle", "diff", str(old), str(new), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def as_json(old: Path, new: Path, *args: str) -> dict[str, Any]:
    return json.loads(needle_diff(old, new, "--format", "json", *args))


def pod_names(path: Path) -> set[str]:
    with open_bundle(path) as bundle:
        data = bundle.read_bytes("cluster/pods.json")
    assert data is not None
    return {item["metadata"]["name"] for item in json.loads(data)["items"]}


def exported(sample: Path, where: Path) -> Path:
    with open_bundle(sample) as bundle:
        bundle.export(where)
    return where


def node_outputs(bundle: Path, node: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The manifest, and node's record in it."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    return manifest, next(n for n in manifest["nodes"] if n["name"] == node)


def host_output(bundle: Path, node: str, command_id: str) -> Path:
    _, record = node_outputs(bundle, node)
    command = next(c for c in record["commands"] if c["id"] == command_id and not c["netns"])
    return bundle / command["output"]


# the samples as a re-created lab


def test_the_samples_are_re_created_labs():
    """What the tests below rely on: no pod name is shared between two samples."""
    assert not pod_names(HEALTHY) & pod_names(SAMPLES / "lab-mtu-underlay.tar.gz")


def test_a_re_created_lab_with_one_mtu_changed_is_that_mtu():
    text = needle_diff(HEALTHY, SAMPLES / "lab-mtu-underlay.tar.gz")
    lines = text.splitlines()
    assert lines[4] == "  ~ lab-node-1: interface host ens3: mtu 1500 -> 1450", text
    assert len(lines) < 20, text
    assert "1 change (1 MTU changed)" in lines[1]
    assert lines.index("Findings:") > 4, "changes lead, findings follow"


def test_json_keeps_its_shape_and_adds_counts():
    document = as_json(HEALTHY, SAMPLES / "lab-mtu-underlay.tar.gz")
    assert set(document) >= {"format", "old", "new", "findings", "changes", "not_compared"}
    assert document["format"] == "needle.diff/v1"
    (change,) = document["changes"]
    assert {k: change[k] for k in ("kind", "op", "node", "key", "before", "after")} == {
        "kind": "interface",
        "op": "changed",
        "node": "lab-node-1",
        "key": ["lab-node-1", "host", "ens3"],
        "before": {"mtu": 1500},
        "after": {"mtu": 1450},
    }
    summary = document["summary"]
    assert {k: summary[k] for k in ("changes", "new_findings", "resolved_findings")} == {
        "changes": 1,
        "new_findings": 1,  # one cause: the other two folded into it (rules/causes.py)
        "resolved_findings": 0,
    }
    assert summary["unchanged_findings"] == len(document["findings"]["unchanged"])
    assert summary["by_kind"] == {"interface": {"changed": 1}}
    assert summary["left_out"]["per_boot"] > 30 and summary["left_out"]["implied"] == 0


def test_all_shows_what_was_left_out_and_why():
    document = as_json(HEALTHY, SAMPLES / "lab-mtu-underlay.tar.gz", "--all")
    assert document["view"] == "all"
    noise = [c for c in document["changes"] if c["noise"]]
    assert len(noise) == len(document["changes"]) - 1
    assert {c["noise"] for c in noise} == {"per-boot"}
    pods = {c["key"][0]: c for c in noise if c["kind"] == "pod"}
    assert len(pods) == 9
    web = next(c for key, c in pods.items() if key.startswith("default/web-"))
    assert set(web["after"]) == {"name", "netns_id", "host_veth_name"}
    fdb = [c for c in noise if c["kind"] == "fdb"]
    assert len(fdb) == 6 and all(c["key"][1] == c["after"]["mac"] for c in fdb)


def test_a_real_change_shows_after_a_re_creation():
    text = needle_diff(HEALTHY, SAMPLES / "lab-route-missing.tar.gz").splitlines()
    assert text[4].startswith("  - lab-node-1: route host main unicast 10.244.2.0/24: via")
    assert len(text) < 20


def test_a_pod_gone_keeps_its_line_and_folds_its_namespace():
    """veth-orphan: the pod is gone from the API, its namespace stays with no name. In a
    re-created lab that is the pod removed and an unexplained namespace added; the old
    pod's namespace, veth, routes and sysctls are implied by the pod line."""
    orphan = SAMPLES / "lab-veth-orphan.tar.gz"
    document = as_json(HEALTHY, orphan)
    shown = sorted((c["kind"], c["op"]) for c in document["changes"])
    assert shown == [("interface", "added")] * 3 + [("pod", "removed")]
    for change in document["changes"]:
        if change["kind"] == "interface":  # the namespace's lo and eth0, and its host veth
            assert "netns #" in " ".join(change["key"]), change
    assert document["summary"]["left_out"]["implied"] > 10
    everything = as_json(HEALTHY, orphan, "--all")
    implied = [c for c in everything["changes"] if c["noise"] == "implied"]
    # and more: --all compares features per veth, the default view per role
    assert len(implied) >= document["summary"]["left_out"]["implied"]
    assert {c["kind"] for c in implied} == {"interface", "route", "sysctl", "ethtool"}
    # changed: only the IPv6 multicast route the kernel keeps per device
    changed = [c["key"][1:] for c in implied if c["op"] == "changed"]
    assert changed == [["host", "local", "multicast", "ff00::/8"]]


# edited copies: what a lab re-creation does not do on its own


def test_a_renamed_underlay_is_matched_by_its_role(tmp_path):
    """ens3 -> eth0 on one node (a rebuilt VM with other NIC naming): one line says the
    underlay's name changed; its MTU, routes, sysctls and features are the same."""
    copy = exported(HEALTHY, tmp_path / "renamed")
    node = "lab-node-1"
    for path in (copy / "nodes" / node).rglob("*"):
        if path.is_file():
            path.write_bytes(path.read_bytes().replace(b"ens3", b"eth0"))
    manifest, record = node_outputs(copy, node)
    for command in record["commands"]:
        command["argv"] = [arg.replace("ens3", "eth0") for arg in command["argv"]]
        if command.get("interface") == "ens3":
            command["interface"] = "eth0"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    document = as_json(HEALTHY, copy)
    assert [(c["op"], c["key"], c["before"], c["after"]) for c in document["changes"]] == [
        ("changed", [node, "host", "eth0"], {"name": "ens3"}, {"name": "eth0"})
    ]
    assert document["findings"]["new"] == [] and document["findings"]["resolved"] == []


def test_a_stale_vtep_mac_is_not_noise(tmp_path):
    """A re-created lab whose lab-node-2 still sends lab-node-1's traffic to a MAC that is
    no node's VTEP: the FDB and neighbour entries show as changed, and rules report it."""
    copy = exported(SAMPLES / "lab-mtu-underlay.tar.gz", tmp_path / "stale")
    stale = "02:00:00:00:be:ef"
    fdb_file = host_output(copy, "lab-node-2", "bridge-fdb")
    neigh_file = host_output(copy, "lab-node-2", "ip-neigh")
    neighbours = json.loads(neigh_file.read_text())
    entry = next(n for n in neighbours if n["dst"] == "10.244.1.0")
    vtep = entry["lladdr"]
    entry["lladdr"] = stale
    neigh_file.write_text(json.dumps(neighbours))
    fdb_file.write_text(fdb_file.read_text().replace(vtep, stale))
    document = as_json(HEALTHY, copy)
    node2 = [
        (c["kind"], c["op"], c["key"][1:], c["after"])
        for c in document["changes"]
        if c["node"] == "lab-node-2"
    ]
    assert ("neighbour", "changed", ["10.244.1.0"], {"vtep_of": stale}) in node2
    assert ("fdb", "added", [stale], {"dst": ["192.168.122.11"]}) in node2
    assert any(k == "fdb" and op == "removed" for k, op, _, _ in node2)
    assert len(document["changes"]) == 4, "and the MTU"
    assert document["findings"]["new"], "the rules report the stale entries"
    lines = needle_diff(HEALTHY, copy).splitlines()
    assert "mtu 1500 -> 1450" in lines[4]


# the pairing rules


def _item(name: str, **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default", **meta}}


@pytest.mark.parametrize(
    ("item", "identity"),
    [
        (
            _item(
                "web-7d4b9c8f6d-x2x7q",
                generateName="web-7d4b9c8f6d-",
                labels={"pod-template-hash": "7d4b9c8f6d"},
                ownerReferences=[
                    {"kind": "ReplicaSet", "name": "web-7d4b9c8f6d", "controller": True}
                ],
            ),
            ("ReplicaSet", "web"),
        ),
        (
            _item(
                "kube-flannel-ds-9glnm",
                generateName="kube-flannel-ds-",
                ownerReferences=[
                    {"kind": "DaemonSet", "name": "kube-flannel-ds", "controller": True}
                ],
            ),
            ("DaemonSet", "kube-flannel-ds"),
        ),
        (_item("web-7d4b9c8f6d-x2x7q"), ("ReplicaSet", "web")),  # metadata lost: by shape
        (_item("api-x2x7q", generateName="api-"), ("", "api")),
        # chosen names are their own identity
        (_item("db-0", ownerReferences=[{"kind": "StatefulSet", "name": "db"}]), None),
        (_item("kube-apiserver-node-1", ownerReferences=[{"kind": "Node", "name": "n"}]), None),
        (_item("debug"), None),
    ],
)
def test_owner_identity(item, identity):
    assert owner_identity(item) == identity


def _pod(name: str, node: str, ip: str) -> Pod:
    return Pod(namespace="default", name=name, node=node, ip=ip)


def test_pods_of_one_owner_on_one_node_pair_by_ip_then_name():
    old = [
        _pod("web-aaaaaaa-bbbbb", "n1", "10.0.0.2"),
        _pod("web-aaaaaaa-ccccc", "n1", "10.0.0.3"),
        _pod("web-aaaaaaa-ddddd", "n1", "10.0.0.4"),
        _pod("web-aaaaaaa-fffff", "n2", "10.0.1.2"),
    ]
    new = [
        _pod("web-ggggggg-zzzzz", "n1", "10.0.0.3"),  # the same IP as ccccc
        _pod("web-ggggggg-hhhhh", "n1", "10.0.0.9"),
        _pod("web-ggggggg-jjjjj", "n1", "10.0.0.8"),
        _pod("web-ggggggg-kkkkk", "n3", "10.0.1.2"),  # another node: not the same pod
    ]
    owner = ("ReplicaSet", "web")
    pairs = pair_leftovers(old, new, {p.ref: owner for p in old}, {p.ref: owner for p in new})
    assert pairs == {
        "default/web-aaaaaaa-ccccc": "default/web-ggggggg-zzzzz",
        "default/web-aaaaaaa-bbbbb": "default/web-ggggggg-hhhhh",
        "default/web-aaaaaaa-ddddd": "default/web-ggggggg-jjjjj",
    }
