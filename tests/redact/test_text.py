"""TextRewriter on the real outputs of a lab bundle: route -n, arp -n, brctl show,
ip -d -j link, sysctl, iptables-save, ip-addr.json (IPv6); what only looks like an
address; names as words; member paths; bytes that are not UTF-8; determinism."""

from __future__ import annotations

import ipaddress
import json
import re
import tarfile
from functools import cache
from pathlib import Path

import pytest
from needle.redact.addresses import AddressMapper
from needle.redact.archive import read_members
from needle.redact.keys import RedactionKeys
from needle.redact.macs import MacMapper
from needle.redact.names import NameMap
from needle.redact.scan import scan
from needle.redact.text import TextRewriter

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
HEALTHY = "lab-healthy.tar.gz"
SNAT = "lab-snat-pod-traffic.tar.gz"
KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
HOST = "nodes/lab-node-1/host/"
VETH = "veth4d2cdbc3"  # lab-node-1's first pod veth in lab-healthy
MAC_RE = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}")


@cache
def members(sample: str) -> dict[str, bytes]:
    with tarfile.open(SAMPLES / sample) as tar:
        return {
            info.name: tar.extractfile(info).read()  # type: ignore[union-attr]
            for info in tar
            if info.isreg()
        }


def rewriter(sample: str = HEALTHY, secret: bytes = KEY, nodes: tuple[str, ...] = ()):
    """A rewriter built as `needle redact` builds it: the sample scanned first."""
    keys = RedactionKeys.from_secret(secret)
    names = NameMap(keys.names)
    inventory = scan(read_members(SAMPLES / sample), names)
    for node in nodes:
        names.register("node", node)
    macs = MacMapper(keys.macs)
    addresses = AddressMapper(keys.addresses, macs, inventory.regions)
    return TextRewriter(addresses, macs, names)


def text(sample: str, member: str) -> str:
    return members(sample)[member].decode()


def rows(output: str) -> list[list[str]]:
    return [line.split() for line in output.splitlines()]


def mapped_mac(rw: TextRewriter, mac: str) -> str:
    return rw.macs.map_text(mac)


def unpadded(mac: str) -> str:
    return ":".join(f"{int(octet, 16):x}" for octet in mac.split(":"))


# --- route -n ---------------------------------------------------------------------------
def test_route_n_maps_destinations_and_gateways_and_keeps_netmasks() -> None:
    rw = rewriter()
    original = text(HEALTHY, HOST + "route-n.txt")
    out = rw.text(original)
    before, after = rows(original), rows(out)
    assert out.splitlines()[:2] == original.splitlines()[:2]  # the two header lines
    assert len(after) == len(before)
    for old, new in zip(before[2:], after[2:], strict=True):
        destination, gateway, genmask = old[:3]
        assert new[2] == genmask  # 255.255.255.0 / 0.0.0.0: netmasks are constants
        assert new[3:] == old[3:]  # flags, metric, ref, use, iface
        for column, value in ((0, destination), (1, gateway)):
            if value == "0.0.0.0":
                assert new[column] == "0.0.0.0"
            else:
                assert new[column] != value
                ipaddress.IPv4Address(new[column])  # still an address
    # host bits kept in the known subnets: the pod CIDR's network is still .0, the
    # node subnet's gateway still .1, and the bridge's 10.244.1.1 is in the mapped /24
    by_iface = {row[-1]: row for row in after[2:]}
    cni = ipaddress.IPv4Network(f"{by_iface['cni0'][0]}/24")
    assert ipaddress.IPv4Address(rw.text("10.244.1.1")) in cni
    assert rw.text("10.244.1.1").endswith(".1")
    default = after[2]
    assert default[0] == "0.0.0.0" and default[1].endswith(".1")
    # a peer's VTEP route: gateway equals destination before, so also after
    peers = [row for row in after[2:] if row[-1] == "flannel.1"]
    assert peers and all(row[0] == row[1] for row in peers)


