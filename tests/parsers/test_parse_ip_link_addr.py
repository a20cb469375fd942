"""ip link and ip addr: both forms, veth peers across namespaces, VXLAN, bridge ports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from needle.analyzer.parsers.ip_addr import Address, parse_ip_addr, parse_ip_addr_json
from needle.analyzer.parsers.ip_link import (
    Link,
    LinkMemo,
    Vxlan,
    parse_ip_link,
    parse_ip_link_json,
)

DATA = Path(__file__).parent / "data" / "lab"


def lab(name: str) -> bytes:
    return (DATA / name).read_bytes()


def by_name(links: tuple[Link, ...], name: str) -> Link:
    (link,) = [link for link in links if link.name == name]
    return link


@pytest.fixture(scope="module", params=["a__ip-d-j-link.json", "a__ip-d-link.txt"])
def node_links(request) -> tuple[Link, ...]:
    parsed = parse_ip_link(lab(request.param))
    assert parsed.clean
    return parsed.records


def test_every_interface_of_the_node(node_links):
    assert [(link.ifindex, link.name, link.kind) for link in node_links] == [
        (1, "lo", None),
        (2, "eth0", "veth"),
        (3, "cni0", "bridge"),
        (4, "vethpod1", "veth"),
        (5, "flannel.1", "vxlan"),
        (6, "vdown-p", "veth"),
        (7, "vdown", "veth"),
        (8, "vdead-p", "veth"),
        (9, "vdead", "veth"),
    ]


def test_vxlan_device(node_links):
    flannel = by_name(node_links, "flannel.1")
    assert (flannel.mtu, flannel.operstate, flannel.address) == (
        1450,
        "UNKNOWN",
        "02:00:00:00:0f:01",
    )
    vxlan = flannel.vxlan
    assert vxlan is not None
    assert (vxlan.id, vxlan.port, vxlan.local, vxlan.dev, vxlan.learning) == (
        1,
        8472,
        "192.168.50.10",
        "eth0",
        False,
    )
    assert (vxlan.remote, vxlan.external, vxlan.ttl, vxlan.ageing, vxlan.srcport) == (
        None,
        False,
        0,
        300,
        (0, 0),
    )


def test_bridge_port_and_its_peer_in_the_pod_namespace(node_links):
    port = by_name(node_links, "vethpod1")
    assert (port.master, port.slave_kind, port.link_index) == ("cni0", "bridge", 2)
    assert port.flags == ("BROADCAST", "MULTICAST", "UP", "LOWER_UP")
    assert port.slave_data["state"] == "forwarding"
    assert by_name(node_links, "cni0").kind == "bridge"


def test_peer_namespace_is_an_id_in_json_and_a_name_in_text():
    json_links = parse_ip_link(lab("a__ip-d-j-link.json")).records
    text_links = parse_ip_link(lab("a__ip-d-link.txt")).records
    assert (
        by_name(json_links, "vethpod1").link_netnsid,
        by_name(json_links, "vethpod1").link_netns,
    ) == (
        1,
        None,
    )
    assert (
        by_name(text_links, "vethpod1").link_netnsid,
        by_name(text_links, "vethpod1").link_netns,
    ) == (
        None,
        "ndlparse-b",
    )
    assert by_name(json_links, "eth0").link_netnsid == 0
    assert by_name(text_links, "eth0").link_netns == "ndlparse-c"


def test_same_namespace_veth_pair_names_its_peer(node_links):
    assert by_name(node_links, "vdown").link == "vdown-p"
    assert by_name(node_links, "vdown-p").link == "vdown"
    assert by_name(node_links, "vdown").link_index is None
    down = by_name(node_links, "vdown")
    assert down.operstate == "LOWERLAYERDOWN" and "NO-CARRIER" in down.flags


def test_pod_side_of_the_veth():
    for name in ("b__ip-d-j-link.json", "b__ip-d-link.txt"):
        eth0 = by_name(parse_ip_link(lab(name)).records, "eth0")
        assert (eth0.ifindex, eth0.link_index, eth0.mtu, eth0.kind) == (2, 4, 1450, "veth")
        assert eth0.address == "02:00:00:00:02:02"


def test_statistics_in_both_forms():
    json_lo = parse_ip_link(lab("a__ip-d-s-j-link.json")).records[0]
    text_lo = parse_ip_link(lab("a__ip-d-s-link.txt")).records[0]
    assert json_lo.stats["rx"]["packets"] == text_lo.stats["rx"]["packets"]
    assert text_lo.stats["tx"]["bytes"] > 0


def test_busybox_ip_link_reports_the_peer_in_the_wrong_namespace():
    links = parse_ip_link(lab("a__busybox-ip-link.txt")).records
    eth0 = by_name(links, "eth0")
    # busybox resolves ifindex 2 here, not in the peer's namespace: "eth0@eth0".
    assert (eth0.link, eth0.link_index, eth0.operstate, eth0.kind) == ("eth0", None, None, None)
    assert by_name(links, "vethpod1").master == "cni0"


def test_json_link_keeps_unknown_keys_in_attrs():
    (link,) = parse_ip_link_json(
        b'[{"ifindex":7,"ifname":"x","mtu":1500,"xdp":{"mode":1},"linkinfo":{"info_kind":"vxlan",'
        b'"info_data":{"id":42,"remote":"10.0.0.2","port":4789,"learning":true,"external":true}}}]'
    ).records
    assert link.attrs == {"xdp": {"mode": 1}}
    assert link.vxlan == Vxlan(id=42, port=4789, remote="10.0.0.2", learning=True, external=True)


def test_text_vxlan_with_remote_and_learning():
    (link,) = parse_ip_link(
        b"9: vx0: <BROADCAST,MULTICAST> mtu 1450 qdisc noop state DOWN mode DEFAULT\n"
        b"    link/ether 2a:00:00:00:00:01 brd ff:ff:ff:ff:ff:ff promiscuity 0\n"
        b"    vxlan id 42 remote 10.0.0.2 local 10.0.0.1 dev eth1 srcport 0 0 dstport 4789 "
        b"ttl 64 ageing 300 l2miss addrgenmode eui64\n"
    ).records
    assert link.vxlan == Vxlan(
        id=42,
        port=4789,
        local="10.0.0.1",
        remote="10.0.0.2",
        dev="eth1",
        learning=True,
        ttl=64,
        ageing=300,
        srcport=(0, 0),
        options=("l2miss",),
    )
    assert link.attrs == {"mode": "DEFAULT", "addrgenmode": "eui64"}


def test_truncated_link_json():
    raw = lab("a__ip-d-j-link.json")
    parsed = parse_ip_link_json(raw[: raw.index(b'"ifname":"flannel.1"')])
    assert parsed.truncated and [link.name for link in parsed.records] == [
        "lo",
        "eth0",
        "cni0",
        "vethpod1",
    ]


# --- ip addr ----------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["a__ip-j-addr.json", "a__ip-addr.txt"])
def node_addrs(request):
    parsed = parse_ip_addr(lab(request.param))
    assert parsed.clean
    return {entry.link.name: entry for entry in parsed.records}


def test_addresses_of_the_node(node_addrs):
    assert [a.local for a in node_addrs["eth0"].addresses] == [
        "192.168.50.10",
        "fd00:50::10",
        "fe80::ff:fe00:10",
    ]
    flannel = node_addrs["flannel.1"].addresses[0]
    assert (flannel.family, flannel.local, flannel.prefixlen, flannel.scope) == (
        "inet",
        "10.244.1.0",
        32,
        "global",
    )
    assert flannel.label == "flannel.1" and flannel.valid_lft is None
    assert node_addrs["cni0"].addresses[1].flags == ("nodad",)
    assert node_addrs["vdown-p"].addresses == ()
    assert node_addrs["cni0"].link.mtu == 1450 and node_addrs["vethpod1"].link.master == "cni0"


def test_both_addr_forms_agree_on_addresses():
    text = parse_ip_addr(lab("a__ip-addr.txt")).records
    json_ = parse_ip_addr(lab("a__ip-j-addr.json")).records
    assert [e.addresses for e in text] == [e.addresses for e in json_]


def test_pod_address():
    for name in ("b__ip-j-addr.json", "b__ip-addr.txt"):
        entries = {e.link.name: e for e in parse_ip_addr(lab(name)).records}
        assert entries["eth0"].addresses[0].local == "10.244.1.2"
        assert entries["eth0"].link.link_index == 4


def test_busybox_addr_flags_are_kept_raw():
    entries = {e.link.name: e for e in parse_ip_addr(lab("a__busybox-ip-addr.txt")).records}
    address = entries["eth0"].addresses[1]
    assert (address.local, address.flags, address.extra) == ("fd00:50::10", (), ("flags", "02"))


def test_json_address_flags_and_lifetimes():
    (entry,) = parse_ip_addr_json(
        b'[{"ifindex":2,"ifname":"eth0","addr_info":[{"family":"inet6","local":"2001:db8::1",'
        b'"prefixlen":64,"scope":"global","dynamic":true,"mngtmpaddr":true,'
        b'"valid_life_time":2592000,"preferred_life_time":604800},{"broken":1}]}]'
    ).records
    assert entry.addresses == (
        Address(
            family="inet6",
            local="2001:db8::1",
            prefixlen=64,
            scope="global",
            flags=("dynamic", "mngtmpaddr"),
            valid_lft=2592000,
            preferred_lft=604800,
        ),
    )


def test_a_link_memo_gives_equal_elements_one_link_and_the_same_records():
    lo = {"ifindex": 1, "ifname": "lo", "flags": ["LOOPBACK", "UP"], "mtu": 65536}
    eth0 = {"ifindex": 2, "ifname": "eth0", "mtu": 1450, "address": "0a:00:00:00:00:01"}
    memo = LinkMemo()
    parse_ip_link(json.dumps([lo, eth0]).encode(), memo)
    first = parse_ip_link(json.dumps([lo, eth0]).encode(), memo)
    second = parse_ip_link(json.dumps([lo, {**eth0, "mtu": 1500}]).encode(), memo)
    assert first.records[0] is second.records[0]  # lo, seen twice, made once more
    assert second.records[1].mtu == 1500  # another eth0: a link of its own
    # a name seen once (a host's veth) is held as a name, not as its element
    parse_ip_link(json.dumps([{**eth0, "ifname": "veth1"}]).encode(), memo)
    assert "veth1" in memo.seen and "veth1" not in memo.last
    assert second == parse_ip_link(json.dumps([lo, {**eth0, "mtu": 1500}]).encode())
    # a hostile element nested past what a comparison may recurse: parsed, not raised
    deep = "[" * 990 + "]" * 990
    nested = b'[{"ifindex": 1, "ifname": "lo", "linkinfo": {"info_data": {"x": %s}}}]' % (
        deep.encode()
    )
    for _ in range(2):
        assert parse_ip_link(nested, memo).records[0].name == "lo"
