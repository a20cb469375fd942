"""What probes may aim at, read from the cluster's own objects only: each node's pod-side
gateway (the first address of its IPv4 podCIDR), one Running pod IP inside that podCIDR,
the address (and, when the objects say it, the UDP port) its VXLAN device listens on, and
the overlay MTU a CNI config map states (with where that number came from).

Nothing else ever becomes a probe target: no address typed by a user, no address found
on a node. The objects are the List files the collector already wrote to the bundle.
What the objects leave open the node decides from its own configuration and devices,
found by kind (its subnet.env, its VXLAN devices' MTU and dstport): the collector names
no data plane's port or overhead.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FLANNEL = "flannel.alpha.coreos.com/"
BACKEND_TYPE = FLANNEL + "backend-type"
BACKEND_DATA = FLANNEL + "backend-data"
PUBLIC_IP = FLANNEL + "public-ip"


@dataclass(frozen=True)
class NodeFacts:
    """One node as a probe target."""

    name: str
    gateway: str | None = None
    """The pod-side gateway: the first address of the node's IPv4 podCIDR (flannel's cni0)."""
    pod_ip: str | None = None
    pod: str | None = None
    """namespace/name of the pod whose IP is `pod_ip`."""
    vxlan_address: str | None = None
    """Where peers send this node's VXLAN packets (flannel's public-ip, else InternalIP);
    None when its data plane is not VXLAN (host-gw, unknown)."""
    vxlan_port: int | None = None
    """The port the objects name; None: the prober's own VXLAN dstport."""


@dataclass(frozen=True)
class ClusterFacts:
    nodes: Mapping[str, NodeFacts] = field(default_factory=dict)
    mtu: int | None = None
    """None: not stated by the objects; the node takes its own (subnet.env, devices)."""
    mtu_source: str | None = None
    problems: tuple[str, ...] = ()


def _items(path: Path) -> tuple[list[dict[str, Any]], str | None]:
    """The items of a List file, or none and why (absent, unreadable, not a List)."""
    if not path.is_file():
        return [], None
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        return [], f"{path.name}: cannot be read for probe targets ({exc})"
    items = document.get("items") if isinstance(document, dict) else None
    if not isinstance(items, list):
        return [], f"{path.name}: not a List; no probe targets from it"
    return [item for item in items if isinstance(item, dict)], None


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _ipv4_network(spec: Mapping[str, Any]) -> ipaddress.IPv4Network | None:
    cidrs = spec.get("podCIDRs") or [spec.get("podCIDR")]
    for cidr in cidrs if isinstance(cidrs, list) else []:
        try:
            network = ipaddress.ip_network(str(cidr), strict=False)
        except ValueError:
            continue
        if isinstance(network, ipaddress.IPv4Network) and network.num_addresses > 2:
            return network
    return None


def _ipv4(value: object) -> str | None:
    try:
        address = ipaddress.ip_address(str(value))
    except ValueError:
        return None
    return str(address) if isinstance(address, ipaddress.IPv4Address) else None


def _internal_ip(status: Mapping[str, Any]) -> str | None:
    for address in status.get("addresses") or []:
        if isinstance(address, dict) and address.get("type") == "InternalIP":
            found = _ipv4(address.get("address"))
            if found:
                return found
    return None


def _backend_port(raw: object) -> int | None:
    """A VXLAN port from flannel's backend-data annotation or net-conf Backend, if any."""
    data = raw
    if isinstance(raw, str):
        try:
            data = json.loads(raw)
        except ValueError:
            return None
    port = _mapping(data).get("Port")
    return port if isinstance(port, int) and 0 < port < 65536 else None


@dataclass(frozen=True)
class _NetConf:
    """What flannel's net-conf.json (in its config map) says, when there is one."""

    backend: str | None = None
    port: int | None = None


def _net_conf(configmaps: Iterable[dict[str, Any]]) -> _NetConf:
    for item in configmaps:
        raw = _mapping(item.get("data")).get("net-conf.json")
        if not isinstance(raw, str):
            continue
        try:
            backend = _mapping(_mapping(json.loads(raw)).get("Backend"))
        except ValueError:
            continue
        kind = backend.get("Type")
        return _NetConf(str(kind).lower() if kind else None, _backend_port(backend))
    return _NetConf()