# --- arp -n -----------------------------------------------------------------------------
def test_arp_n_maps_addresses_and_macs_consistently_with_other_files() -> None:
    rw = rewriter()
    original = text(HEALTHY, HOST + "arp-n.txt")
    route = rw.text(text(HEALTHY, HOST + "route-n.txt"))
    out = rw.text(original)
    before, after = rows(original), rows(out)
    assert after[0] == before[0]
    assert len(after) == len(before) == 6
    for old, new in zip(before[1:], after[1:], strict=True):
        address, hwtype, mac = old[:3]
        assert new[1] == hwtype and new[3:] == old[3:]
        assert new[0] != address and new[0] == rw.text(address)
        assert new[2] != mac and new[2] == mapped_mac(rw, mac)
        # the locally administered and multicast bits survive the mapping
        assert int(new[2][:2], 16) & 0x03 == int(mac[:2], 16) & 0x03
    # the peers' VTEPs (flannel.1 neighbours) are the same values route -n shows
    vteps = {row[0] for row in after[1:] if row[-1] == "flannel.1"}
    assert vteps and vteps <= {row[0] for row in rows(route)[2:]}


# --- brctl show / ip -d -j link ---------------------------------------------------------
def cni0(links: list[dict]) -> dict:
    return next(link for link in links if link["ifname"] == "cni0")


def test_brctl_bridge_id_follows_the_bridge_mac() -> None:
    rw = rewriter()
    links = json.loads(members(HEALTHY)[HOST + "ip-link.json"])
    mac = cni0(links)["address"]
    original = text(HEALTHY, HOST + "brctl-show.txt")
    assert f"8000.{mac.replace(':', '')}" in original  # the sample is what we think
    out = rw.text(original)
    assert f"8000.{mapped_mac(rw, mac).replace(':', '')}" in out
    assert mac.replace(":", "") not in out
    assert out.splitlines()[0] == original.splitlines()[0]
    # the ports: veth names mapped, as the interface map has them
    assert VETH not in out
    assert rw.names.interface(VETH) in out
    assert "\tno\t" in out and out.count("\n") == original.count("\n")


def test_ip_link_json_unpadded_bridge_id_follows_the_bridge_mac() -> None:
    rw = rewriter()
    original = members(HEALTHY)[HOST + "ip-link.json"]
    before = json.loads(original)
    after = json.loads(rw.data(original))
    assert len(after) == len(before)
    old, new = cni0(before), cni0(after)
    assert old["linkinfo"]["info_data"]["bridge_id"] == "8000." + unpadded(old["address"])
    assert new["address"] == mapped_mac(rw, old["address"])
    assert new["linkinfo"]["info_data"]["bridge_id"] == "8000." + unpadded(new["address"])
    assert new["linkinfo"]["info_data"]["root_id"] == new["linkinfo"]["info_data"]["bridge_id"]
    # constants stay: the STP group address, the broadcast MAC, lo's zero MAC
    assert new["linkinfo"]["info_data"]["group_addr"] == "01:80:c2:00:00:00"
    assert new["broadcast"] == "ff:ff:ff:ff:ff:ff"
    assert after[0]["address"] == "00:00:00:00:00:00"
    # the meaningful interface names stay, the veth names are mapped
    names_after = [link["ifname"] for link in after]
    for kept in ("lo", "ens3", "cni0", "flannel.1"):
        assert kept in names_after
    assert VETH not in names_after and rw.names.interface(VETH) in names_after


def test_unpadded_bridge_id_with_single_digit_octets() -> None:
    rw = rewriter()
    mac = "62:05:29:19:ca:05"
    out = rw.text('"bridge_id":"8000.62:5:29:19:ca:5","x":"62:05:29:19:ca:05"')
    assert out == f'"bridge_id":"8000.{unpadded(mapped_mac(rw, mac))}","x":"{mapped_mac(rw, mac)}"'
    assert rw.text("8000.620529" + "19ca05") == "8000." + mapped_mac(rw, mac).replace(":", "")


