"""The faults no rule finds (lab/backends/pathfaults.py), built for real: for each, pod (or
node) traffic that worked before fails after, exactly where the fault says, and a
before/after snapshot of every lab namespace shows it changed exactly what its message
says. Labs are torn down even when a test fails; no traffic leaves the lab's namespaces."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from needle.lab import api, netns, probe
from needle.lab.backends import pathfaults
from needle.lab.state import FaultRecord, LabState, NodeState, PodState

pytestmark = [pytest.mark.root, pytest.mark.tools("ping", "nsenter", "iptables-save")]

_counter = itertools.count(1)
Item = tuple[str, str, tuple[object, ...]]
"""(namespace, kind, what): one fact of a snapshot."""
Pairs = set[tuple[str, str]]
"""(source netns, destination IP) pairs of the ping mesh."""


@pytest.fixture
def fresh() -> Iterator[Callable[..., LabState]]:
    """Build labs on demand; all of them are torn down afterwards, also on failure."""
    made: list[str] = []

    def build(backend: str = "vxlan") -> LabState:
        name = f"ndltest-{os.getpid()}-p{next(_counter)}"
        made.append(name)
        return api.up(name=name, nodes=3, pods=2, backend=backend)

    try:
        yield build
    finally:
        for name in made:
            api.down(name)


def _json(argv: list[str]) -> list[dict]:
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return json.loads(out or "[]")


def _sysctls(ns: str) -> dict[str, str]:
    """ip_forward, and forwarding and proxy_arp of every device, read in one process."""
    script = (
        "for f in /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/conf/*/forwarding "
        '/proc/sys/net/ipv4/conf/*/proxy_arp; do printf "%s=%s\\n" "$f" "$(cat "$f")"; done'
    )
    out = subprocess.run(
        ["nsenter", f"--net=/run/netns/{ns}", "sh", "-c", script],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = {}
    for line in out.splitlines():
        path, _, value = line.partition("=")
        found[path.removeprefix("/proc/sys/").replace("/", ".")] = value
    return found


def _iptables(ns: str) -> set[str]:
    """Chain policies and rules of every table, without counters."""
    out = subprocess.run(
        ["nsenter", f"--net=/run/netns/{ns}", "iptables-save"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines: set[str] = set()
    table = ""
    for line in out.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith(":"):
            chain, policy = line[1:].split()[:2]
            # A table shows its built-in chains (policy ACCEPT) once something is added to
            # it; ACCEPT is what they had before, so only other policies are facts.
            if policy != "ACCEPT":
                lines.add(f"{table} :{chain} {policy}")
        elif line.startswith("-"):
            lines.add(f"{table} {line}")
    return lines


def snapshot(state: LabState) -> set[Item]:
    """Everything these faults may change, in every namespace of the lab: routes of every
    table (with their type), policy rules, links (MTU, MAC, master, admin state),
    addresses, permanent neighbours, static FDB entries (with dst, port and flags), bridge
    port states, iptables, and forwarding / proxy-ARP sysctls. Carrier consequences
    (a route's linkdown flag) are left out: they follow an admin state recorded here."""
    items: set[Item] = set()
    spaces = [state.underlay_netns] + [node.netns for node in state.nodes]
    pods = {pod.netns for pod in state.pods()}
    for ns in spaces + sorted(pods):
        for route in _json(["ip", "-j", "-n", ns, "-4", "route", "show", "table", "all"]):
            flags = tuple(sorted(set(route.get("flags", [])) - {"linkdown"}))
            items.add(
                (
                    ns,
                    "route",
                    (
                        route.get("table", "main"),
                        route.get("type", "unicast"),
                        route["dst"],
                        route.get("gateway"),
                        route.get("dev"),
                        flags,
                    ),
                )
            )
        for rule in _json(["ip", "-j", "-n", ns, "rule", "show"]):
            items.add((ns, "rule", (rule["priority"], rule.get("src"), rule.get("table"))))
        for link in _json(["ip", "-j", "-n", ns, "addr", "show"]):
            name = link["ifname"]
            up = "UP" in link.get("flags", [])
            items.add(
                (ns, "link", (name, link["mtu"], link.get("address"), link.get("master"), up))
            )
            for addr in link.get("addr_info", []):
                if addr["family"] == "inet":
                    items.add((ns, "addr", (name, f"{addr['local']}/{addr['prefixlen']}")))
        for neigh in _json(["ip", "-j", "-n", ns, "neigh", "show", "nud", "permanent"]):
            items.add((ns, "neigh", (neigh["dst"], neigh.get("lladdr"), neigh["dev"])))
        for key, value in _sysctls(ns).items():
            items.add((ns, "sysctl", (key, value)))
        if ns in pods:
            continue  # a pod: no bridge, no firewall
        for entry in _json(["bridge", "-j", "-n", ns, "fdb", "show"]):
            multicast = int(entry["mac"][:2], 16) & 1  # a device's own group addresses
            if not multicast and (entry.get("state") in ("permanent", "static") or "dst" in entry):
                items.add(
                    (
                        ns,
                        "fdb",
                        (
                            entry["mac"],
                            entry["ifname"],
                            entry.get("dst"),
                            entry.get("port"),
                            entry.get("state"),
                            tuple(sorted(entry.get("flags", []))),
                        ),
                    )
                )
        for port in _json(["bridge", "-j", "-d", "-n", ns, "link", "show"]):
            items.add((ns, "port", (port["ifname"], port.get("state"), port.get("isolated"))))
        for line in _iptables(ns):
            items.add((ns, "iptables", (line,)))
    return items


def changes(before: set[Item], after: set[Item]) -> tuple[set[Item], set[Item]]:
    """(removed, added)."""
    return before - after, after - before


def failures(results: dict[tuple[str, str], probe.Ping]) -> Pairs:
    return {key for key, result in results.items() if not result.ok}


def node_of(state: LabState) -> tuple[dict[str, str], dict[str, str]]:
    """(node of each pod netns, node of each pod IP)."""
    by_ns = {pod.netns: node.name for node in state.nodes for pod in node.pods}
    by_ip = {pod.ip: node.name for node in state.nodes for pod in node.pods}
    return by_ns, by_ip


def between(state: LabState, test: Callable[[str, str], bool]) -> Pairs:
    """Mesh pairs whose (source node, destination node) satisfy `test`."""
    by_ns, by_ip = node_of(state)
    return {
        (src.netns, dst.ip)
        for src, dst in probe.pairs(state)
        if test(by_ns[src.netns], by_ip[dst.ip])
    }


def touching(state: LabState, pod: PodState, *, cross_node_only: bool = False) -> Pairs:
    """Mesh pairs to or from `pod` (optionally only those with a pod on another node)."""
    by_ns, by_ip = node_of(state)
    return {
        (src.netns, dst.ip)
        for src, dst in probe.pairs(state)
        if (src is pod or dst is pod)
        and not (cross_node_only and by_ns[src.netns] == by_ip[dst.ip])
    }


def inject(state: LabState, fault: str) -> tuple[FaultRecord, set[Item], set[Item]]:
    """The healthy mesh first (it must all work), then the fault: (record, removed, added)."""
    assert failures(probe.mesh(state, 500)) == set(), "the healthy lab is not healthy"
    before = snapshot(state)
    record = api.fault(state.name, fault)
    removed, added = changes(before, snapshot(state))
    return record, removed, added


def first(state: LabState) -> tuple[NodeState, NodeState, PodState]:
    return state.nodes[0], state.nodes[1], state.nodes[0].pods[0]


# --- one fault per trace step -------------------------------------------------------------


@pytest.mark.parametrize("backend", ["vxlan", "host-gw"])
def test_link_veth_down(fresh: Callable[..., LabState], backend: str) -> None:
    state = fresh(backend)
    node, _, pod = first(state)
    record, removed, added = inject(state, "veth-down")
    port = (node.netns, "link", (pod.host_veth,))
    [old] = [item for item in removed if item[:2] == port[:2] and item[2][0] == pod.host_veth]
    assert removed == {old, (node.netns, "port", (pod.host_veth, "forwarding", False))}
    assert added == {
        (node.netns, "link", (*old[2][:4], False)),
        (node.netns, "port", (pod.host_veth, "disabled", False)),
    }
    assert (record.interface, record.before, record.after) == (pod.host_veth, "up", "down")
    assert failures(probe.mesh(state, 500)) == touching(state, pod)


@pytest.mark.parametrize("backend", ["vxlan", "host-gw", "canal"])
def test_route_policy_rule_to_unreachable(fresh: Callable[..., LabState], backend: str) -> None:
    state = fresh(backend)
    node, peer, _ = first(state)
    record, removed, added = inject(state, "policy-route-unreachable")
    assert removed == set()
    assert added == {
        (node.netns, "rule", (5270, "all", "52")),
        (node.netns, "route", ("52", "unreachable", peer.pod_cidr, None, None, ())),
    }
    assert record.cidr == peer.pod_cidr
    expected = between(state, lambda a, b: {a, b} == {node.name, peer.name})
    assert failures(probe.mesh(state, 500)) == expected


@pytest.mark.parametrize(("backend", "same_node_too"), [("vxlan", False), ("canal", True)])
def test_neigh_stale_permanent_entry(
    fresh: Callable[..., LabState], backend: str, same_node_too: bool
) -> None:
    state = fresh(backend)
    node, _, pod = first(state)
    record, removed, added = inject(state, "neigh-stale-pod")
    device = pod.host_veth if backend == "canal" else "cni0"
    stale = pathfaults.mac_from_ip(pod.ip)
    assert removed == set()
    assert added == {(node.netns, "neigh", (pod.ip, stale, device))}
    assert (record.interface, record.after) == (device, stale)
    # On the bridge, a pod on the same node reaches it by its own ARP; on Canal every
    # packet to the pod is routed by the node.
    expected = touching(state, pod, cross_node_only=not same_node_too)
    assert failures(probe.mesh(state, 500)) == expected


def test_fdb_static_entry_on_the_wrong_port(fresh: Callable[..., LabState]) -> None:
    state = fresh()
    node, _, pod = first(state)
    other = node.pods[1]
    record, removed, added = inject(state, "fdb-static-wrong-port")
    mac = record.message.split("MAC ")[1].split()[0]
    assert removed == set()
    assert added == {(node.netns, "fdb", (mac, other.host_veth, None, None, "static", ("sticky",)))}
    # Everything for the pod goes to its neighbour's port: nothing it sends is answered.
    assert failures(probe.mesh(state, 500)) == touching(state, pod)


def test_bridge_ports_isolated(fresh: Callable[..., LabState]) -> None:
    state = fresh()
    node = state.nodes[0]
    record, removed, added = inject(state, "bridge-ports-isolated")
    veths = [pod.host_veth for pod in node.pods]
    assert removed == {(node.netns, "port", (veth, "forwarding", False)) for veth in veths}
    assert added == {(node.netns, "port", (veth, "forwarding", True)) for veth in veths}
    assert record.after == "isolated on"
    # Only the node's own pods lose each other; through the node everything works.
    expected = between(state, lambda a, b: a == b == node.name)
    assert failures(probe.mesh(state, 500)) == expected


@pytest.mark.parametrize("backend", ["vxlan", "canal"])
def test_filter_forward_policy_drop(fresh: Callable[..., LabState], backend: str) -> None:
    state = fresh(backend)
    node = state.nodes[0]
    record, removed, added = inject(state, "forward-policy-drop")
    assert removed == set()
    assert {item[0] for item in added} == {node.netns}
    assert (node.netns, "iptables", ("filter :FORWARD DROP",)) in added
    assert {item[1] for item in added} == {"iptables"}
    assert record.after == "FORWARD DROP"
    # Bridged traffic between the node's own pods meets FORWARD only with br_netfilter on.
    nf_call = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
    same_node = backend == "canal"  # Canal routes even between a node's own pods
    if nf_call.exists() and not same_node:  # br_netfilter: the node's own (per-netns) value
        same_node = netns.read_sysctl(node.netns, "net.bridge.bridge-nf-call-iptables") == "1"
    expected = between(state, lambda a, b: node.name in (a, b) and (a != b or same_node))
    assert failures(probe.mesh(state, 500)) == expected


def test_nat_snat_of_pod_traffic(fresh: Callable[..., LabState]) -> None:
    state = fresh()
    node = state.nodes[0]
    record, removed, added = inject(state, "snat-pod-traffic")
    rule = (
        f"nat -A POSTROUTING -s {node.pod_cidr} ! -d {node.pod_cidr} -j SNAT "
        "--to-source 192.168.122.250"
    )
    assert removed == set()
    assert added == {(node.netns, "iptables", (rule,))}
    assert record.cidr == node.pod_cidr
    # Only what the node's pods start towards other nodes is rewritten.
    expected = between(state, lambda a, b: a == node.name and b != node.name)
    assert failures(probe.mesh(state, 500)) == expected


def test_encap_vxlan_local_gone(fresh: Callable[..., LabState]) -> None:
    state = fresh()
    node = state.nodes[0]
    old, new = node.underlay_ip, "192.168.122.240"
    record, removed, added = inject(state, "vxlan-local-gone")
    local = ("local", "local")
    assert removed == {
        (node.netns, "addr", ("ens3", f"{old}/24")),
        (node.netns, "route", (*local, old, None, "ens3", ())),
    }
    assert added == {
        (node.netns, "addr", ("ens3", f"{new}/24")),
        (node.netns, "route", (*local, new, None, "ens3", ())),
    }
    vtep = _json(["ip", "-j", "-d", "-n", node.netns, "link", "show", "flannel.1"])[0]
    assert vtep["linkinfo"]["info_data"]["local"] == old
    assert (record.before, record.after) == (old, new)
    expected = between(state, lambda a, b: a != b and node.name in (a, b))
    assert failures(probe.mesh(state, 500)) == expected


def test_underlay_vxlan_port_blocked(fresh: Callable[..., LabState]) -> None:
    state = fresh()
    node, peer, _ = first(state)
    third = state.nodes[2]
    record, removed, added = inject(state, "vxlan-port-blocked")
    assert removed == set()
    assert added == {
        (
            node.netns,
            "iptables",
            (f"filter -A INPUT -s {third.underlay_ip}/32 -p udp -m udp --dport 8472 -j ACCEPT",),
        ),
        (node.netns, "iptables", ("filter -A INPUT -p udp -m udp --dport 8472 -j DROP",)),
    }
    assert record.peer_node == peer.name
    expected = between(state, lambda a, b: {a, b} == {node.name, peer.name})
    assert failures(probe.mesh(state, 500)) == expected
    # The nodes themselves still reach each other on the underlay.
    assert probe.ping(peer.netns, node.underlay_ip).ok


def test_underlay_unreachable_route_to_a_peer(fresh: Callable[..., LabState]) -> None:
    state = fresh()
    node, peer, _ = first(state)
    third = state.nodes[2]
    record, removed, added = inject(state, "peer-ip-unreachable")
    assert removed == set()
    assert added == {
        (node.netns, "route", ("main", "unreachable", peer.underlay_ip, None, None, ())),
    }
    assert record.peer_node == peer.name
    expected = between(state, lambda a, b: {a, b} == {node.name, peer.name})
    assert failures(probe.mesh(state, 500)) == expected
    assert not probe.ping(node.netns, peer.underlay_ip).ok
    assert probe.ping(node.netns, third.underlay_ip).ok


def test_decap_fdb_entry_to_a_port_nobody_listens_on(fresh: Callable[..., LabState]) -> None:
    state = fresh()
    node, peer, _ = first(state)
    record, removed, added = inject(state, "vxlan-fdb-wrong-port")
    entry = (peer.vtep_mac, "flannel.1", peer.underlay_ip)
    [old] = [item for item in removed]
    assert old[:2] == (node.netns, "fdb") and old[2][:4] == (*entry, None)
    assert added == {(node.netns, "fdb", (*entry, 4789, *old[2][4:]))}
    assert record.peer_node == peer.name
    expected = between(state, lambda a, b: {a, b} == {node.name, peer.name})
    assert failures(probe.mesh(state, 500)) == expected


@pytest.mark.parametrize("backend", ["vxlan", "host-gw"])
def test_mtu_underlay_switch_port(fresh: Callable[..., LabState], backend: str) -> None:
    state = fresh(backend)
    node = state.nodes[0]
    full = state.overlay_mtu - 28  # ICMP payload of a full-size pod packet
    assert failures(probe.mesh(state, full)) == set()
    record, removed, added = inject(state, "underlay-port-mtu")
    underlay = state.underlay_netns
    # The port, and the switch's bridge, which follows its smallest port.
    assert {item[:2] for item in removed | added} == {(underlay, "link")}
    assert {item[2][:2] for item in removed} == {(node.underlay_port, 1500), ("br-infra", 1500)}
    assert {item[2][:2] for item in added} == {(node.underlay_port, 1400), ("br-infra", 1400)}
    assert (record.before, record.after) == ("1500", "1400")
    # Small packets cross; full-size ones to and from the node's pods die in the switch.
    assert failures(probe.mesh(state, 56)) == set()
    expected = between(state, lambda a, b: a != b and node.name in (a, b))
    assert failures(probe.mesh(state, full)) == expected


@pytest.mark.parametrize("backend", ["vxlan", "host-gw"])
def test_mtu_bridge_below_its_pods(fresh: Callable[..., LabState], backend: str) -> None:
    state = fresh(backend)
    node = state.nodes[0]
    full = state.overlay_mtu - 28  # ICMP payload of a full-size pod packet
    assert failures(probe.mesh(state, full)) == set()
    record, removed, added = inject(state, "bridge-mtu-stale")
    pod_mtu = int(record.before or 0)
    assert {item[:2] for item in removed | added} == {(node.netns, "link")}
    assert {item[2][:2] for item in removed} == {("cni0", pod_mtu)}
    assert {item[2][:2] for item in added} == {("cni0", pod_mtu - 100)}
    # Small packets cross; full-size requests (DF set) from other nodes to the node's
    # pods die at its bridge. The node's pods still reach out (their echo replies, sent
    # without DF, are fragmented at the bridge), and pods of the node reach each other
    # (bridged, not routed).
    assert failures(probe.mesh(state, 56)) == set()
    expected = between(state, lambda a, b: a != node.name and b == node.name)
    assert failures(probe.mesh(state, full)) == expected


@pytest.mark.parametrize("backend", ["vxlan", "canal"])
def test_sysctl_forwarding_off_on_the_pod_device(
    fresh: Callable[..., LabState], backend: str
) -> None:
    state = fresh(backend)
    node, _, pod = first(state)
    record, removed, added = inject(state, "pod-device-forwarding-off")
    device = pod.host_veth if backend == "canal" else "cni0"
    key = f"net.ipv4.conf.{device}.forwarding"
    assert removed == {(node.netns, "sysctl", (key, "1"))}
    assert added == {(node.netns, "sysctl", (key, "0"))}
    assert record.interface == device
    if backend == "canal":
        expected = touching(state, pod)  # every packet from the pod arrives on its veth
    else:
        expected = between(state, lambda a, b: a != b and node.name in (a, b))
    assert failures(probe.mesh(state, 500)) == expected


def test_link_pod_eth0_down(fresh: Callable[..., LabState]) -> None:
    state = fresh()
    node, _, pod = first(state)
    record, removed, added = inject(state, "pod-eth0-down")
    # eth0 goes down (and the kernel drops the pod's routes); the host veth's bridge port
    # is disabled by the lost carrier.
    assert {item[0] for item in removed | added} == {pod.netns, node.netns}
    assert {item for item in removed | added if item[0] == node.netns} == {
        (node.netns, "port", (pod.host_veth, "forwarding", False)),
        (node.netns, "port", (pod.host_veth, "disabled", False)),
    }
    [old] = [item for item in removed if item[1] == "link"]
    assert old[2][0] == "eth0" and added == {
        (pod.netns, "link", (*old[2][:4], False)),
        (node.netns, "port", (pod.host_veth, "disabled", False)),
    }
    assert {item[1] for item in removed} - {"link", "port"} == {"route"}
    addresses = [item for item in removed | added if item[1] == "addr"]
    assert addresses == []  # it keeps its IP: the API is not wrong about it
    assert record.interface == "eth0"
    assert f"{pod.host_veth} loses carrier and its cni0 port goes disabled" in record.message
    assert failures(probe.mesh(state, 500)) == touching(state, pod)


def test_link_pod_eth0_down_on_canal(fresh: Callable[..., LabState]) -> None:
    state = fresh("canal")
    pod = first(state)[2]
    record, removed, added = inject(state, "pod-eth0-down")
    assert f"{pod.host_veth} loses carrier)" in record.message
    # The cali veth only loses carrier: its /32 route stays (marked linkdown), so the
    # node's namespace shows no change at all.
    assert {item[0] for item in removed | added} == {pod.netns}
    [old] = [item for item in removed if item[1] == "link"]
    assert added == {(pod.netns, "link", (*old[2][:4], False))}
    assert {item[1] for item in removed} == {"link", "route"}
    assert failures(probe.mesh(state, 500)) == touching(state, pod)


def _echo_requests(ns: str) -> int:
    """ICMP echo requests the namespace's kernel has received (its own /proc/net/snmp)."""
    out = subprocess.run(
        ["nsenter", f"--net=/run/netns/{ns}", "cat", "/proc/net/snmp"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    names, values = [line.split() for line in out.splitlines() if line.startswith("Icmp:")][:2]
    return int(values[names.index("InEchos")])


def test_deliver_pod_ip_duplicate(fresh: Callable[..., LabState]) -> None:
    state = fresh()
    node, peer, pod = first(state)
    record, removed, added = inject(state, "pod-ip-duplicate")
    newcomer = next(p for p in api.status(state.name).nodes[0].pods if p.netns == record.netns)
    assert (newcomer.ip, newcomer.netns) == (pod.ip, record.netns) and newcomer.name != pod.name
    assert record.pod == pod.ref and record.after == newcomer.ref
    # The node gains the new pod's veth on its bridge (its link, port, the bridge's
    # permanent entry for the veth's MAC and the new device's sysctls); nothing else of
    # the lab changes.
    veth = _json(["ip", "-j", "-n", node.netns, "link", "show", "dev", newcomer.host_veth])
    key = f"net.ipv4.conf.{newcomer.host_veth}"
    assert removed == set()
    assert {(item[0], item[1], item[2][0]) for item in added} == {
        (node.netns, "link", newcomer.host_veth),
        (node.netns, "port", newcomer.host_veth),
        (node.netns, "fdb", veth[0]["address"]),
        (node.netns, "sysctl", f"{key}.forwarding"),
        (node.netns, "sysctl", f"{key}.proxy_arp"),
    }
    pods = json.loads((Path(state.kube_dir) / "pods.json").read_text())["items"]
    assert sorted(i["metadata"]["name"] for i in pods if i["status"]["podIP"] == pod.ip) == sorted(
        [pod.name, newcomer.name]
    )
    # A peer's pod pings the address and gets answers, from the wrong pod: the node's
    # neighbour entry took every request to the newcomer, none reached the pod.
    before = _echo_requests(pod.netns), _echo_requests(newcomer.netns)
    sender = peer.pods[0].netns
    sent = subprocess.run(
        ["ip", "netns", "exec", sender, "ping", "-c", "3", "-i", "0.2", "-W", "1", pod.ip],
        capture_output=True,
        check=False,
    )
    after = _echo_requests(pod.netns), _echo_requests(newcomer.netns)
    assert sent.returncode == 0
    assert after[0] - before[0] == 0 and after[1] - before[1] >= 3


def test_every_step_has_a_fault_and_the_catalogue_lists_them() -> None:
    from needle.lab import faults

    steps = {fault.step for fault in pathfaults.FAULTS}
    assert steps == {
        "link",
        "route",
        "neigh",
        "fdb",
        "bridge",
        "filter",
        "nat",
        "encap",
        "underlay",
        "decap",
        "mtu",
        "sysctl",
        "deliver",
    }
    for fault in pathfaults.FAULTS:
        assert faults.CATALOGUE[fault.name] is fault
        assert fault.name in faults.help_text()
    assert Path(faults.__file__).exists()
