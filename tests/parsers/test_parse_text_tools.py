"""Text-only tools on the lab node: brctl, route -n, arp, ethtool, sysctl, flannel, CNI."""

from __future__ import annotations

from pathlib import Path

import pytest
from needle.analyzer.parsers.arp import ArpEntry, parse_arp
from needle.analyzer.parsers.brctl import BrctlBridge, parse_brctl_show
from needle.analyzer.parsers.cni import CniPlugin, parse_cni_config
from needle.analyzer.parsers.ethtool import parse_ethtool, parse_ethtool_i, parse_ethtool_k
from needle.analyzer.parsers.flannel import parse_flannel_net_conf, parse_flannel_subnet_env
from needle.analyzer.parsers.ifconfig import parse_ifconfig
from needle.analyzer.parsers.proc_net_route import parse_proc_net_route
from needle.analyzer.parsers.route_n import parse_route_n
from needle.analyzer.parsers.sysctl import as_dict, interface_key, parse_sysctl

DATA = Path(__file__).parent / "data" / "lab"


def lab(name: str) -> bytes:
    return (DATA / name).read_bytes()


def test_brctl_show():
    parsed = parse_brctl_show(lab("a__brctl-show.txt"))
    assert parsed.clean
    assert parsed.records == (BrctlBridge("cni0", "8000.020000000101", False, ("vethpod1",)),)


def test_busybox_brctl_without_show_is_reported():
    parsed = parse_brctl_show(lab("a__busybox-brctl-show.txt"))
    assert parsed.records == ()
    assert parsed.unparsed == ("brctl: invalid argument 'show' to 'brctl'",)


def test_brctl_bridge_without_ports():
    parsed = parse_brctl_show(
        b"bridge name\tbridge id\t\tSTP enabled\tinterfaces\ndocker0\t\t8000.0242ac110001\tno\t\t\n"
    )
    assert parsed.records == (BrctlBridge("docker0", "8000.0242ac110001", False, ()),)


@pytest.mark.parametrize("name", ["a__route-n.txt", "a__busybox-route-n.txt"])
def test_route_n(name):
    parsed = parse_route_n(lab(name))
    assert parsed.clean and len(parsed.records) == 21
    default = parsed.records[0]
    assert (default.destination, default.gateway, default.prefixlen, default.flags) == (
        "0.0.0.0",
        "192.168.50.1",
        0,
        "UG",
    )
    assert (default.metric, default.iface) == (100, "eth0")
    flannel = next(r for r in parsed.records if r.destination == "10.244.2.0")
    assert (flannel.gateway, flannel.iface, flannel.prefixlen) == ("10.244.2.0", "flannel.1", 24)
    prohibit = next(r for r in parsed.records if r.destination == "10.97.0.0")
    assert prohibit.flags == "!"


def test_route_n_reject_routes_differ_between_net_tools_and_busybox():
    net_tools = {r.destination: r for r in parse_route_n(lab("a__route-n.txt")).records}
    busybox = {r.destination: r for r in parse_route_n(lab("a__busybox-route-n.txt")).records}
    assert (net_tools["10.98.0.0"].gateway, net_tools["10.98.0.0"].iface) == ("-", "-")
    assert (busybox["10.98.0.0"].gateway, busybox["10.98.0.0"].iface) == ("0.0.0.0", "*")
    assert net_tools["10.98.0.0"].metric == busybox["10.98.0.0"].metric == 7


def test_route_n_extended_and_ipv6_layouts():
    extended = parse_route_n(
        b"Kernel IP routing table\n"
        b"Destination     Gateway         Genmask         Flags   MSS Window  irtt Iface\n"
        b"0.0.0.0         10.0.2.2        0.0.0.0         UG        0 0          0 enp0s3\n"
    ).records[0]
    assert (extended.mss, extended.window, extended.irtt, extended.iface) == (0, 0, 0, "enp0s3")
    ipv6 = parse_route_n(
        b"Kernel IPv6 routing table\n"
        b"Destination                    Next Hop                   Flag Met Ref Use If\n"
        b"fe80::/64                      ::                         U    256 1     0 eth0\n"
    ).records[0]
    assert (ipv6.family, ipv6.prefixlen, ipv6.gateway, ipv6.metric, ipv6.iface) == (
        "inet6",
        64,
        "::",
        256,
        "eth0",
    )