# --- sysctl -----------------------------------------------------------------------------
def test_sysctl_interface_keys_are_mapped_like_the_interface() -> None:
    rw = rewriter()
    original = text(HEALTHY, HOST + "sysctl-net.txt")
    out = rw.text(original)
    mapped = rw.names.interface(VETH)
    assert re.fullmatch(r"veth[0-9a-f]{8}", mapped) and mapped != VETH
    assert f"net/ipv4/conf/{VETH}/rp_filter = 0" in original
    assert f"net/ipv4/conf/{mapped}/rp_filter = 0\n" in out
    assert VETH not in out
    for kept in ("net/ipv4/conf/cni0/rp_filter", "net/ipv4/conf/flannel.1/forwarding"):
        assert kept in out
    assert "net/ipv4/ip_forward = 1" in out
    assert len(out.splitlines()) == len(original.splitlines())
    # the dotted spelling of the same key (sysctl -a)
    assert rw.text(f"net.ipv4.conf.{VETH}.rp_filter = 2") == f"net.ipv4.conf.{mapped}.rp_filter = 2"


# --- iptables-save ----------------------------------------------------------------------
def test_iptables_save_networks_stay_networks() -> None:
    rw = rewriter(SNAT)
    original = text(SNAT, HOST + "iptables-save.txt")
    out = rw.text(original)
    rule = next(line for line in out.splitlines() if line.startswith("-A POSTROUTING"))
    match = re.fullmatch(r"-A POSTROUTING -s (\S+) ! -d (\S+) -j SNAT --to-source (\S+)", rule)
    assert match is not None, rule
    source, destination, snat = match.groups()
    assert source == destination != "10.244.1.0/24"
    network = ipaddress.IPv4Network(source)  # strict: the host bits are zero
    assert network.prefixlen == 24
    assert ipaddress.IPv4Address(rw.text("10.244.1.7")) in network
    assert snat == rw.text("192.168.122.250") != "192.168.122.250"
    # the comment lines (version, date, time) and the counters are not addresses
    keep = [line for line in original.splitlines() if line.startswith(("#", ":", "*", "COMMIT"))]
    assert keep and all(line in out.splitlines() for line in keep)
    assert "v1.8.9" in out and "01:06:09" in out


@pytest.mark.parametrize(
    ("network", "inside"),
    [("10.244.0.0/16", "10.244.3.17"), ("172.16.0.0/12", "172.20.9.9"), ("0.0.0.0/0", "8.8.8.8")],
)
def test_a_network_maps_to_the_network_holding_its_mapped_addresses(network, inside) -> None:
    rw = rewriter(SNAT)
    out = rw.text(f"-A FORWARD -s {network} -j ACCEPT")
    mapped = out.split()[3]
    parsed = ipaddress.IPv4Network(mapped)  # strict: still a network
    assert parsed.prefixlen == ipaddress.IPv4Network(network).prefixlen
    assert ipaddress.IPv4Address(rw.text(inside)) in parsed
    if network != "0.0.0.0/0":
        assert mapped != network


def test_an_address_with_a_prefix_length_keeps_its_host_bits_mapping() -> None:
    rw = rewriter()
    # ip addr's 10.244.1.1/24 is the address 10.244.1.1 on a /24, not a network
    assert rw.text("inet 10.244.1.1/24 brd") == f"inet {rw.text('10.244.1.1')}/24 brd"


# --- IPv6 -------------------------------------------------------------------------------
def _eui64(mac: str) -> str:
    octets = bytes.fromhex(mac.replace(":", ""))
    iid = bytes((octets[0] ^ 0x02, *octets[1:3], 0xFF, 0xFE, *octets[3:]))
    return str(ipaddress.IPv6Address(b"\xfe\x80" + b"\0" * 6 + iid))


def test_link_local_ipv6_follows_the_mapped_mac_and_loopback_stays() -> None:
    rw = rewriter()
    original = members(HEALTHY)[HOST + "ip-addr.json"]
    before, after = json.loads(original), json.loads(rw.data(original))
    checked = 0
    for old, new in zip(before, after, strict=True):
        for old_addr, new_addr in zip(old["addr_info"], new["addr_info"], strict=True):
            if old_addr["local"] == "::1":
                assert new_addr["local"] == "::1"
            if old_addr["family"] != "inet6" or not old_addr["local"].startswith("fe80:"):
                continue
            assert new_addr["local"].startswith("fe80::")
            assert new_addr["prefixlen"] == 64
            if old_addr["local"] == _eui64(old["address"]):
                assert new_addr["local"] == _eui64(new["address"]) != old_addr["local"]
                checked += 1
    assert checked >= 2  # ens3 and flannel.1 at least
    assert rw.text("fe80::/64 dev ens3") == "fe80::/64 dev ens3"
    assert rw.text("::1 dev lo") == "::1 dev lo"


