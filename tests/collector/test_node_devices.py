"""The node script finds a data plane's devices by kind, never by name: overlays, pod
bridges, routed pod veths and the underlay, in real network namespaces; the underlay
filter follows the VXLAN device's own port.

Every device lives in namespaces made here (prefix ndlk<pid>), wired only to each
other; the only traffic is a ping inside a node namespace whose VXLAN packets go to a
peer namespace made here."""

from __future__ import annotations

import os
import struct
import subprocess
from collections.abc import Iterator

import jsonschema
import pytest
from needle.analyzer.bundle import open_bundle
from needle.analyzer.bundle.manifest import manifest_schema
from needle.collector.collect import CollectOptions, collect
from needle.collector.progress import Progress
from needle.collector.script.render import ScriptArgs, render
from needle.collector.spec.loader import parse_spec
from needle.collector.transports.netns import NetnsTarget
from test_node_script import SHELLS, command, members, records, run

pytestmark = [pytest.mark.root, pytest.mark.tools("dash", "busybox", "tcpdump", "nsenter")]

TAG = f"ndlk{os.getpid()}"


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def make_namespaces(names: list[str], links: list[str]) -> None:
    for name in names:
        ip("netns", "add", name)
    for line in links:
        ip(*line.split())


def delete_namespaces(names: list[str]) -> None:
    for name in names:
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


@pytest.fixture(scope="module")
def bridged() -> Iterator[dict[str, str]]:
    """A node with a bridge and a VXLAN device named like no data plane's, plus a
    second VXLAN device on another port (no dev)."""
    n, p, o = f"{TAG}-bn", f"{TAG}-bp", f"{TAG}-bo"
    links = [
        f"-n {n} link add nlbr0 type bridge",
        f"-n {n} link add vethbb01 type veth peer name eth0 netns {p}",
        f"-n {n} link set vethbb01 master nlbr0",
        f"-n {n} addr add 10.244.7.1/24 dev nlbr0",
        f"-n {n} link add up0 type veth peer name up1 netns {o}",
        f"-n {n} addr add 10.231.0.1/24 dev up0",
        f"-n {o} addr add 10.231.0.2/24 dev up1",
        f"-n {n} link add vxlan.ndl type vxlan id 7 dstport 4789 dev up0 "
        "local 10.231.0.1 nolearning",
        f"-n {n} link add nlvx9 type vxlan id 9 dstport 8472 nolearning",
        f"-n {n} addr add 10.232.7.1/24 dev vxlan.ndl",
        # a peer VTEP in the other namespace: pings to 10.232.7.2 leave up0 as VXLAN
        f"-n {n} neigh add 10.232.7.2 lladdr 02:00:00:00:07:02 dev vxlan.ndl",
        f"-n {o} link set up1 up",
    ]
    for dev in ("nlbr0", "vethbb01", "up0", "vxlan.ndl", "nlvx9"):
        links.append(f"-n {n} link set {dev} up")
    links.append(f"-n {p} link set eth0 up")
    try:
        make_namespaces([n, p, o], links)
        fdb = "fdb append 02:00:00:00:07:02 dev vxlan.ndl dst 10.231.0.2"
        subprocess.run(["bridge", "-n", n, *fdb.split()], check=True, capture_output=True)
        yield {"node": n, "pod": p, "other": o}
    finally:
        delete_namespaces([n, p, o])


@pytest.fixture(scope="module")
def routed() -> Iterator[dict[str, str]]:
    """A routed-pod node (Canal-like): veths with no master, a VXLAN device without a
    dev, the underlay found through the default route."""
    n, p, q, o = f"{TAG}-rn", f"{TAG}-rp", f"{TAG}-rq", f"{TAG}-ro"
    links = [
        f"-n {n} link add calie2e0a1 type veth peer name eth0 netns {p}",
        f"-n {n} link add calie2e0a2 type veth peer name eth0 netns {q}",
        f"-n {n} link add upr0 type veth peer name upr1 netns {o}",
        f"-n {n} addr add 10.233.0.1/24 dev upr0",
        f"-n {n} link add nlvx0 type vxlan id 1 dstport 4790 nolearning",
    ]
    for dev in ("calie2e0a1", "calie2e0a2", "upr0", "nlvx0"):
        links.append(f"-n {n} link set {dev} up")
    links.append(f"-n {n} route add default via 10.233.0.2 dev upr0")
    try:
        make_namespaces([n, p, q, o], links)
        yield {"node": n, "pods": f"{p} {q}", "other": o}
    finally:
        delete_namespaces([n, p, q, o])