@pytest.mark.parametrize("name", ["a__arp-n.txt", "a__arp-a.txt", "a__busybox-arp-n.txt"])
def test_arp_styles(name):
    parsed = parse_arp(lab(name))
    assert parsed.clean and len(parsed.records) == 6
    incomplete = parsed.records[1]
    assert (incomplete.address, incomplete.incomplete, incomplete.hwaddress, incomplete.iface) == (
        "192.168.50.13",
        True,
        None,
        "eth0",
    )
    vtep = next(e for e in parsed.records if e.address == "10.244.2.0")
    assert (vtep.hwaddress, vtep.iface) == ("02:00:00:00:0f:02", "flannel.1")


def test_arp_permanent_flags():
    table = next(e for e in parse_arp(lab("a__arp-n.txt")).records if e.address == "10.244.2.0")
    bsd = next(e for e in parse_arp(lab("a__arp-a.txt")).records if e.address == "10.244.2.0")
    assert table.flags == ("C", "M") and bsd.flags == ("PERM",)


def test_arp_with_mask_and_noise():
    parsed = parse_arp(
        b"10.0.0.9                 ether   aa:bb:cc:dd:ee:ff   CMP   *            eth0\n"
        b"Entries: 1\tSkipped: 0\tFound: 1\n"
    )
    assert parsed.records == (
        ArpEntry("10.0.0.9", None, "ether", "aa:bb:cc:dd:ee:ff", ("C", "M", "P"), "*", "eth0"),
    )
    assert parsed.unparsed == ("Entries: 1\tSkipped: 0\tFound: 1",)


def test_ethtool_driver_of_veth_and_vxlan():
    (veth,) = parse_ethtool_i(lab("a__ethtool-i_vethpod1.txt")).records
    assert (veth.driver, veth.version, veth.bus_info, veth.supports["statistics"]) == (
        "veth",
        "1.0",
        "",
        True,
    )
    (vxlan,) = parse_ethtool_i(lab("a__ethtool-i_flannel.1.txt")).records
    assert vxlan.driver == "vxlan" and vxlan.fields["expansion-rom-version"] == ""


def test_ethtool_features_of_veth():
    parsed = parse_ethtool_k(lab("a__ethtool-k_vethpod1.txt"))
    assert parsed.clean
    (features,) = parsed.records
    assert features.interface == "vethpod1"
    assert len(features.features) == 63
    assert features.enabled("tx-checksumming") is True
    assert features.enabled("generic-receive-offload") is False
    assert features.enabled("no-such-feature") is None
    ipv4 = features.features["tx-checksum-ipv4"]
    assert (ipv4.enabled, ipv4.fixed, ipv4.parent) == (False, True, "tx-checksumming")
    assert features.features["tx-udp_tnl-segmentation"].parent is None


def test_ethtool_settings_of_veth():
    parsed = parse_ethtool(lab("a__ethtool_vethpod1.txt"))
    assert parsed.clean
    (settings,) = parsed.records
    assert (settings.interface, settings.speed_mbps, settings.duplex, settings.link_detected) == (
        "vethpod1",
        10000,
        "Full",
        True,
    )
    assert settings.auto_negotiation is False and settings.supported_link_modes == ()
    assert settings.fields["MDI-X"] == "Unknown"


def test_sysctl_full_dump_and_errors():
    parsed = parse_sysctl(lab("a__sysctl-a.txt"))
    assert parsed.clean and len(parsed.records) == 1829
    settings = as_dict(parsed)
    assert settings["net.ipv4.ip_forward"] == "0"
    assert settings[interface_key("net.ipv4.conf", "flannel.1", "forwarding")] == "0"
    assert settings["net.ipv4.tcp_rmem"] == "4096\t131072\t33554432"
    errors = parse_sysctl(lab("a__sysctl-errors.txt"))
    assert [e.key for e in errors.records] == [
        "net.ipv4.ip_forward",
        "net.ipv4.conf.flannel/1.forwarding",
        "net.bridge.bridge-nf-call-iptables",
    ]
    assert errors.unparsed == (
        "sysctl: cannot stat /proc/sys/no/such/key: No such file or directory",
    )


def test_sysctl_busybox_and_permission_errors():
    parsed = parse_sysctl(
        b"net.ipv4.ip_forward=1\n"
        b"sysctl: permission denied on key 'net.ipv6.conf.all.stable_secret'\n"
        b"kernel.hostname = \n"
    )
    assert [(e.key, e.value) for e in parsed.records] == [
        ("net.ipv4.ip_forward", "1"),
        ("kernel.hostname", ""),
    ]
    assert len(parsed.unparsed) == 1


SUBNET_ENV = b"""\
FLANNEL_NETWORK=10.244.0.0/16
FLANNEL_SUBNET=10.244.1.1/24
FLANNEL_MTU=1450
FLANNEL_IPMASQ=true
"""