def test_global_ipv6_is_mapped_and_networks_stay_networks() -> None:
    rw = rewriter()
    address = rw.text("2001:db8:7:1::42")
    assert address != "2001:db8:7:1::42"
    network = ipaddress.IPv6Network(rw.text("2001:db8:7:1::/64"))
    assert ipaddress.IPv6Address(address) in network


@pytest.mark.parametrize(
    ("line", "v4"),
    [
        ("tcp ESTAB ::ffff:10.244.1.2 peer", "10.244.1.2"),
        ("tcp LISTEN [::ffff:192.168.122.11]:6443 *", "192.168.122.11"),
    ],
)
def test_an_ipv4_mapped_ipv6_address_is_mapped_whole(line: str, v4: str) -> None:
    # ss and conntrack print a dual-stack socket's peer as ::ffff:a.b.c.d; it must map
    # to ::ffff: and the IPv4 address's mapping, not to garbage that keeps 3 octets
    rw = rewriter()
    assert rw.text(line) == line.replace(v4, rw.text(v4))
    assert v4.split(".", 1)[1] not in rw.text(line)


# --- what looks like an address but is not ------------------------------------------------
@pytest.mark.parametrize(
    "value",
    [
        "iptables-save v1.9.8 (nf_tables)",
        "version 1.9.8",
        "Mon Dec  7 10:07:05 2026",
        "uptime 10:07:05 up 3 days",
        "256.1.1.1",
        "1.2.3.999",
        "OID 1.3.6.1.2.1.2.2",
        "Linux 5.15.0-100-generic",
        ":INPUT ACCEPT [0:0]",
        "--dport 30000:32767",
        "de:ad:be",
        "sha256 AB:CD:EF:01:23:45:67:89:AB:CD:EF:01",
        "mtu 1450 qdisc noqueue master cni0 state UP",
    ],
)
def test_what_only_looks_like_an_address_is_kept(value: str) -> None:
    rw = rewriter()
    assert rw.text(value) == value
    assert rw.counts.addresses == 0 and rw.counts.macs == 0


def test_leading_zero_octets_are_the_address_they_spell() -> None:
    rw = rewriter()
    out = rw.text("neighbour 10.01.02.03 lladdr")
    assert out == f"neighbour {rw.text('10.1.2.3')} lladdr"
    assert "10.01.02.03" not in out


def test_addresses_with_ports_and_punctuation_around_them() -> None:
    rw = rewriter()
    a = rw.text("192.168.122.12")
    assert rw.text("192.168.122.12:6443,") == f"{a}:6443,"
    assert rw.text("(192.168.122.12).") == f"({a})."
    assert rw.text("[fd00::5]:53") == f"[{rw.text('fd00::5')}]:53"


# --- names ------------------------------------------------------------------------------
def test_hyphenated_node_and_pod_names_are_replaced_as_words() -> None:
    rw = rewriter()
    node = rw.names.lookup("lab-node-1")
    pod = rw.names.lookup("web-mgcn8tkxjm-hrg7v")
    assert re.fullmatch(r"node-[0-9a-f]{10}", node)
    assert re.fullmatch(r"pod-[0-9a-f]{10}-mgcn8tkxjm-hrg7v", pod)
    out = rw.text("pod default/web-mgcn8tkxjm-hrg7v on lab-node-1: ready (lab-node-1)")
    assert out == f"pod default/{pod} on {node}: ready ({node})"
    # only whole names: a longer name that merely starts like one is not cut up
    assert rw.text("lab-node-10 lab-node-1x") == "lab-node-10 lab-node-1x"
    # a pod's plain-word stem (`web`) is left in prose
    assert rw.text("the web tier") == "the web tier"


def test_a_plain_word_node_name_is_kept_in_tool_text_but_mapped_in_paths() -> None:
    rw = rewriter(nodes=("master",))
    line = "5: veth4d2cdbc3@if2: <BROADCAST,UP> mtu 1450 master cni0 state UP"
    out = rw.text(line)
    assert "master cni0" in out
    assert out == line.replace(VETH, rw.names.interface(VETH))
    token = rw.names.lookup("master")
    assert rw.path("nodes/master/host/ip-link.json") == f"nodes/{token}/host/ip-link.json"