def _configured_mtu(configmaps: Iterable[dict[str, Any]]) -> tuple[int, str] | None:
    """An MTU a CNI config map states: Canal's and Calico's veth_mtu, or an "mtu" in the
    CNI configuration it ships (cni-conf.json / cni_network_config)."""
    for item in configmaps:
        meta = _mapping(item.get("metadata"))
        where = f"config map {meta.get('namespace')}/{meta.get('name')}"
        data = _mapping(item.get("data"))
        veth_mtu = str(data.get("veth_mtu", "")).strip()
        if veth_mtu.isdigit() and 576 <= int(veth_mtu) <= 65535:
            return int(veth_mtu), f"{where} veth_mtu"
        for key in ("cni-conf.json", "cni_network_config"):
            raw = data.get(key)
            if not isinstance(raw, str):
                continue
            try:
                conf = _mapping(json.loads(raw))
            except ValueError:
                continue
            for plugin in [conf, *[_mapping(p) for p in conf.get("plugins") or []]]:
                for holder in (plugin, _mapping(plugin.get("delegate"))):
                    mtu = holder.get("mtu")
                    if isinstance(mtu, int) and 576 <= mtu <= 65535:
                        return mtu, f"{where} {key} mtu"
    return None


def _running_pod_ips(
    pods: Iterable[dict[str, Any]], networks: Mapping[str, ipaddress.IPv4Network]
) -> dict[str, tuple[str, str]]:
    """Per node, the first Running pod (by namespace/name) with its own IP in the
    node's podCIDR: host-network pods carry the node's address, not a pod's."""
    chosen: dict[str, tuple[str, str]] = {}
    for pod in pods:
        spec, status, meta = (_mapping(pod.get(k)) for k in ("spec", "status", "metadata"))
        node = spec.get("nodeName")
        if spec.get("hostNetwork") or status.get("phase") != "Running" or node not in networks:
            continue
        address = _ipv4(status.get("podIP"))
        if address is None or ipaddress.IPv4Address(address) not in networks[str(node)]:
            continue
        ref = f"{meta.get('namespace')}/{meta.get('name')}"
        if str(node) not in chosen or ref < chosen[str(node)][1]:
            chosen[str(node)] = (address, ref)
    return chosen


def read_cluster_facts(cluster_dir: Path) -> ClusterFacts:
    """Probe targets from cluster/nodes.json, pods.json and configmaps.json as the
    collector wrote them. Never raises: what cannot be read is a problem, not a crash."""
    problems: list[str] = []
    nodes, problem = _items(cluster_dir / "nodes.json")
    pods, pod_problem = _items(cluster_dir / "pods.json")
    configmaps, map_problem = _items(cluster_dir / "configmaps.json")
    problems += [p for p in (problem, pod_problem, map_problem) if p]
    net_conf = _net_conf(configmaps)
    networks: dict[str, ipaddress.IPv4Network] = {}
    facts: dict[str, NodeFacts] = {}
    for node in nodes:
        meta, spec, status = (_mapping(node.get(k)) for k in ("metadata", "spec", "status"))
        name = meta.get("name")
        if not isinstance(name, str) or not name:
            continue
        annotations = _mapping(meta.get("annotations"))
        network = _ipv4_network(spec)
        if network is not None:
            networks[name] = network
        vxlan = str(annotations.get(BACKEND_TYPE) or net_conf.backend or "").lower() == "vxlan"
        facts[name] = NodeFacts(
            name=name,
            gateway=str(network.network_address + 1) if network is not None else None,
            vxlan_address=(_ipv4(annotations.get(PUBLIC_IP)) or _internal_ip(status))
            if vxlan
            else None,
            vxlan_port=(_backend_port(annotations.get(BACKEND_DATA)) or net_conf.port)
            if vxlan
            else None,
        )
    for name, (address, ref) in _running_pod_ips(pods, networks).items():
        old = facts[name]
        facts[name] = NodeFacts(
            old.name, old.gateway, address, ref, old.vxlan_address, old.vxlan_port
        )
    mtu, source = _configured_mtu(configmaps) or (None, None)
    return ClusterFacts(facts, mtu, source, tuple(problems))
