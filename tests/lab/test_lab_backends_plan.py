"""The backends' pure parts: the commands each renders, its Kubernetes objects, node files and
faults, and that nothing outside lab/backends/ names a device, a port or an overhead."""

from __future__ import annotations

import ast
import hashlib
import json
import random
import re
from pathlib import Path

import pytest
from needle.lab import backends, batches, faults, kube_objects, topology
from needle.lab.backends.base import same_subnet
from needle.lab.cli import app
from needle.lab.errors import LabError
from needle.lab.state import LabState
from typer.testing import CliRunner

LAB = Path(__file__).resolve().parents[2] / "lab"
# What only lab/backends/ may name (DESIGN.md section 7): device names, the VXLAN port, the
# VXLAN overhead.
BACKEND_LITERALS = re.compile(r"flannel\.1|cni0|cali|\b8472\b")
BACKEND_NUMBERS = {50, 8472}


def plan(backend: str, nodes: int = 3, pods: int = 2, mtu: int = 1500) -> LabState:
    """A lab's state as `up` plans it, without building anything."""
    chosen = backends.get(backend)
    settings = topology.validate("needle-lab", nodes, pods, mtu, backend)
    node_states = topology.plan_nodes(settings, random.Random(7))
    chosen.adjust_plan(node_states)
    return LabState(
        name="needle-lab",
        state_dir="/run/needle-lab/needle-lab",
        kube_dir="/run/needle-lab/needle-lab/kube",
        underlay_netns=topology.underlay_netns("needle-lab"),
        status="up",
        underlay_mtu=mtu,
        overlay_mtu=chosen.overlay_mtu(mtu),
        created="2024-01-01T00:00:00Z",
        nodes=node_states,
        backend=backend,
    )


def node_lines(state: LabState, index: int = 0) -> tuple[str, ...]:
    node = state.nodes[index]
    peers = [peer for peer in state.nodes if peer is not node]
    return batches.node(node, peers, state.overlay_mtu, state.backend).lines


def kube(state: LabState) -> dict[str, list[dict]]:
    facts = kube_objects.HostFacts(created=state.created, kernel="6.1.0", architecture="amd64")
    documents = kube_objects.build(state, facts, random.Random(1))
    return {name: document["items"] for name, document in documents.items()}


def annotations(state: LabState) -> list[dict[str, str]]:
    return [
        {k: v for k, v in node["metadata"]["annotations"].items() if k.startswith("flannel.")}
        for node in kube(state)["nodes.json"]
    ]


def test_backends_are_listed_and_unknown_ones_refused() -> None:
    assert backends.NAMES == ("vxlan", "vxlan-directrouting", "host-gw", "canal")
    assert backends.DEFAULT == "vxlan"
    with pytest.raises(LabError, match="unknown backend 'vxlam'; choose one of: vxlan"):
        backends.get("vxlam")


def test_cli_refuses_an_unknown_backend_in_one_line() -> None:
    result = CliRunner().invoke(app, ["up", "--backend", "hostgw"])
    assert isinstance(result.exception, LabError)
    assert str(result.exception) == "unknown backend 'hostgw'; did you mean 'host-gw'?"


@pytest.mark.parametrize(
    ("backend", "overlay"),
    [("vxlan", 1450), ("vxlan-directrouting", 1450), ("host-gw", 1500), ("canal", 1450)],
)
def test_mtu_arithmetic(backend: str, overlay: int) -> None:
    assert backends.get(backend).overlay_mtu(1500) == overlay
    assert plan(backend, mtu=9000).overlay_mtu == 9000 - (1500 - overlay)


