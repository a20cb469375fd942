"""The lab's pure parts: naming, planning, batch rendering, kube objects (no root needed)."""

from __future__ import annotations

import json
import random
import re

import pytest
from needle.lab import batches, faults, kube_objects, preflight, topology
from needle.lab.errors import LabError
from needle.lab.state import LabState


def _state(nodes: int = 3, pods: int = 2, name: str = "needle-lab") -> LabState:
    settings = topology.validate(name, nodes, pods, 1500)
    node_states = topology.plan_nodes(settings, random.Random(7))
    return LabState(
        name=name,
        state_dir=f"/run/needle-lab/{name}",
        kube_dir=f"/run/needle-lab/{name}/kube",
        underlay_netns=topology.underlay_netns(name),
        status="up",
        underlay_mtu=1500,
        overlay_mtu=1450,
        created="2024-01-01T00:00:00Z",
        nodes=node_states,
    )


@pytest.mark.parametrize("name", ["", "Lab", "-x", "x-", "a--b", "a/b", "a_b", "x" * 33, "1ab"])
def test_bad_lab_names_are_refused(name: str) -> None:
    with pytest.raises(LabError, match="invalid lab name"):
        topology.validate_name(name)


@pytest.mark.parametrize(
    ("nodes", "pods", "mtu", "message"),
    [
        (0, 2, 1500, "--nodes"),
        (201, 2, 1500, "--nodes"),
        (3, 0, 1500, "--pods"),
        (3, 251, 1500, "--pods"),
        (3, 2, 1000, "--underlay-mtu"),
        (3, 2, 10000, "--underlay-mtu"),
    ],
)
def test_bad_sizes_are_refused(nodes: int, pods: int, mtu: int, message: str) -> None:
    with pytest.raises(LabError, match=message):
        topology.validate("needle-lab", nodes, pods, mtu)


def test_netns_patterns_of_different_labs_never_overlap() -> None:
    names = {
        lab: [topology.underlay_netns(lab)]
        + [topology.node_netns(lab, i) for i in (1, 12)]
        + [topology.pod_netns(lab, i, k) for i in (1, 12) for k in (1, 3)]
        for lab in ("a", "a-n1", "a-n1-p1", "a-underlay", "needle-lab", "needle")
    }
    for lab, own in names.items():
        pattern = topology.netns_pattern(lab)
        assert all(pattern.match(ns) for ns in own)
        for other, theirs in names.items():
            if other != lab:
                assert not any(pattern.match(ns) for ns in theirs), (lab, other)


def test_plan_addresses_names_and_macs() -> None:
    state = _state(nodes=4, pods=3)
    assert [node.name for node in state.nodes] == [f"lab-node-{i}" for i in range(1, 5)]
    assert [node.underlay_ip for node in state.nodes] == [
        f"192.168.122.{10 + i}" for i in range(1, 5)
    ]
    assert state.nodes[1].pod_cidr == "10.244.2.0/24"
    assert [pod.ip for pod in state.nodes[1].pods] == ["10.244.2.2", "10.244.2.3", "10.244.2.4"]
    assert state.nodes[1].pods[0].netns == "needle-lab-n2-p1"
    for node in state.nodes:
        first = int(node.vtep_mac.split(":")[0], 16)
        assert first & 0x02 and not first & 0x01, "locally administered unicast"
        assert all(re.fullmatch(r"veth[0-9a-f]{8}", pod.host_veth) for pod in node.pods)
        assert len({pod.host_veth for pod in node.pods}) == len(node.pods)
    names = [pod.name for pod in state.pods()]
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[a-z0-9]+-[b-z2-9]{10}-[b-z2-9]{5}", name) for name in names)


def test_batches_only_ever_act_inside_lab_namespaces() -> None:
    state = _state()
    node = state.nodes[0]
    peers = state.nodes[1:]
    rendered = [
        batches.underlay(state.underlay_netns, state.nodes, 1500),
        batches.node(node, peers, 1450),
        batches.node_fdb(node, peers),
        *batches.pods(node),
    ]
    pattern = topology.netns_pattern(state.name)
    for batch in rendered:
        assert pattern.match(batch.netns)
        for line in batch.lines:
            if "type veth" in line:
                peer_ns = line.split(" netns ")[1].split()[0]
                assert pattern.match(peer_ns), line
            assert not line.startswith("netns"), line


def test_node_batch_programs_peers_as_flanneld_does() -> None:
    state = _state()
    node, peer = state.nodes[0], state.nodes[1]
    lines = batches.node(node, state.nodes[1:], 1450).lines
    assert "route add 10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink" in lines
    assert f"neigh replace 10.244.2.0 lladdr {peer.vtep_mac} dev flannel.1 nud permanent" in lines
    vxlan = next(line for line in lines if "type vxlan" in line)
    for part in (
        "id 1",
        "dstport 8472",
        "dev ens3",
        "nolearning",
        f"local {node.underlay_ip}",
        f"address {node.vtep_mac}",
        "mtu 1450",
    ):
        assert part in vxlan
    fdb = batches.node_fdb(node, state.nodes[1:]).lines
    assert f"fdb replace {peer.vtep_mac} dev flannel.1 dst {peer.underlay_ip} self permanent" in fdb


