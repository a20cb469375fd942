"""Outputs from real machines (data/realworld, sources in data/README.md): every file is
parsed and concrete values are checked, including the odd ones those machines printed."""

from __future__ import annotations

from pathlib import Path

import yaml
from needle.analyzer.parsers.cni import parse_cni_config
from needle.analyzer.parsers.ethtool import parse_ethtool, parse_ethtool_i, parse_ethtool_k
from needle.analyzer.parsers.flannel import parse_flannel_net_conf
from needle.analyzer.parsers.ip_addr import parse_ip_addr
from needle.analyzer.parsers.ip_link import parse_ip_link
from needle.analyzer.parsers.ip_neigh import parse_ip_neigh
from needle.analyzer.parsers.ip_route import Route, parse_ip_route

DATA = Path(__file__).parent / "data" / "realworld"


def real(name: str) -> bytes:
    return (DATA / name).read_bytes()


def test_every_realworld_file_has_a_test():
    source = Path(__file__).read_text()
    files = sorted(p.name for p in DATA.iterdir())
    assert files, "no real-world data"
    assert [name for name in files if f'"{name}"' not in source] == []


def test_every_realworld_file_is_attributed():
    readme = (DATA.parent / "README.md").read_text()
    assert [p.name for p in DATA.iterdir() if f"| {p.name} |" not in readme] == []


# --- ip route ---------------------------------------------------------------------------


def test_route_fedora_vpn_ipv6_table_all():
    parsed = parse_ip_route(real("iproute_show_table_all_text_fedora_vpn_ipv6__insights.txt"))
    assert parsed.clean and len(parsed.records) == 46
    routes = parsed.records
    tun = routes[1]
    assert (tun.dst, tun.gateway, tun.dev, tun.proto, tun.metric) == (
        "10.0.0.0/8",
        "10.64.54.1",
        "tun0",
        "static",
        50,
    )
    broadcast = routes[6]
    assert (broadcast.type, broadcast.table, broadcast.scope, broadcast.src) == (
        "broadcast",
        "local",
        "link",
        "10.64.54.44",
    )
    unreachable = routes[19]
    assert (unreachable.type, unreachable.dst, unreachable.error, unreachable.metric) == (
        "unreachable",
        "::/96",
        -101,
        1024,
    )
    # Old kernels print cloned IPv6 routes with an indented "cache" line of their own.
    cached = routes[21]
    assert (cached.dst, cached.cached, cached.metric) == (
        "2001:708:40:2001:a822:baff:fec4:2428",
        True,
        0,
    )
    assert cached.metrics == {"mtu": 1492, "hoplimit": 255}
    assert sum(r.cached for r in routes) == 8
    ra_default = next(r for r in routes if r.dst == "default" and r.proto == "ra")
    assert (ra_default.expires, ra_default.metrics, ra_default.family) == (
        1568,
        {"mtu": 1492, "hoplimit": 255},
        "inet6",
    )
    unspec = [r for r in routes if r.table == "unspec"]
    assert len(unspec) == 2 and unspec[0].metric == 4294967295
    assert [r.dst for r in routes if r.type == "multicast"] == ["2001:dbc::/64"]


def test_route_vrf_throw_tables():
    parsed = parse_ip_route(real("iproute_show_table_all_text_vrf_throw__insights.txt"))
    assert parsed.clean and len(parsed.records) == 14
    routes = parsed.records
    assert routes[0] == Route(dst="30.142.64.0/26", type="throw", table="red_mgmt")
    assert (routes[1].dst, routes[1].gateway, routes[1].table) == (
        "default",
        "30.142.64.1",
        "red_mgmt",
    )
    assert routes[1].family == "inet"
    assert routes[4].dev == "notExist"
    assert [r.metric for r in routes if r.dst == "169.254.0.0/16"] == [1012, 1013, 1014, 1015]
    assert routes[-1].type == "local" and routes[-1].scope == "host"


def test_route_centos_linkdown():
    routes = parse_ip_route(real("iproute_text_centos7.7__jc.txt")).records
    assert [r.dst for r in routes] == [
        "default",
        "10.0.2.0/24",
        "169.254.0.0/16",
        "172.17.0.0/16",
    ]
    assert (routes[0].proto, routes[0].metric) == ("dhcp", 100)
    assert (routes[3].dev, routes[3].flags, routes[3].src) == (
        "docker0",
        ("linkdown",),
        "172.17.0.1",
    )


# --- ip link / ip addr ------------------------------------------------------------------