def test_vxlan_plan_is_unchanged() -> None:
    """The default backend renders exactly the commands the lab always ran."""
    state = plan("vxlan")
    node, peer = state.nodes[0], state.nodes[1]
    lines = node_lines(state)
    assert lines[:10] == (
        "link set lo up",
        "addr add 192.168.122.11/24 brd 192.168.122.255 dev ens3",
        "link set ens3 up",
        "route add default via 192.168.122.1 dev ens3",
        "link add cni0 mtu 1450 type bridge",
        "addr add 10.244.1.1/24 dev cni0",
        "link set cni0 up",
        f"link add flannel.1 address {node.vtep_mac} mtu 1450 type vxlan id 1 "
        "local 192.168.122.11 dev ens3 dstport 8472 nolearning",
        "addr add 10.244.1.0/32 dev flannel.1",
        "link set flannel.1 up",
    )
    pod = node.pods[0]
    assert lines[10:14] == (
        f"link add {pod.host_veth} mtu 1450 type veth peer name eth0 mtu 1450 netns {pod.netns}",
        f"link set {pod.host_veth} master cni0",
        f"link set {pod.host_veth} type bridge_slave hairpin on",
        f"link set {pod.host_veth} up",
    )
    assert lines[-4:] == (
        "route add 10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink",
        f"neigh replace 10.244.2.0 lladdr {peer.vtep_mac} dev flannel.1 nud permanent",
        "route add 10.244.3.0/24 via 10.244.3.0 dev flannel.1 onlink",
        f"neigh replace 10.244.3.0 lladdr {state.nodes[2].vtep_mac} dev flannel.1 nud permanent",
    )
    fdb = batches.node_fdb(node, state.nodes[1:], "vxlan")
    assert fdb is not None and fdb.tool == "bridge"
    assert fdb.lines[0] == (
        f"fdb replace {peer.vtep_mac} dev flannel.1 dst 192.168.122.12 self permanent"
    )
    assert batches.pods(node, "vxlan")[0].lines == (
        "link set lo up",
        f"addr add {pod.ip}/24 dev eth0",
        "link set eth0 up",
        "route add default via 10.244.1.1 dev eth0",
        "route add 10.244.0.0/16 via 10.244.1.1 dev eth0",
    )


def test_directrouting_routes_same_subnet_peers_directly() -> None:
    state = plan("vxlan-directrouting")
    lines = node_lines(state)
    assert any("type vxlan id 1" in line and "dstport 8472" in line for line in lines)
    assert "route add 10.244.2.0/24 via 192.168.122.12 dev ens3" in lines
    assert "route add 10.244.3.0/24 via 192.168.122.13 dev ens3" in lines
    assert not [line for line in lines if line.startswith("neigh")]
    assert not [line for line in lines if "onlink" in line]
    assert batches.node_fdb(state.nodes[0], state.nodes[1:], state.backend) is None


def test_directrouting_keeps_vxlan_for_a_peer_on_another_subnet() -> None:
    state = plan("vxlan-directrouting")
    far = state.nodes[2]
    far.underlay_ip = "192.168.123.13"
    lines = node_lines(state)
    assert "route add 10.244.2.0/24 via 192.168.122.12 dev ens3" in lines
    assert "route add 10.244.3.0/24 via 10.244.3.0 dev flannel.1 onlink" in lines
    assert f"neigh replace 10.244.3.0 lladdr {far.vtep_mac} dev flannel.1 nud permanent" in lines
    fdb = batches.node_fdb(state.nodes[0], state.nodes[1:], state.backend)
    assert fdb is not None
    assert fdb.lines == (
        f"fdb replace {far.vtep_mac} dev flannel.1 dst 192.168.123.13 self permanent",
    )


def test_host_gw_has_no_vtep_and_routes_via_node_ips() -> None:
    state = plan("host-gw")
    lines = node_lines(state)
    assert not [line for line in lines if "flannel" in line or "vxlan" in line]
    assert "link add cni0 mtu 1500 type bridge" in lines
    assert "route add 10.244.2.0/24 via 192.168.122.12 dev ens3" in lines
    assert "route add 10.244.3.0/24 via 192.168.122.13 dev ens3" in lines
    assert all(node.vtep_mac == "" for node in state.nodes)
    assert batches.node_fdb(state.nodes[0], state.nodes[1:], state.backend) is None
    pod = state.nodes[0].pods[0]
    assert f"peer name eth0 mtu 1500 netns {pod.netns}" in next(
        line for line in lines if line.startswith(f"link add {pod.host_veth}")
    )


def test_host_gw_installs_no_route_to_an_off_link_peer() -> None:
    state = plan("host-gw")
    state.nodes[2].underlay_ip = "192.168.123.13"
    lines = node_lines(state)
    assert not [line for line in lines if line.startswith("route add 10.244.3.0/24")]
    assert same_subnet("192.168.122.11", "192.168.122.200")
    assert not same_subnet("192.168.122.11", "192.168.123.11")


