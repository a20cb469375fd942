"""ip neigh, ip rule, ip netns, bridge fdb, bridge link: both forms."""

from __future__ import annotations

from pathlib import Path

import pytest
from needle.analyzer.parsers.bridge_fdb import FdbEntry, parse_bridge_fdb
from needle.analyzer.parsers.bridge_link import parse_bridge_link
from needle.analyzer.parsers.ip_neigh import Neighbour, parse_ip_neigh
from needle.analyzer.parsers.ip_rule import Rule, parse_ip_rule

DATA = Path(__file__).parent / "data" / "lab"


def lab(name: str) -> bytes:
    return (DATA / name).read_bytes()


@pytest.mark.parametrize("name", ["a__ip-j-neigh.json", "a__ip-neigh.txt"])
def test_neighbours_of_the_node(name):
    parsed = parse_ip_neigh(lab(name))
    assert parsed.clean
    by_dst = {n.dst: n for n in parsed.records}
    assert by_dst["10.244.2.0"] == Neighbour(
        dst="10.244.2.0",
        dev="flannel.1",
        lladdr="02:00:00:00:0f:02",
        state=("PERMANENT",),
        family="inet",
    )
    assert by_dst["192.168.50.13"].state == ("FAILED",) and by_dst["192.168.50.13"].lladdr is None
    assert by_dst["fd00:50::11"].router and by_dst["fd00:50::11"].family == "inet6"
    assert not by_dst["192.168.50.12"].router


def test_neigh_forms_agree():
    assert (
        parse_ip_neigh(lab("a__ip-neigh.txt")).records
        == parse_ip_neigh(lab("a__ip-j-neigh.json")).records
    )


def test_busybox_neigh_extras():
    records = parse_ip_neigh(lab("a__busybox-ip-neigh.txt")).records
    failed = records[1]
    assert (failed.dst, failed.state, failed.probes, failed.used) == (
        "192.168.50.13",
        ("FAILED",),
        6,
        "0/0/0",
    )
    assert records[7].ref == 1 and records[7].router


def test_neigh_proxy_flags_and_noise():
    parsed = parse_ip_neigh(
        b"10.0.0.1 dev eth0 proxy\n"
        b"10.0.0.2 dev eth0 lladdr aa:bb:cc:dd:ee:ff extern_learn offload NOARP\n"
        b'Device "x" does not exist.\n'
    )
    assert parsed.records[0].proxy
    assert parsed.records[1].flags == ("extern_learn", "offload")
    assert parsed.unparsed == ('Device "x" does not exist.',)


@pytest.mark.parametrize("name", ["a__ip-j-rule.json", "a__ip-rule.txt"])
def test_rules(name):
    parsed = parse_ip_rule(lab(name))
    assert parsed.clean
    rules = parsed.records
    assert [r.priority for r in rules] == [0, 100, 200, 300, 400, 32766, 32767]
    assert rules[1] == Rule(priority=100, src="10.244.1.0/24", table="100")
    assert (rules[2].fwmark, rules[2].fwmask, rules[2].table) == ("0x10", "0xff", "200")
    assert (rules[3].dst, rules[3].iif, rules[3].suppress_prefixlength) == (
        "10.96.0.0/16",
        "cni0",
        0,
    )
    assert rules[4].invert and rules[4].table == "100"


def test_rule_forms_agree_and_ipv6_rules():
    assert (
        parse_ip_rule(lab("a__ip-rule.txt")).records
        == parse_ip_rule(lab("a__ip-j-rule.json")).records
    )
    assert parse_ip_rule(lab("a__ip-j-6-rule.json")).records[1].src == "2001:db8::/32"


def test_rule_actions():
    rules = parse_ip_rule(
        b"10:\tfrom all iif eth0 [detached] goto 20\n"
        b"20:\tfrom 10.0.0.0/8 blackhole\n"
        b"30:\tfrom all uidrange 1000-2000 ipproto tcp dport 443 lookup 5 proto static\n"
    ).records
    assert (rules[0].action, rules[0].goto, rules[0].flags) == ("goto", 20, ("detached",))
    assert rules[1].action == "blackhole"
    assert (rules[2].uidrange, rules[2].ipproto, rules[2].dport, rules[2].proto) == (
        "1000-2000",
        "tcp",
        "443",
        "static",
    )


@pytest.mark.parametrize("name", ["a__bridge-d-j-fdb-show.json", "a__bridge-fdb-show.txt"])
def test_vxlan_fdb_entries(name):
    parsed = parse_bridge_fdb(lab(name))
    assert parsed.clean and len(parsed.records) == 25
    vteps = [e for e in parsed.records if e.dev == "flannel.1"]
    assert vteps == [
        FdbEntry(
            mac="00:00:00:00:00:00",
            dev="flannel.1",
            dst="192.168.50.13",
            flags=("self",),
            state="permanent",
        ),
        FdbEntry(
            mac="02:00:00:00:0f:03",
            dev="flannel.1",
            dst="192.168.50.12",
            flags=("self",),
            state="permanent",
        ),
        FdbEntry(
            mac="02:00:00:00:0f:02",
            dev="flannel.1",
            dst="192.168.50.11",
            flags=("self",),
            state="permanent",
        ),
    ]
    learned = next(e for e in parsed.records if e.mac == "02:00:00:00:02:02")
    assert (learned.master, learned.state, learned.flags) == ("cni0", "", ())
    static = next(e for e in parsed.records if e.mac == "02:00:00:00:02:99")
    assert static.state == "static"


def test_fdb_forms_agree():
    assert (
        parse_bridge_fdb(lab("a__bridge-fdb-show.txt")).records
        == parse_bridge_fdb(lab("a__bridge-d-j-fdb-show.json")).records
    )


def test_fdb_vlan_vni_and_noise():
    parsed = parse_bridge_fdb(
        b"aa:bb:cc:dd:ee:ff dev vx0 dst 10.0.0.2 vni 42 port 4789 via eth1 self extern_learn\n"
        b"aa:bb:cc:dd:ee:01 dev br0 vlan 100 master br0 sticky used 12/34\n"
        b"Error: bridge: no such device\n"
    )
    first, second = parsed.records
    assert (first.vni, first.port, first.via, first.flags) == (
        42,
        4789,
        "eth1",
        ("self", "extern_learn"),
    )
    assert (second.vlan, second.master, second.flags, second.used) == (
        100,
        "br0",
        ("sticky",),
        "12/34",
    )
    assert parsed.unparsed == ("Error: bridge: no such device",)


@pytest.mark.parametrize("name", ["a__bridge-d-j-link.json", "a__bridge-d-link.txt"])
def test_bridge_ports(name):
    parsed = parse_bridge_link(lab(name))
    assert parsed.clean
    (port,) = parsed.records
    assert (port.ifindex, port.name, port.master, port.state, port.mtu) == (
        4,
        "vethpod1",
        "cni0",
        "forwarding",
        1500,
    )
    assert (port.hairpin, port.learning, port.flood, port.priority, port.cost) == (
        False,
        True,
        True,
        32,
        2,
    )
    # bridge resolves the veth's peer index in its own namespace: a wrong name.
    assert port.link == "eth0"