def test_link_openstack_ovs_vxlan():
    parsed = parse_ip_link(real("ip-d-s-link_text_openstack_ovs_vxlan_sys_4789__insights.txt"))
    assert parsed.clean and len(parsed.records) == 14
    links = {link.name: link for link in parsed.records}
    vxlan = links["vxlan_sys_4789"]
    assert (vxlan.kind, vxlan.slave_kind, vxlan.master, vxlan.mtu) == (
        "vxlan",
        "openvswitch",
        "ovs-system",
        65520,
    )
    assert vxlan.vxlan is not None
    assert (vxlan.vxlan.id, vxlan.vxlan.port, vxlan.vxlan.external, vxlan.vxlan.learning) == (
        0,
        4789,
        True,
        False,
    )
    assert vxlan.stats["rx"]["bytes"] == 18615536781687
    bond_port = links["eth0_1"]
    assert (bond_port.slave_kind, bond_port.master, bond_port.slave_data["state"]) == (
        "bond",
        "bond0",
        "ACTIVE",
    )
    assert bond_port.stats["rx"]["dropped"] == 117902
    gre = links["gre1"]
    assert (gre.kind, gre.link_type, gre.address, gre.peer_address) == (
        "gre",
        "gre",
        "10.211.47.217",
        "172.168.10.25",
    )
    assert gre.link is None and gre.link_index is None  # "@NONE"
    assert gre.info_data["remote"] == "172.168.10.25" and gre.info_data["ttl"] == "255"
    assert links["gretap0"].info_data["nopmtudisc"] is True
    assert links["geneve1"].info_data["id"] == "11" and links["geneve1"].stats["rx"]["errors"] == 8
    assert links["br-int"].kind == "openvswitch" and links["br-int"].mtu == 8950


def test_link_rhel9_bond():
    parsed = parse_ip_link(real("ip-d-s-link_text_rhel9_bond_details__insights.txt"))
    assert parsed.clean
    links = {link.name: link for link in parsed.records}
    bond = links["bond0"]
    assert (bond.kind, bond.info_data["mode"], bond.info_data["active_slave"]) == (
        "bond",
        "active-backup",
        "enp1s0",
    )
    backup = links["enp2s0"]
    assert (backup.permaddr, backup.slave_data["state"], backup.altnames) == (
        "52:54:00:c9:b9:47",
        "BACKUP",
        ("enx525400c9b947",),
    )
    assert backup.attrs["parentdev"] == "virtio2" and backup.min_mtu == 68
    # The new stats layout names "missed" where the old one said "overrun".
    assert links["enp1s0"].stats["rx"] == {
        "bytes": 6539676111,
        "packets": 45171801,
        "errors": 0,
        "dropped": 505436,
        "missed": 0,
        "mcast": 0,
    }


def test_addr_rhel_tunnels_and_noise():
    parsed = parse_ip_addr(real("ipaddr_text_rhel_bond_ipip_tunnels_linknetnsid__insights.txt"))
    # The test-edited file carries "Message truncated" lines: reported, not fatal.
    assert parsed.unparsed == ("Message truncated",) * 3
    entries = {e.link.name: e for e in parsed.records}
    assert list(entries) == ["lo", "eth7", "tunl0", "tunl1", "bond1.57", "ip.tun2"]
    assert (entries["eth7"].link.link_netnsid, entries["eth7"].link.master) == (1, "bond1")
    assert entries["lo"].link.mtu == 16436
    peer = entries["tunl1"].addresses[0]
    assert (peer.local, peer.peer, peer.prefixlen, peer.label) == (
        "172.30.0.1",
        "172.30.0.2",
        32,
        "tun0",
    )
    assert entries["tunl1"].link.link_type == "[65534]"
    vlan = entries["bond1.57"]
    assert (vlan.link.link, vlan.addresses[0].broadcast) == ("bond1", "10.192.4.191")
    dynamic = vlan.addresses[2]
    assert (dynamic.flags, dynamic.valid_lft, dynamic.preferred_lft) == (
        ("mngtmpaddr", "dynamic"),
        2592000,
        6480000,
    )
    tun2 = entries["ip.tun2"]
    assert (tun2.link.address, tun2.link.peer_address, tun2.link.mtu) == (
        "10.192.4.203",
        "10.188.61.108",
        80,
    )


# --- ip neigh ---------------------------------------------------------------------------


def test_neigh_bond_vlan_ipv6():
    parsed = parse_ip_neigh(real("ipneigh_text_bond_vlan_ipv6__insights.txt"))
    assert parsed.clean and len(parsed.records) == 14
    router = parsed.records[1]
    assert (router.dst, router.router, router.state, router.family) == (
        "fe80::22a:6aff:fe65:c3c2",
        True,
        ("STALE",),
        "inet6",
    )
    incomplete = parsed.records[-1]
    assert (incomplete.dst, incomplete.dev, incomplete.lladdr, incomplete.state) == (
        "10.101.5.17",
        "bond0.102",
        None,
        ("INCOMPLETE",),
    )
    assert parsed.records[9].state == ("DELAY",)


