"""Which data plane a bundle's cluster runs, as `needle analyze` reports it
(coverage.dataplane), from the clues a real cluster leaves: flannel's net-conf.json and
the config map holding it, the nodes' backend-type annotations, the devices."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
HEALTHY = REPO / "samples" / "lab-healthy.tar.gz"


def unpacked(where: Path) -> Path:
    with tarfile.open(HEALTHY) as tar:
        tar.extractall(where, filter="data")
    return where


def edit_json(path: Path, change: Callable[[Any], None]) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def set_net_conf(bundle: Path, backend: dict[str, Any], config_map: str | None = None) -> None:
    def change(document: dict[str, Any]) -> None:
        item = document["items"][0]
        item["data"]["net-conf.json"] = json.dumps({"Network": "10.244.0.0/16", "Backend": backend})
        if config_map is not None:
            item["metadata"]["namespace"], item["metadata"]["name"] = config_map.split("/")

    edit_json(bundle / "cluster" / "configmaps.json", change)


def dataplane(bundle: Path, *options: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "needle", "analyze", str(bundle), "--format", "json", *options],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)["coverage"]["dataplane"]


def test_the_healthy_lab_is_flannel_vxlan_from_its_net_conf(tmp_path):
    found = dataplane(unpacked(tmp_path / "b"))
    assert (found["backend"], found["source"], found["analysed"]) == ("vxlan", "detected", True)
    assert found["evidence"][0] == {
        "file": "cluster/configmaps.json",
        "detail": "config map kube-flannel/kube-flannel-cfg net-conf.json: Backend.Type vxlan",
    }


def test_direct_routing_is_part_of_the_vxlan_backend(tmp_path):
    bundle = unpacked(tmp_path / "b")
    set_net_conf(bundle, {"Type": "vxlan", "DirectRouting": True})
    found = dataplane(bundle)
    assert found["backend"] == "vxlan" and found["label"] == "flannel vxlan with DirectRouting"


@pytest.mark.parametrize(
    "config_map", ["kube-system/rke2-canal-config", "kube-system/canal-config"]
)
def test_canal_is_told_apart_by_the_config_map_holding_net_conf(tmp_path, config_map):
    bundle = unpacked(tmp_path / "b")
    set_net_conf(bundle, {"Type": "vxlan"}, config_map)
    found = dataplane(bundle)
    assert found["backend"] == "canal" and found["analysed"]
    assert config_map in found["evidence"][0]["detail"]


def test_host_gw_from_net_conf(tmp_path):
    bundle = unpacked(tmp_path / "b")
    set_net_conf(bundle, {"Type": "host-gw"})
    assert dataplane(bundle)["backend"] == "host-gw"


@pytest.mark.parametrize("kind", ["wireguard", "ipsec", "udp"])
def test_other_flannel_backends_are_recognised_never_judged_as_vxlan(tmp_path, kind):
    bundle = unpacked(tmp_path / "b")
    set_net_conf(bundle, {"Type": kind})
    result = subprocess.run(
        [sys.executable, "-m", "needle", "analyze", str(bundle)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "recognised, not analysed" in result.stdout
    found = dataplane(bundle)
    assert (found["backend"], found["analysed"]) == (kind, False)


def test_without_net_conf_the_nodes_annotations_decide(tmp_path):
    bundle = unpacked(tmp_path / "b")
    edit_json(bundle / "cluster" / "configmaps.json", lambda d: d.update(items=[]))

    def host_gw(document: dict[str, Any]) -> None:
        for item in document["items"]:
            item["metadata"]["annotations"]["flannel.alpha.coreos.com/backend-type"] = "host-gw"

    edit_json(bundle / "cluster" / "nodes.json", host_gw)
    found = dataplane(bundle)
    assert found["backend"] == "host-gw"
    assert any("annotated backend-type host-gw" in e["detail"] for e in found["evidence"])


def test_the_option_wins_and_says_so(tmp_path):
    found = dataplane(unpacked(tmp_path / "b"), "--backend", "host-gw")
    assert (found["backend"], found["source"]) == ("host-gw", "option")


def test_an_unknown_backend_option_is_a_usage_error():
    result = subprocess.run(
        [sys.executable, "-m", "needle", "analyze", str(HEALTHY), "--backend", "calico-bgp"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2 and "--backend" in result.stderr
    assert result.stderr.count("\n") == 1


def _node_args(bundle: Path, args: list[str]) -> None:
    """What k3s and RKE2 write on each Node: its command line, secrets starred."""

    def change(document: dict[str, Any]) -> None:
        for item in document["items"]:
            item["metadata"]["annotations"]["k3s.io/node-args"] = json.dumps(args)

    edit_json(bundle / "cluster" / "nodes.json", change)


def test_a_k3s_flag_in_the_node_args_annotation_decides_without_net_conf(tmp_path):
    bundle = unpacked(tmp_path / "b")
    edit_json(bundle / "cluster" / "configmaps.json", lambda d: d.update(items=[]))
    _node_args(bundle, ["server", "--flannel-backend", "host-gw", "--token", "********"])
    found = dataplane(bundle)
    assert found["backend"] == "host-gw"
    assert {"file": "cluster/nodes.json", "detail": "lab-node-1: flannel-backend host-gw"} in (
        found["evidence"]
    )


def test_rke2_with_another_cni_is_recognised_not_analysed(tmp_path):
    bundle = unpacked(tmp_path / "b")
    edit_json(bundle / "cluster" / "configmaps.json", lambda d: d.update(items=[]))
    _node_args(bundle, ["server", "--cni=cilium"])
    found = dataplane(bundle)
    assert (found["backend"], found["analysed"]) == ("cilium", False)


def test_a_hostile_node_args_annotation_is_no_clue(tmp_path):
    bundle = unpacked(tmp_path / "b")
    edit_json(bundle / "cluster" / "configmaps.json", lambda d: d.update(items=[]))
    for hostile in ("[" * 5000, "not json", '{"a": 1}', '[1, null, ["--cni"]]'):

        def change(document: dict[str, Any], value: str = hostile) -> None:
            for item in document["items"]:
                item["metadata"]["annotations"]["k3s.io/node-args"] = value

        edit_json(bundle / "cluster" / "nodes.json", change)
        assert dataplane(bundle)["backend"] == "vxlan"  # the annotations' backend-type