@pytest.fixture(scope="module")
def hostgw() -> Iterator[dict[str, str]]:
    """No overlay at all (host-gw): a pod bridge and a default route only."""
    n, p, o = f"{TAG}-hn", f"{TAG}-hp", f"{TAG}-ho"
    links = [
        f"-n {n} link add nlbr1 type bridge",
        f"-n {n} link add vethhh01 type veth peer name eth0 netns {p}",
        f"-n {n} link set vethhh01 master nlbr1",
        f"-n {n} addr add 10.244.9.129/25 dev nlbr1",
        f"-n {n} link add uph0 type veth peer name uph1 netns {o}",
        f"-n {n} addr add 10.234.0.1/24 dev uph0",
    ]
    for dev in ("nlbr1", "vethhh01", "uph0"):
        links.append(f"-n {n} link set {dev} up")
    links.append(f"-n {n} route add default via 10.234.0.2 dev uph0")
    try:
        make_namespaces([n, p, o], links)
        yield {"node": n, "pod": p, "other": o}
    finally:
        delete_namespaces([n, p, o])


def captures(recs: list[list[str]]) -> list[dict[str, str]]:
    keys = ("interface", "output", "filter", "rc", "error", "role", "skipped")
    return [dict(zip(keys, r[1:8], strict=True)) for r in recs if r[0] == "P"]


def taken(recs: list[list[str]]) -> dict[str, dict[str, str]]:
    """The captures attempted, by output file."""
    return {c["output"]: c for c in captures(recs) if c["skipped"] == "-"}


def skipped(recs: list[list[str]]) -> dict[tuple[str, str], str]:
    """Why each capture not taken was skipped, by (role, filter as the spec wrote it)."""
    return {(c["role"], c["filter"]): c["skipped"] for c in captures(recs) if c["skipped"] != "-"}