def test_kube_objects_describe_the_plan() -> None:
    state = _state()
    facts = kube_objects.HostFacts(created=state.created, kernel="6.1.0", architecture="amd64")
    documents = kube_objects.build(state, facts, random.Random(1))
    assert set(documents) == {"nodes.json", "pods.json", "configmaps.json", "daemonsets.json"}
    assert all(doc["kind"] == "List" and doc["apiVersion"] == "v1" for doc in documents.values())
    nodes = documents["nodes.json"]["items"]
    for node, obj in zip(state.nodes, nodes, strict=True):
        annotations = obj["metadata"]["annotations"]
        assert json.loads(annotations["flannel.alpha.coreos.com/backend-data"]) == {
            "VNI": 1,
            "VtepMAC": node.vtep_mac,
        }
        assert annotations["flannel.alpha.coreos.com/public-ip"] == node.underlay_ip
        assert annotations["flannel.alpha.coreos.com/backend-type"] == "vxlan"
        assert annotations["flannel.alpha.coreos.com/kube-subnet-manager"] == "true"
        assert obj["spec"] == {"podCIDR": node.pod_cidr, "podCIDRs": [node.pod_cidr]}
        assert {"type": "InternalIP", "address": node.underlay_ip} in obj["status"]["addresses"]
        assert {"type": "Hostname", "address": node.name} in obj["status"]["addresses"]
    pods = documents["pods.json"]["items"]
    flannel = [pod for pod in pods if pod["metadata"]["namespace"] == "kube-flannel"]
    assert len(flannel) == len(state.nodes)
    for pod in flannel:
        assert pod["spec"]["hostNetwork"] is True
        assert pod["status"]["podIP"] == pod["status"]["hostIP"]
    apps = {
        pod["metadata"]["name"]: pod for pod in pods if pod["metadata"]["namespace"] == "default"
    }
    for node in state.nodes:
        for pod in node.pods:
            obj = apps[pod.name]
            assert obj["spec"]["nodeName"] == node.name
            assert obj["status"]["podIP"] == pod.ip
            assert obj["status"]["podIPs"] == [{"ip": pod.ip}]
            assert obj["status"]["hostIP"] == node.underlay_ip
    configmap = documents["configmaps.json"]["items"][0]
    assert configmap["metadata"]["name"] == "kube-flannel-cfg"
    assert json.loads(configmap["data"]["net-conf.json"]) == {
        "Network": "10.244.0.0/16",
        "Backend": {"Type": "vxlan"},
    }
    assert json.loads(configmap["data"]["cni-conf.json"])["plugins"][0]["type"] == "flannel"
    daemonset = documents["daemonsets.json"]["items"][0]
    assert daemonset["metadata"]["name"] == "kube-flannel-ds"
    assert daemonset["status"]["numberReady"] == len(state.nodes)


def test_state_round_trips_through_json() -> None:
    state = _state()
    again = LabState.from_dict(json.loads(state.to_json()))
    assert again == state
    assert again.netns_args()[0] == "needle-lab-n1=lab-node-1"
    assert again.pods()[0].ref.startswith("default/")


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("ip utility, iproute2-6.1.0, libbpf 1.1.2", (6, 1)),
        ("ip utility, iproute2-5.10.0", (5, 10)),
        ("ip utility, iproute2-ss190107", (4, 0)),
        ("something else", None),
    ],
)
def test_iproute2_version_parsing(text: str, version: tuple[int, int] | None) -> None:
    assert preflight.parse_iproute2_version(text) == version


def test_missing_kernel_feature_is_named() -> None:
    message = preflight.explain_kernel_failure(
        "node lab-node-1: `link add flannel.1 type vxlan id 1` failed: Error: Unknown device type."
    )
    assert "CONFIG_VXLAN" in message
    assert preflight.explain_kernel_failure("x: File exists") == "x: File exists"


def test_not_root_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(LabError, match="needs root"):
        preflight.check_root()


def test_missing_tools_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setattr("shutil.which", lambda tool: None if tool == "ip" else f"/bin/{tool}")
    with pytest.raises(LabError, match="needs ip on PATH; install iproute2"):
        preflight.check_tools()


def test_fault_catalogue_help_lists_every_fault() -> None:
    text = faults.help_text()
    for name in (
        "mtu-underlay",
        "mtu-pod",
        "route-missing",
        "podcidr-mismatch",
        "veth-orphan",
        "duplicate-public-ip",
        "ip-forward-off",
    ):
        assert name in text
        assert name in faults.CATALOGUE
    assert len(text.splitlines()) == len(faults.CATALOGUE)
    with pytest.raises(LabError, match="unknown fault 'nope'; choose one of: mtu-underlay"):
        faults.lookup("nope")
