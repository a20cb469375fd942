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

import contextlib
import io
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from needle.redact.archive import MANIFEST, Member
from needle.redact.jsonstream import JsonText, decoded
from needle.redact.names import NameMap

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
DEFAULT_VXLAN_PORTS = frozenset({4789, 8472})
_NODE_DIR = re.compile(r"nodes/([^/]+)/")
_COLLECTOR_HOST = re.compile(rb'"collector_host"\s*:\s*"((?:[^"\\]|\\.)*)"')
_HEAD = 65536  # bytes of the manifest searched for the collector's host
_SUBNET_ENV = re.compile(
    r"^FLANNEL_(?:NETWORK|SUBNET|IPV6_NETWORK|IPV6_SUBNET)=(\S+)$", re.MULTILINE
)


@dataclass
class Inventory:
    regions: set[Network] = field(default_factory=set)
    vxlan_ports: set[int] = field(default_factory=lambda: set(DEFAULT_VXLAN_PORTS))
    members: int = 0
    has_manifest: bool = False


def scan(
    members: Iterable[Member], names: NameMap, scratch: Callable[[str], Path] | None = None
) -> Inventory:
    """What the mapping needs, from `members`; a member that comes as a stream and must
    be read twice is copied, for the time it is read, to the file `scratch` names."""
    found = Inventory()
    folder = ""  # the node folder of the member before: a node's members come together
    for member in members:
        found.members += 1
        name = member.name
        if not folder or not name.startswith(folder):
            node = _NODE_DIR.match(name)
            if node is not None:
                folder = node.group()
                names.register("node", node.group(1))
        if name == MANIFEST:
            found.has_manifest = True
            head = member.data if member.stream is None else member.stream.read(_HEAD)
            host = _COLLECTOR_HOST.search(head[:_HEAD])
            if host is not None:
                names.register("host", _json_string(host.group(1)))
        elif name.startswith("cluster/") and name.endswith(".json"):
            with _spooled(member, scratch) as source:
                listed = Listing.read(source)
                items = _items(_load(source)) if listed is None else listed.items()
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


def streamed(name: str) -> bool:
    """Whether a member is read as a stream: those that grow with the cluster, and are
    redacted a value at a time."""
    return name == MANIFEST or (name.startswith("cluster/") and name.endswith(".json"))


@contextlib.contextmanager
def _spooled(member: Member, scratch: Callable[[str], Path] | None) -> Iterator[bytes | Path]:
    """The member's data, or, for a stream, the scratch file it is copied into."""
    if member.stream is None:
        yield member.data
        return
    if scratch is None:
        yield member.stream.read()
        return
    path = scratch("scan-member")
    try:
        member.save(path)
        yield path
    finally:
        path.unlink(missing_ok=True)


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


def _load(source: bytes | Path) -> Any:
    try:
        return json.loads(source if isinstance(source, bytes) else source.read_bytes())
    except (ValueError, RecursionError):
        return None


@dataclass
class Listing:
    """A JSON document that is an object with an "items" array (a Kubernetes List),
    read the way json.loads reads it but an item at a time, from its file: 110,000 pods
    parsed at once take 300 MB, one at a time next to nothing (redact/jsonstream.py).
    Read twice: once to know it is such a document, then for its items."""

    source: bytes | Path
    encoding: str
    shell: dict[str, Any]  # the document with "items" empty

    @classmethod
    def read(cls, source: bytes | Path) -> Listing | None:
        """The listing, when `source` (the bytes, or the file holding them) is valid JSON
        of that shape; None otherwise (and then json.loads says what it is)."""
        try:
            with _opened(source) as stream:
                encoding = json.detect_encoding(stream.read(4))
                stream.seek(0)
                shell: dict[str, Any] = {}
                for _ in _walk(JsonText(decoded(stream, encoding, "surrogatepass")), shell):
                    pass
        except (ValueError, RecursionError, _NotListing):
            return None
        return cls(source, encoding, shell)

    def items(self) -> Iterator[Any]:
        with _opened(self.source) as stream:
            yield from _walk(JsonText(decoded(stream, self.encoding, "surrogatepass")), {})


class _NotListing(Exception):
    """Valid JSON or not, not one object with one "items" array."""


def _walk(text: JsonText, shell: dict[str, Any]) -> Iterator[Any]:
    """The items of the listing in `text`, its other keys put in `shell`; raises
    _NotListing (or ValueError for what is not JSON) at the first thing that does not fit,
    which may come after the items."""
    text.skip_space()
    if not text.take("{"):
        raise _NotListing
    items = False
    text.skip_space()
    while text.peek() == '"':
        key = text.decode()
        text.skip_space()
        if not text.take(":"):
            raise _NotListing
        text.skip_space()
        if key == "items":
            if items or not text.take("["):
                raise _NotListing  # not one "items" array: read whole
            items = True
            yield from text.items(trailing_comma=True)
            shell[key] = []
        else:
            shell[key] = text.decode()
        text.skip_space()
        if text.take(","):
            text.skip_space()
        elif text.take("}"):
            text.skip_space()
            if not items or text.peek():
                raise _NotListing
            return
        else:
            raise _NotListing
    raise _NotListing


def _opened(source: bytes | Path) -> BinaryIO:
    return io.BytesIO(source) if isinstance(source, bytes) else source.open("rb")


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
