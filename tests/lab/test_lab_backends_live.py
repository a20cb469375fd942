"""Each backend built for real: the kernel state `ip -j` shows, reachability, node files and a
collection through the lab's collect shell; each backend's faults changing exactly what
they say (a before/after snapshot of every lab namespace), and labs removed even when a
test fails."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from needle.lab import api, netns, nodefiles, probe, topology
from needle.lab.errors import LabError
from needle.lab.state import LabState

pytestmark = [pytest.mark.root, pytest.mark.tools("ping", "nsenter")]

_counter = itertools.count(1)
Item = tuple[str, str, tuple[object, ...]]
"""(namespace, kind, what): one fact of a snapshot."""


def unique_name(tag: str) -> str:
    return f"ndltest-{os.getpid()}-b{tag}{next(_counter)}"


@pytest.fixture
def fresh() -> Iterator[Callable[..., LabState]]:
    """Build labs on demand; all of them are torn down afterwards, also on failure."""
    made: list[str] = []

    def build(backend: str, nodes: int = 3, pods: int = 2) -> LabState:
        name = unique_name(backend.replace("-", "")[:6])
        made.append(name)
        return api.up(name=name, nodes=nodes, pods=pods, backend=backend)

    try:
        yield build
    finally:
        for name in made:
            api.down(name)


def ip_json(ns: str, *args: str, tool: str = "ip") -> list[dict]:
    out = subprocess.run(
        [tool, "-j", "-n", ns, *args], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out or "[]")


def routes(ns: str) -> dict[str, dict]:
    return {route["dst"]: route for route in ip_json(ns, "-4", "route", "show")}


def failures(results: dict[tuple[str, str], probe.Ping]) -> set[tuple[str, str]]:
    return {key for key, result in results.items() if not result.ok}


def pairs_touching(state: LabState, test: Callable[[str, str], bool]) -> set[tuple[str, str]]:
    """(source netns, destination IP) pairs of the mesh whose (source node, destination
    node) satisfy `test`."""
    node_of_ns = {pod.netns: node.name for node in state.nodes for pod in node.pods}
    node_of_ip = {pod.ip: node.name for node in state.nodes for pod in node.pods}
    return {
        (src.netns, dst.ip)
        for src, dst in probe.pairs(state)
        if test(node_of_ns[src.netns], node_of_ip[dst.ip])
    }


def snapshot(state: LabState) -> set[Item]:
    """What faults may change, in every namespace of the lab: routes (all tables),
    IPv4 addresses, links (MTU, MAC, master), permanent neighbours, flannel's FDB entries,
    forwarding and proxy-ARP sysctls."""
    items: set[Item] = set()
    spaces = [state.underlay_netns] + [node.netns for node in state.nodes]
    spaces += [pod.netns for pod in state.pods()]
    present = netns.existing()
    for ns in spaces:
        if ns not in present:
            continue  # a pod namespace a fault unnamed: it vanishes from the snapshot
        for route in ip_json(ns, "-4", "route", "show", "table", "all"):
            items.add(
                (
                    ns,
                    "route",
                    (
                        route.get("table", "main"),
                        route["dst"],
                        route.get("gateway"),
                        route.get("dev"),
                        route.get("scope"),
                        tuple(sorted(route.get("flags", []))),
                    ),
                )
            )
        links = ip_json(ns, "-d", "addr", "show")
        for link in links:
            name = link["ifname"]
            items.add((ns, "link", (name, link["mtu"], link.get("address"), link.get("master"))))
            for addr in link.get("addr_info", []):
                if addr["family"] == "inet":
                    items.add((ns, "addr", (name, f"{addr['local']}/{addr['prefixlen']}")))
        for neigh in ip_json(ns, "neigh", "show", "nud", "permanent"):
            items.add((ns, "neigh", (neigh["dst"], neigh.get("lladdr"), neigh["dev"])))
        for entry in ip_json(ns, "fdb", "show", tool="bridge"):
            if "dst" in entry:
                items.add((ns, "fdb", (entry["mac"], entry["ifname"], entry["dst"])))
        keys = ["net.ipv4.ip_forward"] + [
            f"net.ipv4.conf.{link['ifname']}.proxy_arp"
            for link in links
            if link["ifname"].startswith("cali")
        ]
        for key in keys:
            items.add((ns, "sysctl", (key, netns.read_sysctl(ns, key))))
    return items


def changes(before: set[Item], after: set[Item]) -> tuple[set[Item], set[Item]]:
    """(removed, added)."""
    return before - after, after - before


def route_item(ns: str, dst: str, via: str | None, dev: str, flags: tuple = ()) -> Item:
    scope = "link" if via is None and "/" not in dst else None
    return (ns, "route", ("main", dst, via, dev, scope, flags))


# --- healthy backends ---------------------------------------------------------------------


def test_directrouting_looks_like_flannel_with_direct_routing(
    fresh: Callable[..., LabState],
) -> None:
    state = fresh("vxlan-directrouting")
    for node in state.nodes:
        vtep = ip_json(node.netns, "-d", "link", "show", "flannel.1")[0]
        info = vtep["linkinfo"]["info_data"]
        assert (vtep["mtu"], vtep["address"], info["id"], info["port"]) == (
            1450,
            node.vtep_mac,
            1,
            8472,
        )
        found = routes(node.netns)
        for peer in state.nodes:
            if peer is not node:
                route = found[peer.pod_cidr]
                assert (route["gateway"], route["dev"]) == (peer.underlay_ip, "ens3")
                assert "onlink" not in route.get("flags", [])
        assert ip_json(node.netns, "neigh", "show", "dev", "flannel.1", "nud", "permanent") == []
        assert ip_json(node.netns, "fdb", "show", "dev", "flannel.1", tool="bridge") == []
        for pod in node.pods:
            assert ip_json(pod.netns, "link", "show", "eth0")[0]["mtu"] == 1450
    annotations = json.loads((Path(state.kube_dir) / "nodes.json").read_text())["items"][0]
    backend_data = annotations["metadata"]["annotations"]["flannel.alpha.coreos.com/backend-data"]
    assert json.loads(backend_data)["VtepMAC"] == state.nodes[0].vtep_mac
    assert failures(probe.mesh(state, 1422, dont_fragment=True)) == set()


def test_host_gw_routes_via_node_ips_without_encapsulation(fresh: Callable[..., LabState]) -> None:
    state = fresh("host-gw")
    assert state.overlay_mtu == 1500
    for node in state.nodes:
        names = {link["ifname"] for link in ip_json(node.netns, "link", "show")}
        assert "flannel.1" not in names and "cni0" in names
        assert ip_json(node.netns, "link", "show", "cni0")[0]["mtu"] == 1500
        found = routes(node.netns)
        for peer in state.nodes:
            if peer is not node:
                assert (found[peer.pod_cidr]["gateway"], found[peer.pod_cidr]["dev"]) == (
                    peer.underlay_ip,
                    "ens3",
                )
        for pod in node.pods:
            assert ip_json(pod.netns, "link", "show", "eth0")[0]["mtu"] == 1500
        env = nodefiles.read(state, node, "/run/flannel/subnet.env")
        assert "FLANNEL_MTU=1500\n" in env
    nodes = json.loads((Path(state.kube_dir) / "nodes.json").read_text())["items"]
    for item in nodes:
        annotations = item["metadata"]["annotations"]
        assert annotations["flannel.alpha.coreos.com/backend-type"] == "host-gw"
        assert annotations["flannel.alpha.coreos.com/backend-data"] == "null"
    # Full 1500-byte packets with DF set cross nodes: nothing is encapsulated.
    assert failures(probe.mesh(state, 1472, dont_fragment=True)) == set()


def test_canal_attaches_pods_with_calico_veths(fresh: Callable[..., LabState]) -> None:
    state = fresh("canal")
    for node in state.nodes:
        names = {link["ifname"] for link in ip_json(node.netns, "link", "show")}
        assert "cni0" not in names and "flannel.1" in names
        found = routes(node.netns)
        for pod in node.pods:
            link = ip_json(node.netns, "addr", "show", "dev", pod.host_veth)[0]
            assert pod.host_veth.startswith("cali") and len(pod.host_veth) == 15
            assert link["address"] == "ee:ee:ee:ee:ee:ee"
            assert "master" not in link
            assert link["mtu"] == 1450
            assert [a for a in link["addr_info"] if a["family"] == "inet"] == []
            for key in ("proxy_arp", "forwarding"):
                assert netns.read_sysctl(node.netns, f"net.ipv4.conf.{pod.host_veth}.{key}") == "1"
            route = found[pod.ip]
            assert (route["dev"], route["scope"], route.get("gateway")) == (
                pod.host_veth,
                "link",
                None,
            )
            eth0 = ip_json(pod.netns, "addr", "show", "eth0")[0]
            inet = [a for a in eth0["addr_info"] if a["family"] == "inet"]
            assert [(a["local"], a["prefixlen"]) for a in inet] == [(pod.ip, 32)]
            inside = routes(pod.netns)
            assert (inside["169.254.1.1"]["dev"], inside["169.254.1.1"]["scope"]) == (
                "eth0",
                "link",
            )
            assert inside["default"]["gateway"] == "169.254.1.1"
        for peer in state.nodes:
            if peer is not node:
                route = found[peer.pod_cidr]
                assert (route["gateway"], route["dev"]) == (
                    topology.vtep_address(peer.pod_cidr),
                    "flannel.1",
                )
        neighbours = ip_json(node.netns, "neigh", "show", "dev", "flannel.1", "nud", "permanent")
        assert len(neighbours) == 2
        fdb = ip_json(node.netns, "fdb", "show", "dev", "flannel.1", tool="bridge")
        assert {entry["dst"] for entry in fdb} == {
            peer.underlay_ip for peer in state.nodes if peer is not node
        }
    kube = Path(state.kube_dir)
    configmaps = json.loads((kube / "configmaps.json").read_text())["items"]
    assert [(c["metadata"]["namespace"], c["metadata"]["name"]) for c in configmaps] == [
        ("kube-system", "rke2-canal-config")
    ]
    assert failures(probe.mesh(state, 1422, dont_fragment=True)) == set()


def test_collect_shell_shows_the_node_files_only_to_the_collection(
    fresh: Callable[..., LabState],
) -> None:
    from needle.collector.collect import CollectOptions, collect
    from needle.collector.progress import Progress
    from needle.collector.transports.netns import NetnsTarget

    state = fresh("canal", nodes=2, pods=1)
    output = Path(state.state_dir) / "bundle.tar.gz"
    options = CollectOptions(
        output=output,
        kube_dir=Path(state.kube_dir),
        targets=[
            NetnsTarget(netns=n.netns, node=n.name, shell=api.collect_shell(state, n.name))
            for n in state.nodes
        ],
        capture_seconds=0,
        command=["needle", "collect"],
    )
    with Progress(live=False) as progress:
        collect(options, progress)
    with tarfile.open(output) as bundle:
        names = set(bundle.getnames())
        conflist = bundle.extractfile("nodes/lab-node-1/host/cni-net.d/10-canal.conflist")
        assert conflist is not None
        assert json.loads(conflist.read())["plugins"][0]["type"] == "calico"
        env = bundle.extractfile("nodes/lab-node-2/host/flannel-subnet.env")
        assert env is not None and b"FLANNEL_SUBNET=10.244.2.1/24" in env.read()
        manifest = json.loads(bundle.extractfile("manifest.json").read())  # type: ignore[union-attr]
    # The pods' namespaces were still found through /run/netns.
    assert any(name.startswith("nodes/lab-node-1/netns/") for name in names)
    assert [node["status"] for node in manifest["nodes"]] == ["ok", "ok"], manifest["nodes"]
    assert not Path("/etc/cni/net.d/10-canal.conflist").exists()
    assert (
        not Path("/run/flannel/subnet.env").exists()
        or "10.244.2.1" not in Path("/run/flannel/subnet.env").read_text()
    )


# --- faults ---------------------------------------------------------------------------------


def test_a_fault_for_another_backend_is_refused(fresh: Callable[..., LabState]) -> None:
    state = fresh("vxlan", nodes=2, pods=1)
    with pytest.raises(LabError) as caught:
        api.fault(state.name, "proxy-arp-off")
    assert str(caught.value) == (
        f"fault proxy-arp-off does not apply to lab {state.name!r}, which runs the vxlan "
        "backend; it applies to: canal"
    )
    assert api.status(state.name).faults == []


def test_directrouting_vxlan_route_without_fdb(fresh: Callable[..., LabState]) -> None:
    state = fresh("vxlan-directrouting")
    node, peer = state.nodes[0], state.nodes[1]
    before = snapshot(state)
    record = api.fault(state.name, "vxlan-route-no-fdb")
    removed, added = changes(before, snapshot(state))
    assert removed == {route_item(node.netns, peer.pod_cidr, peer.underlay_ip, "ens3")}
    assert added == {route_item(node.netns, peer.pod_cidr, "10.244.2.0", "flannel.1", ("onlink",))}
    assert (record.node, record.peer_node, record.cidr, record.interface) == (
        node.name,
        peer.name,
        peer.pod_cidr,
        "flannel.1",
    )
    results = probe.mesh(state, 500, dont_fragment=True)
    broken = pairs_touching(state, lambda a, b: {a, b} == {node.name, peer.name})
    assert failures(results) == broken


def test_host_gw_route_missing(fresh: Callable[..., LabState]) -> None:
    state = fresh("host-gw")
    node, peer = state.nodes[0], state.nodes[1]
    before = snapshot(state)
    record = api.fault(state.name, "route-missing")
    removed, added = changes(before, snapshot(state))
    assert removed == {route_item(node.netns, peer.pod_cidr, peer.underlay_ip, "ens3")}
    assert added == set()
    assert record.interface == "ens3"
    assert record.before == "10.244.2.0/24 via 192.168.122.12 dev ens3"
    broken = pairs_touching(state, lambda a, b: {a, b} == {node.name, peer.name})
    assert failures(probe.mesh(state, 500, dont_fragment=True)) == broken


def test_host_gw_route_via_wrong_next_hop(fresh: Callable[..., LabState]) -> None:
    state = fresh("host-gw")
    node, peer = state.nodes[0], state.nodes[1]
    before = snapshot(state)
    record = api.fault(state.name, "route-wrong-nexthop")
    removed, added = changes(before, snapshot(state))
    assert removed == {route_item(node.netns, peer.pod_cidr, peer.underlay_ip, "ens3")}
    assert added == {route_item(node.netns, peer.pod_cidr, "192.168.122.254", "ens3")}
    assert record.after == "10.244.2.0/24 via 192.168.122.254 dev ens3"
    broken = pairs_touching(state, lambda a, b: {a, b} == {node.name, peer.name})
    assert failures(probe.mesh(state, 500, dont_fragment=True)) == broken


def test_host_gw_peer_off_link(fresh: Callable[..., LabState]) -> None:
    state = fresh("host-gw")
    node = state.nodes[0]
    old_ip, new_ip = node.underlay_ip, "192.168.123.11"
    before = snapshot(state)
    record = api.fault(state.name, "peer-off-link")
    after = snapshot(state)
    removed, added = changes(before, after)
    underlay = state.underlay_netns
    # Only the moved node, its peers' routes to it and the underlay's router changed.
    touched = {item[0] for item in removed | added}
    assert touched == {node.netns, underlay} | {peer.netns for peer in state.nodes[1:]}
    for peer in state.nodes[1:]:
        assert {item for item in removed if item[0] == peer.netns} == {
            route_item(peer.netns, node.pod_cidr, old_ip, "ens3")
        }
        assert not [item for item in added if item[0] == peer.netns]
    assert (node.netns, "addr", ("ens3", f"{old_ip}/24")) in removed
    assert (node.netns, "addr", ("ens3", f"{new_ip}/24")) in added
    assert (underlay, "addr", ("br-infra", "192.168.122.1/24")) in added
    assert (underlay, "addr", ("br-infra", "192.168.123.1/24")) in added
    assert (underlay, "sysctl", ("net.ipv4.ip_forward", "1")) in added
    # What the moved node's main table really is now: its bridge, its new subnet, a default
    # route via the router, and no route to any peer's pod CIDR.
    now = routes(node.netns)
    assert set(now) == {"default", node.pod_cidr, "192.168.123.0/24"}
    assert now["default"]["gateway"] == "192.168.123.1"
    # And the kernel refuses the routes host-gw would want, both ways.
    refused = subprocess.run(
        ["ip", "-n", node.netns, "route", "add", "10.244.2.0/24", "via", "192.168.122.12"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode != 0 and "gateway" in refused.stderr
    assert api.status(state.name).nodes[0].underlay_ip == new_ip
    nodes = json.loads((Path(state.kube_dir) / "nodes.json").read_text())["items"]
    moved = nodes[0]
    assert moved["metadata"]["annotations"]["flannel.alpha.coreos.com/public-ip"] == new_ip
    assert {"type": "InternalIP", "address": new_ip} in moved["status"]["addresses"]
    pods = json.loads((Path(state.kube_dir) / "pods.json").read_text())["items"]
    assert {p["status"]["hostIP"] for p in pods if p["spec"]["nodeName"] == node.name} == {new_ip}
    assert record.before == old_ip and record.after == new_ip
    broken = pairs_touching(state, lambda a, b: a != b and node.name in (a, b))
    assert failures(probe.mesh(state, 500, dont_fragment=True)) == broken
    # The underlay still joins the node to its peers through the router.
    assert probe.ping(node.netns, state.nodes[1].underlay_ip).ok


def test_canal_pod_route_missing(fresh: Callable[..., LabState]) -> None:
    state = fresh("canal")
    node = state.nodes[0]
    pod = node.pods[0]
    before = snapshot(state)
    record = api.fault(state.name, "pod-route-missing")
    removed, added = changes(before, snapshot(state))
    assert removed == {route_item(node.netns, pod.ip, None, pod.host_veth)}
    assert added == set()
    assert (record.pod, record.interface, record.cidr) == (pod.ref, pod.host_veth, f"{pod.ip}/32")
    # Nothing reaches the pod any more, so no exchange with it completes, either way.
    broken = {(src, dst) for src, dst in pairs_touching(state, lambda a, b: True)}
    broken = {(src, dst) for src, dst in broken if src == pod.netns or dst == pod.ip}
    assert failures(probe.mesh(state, 500, dont_fragment=True)) == broken


def test_canal_proxy_arp_off(fresh: Callable[..., LabState]) -> None:
    state = fresh("canal")
    node = state.nodes[0]
    pod = node.pods[0]
    before = snapshot(state)
    record = api.fault(state.name, "proxy-arp-off")
    removed, added = changes(before, snapshot(state))
    key = f"net.ipv4.conf.{pod.host_veth}.proxy_arp"
    assert removed == {(node.netns, "sysctl", (key, "1"))}
    assert added == {(node.netns, "sysctl", (key, "0"))}
    assert (record.interface, record.before, record.after) == (pod.host_veth, "1", "0")
    # The pod cannot resolve its gateway 169.254.1.1, so it can answer no one.
    all_pairs = pairs_touching(state, lambda a, b: True)
    broken = {(src, dst) for src, dst in all_pairs if src == pod.netns or dst == pod.ip}
    assert failures(probe.mesh(state, 500, dont_fragment=True)) == broken


def test_canal_veth_orphan_keeps_the_cali_veth_and_its_route(
    fresh: Callable[..., LabState],
) -> None:
    state = fresh("canal")
    node = state.nodes[0]
    pod = node.pods[-1]
    before = snapshot(state)
    record = api.fault(state.name, "veth-orphan")
    after = snapshot(state)
    # The node's namespace is untouched; only the pod's namespace lost its name.
    assert {item for item in before if item[0] == node.netns} == {
        item for item in after if item[0] == node.netns
    }
    removed, added = changes(before, after)
    assert {item[0] for item in removed} == {pod.netns} and added == set()
    assert pod.netns not in netns.existing()
    assert routes(node.netns)[pod.ip]["dev"] == pod.host_veth
    assert (record.interface, record.pod) == (pod.host_veth, pod.ref)
    assert "with its /32 route" in record.message


def test_cli_up_with_a_backend_status_and_refused_fault() -> None:
    from needle.lab.cli import app
    from typer.testing import CliRunner

    runner = CliRunner()
    name = unique_name("cli")
    env = {"NEEDLE_LAB_NAME": name}
    try:
        result = runner.invoke(
            app, ["up", "--nodes", "2", "--pods", "1", "--backend", "host-gw"], env=env
        )
        assert result.exit_code == 0, result.output
        assert f"lab {name} is up: 2 nodes, 2 pods, underlay MTU 1500, overlay MTU 1500" in (
            result.output
        )
        assert "; backend host-gw" in result.output
        result = runner.invoke(app, ["status"], env=env)
        assert "backend:     host-gw" in result.output
        assert f"/run/needle-lab/{name}/nodes/<node>/root" in result.output
        data = json.loads(runner.invoke(app, ["status", "--format", "json"], env=env).output)
        assert data["backend"] == "host-gw"
        assert data["nodes"][0]["vtep_mac"] == ""
        result = runner.invoke(app, ["fault", "mtu-underlay"], env=env)
        assert isinstance(result.exception, LabError)
        assert "runs the host-gw backend" in str(result.exception)
    finally:
        api.down(name)


@pytest.mark.parametrize(
    ("backend", "step"),
    [("host-gw", "program sysctls and pods"), ("canal", "program flannel FDB, sysctls and pods")],
)
def test_failed_up_of_a_backend_names_its_step_and_cleans_up(
    monkeypatch: pytest.MonkeyPatch, backend: str, step: str
) -> None:
    from needle.lab.batches import Batch
    from needle.lab.state import STATE_ROOT

    name = unique_name("x")
    real = netns.run_batch

    def fail_on_pods(batch: Batch) -> None:
        if batch.what.startswith("pod "):
            raise netns.CommandError(f"{batch.what}: injected failure")
        real(batch)

    monkeypatch.setattr(netns, "run_batch", fail_on_pods)
    pattern = topology.netns_pattern(name)
    try:
        with pytest.raises(LabError, match=rf"failed at step '{step}'.*injected failure"):
            api.up(name=name, nodes=2, pods=1, backend=backend)
        assert not [ns for ns in netns.existing() if pattern.match(ns)]
        assert not (STATE_ROOT / name).exists()
    finally:
        api.down(name)


@pytest.mark.parametrize(
    ("backend", "gone"),
    [
        ("vxlan-directrouting", ("10.244.2.0/24", "192.168.122.12", "ens3", ())),
        ("canal", ("10.244.2.0/24", "10.244.2.0", "flannel.1", ("onlink",))),
    ],
)
def test_route_missing_on_other_backends(
    fresh: Callable[..., LabState], backend: str, gone: tuple
) -> None:
    state = fresh(backend)
    node, peer = state.nodes[0], state.nodes[1]
    before = snapshot(state)
    api.fault(state.name, "route-missing")
    removed, added = changes(before, snapshot(state))
    dst, via, dev, flags = gone
    assert removed == {route_item(node.netns, dst, via, dev, flags)}
    assert added == set()
    broken = pairs_touching(state, lambda a, b: {a, b} == {node.name, peer.name})
    assert failures(probe.mesh(state, 500, dont_fragment=True)) == broken


def test_canal_mtu_pod_is_dropped_at_the_cali_veth(fresh: Callable[..., LabState]) -> None:
    state = fresh("canal")
    pod = state.nodes[0].pods[0]
    before = snapshot(state)
    record = api.fault(state.name, "mtu-pod")
    removed, added = changes(before, snapshot(state))
    assert {item[0] for item in removed | added} == {pod.netns}
    assert {item[2][:2] for item in added if item[1] == "link"} == {("eth0", 1500)}
    assert pod.host_veth in record.message and "cali veth" in record.message
    large = probe.mesh(state, 1460, dont_fragment=False)
    expected = {key for key in large if pod.netns == key[0] or pod.ip == key[1]}
    assert failures(large) == expected
