"""The first pass over a bundle: what the mapping must know before anything is rewritten.

- the names to map (nodes, hostnames, namespaces, pods), from the Kubernetes objects,
  the node directories and the manifest's collector host;
- the known subnets whose host bits are kept (every node's podCIDR, the cluster network
  of flannel's net-conf.json and subnet.env, and the connected routes of every node's
  host namespace: its node subnet and its pod bridge's network), so that a VTEP address
  stays its pod CIDR's network address and a gateway its .1;
- the VXLAN ports, so the packets inside VXLAN in the captures are rewritten too.

Only the few members that say these things are parsed (`wanted`); the others are
skipped unread.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from needle.redact.archive import MANIFEST, Member
from needle.redact.names import NameMap

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
DEFAULT_VXLAN_PORTS = frozenset({4789, 8472})
_NODE_DIR = re.compile(r"nodes/([^/]+)/")
_WHITESPACE = re.compile(r"[ \t\n\r]*")  # json's own
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
            listed = Listing.read(member.data)
            items = _items(_load(member.data)) if listed is None else listed.items()
            _cluster(items, names, found)
        elif "/host/" in name:
            leaf = name.rsplit("/", 1)[-1]
            if leaf.startswith("ip-route") and leaf.endswith(".json"):
                _connected_routes(_load(member.data), found)
            elif leaf == "ip-link.json":
                links = _load(member.data)
                _vxlan_ports(links, found)
                for link in links if isinstance(links, list) else []:
                    if isinstance(link, dict):
                        names.register_interface(link.get("ifname"))
            elif leaf == "uname.txt":
                fields = member.data.decode("utf-8", "replace").split()
                if len(fields) > 1:
                    names.register("host", fields[1])
            elif leaf.endswith("subnet.env"):
                for value in _SUBNET_ENV.findall(member.data.decode("utf-8", "replace")):
                    _add_network(value, found, strict=False)
    return found


def wanted(name: str) -> bool:
    """Whether `scan` reads the member's data (the others it knows by their names)."""
    if name == MANIFEST or (name.startswith("cluster/") and name.endswith(".json")):
        return True
    if "/host/" not in name:
        return False
    leaf = name.rsplit("/", 1)[-1]
    return (
        (leaf.startswith("ip-route") and leaf.endswith(".json"))
        or leaf in ("ip-link.json", "uname.txt")
        or leaf.endswith("subnet.env")
    )


def _load(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


@dataclass
class Listing:
    """A JSON document that is an object with an "items" array (a Kubernetes List),
    read the way json.loads reads it but an item at a time: 110,000 pods parsed at once
    take 300 MB, one at a time next to nothing."""

    text: str
    shell: dict[str, Any]  # the document with "items" empty
    starts: list[int]  # where each item starts in `text`

    @classmethod
    def read(cls, data: bytes) -> Listing | None:
        """The listing, when `data` is valid JSON of that shape; None otherwise (and then
        json.loads says what it is)."""
        try:
            text = data.decode(json.detect_encoding(data), "surrogatepass")
            return cls._parse(text)
        except (ValueError, RecursionError):
            return None

    @classmethod
    def _parse(cls, text: str) -> Listing | None:
        decode = _DECODER.raw_decode
        position = _space(text, 0)
        if not text.startswith("{", position):
            return None
        shell: dict[str, Any] = {}
        starts: list[int] | None = None
        position = _space(text, position + 1)
        while text.startswith('"', position):
            key, position = decode(text, position)
            position = _space(text, position)
            if not text.startswith(":", position):
                return None
            position = _space(text, position + 1)
            if key == "items":
                if starts is not None or not text.startswith("[", position):
                    return None  # not one "items" array: read whole
                starts = []
                position = _space(text, position + 1)
                while not text.startswith("]", position):
                    starts.append(position)
                    position = _space(text, decode(text, position)[1])
                    if text.startswith(",", position):
                        position = _space(text, position + 1)
                    elif not text.startswith("]", position):
                        return None
                shell[key] = []
                position += 1
            else:
                shell[key], position = decode(text, position)
            position = _space(text, position)
            if text.startswith(",", position):
                position = _space(text, position + 1)
            elif text.startswith("}", position):
                if starts is None or _space(text, position + 1) != len(text):
                    return None
                return cls(text, shell, starts)
            else:
                return None
        return None

    def items(self) -> Iterator[Any]:
        decode = _DECODER.raw_decode
        for start in self.starts:
            yield decode(self.text, start)[0]


_DECODER = json.JSONDecoder()


def _space(text: str, position: int) -> int:
    return _WHITESPACE.match(text, position).end()  # type: ignore[union-attr]


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


def _cluster(items: Iterable[Any], names: NameMap, found: Inventory) -> None:
    for item in items:
        if not isinstance(item, dict):
            continue
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
