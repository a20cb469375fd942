"""Parses flannel's files: ``/run/flannel/subnet.env`` and ``net-conf.json``.

Forms: ``subnet.env`` is ``KEY=VALUE`` lines written by flanneld (FLANNEL_NETWORK,
FLANNEL_SUBNET, FLANNEL_MTU, FLANNEL_IPMASQ, and FLANNEL_IPV6_* for dual stack);
``net-conf.json`` is the JSON object of the kube-flannel-cfg ConfigMap (Network,
Backend.Type, Backend.VNI, Backend.Port ...). One record each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from needle.analyzer.parsers.common import Parsed, json_object, lines_of, to_int, to_str


@dataclass(frozen=True, slots=True)
class FlannelSubnetEnv:
    """What flanneld leased to this node."""

    network: str | None = None
    subnet: str | None = None
    mtu: int | None = None
    ipmasq: bool | None = None
    ipv6_network: str | None = None
    ipv6_subnet: str | None = None
    values: dict[str, str] = field(default_factory=dict)  # every KEY=VALUE as written


def parse_flannel_subnet_env(data: bytes) -> Parsed[FlannelSubnetEnv]:
    """``KEY=VALUE`` lines; ``#`` comments and blank lines are ignored."""
    values: dict[str, str] = {}
    unparsed: list[str] = []
    for line in lines_of(data):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition("=")
        key = key.strip()
        if not sep or not key or " " in key:
            unparsed.append(line)
            continue
        values[key] = value.strip().strip('"')
    if not values:
        return Parsed((), tuple(unparsed))
    ipmasq = values.get("FLANNEL_IPMASQ")
    record = FlannelSubnetEnv(
        network=values.get("FLANNEL_NETWORK"),
        subnet=values.get("FLANNEL_SUBNET"),
        mtu=to_int(values.get("FLANNEL_MTU")),
        ipmasq=None if ipmasq is None else ipmasq.lower() == "true",
        ipv6_network=values.get("FLANNEL_IPV6_NETWORK"),
        ipv6_subnet=values.get("FLANNEL_IPV6_SUBNET"),
        values=values,
    )
    return Parsed((record,), tuple(unparsed))


@dataclass(frozen=True, slots=True)
class FlannelNetConf:
    """The cluster-wide flannel configuration (net-conf.json)."""

    network: str | None = None
    ipv6_network: str | None = None
    subnet_len: int | None = None
    backend_type: str | None = None  # vxlan, host-gw, wireguard, udp ...
    vni: int | None = None  # VXLAN id; flannel's default is 1
    port: int | None = None  # VXLAN UDP port; 0 or None means the kernel's 8472
    direct_routing: bool | None = None
    raw: dict[str, Any] = field(default_factory=dict)


def parse_flannel_net_conf(data: bytes) -> Parsed[FlannelNetConf]:
    """One JSON object. Broken or cut-off JSON gives no record, never an exception."""
    obj = json_object(data)
    if isinstance(obj, Parsed):
        return obj
    backend = obj.get("Backend")
    backend = backend if isinstance(backend, dict) else {}
    direct = backend.get("DirectRouting")
    record = FlannelNetConf(
        network=to_str(obj.get("Network")),
        ipv6_network=to_str(obj.get("IPv6Network")),
        subnet_len=to_int(obj.get("SubnetLen")),
        backend_type=to_str(backend.get("Type")),
        vni=to_int(backend.get("VNI")),
        port=to_int(backend.get("Port")),
        direct_routing=direct if isinstance(direct, bool) else None,
        raw=obj,
    )
    return Parsed((record,))