def test_flannel_subnet_env():
    parsed = parse_flannel_subnet_env(SUBNET_ENV)
    assert parsed.clean
    (env,) = parsed.records
    assert (env.network, env.subnet, env.mtu, env.ipmasq) == (
        "10.244.0.0/16",
        "10.244.1.1/24",
        1450,
        True,
    )
    assert env.ipv6_network is None


def test_flannel_subnet_env_dual_stack_and_noise():
    parsed = parse_flannel_subnet_env(
        b"# written by flanneld\nFLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_IPV6_NETWORK=fd00:42::/56\n"
        b"FLANNEL_IPV6_SUBNET=fd00:42:0:1::1/64\nFLANNEL_IPMASQ=false\ngarbage line\n"
    )
    (env,) = parsed.records
    assert (env.ipv6_network, env.ipv6_subnet, env.ipmasq, env.mtu) == (
        "fd00:42::/56",
        "fd00:42:0:1::1/64",
        False,
        None,
    )
    assert parsed.unparsed == ("garbage line",)


def test_flannel_net_conf():
    (conf,) = parse_flannel_net_conf(
        b'{"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan", "VNI": 4096, "Port": 4789,'
        b' "DirectRouting": true}}'
    ).records
    assert (conf.network, conf.backend_type, conf.vni, conf.port, conf.direct_routing) == (
        "10.244.0.0/16",
        "vxlan",
        4096,
        4789,
        True,
    )


CONFLIST = b"""{
  "name": "cbr0",
  "cniVersion": "0.3.1",
  "plugins": [
    {"type": "flannel", "delegate": {"hairpinMode": true, "isDefaultGateway": true, "mtu": 1400}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}"""


def test_cni_conflist():
    parsed = parse_cni_config(CONFLIST)
    assert parsed.clean
    (config,) = parsed.records
    assert (config.name, config.cni_version, config.is_list) == ("cbr0", "0.3.1", True)
    assert config.plugin_types == ("flannel", "portmap")
    flannel = config.plugins[0]
    assert (flannel.hairpin_mode, flannel.is_default_gateway, flannel.mtu) == (True, True, 1400)
    assert config.plugins[1].capabilities == {"portMappings": True}


def test_cni_single_conf_bridge():
    (config,) = parse_cni_config(
        b'{"cniVersion":"0.4.0","name":"mynet","type":"bridge","bridge":"cni0","isGateway":true,'
        b'"ipMasq":true,"mtu":1450,"ipam":{"type":"host-local","subnet":"10.22.0.0/16"}}'
    ).records
    assert not config.is_list
    (plugin,) = config.plugins
    assert plugin == CniPlugin(
        type="bridge",
        mtu=1450,
        bridge="cni0",
        is_gateway=True,
        ip_masq=True,
        ipam_type="host-local",
        raw=plugin.raw,
    )


def test_cni_cut_off_file():
    parsed = parse_cni_config(CONFLIST[:60])
    assert parsed.records == () and parsed.truncated and parsed.unparsed


def test_proc_net_route_reject_row_is_reported():
    parsed = parse_proc_net_route(
        b"Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        b"eth0\t0000FEA9\t00000000\t0001\t0\t0\t1002\t0000FFFF\t0\t0\t0\n"
        b"eth0\tZZZZ\n"
    )
    (route,) = parsed.records
    assert (route.destination, route.prefixlen, route.metric) == ("169.254.0.0", 16, 1002)
    assert parsed.unparsed == ("eth0\tZZZZ",)


def test_ifconfig_old_layout():
    (iface,) = parse_ifconfig(
        b"eth0      Link encap:Ethernet  HWaddr 02:42:AC:11:00:02\n"
        b"          inet addr:172.17.0.2  Bcast:172.17.255.255  Mask:255.255.0.0\n"
        b"          inet6 addr: fe80::42:acff:fe11:2/64 Scope:Link\n"
        b"          UP BROADCAST RUNNING MULTICAST  MTU:1450  Metric:1\n"
        b"          RX packets:73 errors:0 dropped:0 overruns:0 frame:0\n"
    ).records
    assert (iface.name, iface.mac, iface.mtu) == ("eth0", "02:42:AC:11:00:02", 1450)
    assert iface.flags == ("UP", "BROADCAST", "RUNNING", "MULTICAST")
    v4, v6 = iface.addresses
    assert (v4.address, v4.broadcast, v4.netmask) == ("172.17.0.2", "172.17.255.255", "255.255.0.0")
    assert (v6.address, v6.prefixlen, v6.scope) == ("fe80::42:acff:fe11:2", 64, "link")
    assert iface.stats["rx_packets"] == 73