def test_dotted_hostnames_have_their_name_label_mapped() -> None:
    rw = rewriter()
    node = rw.names.lookup("lab-node-1")
    assert rw.text("lab-node-1.example.com") == f"{node}.example.com"
    assert rw.text("ssh root@lab-node-2.corp.example.com.") == (
        f"ssh root@{rw.names.lookup('lab-node-2')}.corp.example.com."
    )
    assert rw.text("www.example.com") == "www.example.com"


def test_member_paths_are_mapped_like_their_contents() -> None:
    rw = rewriter()
    name = f"nodes/lab-node-1/host/ethtool/{VETH}/link.txt"
    assert name in members(HEALTHY)
    path = rw.path(name)
    node, veth = rw.names.lookup("lab-node-1"), rw.names.interface(VETH)
    assert path == f"nodes/{node}/host/ethtool/{veth}/link.txt"
    body = rw.text(members(HEALTHY)[name].decode())
    assert body.startswith(f"Settings for {veth}:\n")
    # and the same veth in brctl show
    assert veth in rw.text(text(HEALTHY, HOST + "brctl-show.txt"))
    # the meaningful parts stay
    assert rw.path("nodes/lab-node-1/host/ethtool/flannel.1/link.txt") == (
        f"nodes/{node}/host/ethtool/flannel.1/link.txt"
    )
    assert rw.path("nodes/lab-node-1/netns/ns-4026532453/ip-addr.json") == (
        f"nodes/{node}/netns/ns-4026532453/ip-addr.json"
    )


def test_a_veth_name_without_digits_is_mapped_like_any_other_veth() -> None:
    # veth + 8 random hex digits: about one veth in 2,500 draws only the letters a-f.
    # NameMap maps it; the text pass must too, or its name stays in every file.
    rw = rewriter()
    rw.names.register_interface("vethabcdefab")  # as the scan does from the host's ip-link.json
    mapped = rw.names.interface("vethabcdefab")
    assert mapped is not None and mapped != "vethabcdefab"
    assert rw.text("net/ipv4/conf/vethabcdefab/rp_filter = 0") == (
        f"net/ipv4/conf/{mapped}/rp_filter = 0"
    )
    assert rw.path("nodes/lab-node-1/host/ethtool/vethabcdefab/link.txt").split("/")[4] == mapped


# --- bytes, determinism -----------------------------------------------------------------
def test_bytes_that_are_not_utf8_come_back_unchanged() -> None:
    rw = rewriter()
    data = b"\xff\xfe lab-node-1 \x80\x81 10.244.1.2 caf\xe9\n"
    out = rw.data(data)
    node = rw.names.lookup("lab-node-1").encode()
    address = rw.text("10.244.1.2").encode()
    assert out == b"\xff\xfe " + node + b" \x80\x81 " + address + b" caf\xe9\n"


def _everything(rw: TextRewriter) -> dict[str, str]:
    return {
        rw.path(name): rw.text(data.decode("utf-8", "surrogateescape"))
        for name, data in members(HEALTHY).items()
        if b"\0" not in data and not name.endswith(".pcap")
    }


def test_the_same_key_gives_the_same_output_and_another_key_another() -> None:
    first, second = _everything(rewriter()), _everything(rewriter())
    assert first == second
    other = _everything(rewriter(secret=OTHER_KEY))
    assert sorted(other) != sorted(first)  # node directories are named differently
    route = f"nodes/{rewriter().names.lookup('lab-node-1')}/host/route-n.txt"
    other_route = f"nodes/{rewriter(secret=OTHER_KEY).names.lookup('lab-node-1')}/host/route-n.txt"
    assert first[route] != other[other_route]
    assert MAC_RE.findall(first[route.replace("route-n", "arp-n")]) != MAC_RE.findall(
        other[other_route.replace("route-n", "arp-n")]
    )


def test_an_address_inside_a_word_is_mapped_as_the_address_alone() -> None:
    rw = rewriter()
    alone = rw.text("10.244.1.5")
    assert alone != "10.244.1.5"
    assert rw.text("node-10.244.1.5 ip_10.244.1.5") == f"node-{alone} ip_{alone}"
