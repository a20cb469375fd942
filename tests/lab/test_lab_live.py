"""The lab built for real in network namespaces: data plane, faults, teardown, locking.

Every lab here has a name unique to this test process and is torn down even when a test
fails; a 3x2 lab builds in well under a second, so each fault gets a fresh one.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from needle.lab import api, batches, keepalive, netns, probe, topology
from needle.lab.batches import Batch
from needle.lab.cli import app
from needle.lab.errors import LabError
from needle.lab.state import STATE_ROOT, LabState, locked
from typer.testing import CliRunner

pytestmark = [pytest.mark.root, pytest.mark.tools("ping", "nsenter")]

_counter = itertools.count(1)


def unique_name(tag: str = "t") -> str:
    return f"ndltest-{os.getpid()}-{tag}{next(_counter)}"


def lab_netns(name: str) -> list[str]:
    pattern = topology.netns_pattern(name)
    return sorted(ns for ns in netns.existing() if pattern.match(ns))


@pytest.fixture(scope="module")
def healthy() -> Iterator[LabState]:
    name = f"ndltest-{os.getpid()}"
    try:
        yield api.up(name=name, nodes=3, pods=2)
    finally:
        api.down(name)


@pytest.fixture
def fresh() -> Iterator[Callable[..., LabState]]:
    """Build labs on demand; all of them are torn down afterwards."""
    made: list[str] = []

    def build(**kwargs: int) -> LabState:
        name = unique_name("f")
        made.append(name)
        return api.up(name=name, **kwargs)

    try:
        yield build
    finally:
        for name in made:
            api.down(name)


def ip_json(ns: str, *args: str) -> list[dict]:
    out = subprocess.run(
        ["ip", "-j", "-n", ns, *args], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out or "[]")


def node_of_ip(state: LabState) -> dict[str, str]:
    return {pod.ip: node.name for node in state.nodes for pod in node.pods}


def node_of_netns(state: LabState) -> dict[str, str]:
    return {pod.netns: node.name for node in state.nodes for pod in node.pods}


def failures(results: dict[tuple[str, str], probe.Ping]) -> set[tuple[str, str]]:
    return {key for key, result in results.items() if not result.ok}


# --- the healthy lab -------------------------------------------------------------------


def test_every_pod_reaches_every_pod_with_full_size_df_pings(healthy: LabState) -> None:
    results = probe.mesh(healthy, 1400, dont_fragment=True)
    assert len(results) == 6 * 5
    bad = {key: result.output for key, result in results.items() if not result.ok}
    assert not bad


def test_data_plane_matches_state(healthy: LabState) -> None:
    for node in healthy.nodes:
        flannel = ip_json(node.netns, "-d", "link", "show", "flannel.1")[0]
        assert flannel["address"] == node.vtep_mac
        assert flannel["mtu"] == 1450
        info = flannel["linkinfo"]["info_data"]
        assert (info["id"], info["port"], info["local"], info["learning"]) == (
            1,
            8472,
            node.underlay_ip,
            False,
        )
        ens3 = ip_json(node.netns, "link", "show", "ens3")[0]
        assert ens3["mtu"] == 1500
        cni0_ports = {
            link["ifname"] for link in ip_json(node.netns, "link", "show", "master", "cni0")
        }
        assert cni0_ports == {pod.host_veth for pod in node.pods}
        routes = {route["dst"]: route for route in ip_json(node.netns, "route")}
        for peer in healthy.nodes:
            if peer is not node:
                route = routes[peer.pod_cidr]
                assert route["gateway"] == topology.vtep_address(peer.pod_cidr)
                assert route["dev"] == "flannel.1"
                assert "onlink" in route["flags"]
        assert netns.read_sysctl(node.netns, "net.ipv4.ip_forward") == "1"
        for pod in node.pods:
            eth0 = ip_json(pod.netns, "addr", "show", "eth0")[0]
            assert eth0["mtu"] == 1450
            assert any(a["local"] == pod.ip and a["prefixlen"] == 24 for a in eth0["addr_info"])
    bridge_nf = "/proc/sys/net/bridge/bridge-nf-call-iptables"
    if Path(bridge_nf).exists():
        assert (
            netns.read_sysctl(healthy.underlay_netns, "net.bridge.bridge-nf-call-iptables") == "0"
        )


def test_kube_dir_matches_data_plane(healthy: LabState) -> None:
    kube = Path(healthy.kube_dir)
    assert sorted(path.name for path in kube.iterdir()) == [
        "configmaps.json",
        "daemonsets.json",
        "nodes.json",
        "pods.json",
    ]
    nodes = {
        item["metadata"]["name"]: item
        for item in json.loads((kube / "nodes.json").read_text())["items"]
    }
    for node in healthy.nodes:
        real_mac = ip_json(node.netns, "link", "show", "flannel.1")[0]["address"]
        annotation = nodes[node.name]["metadata"]["annotations"][
            "flannel.alpha.coreos.com/backend-data"
        ]
        assert json.loads(annotation) == {"VNI": 1, "VtepMAC": real_mac}
        assert nodes[node.name]["spec"]["podCIDR"] == node.pod_cidr
    pods = json.loads((kube / "pods.json").read_text())["items"]
    ips = {item["status"]["podIP"] for item in pods if item["metadata"]["namespace"] == "default"}
    assert ips == {pod.ip for pod in healthy.pods()}
    assert oct(Path(healthy.state_dir).stat().st_mode & 0o777) == "0o700"


def test_status_reports_the_lab(healthy: LabState) -> None:
    state = api.status(healthy.name)
    assert state == healthy
    assert api.missing_netns(state) == []
    data = json.loads(state.to_json())
    assert data["format"] == "needle.lab-state/v1"
    assert data["faults"] == []
    assert data["nodes"][0]["pods"][0]["host_veth"] == healthy.nodes[0].pods[0].host_veth


def test_second_up_of_a_running_lab_says_so(healthy: LabState) -> None:
    with pytest.raises(LabError, match="already up"):
        api.up(name=healthy.name)


# --- safety ------------------------------------------------------------------------------


def _root_snapshot() -> dict[str, str]:
    def run(*argv: str) -> str:
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout

    snapshot = {
        "links": run("ip", "-o", "link", "show"),
        "addresses": run("ip", "-o", "addr", "show"),
        "routes": run("ip", "route", "show", "table", "all"),
        "neighbours": run("ip", "neigh", "show", "nud", "permanent"),
    }
    for key in ("net/ipv4/ip_forward", "net/bridge/bridge-nf-call-iptables"):
        path = Path("/proc/sys") / key
        snapshot[key] = path.read_text() if path.exists() else "absent"
    return snapshot


def test_nothing_changes_in_the_root_namespace(fresh: Callable[..., LabState]) -> None:
    before = _root_snapshot()
    state = fresh(nodes=2, pods=2)
    assert _root_snapshot() == before
    api.fault(state.name, "ip-forward-off")
    api.fault(state.name, "mtu-underlay")
    api.down(state.name)
    assert _root_snapshot() == before


def test_down_removes_everything_and_is_idempotent() -> None:
    name = unique_name("d")
    state = api.up(name=name, nodes=2, pods=1)
    try:
        api.fault(name, "veth-orphan")
        orphan_pid = api.status(name).processes[0].pid
    finally:
        first = api.down(name)
    assert len(first.netns) == len(state.netns) - 1  # the orphan's name was already gone
    assert first.pids == [orphan_pid]
    assert lab_netns(name) == []
    assert not Path(state.state_dir).exists()
    assert keepalive.marked(name) == []
    second = api.down(name)
    assert (second.netns, second.pids) == ([], [])
    with pytest.raises(LabError, match="not up"):
        api.status(name)


def test_failed_up_reports_the_step_and_cleans_up(monkeypatch: pytest.MonkeyPatch) -> None:
    name = unique_name("x")
    real = netns.run_batch

    def fail_on_pods(batch: Batch) -> None:
        if batch.what.startswith("pod "):
            raise netns.CommandError(f"{batch.what}: injected failure")
        real(batch)

    monkeypatch.setattr(netns, "run_batch", fail_on_pods)
    try:
        with pytest.raises(
            LabError,
            match=r"failed at step 'program flannel FDB, sysctls and "
            r"pods'.*injected failure.*removed the 10",
        ):
            api.up(name=name, nodes=3, pods=2)
        assert lab_netns(name) == []
        assert not (STATE_ROOT / name).exists()
    finally:
        api.down(name)


def test_missing_kernel_feature_fails_up_with_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    name = unique_name("v")
    real = batches.node

    def unknown_kind(*args: object, **kwargs: object) -> Batch:
        batch = real(*args, **kwargs)  # type: ignore[arg-type]
        # A kind the kernel does not know, as on a kernel built without CONFIG_VXLAN.
        lines = tuple(
            "link add flannel.1 type vxlan-missing" if "type vxlan" in line else line
            for line in batch.lines
        )
        return Batch(batch.tool, batch.netns, lines, batch.what)

    monkeypatch.setattr(batches, "node", unknown_kind)
    try:
        with pytest.raises(
            LabError,
            match=r"step 'build nodes.*cannot create vxlan devices "
            r"\(CONFIG_VXLAN",
        ):
            api.up(name=name, nodes=2, pods=1)
        assert lab_netns(name) == []
    finally:
        api.down(name)


def test_up_killed_half_way_is_removed_by_down() -> None:
    name = unique_name("k")
    script = textwrap.dedent(f"""
        import os
        from needle.lab import api, netns
        real = netns.run_batch
        def die(batch):
            if batch.what.startswith("pod "):
                os._exit(9)  # as if killed: no cleanup runs
            real(batch)
        netns.run_batch = die
        api.up(name={name!r}, nodes=2, pods=2)
    """)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", script],
            cwd=Path(__file__).parents[2],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 9, proc.stderr
        assert lab_netns(name), "the killed up should have left namespaces behind"
        assert api.status(name).status == "building"
        with pytest.raises(LabError, match="half-built"):
            api.up(name=name, nodes=2, pods=2)
    finally:
        teardown = api.down(name)
    assert len(teardown.netns) == 7
    assert lab_netns(name) == []


def test_a_busy_lab_is_refused_while_locked() -> None:
    name = unique_name("l")
    try:
        with locked(name), pytest.raises(LabError, match="busy"):
            api.up(name=name, nodes=1, pods=1)
        assert lab_netns(name) == []
    finally:
        api.down(name)


def test_concurrent_ups_of_one_lab_do_not_collide() -> None:
    name = unique_name("c")
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def run() -> None:
        barrier.wait()
        try:
            outcomes.append(api.up(name=name, nodes=3, pods=2))
        except LabError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        states = [o for o in outcomes if isinstance(o, LabState)]
        errors = [str(o) for o in outcomes if isinstance(o, LabError)]
        assert len(states) == 1, outcomes
        assert len(errors) == 1 and ("busy" in errors[0] or "already up" in errors[0])
        assert len(lab_netns(name)) == len(states[0].netns)
        assert all(result.ok for result in probe.mesh(states[0], 1400).values())
    finally:
        api.down(name)


# --- faults ------------------------------------------------------------------------------


def test_mtu_underlay_drops_large_frames_only(fresh: Callable[..., LabState]) -> None:
    state = fresh()
    record = api.fault(state.name, "mtu-underlay")
    assert (record.node, record.interface, record.after) == ("lab-node-1", "ens3", "1450")
    node_ip, node_ns = node_of_ip(state), node_of_netns(state)
    large = probe.mesh(state, 1400, dont_fragment=True)
    expected = {
        key
        for key in large
        if node_ns[key[0]] != node_ip[key[1]] and "lab-node-1" in (node_ns[key[0]], node_ip[key[1]])
    }
    assert failures(large) == expected
    assert failures(probe.mesh(state, 500, dont_fragment=True)) == set()


def test_mtu_pod_loses_that_pods_large_packets(fresh: Callable[..., LabState]) -> None:
    state = fresh()
    record = api.fault(state.name, "mtu-pod")
    pod = state.nodes[0].pods[0]
    assert (record.pod, record.interface, record.after) == (pod.ref, "eth0", "1500")
    eth0 = ip_json(pod.netns, "link", "show", "eth0")[0]
    assert eth0["mtu"] == 1500
    # Without DF a healthy pod fragments to its 1450 MTU; the broken pod sends 1488-byte
    # packets whole, and its host veth (MTU 1450) drops them, both ways.
    large = probe.mesh(state, 1460, dont_fragment=False)
    expected = {key for key in large if pod.netns == key[0] or pod.ip == key[1]}
    assert failures(large) == expected
    assert failures(probe.mesh(state, 1400, dont_fragment=True)) == set()


def test_route_missing_cuts_one_node_pair(fresh: Callable[..., LabState]) -> None:
    state = fresh()
    record = api.fault(state.name, "route-missing")
    assert (record.node, record.peer_node, record.cidr) == (
        "lab-node-1",
        "lab-node-2",
        "10.244.2.0/24",
    )
    routes = {route["dst"] for route in ip_json(state.nodes[0].netns, "route")}
    assert "10.244.2.0/24" not in routes and "10.244.3.0/24" in routes
    node_ip, node_ns = node_of_ip(state), node_of_netns(state)
    results = probe.mesh(state, 1400, dont_fragment=True)
    expected = {
        key for key in results if {node_ns[key[0]], node_ip[key[1]]} == {"lab-node-1", "lab-node-2"}
    }
    assert failures(results) == expected


def test_ip_forward_off_isolates_one_nodes_pods(fresh: Callable[..., LabState]) -> None:
    state = fresh()
    record = api.fault(state.name, "ip-forward-off", node="lab-node-2")
    assert (record.node, record.after) == ("lab-node-2", "0")
    assert netns.read_sysctl(state.nodes[1].netns, "net.ipv4.ip_forward") == "0"
    node_ip, node_ns = node_of_ip(state), node_of_netns(state)
    results = probe.mesh(state, 1400, dont_fragment=True)
    expected = {
        key
        for key in results
        if node_ns[key[0]] != node_ip[key[1]] and "lab-node-2" in (node_ns[key[0]], node_ip[key[1]])
    }
    assert failures(results) == expected


def test_veth_orphan_leaves_the_host_veth_on_cni0(fresh: Callable[..., LabState]) -> None:
    state = fresh()
    node = state.nodes[0]
    pod = node.pods[-1]
    record = api.fault(state.name, "veth-orphan")
    assert (record.pod, record.interface) == (pod.ref, pod.host_veth)
    assert pod.netns not in netns.existing()
    ports = {link["ifname"] for link in ip_json(node.netns, "link", "show", "master", "cni0")}
    assert pod.host_veth in ports
    pods = json.loads((Path(state.kube_dir) / "pods.json").read_text())["items"]
    assert pod.name not in {item["metadata"]["name"] for item in pods}
    after = api.status(state.name)
    assert pod.ref not in {p.ref for p in after.pods()}
    assert [p.pid for p in after.processes] == [p.pid for p in keepalive.marked(state.name)]
    assert after.faults[0].fault == "veth-orphan"


@pytest.mark.parametrize(
    ("fault", "check"),
    [
        (
            "podcidr-mismatch",
            lambda node, peer: (
                node["spec"] == {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"]}
            ),
        ),
        (
            "duplicate-public-ip",
            lambda node, peer: (
                node["metadata"]["annotations"]["flannel.alpha.coreos.com/public-ip"]
                == peer["metadata"]["annotations"]["flannel.alpha.coreos.com/public-ip"]
            ),
        ),
    ],
)
def test_api_only_faults_change_nodes_json_only(
    fresh: Callable[..., LabState], fault: str, check: Callable[[dict, dict], bool]
) -> None:
    state = fresh()
    kube = Path(state.kube_dir)
    before = {path.name: path.read_text() for path in kube.iterdir()}
    record = api.fault(state.name, fault)
    after = {path.name: path.read_text() for path in kube.iterdir()}
    assert [name for name in before if before[name] != after[name]] == ["nodes.json"]
    nodes = json.loads(after["nodes.json"])["items"]
    assert check(nodes[0], nodes[1])
    assert record.node == "lab-node-1"
    status = json.loads(api.status(state.name).to_json())
    assert status["faults"][0]["fault"] == fault
    assert status["faults"][0]["before"] != status["faults"][0]["after"]
    assert failures(probe.mesh(state, 1400, cross_node_only=True)) == set()


def test_fault_errors_are_one_line(fresh: Callable[..., LabState]) -> None:
    state = fresh(nodes=1, pods=1)
    with pytest.raises(LabError, match="at least 2 nodes"):
        api.fault(state.name, "route-missing")
    with pytest.raises(LabError, match="no node 'lab-node-9'"):
        api.fault(state.name, "mtu-pod", node="lab-node-9")
    api.fault(state.name, "mtu-pod")
    with pytest.raises(LabError, match="already applied"):
        api.fault(state.name, "mtu-pod")
    missing = unique_name("none")
    with pytest.raises(LabError, match="not up"):
        api.fault(missing, "mtu-pod")
    assert not (STATE_ROOT / missing).exists()


# --- the CLI -----------------------------------------------------------------------------


def test_cli_up_status_fault_down() -> None:
    runner = CliRunner()
    name = unique_name("cli")
    env = {"NEEDLE_LAB_NAME": name}
    try:
        result = runner.invoke(app, ["up", "--nodes", "2", "--pods", "1"], env=env)
        assert result.exit_code == 0, result.output
        assert f"lab {name} is up: 2 nodes, 2 pods" in result.output
        result = runner.invoke(app, ["fault", "route-missing"], env=env)
        assert result.exit_code == 0 and "route-missing: lab-node-1" in result.output
        result = runner.invoke(app, ["status", "--format", "json"], env=env)
        data = json.loads(result.output)
        assert data["name"] == name and data["faults"][0]["fault"] == "route-missing"
        assert data["missing_netns"] == []
        result = runner.invoke(app, ["status"], env=env)
        assert "route-missing" in result.output and f"--netns {name}-n1=lab-node-1" in (
            result.output
        )
        result = runner.invoke(app, ["fault", "bogus"], env=env)
        assert isinstance(result.exception, LabError)
        result = runner.invoke(app, ["status", "--format", "yaml"], env=env)
        assert isinstance(result.exception, LabError)
        result = runner.invoke(app, ["down"], env=env)
        assert result.exit_code == 0 and "removed 5 namespaces" in result.output
        result = runner.invoke(app, ["down"], env=env)
        assert result.exit_code == 0 and "nothing to remove" in result.output
    finally:
        api.down(name)


def test_cli_fault_help_lists_the_catalogue() -> None:
    result = CliRunner().invoke(app, ["fault", "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    for name in (
        "mtu-underlay",
        "mtu-pod",
        "route-missing",
        "podcidr-mismatch",
        "veth-orphan",
        "duplicate-public-ip",
        "ip-forward-off",
    ):
        assert name in result.output