def test_canal_pods_attach_the_calico_way() -> None:
    state = plan("canal")
    node = state.nodes[0]
    lines = node_lines(state)
    assert not [line for line in lines if "cni0" in line or "master" in line]
    for pod in node.pods:
        digest = hashlib.sha1(f"{pod.namespace}.{pod.name}".encode()).hexdigest()
        assert pod.host_veth == f"cali{digest[:11]}"
        assert (
            f"link add {pod.host_veth} address ee:ee:ee:ee:ee:ee mtu 1450 type veth "
            f"peer name eth0 mtu 1450 netns {pod.netns}"
        ) in lines
        assert f"route add {pod.ip} dev {pod.host_veth} scope link" in lines
    assert "route add 10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink" in lines
    assert sum(line.startswith("neigh replace") for line in lines) == 2
    fdb = batches.node_fdb(node, state.nodes[1:], state.backend)
    assert fdb is not None and len(fdb.lines) == 2
    sysctls = backends.get("canal").node_sysctls(node)
    for pod in node.pods:
        assert sysctls[f"net.ipv4.conf.{pod.host_veth}.proxy_arp"] == "1"
        assert sysctls[f"net.ipv4.conf.{pod.host_veth}.forwarding"] == "1"
    assert sysctls["net.ipv4.ip_forward"] == "1"
    pod = node.pods[0]
    assert batches.pods(node, "canal")[0].lines == (
        "link set lo up",
        f"addr add {pod.ip}/32 dev eth0",
        "link set eth0 up",
        "route add 169.254.1.1 dev eth0 scope link",
        "route add default via 169.254.1.1 dev eth0",
    )


@pytest.mark.parametrize(
    ("backend", "backend_conf", "backend_type", "vtep"),
    [
        ("vxlan", {"Type": "vxlan"}, "vxlan", True),
        ("vxlan-directrouting", {"Type": "vxlan", "DirectRouting": True}, "vxlan", True),
        ("host-gw", {"Type": "host-gw"}, "host-gw", False),
    ],
)
def test_flannel_objects_per_backend(
    backend: str, backend_conf: dict, backend_type: str, vtep: bool
) -> None:
    state = plan(backend)
    objects = kube(state)
    (configmap,) = objects["configmaps.json"]
    assert (configmap["metadata"]["namespace"], configmap["metadata"]["name"]) == (
        "kube-flannel",
        "kube-flannel-cfg",
    )
    assert json.loads(configmap["data"]["net-conf.json"]) == {
        "Network": "10.244.0.0/16",
        "Backend": backend_conf,
    }
    assert [ds["metadata"]["name"] for ds in objects["daemonsets.json"]] == ["kube-flannel-ds"]
    for node, found in zip(state.nodes, annotations(state), strict=True):
        assert found["flannel.alpha.coreos.com/backend-type"] == backend_type
        assert found["flannel.alpha.coreos.com/public-ip"] == node.underlay_ip
        data = found["flannel.alpha.coreos.com/backend-data"]
        if vtep:
            assert json.loads(data) == {"VNI": 1, "VtepMAC": node.vtep_mac}
        else:
            assert data == "null"


def test_canal_objects_are_rke2s() -> None:
    state = plan("canal")
    objects = kube(state)
    (configmap,) = objects["configmaps.json"]
    assert (configmap["metadata"]["namespace"], configmap["metadata"]["name"]) == (
        "kube-system",
        "rke2-canal-config",
    )
    assert json.loads(configmap["data"]["net-conf.json"]) == {
        "Network": "10.244.0.0/16",
        "Backend": {"Type": "vxlan"},
    }
    assert configmap["data"]["veth_mtu"] == "1450"
    assert '"type": "calico"' in configmap["data"]["cni_network_config"]
    (daemonset,) = objects["daemonsets.json"]
    assert (daemonset["metadata"]["namespace"], daemonset["metadata"]["name"]) == (
        "kube-system",
        "rke2-canal",
    )
    containers = [c["name"] for c in daemonset["spec"]["template"]["spec"]["containers"]]
    assert containers == ["calico-node", "kube-flannel"]
    system = [p for p in objects["pods.json"] if p["metadata"]["namespace"] == "kube-system"]
    assert len(system) == 3
    assert all(p["metadata"]["name"].startswith("rke2-canal-") for p in system)
    assert all(p["spec"]["hostNetwork"] for p in system)
    for found in annotations(state):
        assert found["flannel.alpha.coreos.com/backend-type"] == "vxlan"


