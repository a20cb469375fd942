"""The first pass over a bundle: what the mapping must know before anything is rewritten.

- the names to map (nodes, hostnames, namespaces, pods), from the Kubernetes objects,
  the node directories and the manifest's collector host;
- the known subnets whose host bits are kept (every node's podCIDR, the cluster network
  of flannel's net-conf.json and subnet.env, and the connected routes of every node's
  host namespace: its node subnet and its pod bridge's network), so that a VTEP address
  stays its pod CIDR's network address and a gateway its .1;
- the VXLAN ports, so the packets inside VXLAN in the captures are rewritten too.

Only the few members that say these things are parsed; the others are skipped unread.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from needle.redact.archive import MANIFEST, Member
from needle.redact.names import NameMap

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
DEFAULT_VXLAN_PORTS = frozenset({4789, 8472})
_NODE_DIR = re.compile(r"nodes/([^/]+)/")
_COLLECTOR_HOST = re.compile(rb'"collector_host"\s*:\s*"((?:[^"\\]|\\.)*)"')
_SUBNET_ENV = re.compile(
    r"^FLANNEL_(?:NETWORK|SUBNET|IPV6_NETWORK|IPV6_SUBNET)=(\S+)$", re.MULTILINE
)


@dataclass
class Inventory:
    regions: set[Network] = field(default_factory=set)
    vxlan_ports: set[int] = field(default_factory=lambda: set(DEFAULT_VXLAN_PORTS))
    members: int = 0
    has_manifest: bool = False


def scan(members: Iterable[Member], names: NameMap) -> Inventory:
    found = Inventory()
    for member in members:
        found.members += 1
        name = member.name
        node = _NODE_DIR.match(name)
        if node is not None:
            names.register("node", node.group(1))
        if name == MANIFEST:
            found.has_manifest = True
            host = _COLLECTOR_HOST.search(member.data[:65536])
            if host is not None:
                names.register("host", _json_string(host.group(1)))
        elif name.startswith("cluster/") and name.endswith(".json"):
            _cluster(_load(member.data), names, found)
        elif "/host/" in name:
            leaf = name.rsplit("/", 1)[-1]
            if leaf.startswith("ip-route") and leaf.endswith(".json"):
                _connected_routes(_load(member.data), found)
            elif leaf == "ip-link.json":
                _vxlan_ports(_load(member.data), found)
            elif leaf == "uname.txt":
                fields = member.data.decode("utf-8", "replace").split()
                if len(fields) > 1:
                    names.register("host", fields[1])
            elif leaf.endswith("subnet.env"):
                for value in _SUBNET_ENV.findall(member.data.decode("utf-8", "replace")):
                    _add_network(value, found, strict=False)
    return found


def _load(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


def _json_string(raw: bytes) -> str:
    try:
        value = json.loads(b'"' + raw + b'"')
    except ValueError:
        return ""
    return value if isinstance(value, str) else ""


def _items(document: Any) -> list[dict[str, Any]]:
    if isinstance(document, dict) and isinstance(document.get("items"), list):
        return [item for item in document["items"] if isinstance(item, dict)]
    return [document] if isinstance(document, dict) else []


def _cluster(document: Any, names: NameMap, found: Inventory) -> None:
    for item in _items(document):
        kind = item.get("kind")
        meta = item.get("metadata") if isinstance(item.get("metadata"), dict) else {}
        spec = item.get("spec") if isinstance(item.get("spec"), dict) else {}
        names.register("ns", meta.get("namespace"))
        if kind == "Node":
            names.register("node", meta.get("name"))
            for cidr in [spec.get("podCIDR"), *(spec.get("podCIDRs") or [])]:
                _add_network(cidr, found)
            status = item.get("status") if isinstance(item.get("status"), dict) else {}
            for address in status.get("addresses") or []:
                if isinstance(address, dict) and address.get("type") in (
                    "Hostname",
                    "InternalDNS",
                    "ExternalDNS",
                ):
                    names.register("host", address.get("address"))
        elif kind == "Pod":
            labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
            names.register_pod(
                meta.get("namespace"),
                meta.get("name"),
                meta.get("generateName"),
                labels.get("pod-template-hash"),
            )
            names.register("node", spec.get("nodeName"))
        elif kind == "Namespace":
            names.register("ns", meta.get("name"))
        elif kind == "ConfigMap":
            data = item.get("data") if isinstance(item.get("data"), dict) else {}
            for key, value in data.items():
                if (
                    isinstance(key, str)
                    and key.endswith("net-conf.json")
                    and isinstance(value, str)
                ):
                    conf = _load(value.encode())
                    if isinstance(conf, dict):
                        _add_network(conf.get("Network"), found)
                        _add_network(conf.get("IPv6Network"), found)


def _connected_routes(document: Any, found: Inventory) -> None:
    """A node's subnets: the routes the kernel made for its own addresses."""
    if not isinstance(document, list):
        return
    for route in document:
        if (
            isinstance(route, dict)
            and route.get("protocol") == "kernel"
            and route.get("scope") == "link"
            and route.get("type", "unicast") == "unicast"
        ):
            _add_network(route.get("dst"), found)


def _vxlan_ports(document: Any, found: Inventory) -> None:
    if not isinstance(document, list):
        return
    for link in document:
        info = link.get("linkinfo") if isinstance(link, dict) else None
        if isinstance(info, dict) and info.get("info_kind") == "vxlan":
            data = info.get("info_data")
            port = data.get("port") if isinstance(data, dict) else None
            if isinstance(port, int) and 0 < port < 65536:
                found.vxlan_ports.add(port)


def _add_network(value: object, found: Inventory, strict: bool = True) -> None:
    if not isinstance(value, str) or "/" not in value:
        return
    try:
        network = ipaddress.ip_network(value.strip(), strict=strict)
    except ValueError:
        return
    found.regions.add(network)
