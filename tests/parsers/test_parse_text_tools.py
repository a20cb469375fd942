"""Text-only tools on the lab node: brctl, route -n, arp, ethtool, sysctl, flannel, CNI."""

from __future__ import annotations

from pathlib import Path

from needle.analyzer.parsers.cni import CniPlugin, parse_cni_config
from needle.analyzer.parsers.ethtool import parse_ethtool, parse_ethtool_i, parse_ethtool_k
from needle.analyzer.parsers.flannel import parse_flannel_net_conf, parse_flannel_subnet_env
from needle.analyzer.parsers.sysctl import as_dict, interface_key, parse_sysctl

DATA = Path(__file__).parent / "data" / "lab"


def lab(name: str) -> bytes:
    return (DATA / name).read_bytes()


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