def test_neigh_ipv4_states():
    records = parse_ip_neigh(real("ipneigh_text_ipv4__insights.txt")).records
    assert [r.state[0] for r in records] == [
        "PERMANENT",
        "NOARP",
        "REACHABLE",
        "STALE",
        "DELAY",
        "FAILED",
        "FAILED",
        "FAILED",
    ]
    assert (records[6].dst, records[6].dev) == ("172.17.0.18", None)  # no "dev" printed
    assert records[7].dev == "docker0"


# --- bridge-utils, net-tools, ethtool ---------------------------------------------------


def test_ethtool_i_virtio():
    parsed = parse_ethtool_i(real("ethtool-i_text_virtio_net__insights.txt"))
    assert parsed.clean
    (driver,) = parsed.records
    assert (driver.driver, driver.version, driver.firmware_version, driver.bus_info) == (
        "virtio_net",
        "1.0.0",
        "",
        "0000:00:03.0",
    )
    assert driver.supports == {
        "statistics": False,
        "test": False,
        "eeprom-access": False,
        "register-dump": False,
        "priv-flags": False,
    }


def test_ethtool_k_bond():
    parsed = parse_ethtool_k(real("ethtool-k_text_bond0__insights.txt"))
    assert parsed.clean
    (features,) = parsed.records
    assert features.interface == "bond0" and len(features.features) == 34
    gso = features.features["generic-segmentation-offload"]
    assert (gso.enabled, gso.fixed, gso.requested) == (False, False, True)
    unneeded = features.features["tx-checksum-unneeded"]
    assert (unneeded.enabled, unneeded.fixed, unneeded.parent) == (True, True, "tx-checksumming")
    assert features.enabled("tx-udp_tnl-segmentation") is True
    assert features.features["tcp-segmentation-offload"].parent is None


def test_ethtool_settings_10g_fibre():
    parsed = parse_ethtool(real("ethtool_iface_text_10G_fibre_enp1s0__jc.txt"))
    assert parsed.clean
    (settings,) = parsed.records
    assert (settings.interface, settings.speed_mbps, settings.port, settings.auto_negotiation) == (
        "enp1s0",
        40000,
        "FIBRE",
        False,
    )
    assert len(settings.supported_link_modes) == 8 and len(settings.advertised_link_modes) == 6
    assert settings.fields["Current message level"] == "0x00000014 (20) link ifdown"


def test_ethtool_settings_without_permission():
    parsed = parse_ethtool(real("ethtool_iface_text_eth0__insights.txt"))
    assert parsed.clean
    (settings,) = parsed.records
    assert (settings.interface, settings.speed_mbps, settings.duplex, settings.link_detected) == (
        "eth0",
        100,
        "Full",
        None,
    )
    assert settings.errors == (
        "Cannot get wake-on-lan settings: Operation not permitted",
        "Cannot get link status: Operation not permitted",
    )
    assert settings.fields["Link partner advertised link modes"] == (
        "10baseT/Half 10baseT/Full 100baseT/Half 100baseT/Full"
    )


def test_ethtool_settings_virtualbox():
    parsed = parse_ethtool(real("ethtool_iface_text_virtualbox_e1000__jc.txt"))
    assert parsed.clean
    (settings,) = parsed.records
    assert settings.advertised_link_modes == (
        "10baseT/Half",
        "10baseT/Full",
        "100baseT/Half",
        "100baseT/Full",
        "1000baseT/Full",
    )
    assert (settings.speed_mbps, settings.link_detected, settings.fields["MDI-X"]) == (
        1000,
        True,
        "off (auto)",
    )


# --- flannel ----------------------------------------------------------------------------


def test_flannel_configmap_cni_and_net_conf():
    document = yaml.safe_load(real("k8s_configmap_kube-flannel-cfg_v0.11_excerpt__flannel.yaml"))
    (cni,) = parse_cni_config(document["data"]["cni-conf.json"].encode()).records
    assert (cni.name, cni.cni_version, cni.plugin_types) == (
        "cbr0",
        "0.3.1",
        ("flannel", "portmap"),
    )
    assert (cni.plugins[0].hairpin_mode, cni.plugins[0].is_default_gateway) == (True, True)
    assert cni.plugins[0].mtu is None
    (net,) = parse_flannel_net_conf(document["data"]["net-conf.json"].encode()).records
    assert (net.network, net.backend_type, net.vni, net.port) == (
        "10.244.0.0/16",
        "vxlan",
        None,
        None,
    )