def test_node_files_per_backend() -> None:
    for backend, conf, mtu in (
        ("vxlan", "/etc/cni/net.d/10-flannel.conflist", 1450),
        ("host-gw", "/etc/cni/net.d/10-flannel.conflist", 1500),
        ("canal", "/etc/cni/net.d/10-canal.conflist", 1450),
    ):
        state = plan(backend)
        node = state.nodes[1]
        files = backends.get(backend).node_files(state, node)
        assert set(files) == {conf, "/run/flannel/subnet.env"}
        assert files["/run/flannel/subnet.env"] == (
            "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.2.1/24\n"
            f"FLANNEL_MTU={mtu}\nFLANNEL_IPMASQ=true\n"
        )
    conflist = json.loads(
        backends.get("canal").node_files(plan("canal"), plan("canal").nodes[0])[
            "/etc/cni/net.d/10-canal.conflist"
        ]
    )
    calico, portmap = conflist["plugins"][:2]
    assert calico["type"] == "calico" and calico["mtu"] == 1450
    assert calico["ipam"] == {"type": "host-local", "subnet": "usePodCidr"}
    assert calico["nodename"] == "lab-node-1"
    assert portmap["type"] == "portmap"


def test_faults_declare_their_backends() -> None:
    applies = {name: set(fault.backends) for name, fault in faults.CATALOGUE.items()}
    every = set(backends.NAMES)
    bridged = {"vxlan", "vxlan-directrouting", "host-gw"}
    assert applies == {
        "mtu-underlay": {"vxlan", "canal"},
        "mtu-pod": {"vxlan", "vxlan-directrouting", "canal"},
        "route-missing": every,
        "podcidr-mismatch": every,
        "veth-orphan": every,
        "duplicate-public-ip": every,
        "ip-forward-off": every,
        "vtep-entries-missing": {"vxlan", "canal"},
        "vxlan-route-no-fdb": {"vxlan-directrouting"},
        "route-wrong-nexthop": {"host-gw"},
        "peer-off-link": {"host-gw"},
        "pod-route-missing": {"canal"},
        "proxy-arp-off": {"canal"},
        # The faults no rule finds, one per `needle trace` step (lab/backends/pathfaults.py).
        "veth-down": bridged,
        "policy-route-unreachable": every,
        "neigh-stale-pod": every,
        "fdb-static-wrong-port": bridged,
        "bridge-ports-isolated": bridged,
        "forward-policy-drop": every,
        "snat-pod-traffic": every,
        "vxlan-local-gone": {"vxlan", "canal"},
        "vxlan-port-blocked": {"vxlan", "canal"},
        "peer-ip-unreachable": {"vxlan", "canal"},
        "vxlan-fdb-wrong-port": {"vxlan", "canal"},
        "underlay-port-mtu": every,
        "bridge-mtu-stale": bridged,
        "pod-device-forwarding-off": every,
        "pod-eth0-down": every,
        "pod-ip-duplicate": bridged,
    }
    with pytest.raises(LabError) as caught:
        faults.check_backend(faults.CATALOGUE["peer-off-link"], "canal", "lab")
    assert str(caught.value) == (
        "fault peer-off-link does not apply to lab 'lab', which runs the canal backend; "
        "it applies to: host-gw"
    )
    faults.check_backend(faults.CATALOGUE["route-missing"], "canal", "lab")


def test_route_missing_deletes_each_backends_peer_route() -> None:
    expected = {
        "vxlan": "10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink",
        "vxlan-directrouting": "10.244.2.0/24 via 192.168.122.12 dev ens3",
        "host-gw": "10.244.2.0/24 via 192.168.122.12 dev ens3",
        "canal": "10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink",
    }
    for backend, spec in expected.items():
        state = plan(backend)
        route = backends.get(backend).peer_route(state.nodes[0], state.nodes[1])
        assert route is not None and route.spec == spec
        assert f"route add {spec}" in node_lines(state)


def _is_backend_literal(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, str):
        return bool(BACKEND_LITERALS.search(value))
    return isinstance(value, int) and value in BACKEND_NUMBERS


def _code_literals(path: Path) -> list[tuple[int, object]]:
    """String and number constants of a module, docstrings included, comments not."""
    return [
        (node.lineno, node.value)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and _is_backend_literal(node.value)
    ]


def test_only_backends_name_devices_ports_and_overheads() -> None:
    offenders = {
        str(path.relative_to(LAB)): _code_literals(path)
        for path in sorted(LAB.rglob("*.py"))
        if "backends" not in path.relative_to(LAB).parts
    }
    assert {path: found for path, found in offenders.items() if found} == {}