def udp_dports(pcap: bytes) -> list[int]:
    """Destination ports of the IPv4/UDP packets in an Ethernet pcap."""
    magic = struct.unpack("<I", pcap[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    ports, offset = [], 24
    while offset + 16 <= len(pcap):
        caplen = struct.unpack(endian + "IIII", pcap[offset : offset + 16])[2]
        frame = pcap[offset + 16 : offset + 16 + caplen]
        offset += 16 + caplen
        if len(frame) >= 42 and frame[12:14] == b"\x08\x00" and frame[23] == 17:
            ihl = (frame[14] & 0x0F) * 4
            ports.append(struct.unpack(">H", frame[14 + ihl + 2 : 14 + ihl + 4])[0])
    return ports


@pytest.mark.parametrize("shell", SHELLS, ids=["dash", "busybox"])
def test_overlays_bridge_and_underlay_are_found_by_kind(bridged, shell):
    node = bridged["node"]
    # VXLAN packets to the peer VTEP for the whole window (inside the node namespace)
    pinger = subprocess.Popen(
        ["ip", "netns", "exec", node, "ping", "-q", "-c", "30", "-i", "0.1", "10.232.7.2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        result = run(shell, render(), node, ScriptArgs(capture_seconds=2, node_netns=node))
    finally:
        pinger.kill()
        pinger.wait()
    assert result.returncode == 0, result.stderr
    found = members(result.stdout)
    recs = records(found)
    by_output = taken(recs)
    assert {(c["role"], c["interface"]) for c in by_output.values()} == {
        ("underlay", "up0"),
        ("overlay", "vxlan.ndl"),
        ("overlay", "nlvx9"),
        ("bridge", "nlbr0"),
    }
    assert set(by_output) == {
        "underlay-vxlan.pcap",
        "vxlan.ndl.pcap",
        "nlvx9.pcap",
        "nlbr0.pcap",
        "underlay-pods.pcap",
    }
    # both VXLAN devices' own ports, none named in the spec
    assert by_output["underlay-vxlan.pcap"]["filter"] == "(udp port 4789) or (udp port 8472)"
    # the pods' own network, as the bridge holds it
    assert by_output["underlay-pods.pcap"]["filter"] == "net 10.244.7.0/24"
    assert by_output["underlay-pods.pcap"]["interface"] == "up0"
    assert all(c["error"] == "-" and c["rc"] == "0" for c in by_output.values())
    assert skipped(recs) == {}
    pcap = found["captures/underlay-vxlan.pcap"]
    assert 4789 in udp_dports(pcap), "the ping's VXLAN packets were captured"
    assert found["captures/vxlan.ndl.pcap"] and found["captures/nlbr0.pcap"]
    for dev in ("up0", "vxlan.ndl", "nlvx9", "nlbr0"):
        for cid, name in (("ethtool-k", "features"), ("ethtool-i", "driver")):
            record = command(recs, cid, "-", dev)
            assert record[4] == f"host/ethtool/{dev}/{name}.txt"
    assert b"vxlan" in found["host/ethtool/vxlan.ndl/driver.txt"]


@pytest.mark.parametrize("shell", SHELLS, ids=["dash", "busybox"])
def test_routed_pods_have_no_bridge_capture_and_say_why(routed, shell):
    node = routed["node"]
    result = run(shell, render(), node, ScriptArgs(capture_seconds=1, node_netns=node))
    assert result.returncode == 0, result.stderr
    found = members(result.stdout)
    recs = records(found)
    by_output = taken(recs)
    assert set(by_output) == {"nlvx0.pcap", "underlay-vxlan.pcap"}
    # no dev on the VXLAN device: the default route's device
    assert by_output["underlay-vxlan.pcap"]["interface"] == "upr0"
    assert by_output["underlay-vxlan.pcap"]["filter"] == "udp port 4790"
    why = skipped(recs)
    assert set(why) == {("bridge", "-"), ("underlay", "net {pod_net}")}
    assert "routed veths" in why["bridge", "-"] and "2 on this node" in why["bridge", "-"]
    assert "upr0" not in why["bridge", "-"], "the underlay is no pod"
    assert "no pod bridge with an IPv4 network" in why["underlay", "net {pod_net}"]
    bridge = next(c for c in captures(recs) if c["role"] == "bridge")
    assert bridge["interface"] == "-" and bridge["output"] == "-"
    assert not any(name.startswith("captures/") and "bridge" in name for name in found)
    # both routed pods are collected as this node's
    namespaces = sorted(r[3] for r in recs if r[0] == "N")
    assert namespaces == sorted(routed["pods"].split())


@pytest.mark.parametrize("shell", SHELLS, ids=["dash", "busybox"])
def test_a_node_without_overlay_skips_overlay_and_underlay_filter(hostgw, shell):
    node = hostgw["node"]
    result = run(shell, render(), node, ScriptArgs(capture_seconds=1, node_netns=node))
    assert result.returncode == 0, result.stderr
    recs = records(members(result.stdout))
    by_output = taken(recs)
    assert set(by_output) == {"nlbr1.pcap", "underlay-pods.pcap"}
    # host-gw: the pods' packets cross the underlay as they are; host bits masked off
    assert by_output["underlay-pods.pcap"]["filter"] == "net 10.244.9.128/25"
    assert by_output["underlay-pods.pcap"]["interface"] == "uph0"
    why = skipped(recs)
    assert set(why) == {("overlay", "-"), ("underlay", "udp port {vxlan_dstport}")}
    assert "no overlay device (of kind vxlan wireguard)" in why["overlay", "-"]
    assert "no VXLAN device" in why["underlay", "udp port {vxlan_dstport}"]
    assert not any(r[0] == "E" for r in recs), "a missing overlay is no error"


def test_no_capture_means_no_capture_records(routed):
    node = routed["node"]
    result = run(["dash"], render(), node, ScriptArgs(node_netns=node))
    assert result.returncode == 0, result.stderr
    assert captures(records(members(result.stdout))) == []


# `ip -d -o link show` as a node with WireGuard (no such kernel module needed), veths
# whose peer is named by nsid, a host bridge holding only the uplink, and a VXLAN device
# with an XDP program and an altname.
ETHER = "link/ether 0e:00:00:00:00:01 brd ff:ff:ff:ff:ff:ff"
UP = "<BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue"
WG = "<POINTOPOINT,NOARP,UP,LOWER_UP> mtu 1420 qdisc noqueue"
VXLAN = "vxlan id 4096 local 192.0.2.10 dev br-host srcport 0 0 dstport 4789 nolearning"
CANNED_LINKS = "".join(
    " \\    ".join(parts) + "\n"
    for parts in [
        ("1: lo: <LOOPBACK,UP> mtu 65536 state UNKNOWN", "link/loopback 00:00:00:00:00:00"),
        (f"2: br-host: {UP} state UP mode DEFAULT", f"{ETHER} promiscuity 0", "bridge hello 2"),
        (f"3: ens3: {UP} master br-host state UP", f"{ETHER} promiscuity 1", "bridge_slave"),
        (f"4: flannel-wg: {WG} state UNKNOWN", "link/none  promiscuity 0", "wireguard x"),
        (f"5: flannel-wg-v6: {WG} state UNKNOWN", "link/none  promiscuity 0", "wireguard x"),
        (f"6: lxc12ab@if5: {UP} state UP", f"{ETHER} link-netnsid 0 promiscuity 0", "veth x"),
        (f"7: lxc34cd@if5: {UP} state UP", f"{ETHER} link-netnsid 1 promiscuity 0", "veth x"),
        # an XDP program before the kind, an altname after it
        (f"8: vxlan.calico: {UP} state UP", ETHER, "prog/xdp id 12", VXLAN, "altname vxc"),
    ]
)
CANNED_ROUTE = "default via 192.0.2.1 dev br-host proto dhcp metric 100 \n"
CAPTURE_ONLY = """
commands:
  - {id: nothing, scope: host, argv: ["true"], output: nothing.txt}
devices: {overlay: [vxlan, wireguard], pod_ports: [veth]}
captures:
  - {devices: underlay, filter: "udp port {vxlan_dstport}", output: underlay-vxlan.pcap}
  - {devices: overlay, output: "{interface}.pcap", max_devices: 1}
  - {devices: bridge, output: "{interface}.pcap"}
  - {devices: underlay, filter: "net {pod_net}", output: underlay-pods.pcap}
"""


@pytest.fixture
def canned_ip(tmp_path):
    """A PATH whose `ip` prints CANNED_LINKS / CANNED_ROUTE; everything else is real."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "links").write_text(CANNED_LINKS)
    (tmp_path / "route").write_text(CANNED_ROUTE)
    (bin_dir / "ip").write_text(
        "#!/bin/sh\n"
        'case "$*" in\n'
        f'  *"-d -o link show"*) cat {tmp_path}/links ;;\n'
        f'  *"-4 -o route show default"*) cat {tmp_path}/route ;;\n'
        "  *) exit 1 ;;\n"
        "esac\n"
    )
    (bin_dir / "ip").chmod(0o755)
    return f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"


@pytest.fixture
def empty_node():
    """An empty namespace: none of the canned devices exists, so no tcpdump starts."""
    name = f"{TAG}-en"
    ip("netns", "add", name)
    try:
        yield name
    finally:
        delete_namespaces([name])


@pytest.mark.parametrize("shell", SHELLS, ids=["dash", "busybox"])
def test_wireguard_overlay_routed_veths_by_nsid_and_no_host_bridge(empty_node, canned_ip, shell):
    argv = ["ip", "netns", "exec", empty_node, "env", f"PATH={canned_ip}", *shell]
    argv += ["-s", "--", *ScriptArgs(capture_seconds=1).argv()]
    result = subprocess.run(
        argv,
        input=render(parse_spec(CAPTURE_ONLY)).encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    recs = captures(records(members(result.stdout)))
    by_role: dict[str, list[dict[str, str]]] = {}
    for capture in recs:
        by_role.setdefault(capture["role"], []).append(capture)
    # WireGuard is an overlay by kind; the second is over the per-role limit of 1
    overlay = by_role["overlay"]
    assert overlay[0]["interface"] == "flannel-wg" and "no interface" in overlay[0]["error"]
    assert overlay[1]["skipped"] == (
        "not captured (at most 1 per role): flannel-wg-v6 vxlan.calico"
    )
    # a bridge holding only the uplink is no pod bridge; the veths are routed pods
    (bridge,) = by_role["bridge"]
    assert (
        "routed veths" in bridge["skipped"]
        and "(2 on this node, e.g. lxc12ab)" in (bridge["skipped"])
    )
    # the VXLAN device's dev and port, found past its XDP part
    underlay = by_role["underlay"]
    assert (underlay[0]["interface"], underlay[0]["filter"]) == ("br-host", "udp port 4789")
    assert underlay[1]["filter"] == "net {pod_net}" and "no pod bridge" in underlay[1]["skipped"]


def test_capture_roles_reach_the_manifest_and_validate(routed, tmp_path):
    options = CollectOptions(
        output=tmp_path / "b.tar.gz",
        targets=[NetnsTarget(netns=routed["node"], node="routed-node")],
        capture_seconds=1,
    )
    with Progress(live=False) as progress:
        collect(options, progress)
    with open_bundle(options.output) as bundle:
        manifest = bundle.manifest
        jsonschema.validate(manifest, manifest_schema())
        (node,) = manifest["nodes"]
        roles = [c["role"] for c in node["captures"]]
        assert roles == ["underlay", "overlay", "bridge", "underlay"]
        underlay, overlay, bridge, pods = node["captures"]
        assert bridge["interface"] == "" and bridge["file"] is None and bridge["error"] is None
        assert bridge["skipped"].startswith("no pod bridge: pods attach through routed veths")
        assert underlay["interface"] == "upr0" and underlay["filter"] == "udp port 4790"
        assert underlay["skipped"] is None and underlay["file"].endswith("underlay-vxlan.pcap")
        assert overlay["file"].endswith("/captures/nlvx0.pcap")
        assert pods["filter"] == "net {pod_net}" and pods["skipped"] and pods["file"] is None
        assert node["status"] == "ok", node["errors"]
