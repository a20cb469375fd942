"""What a redacted bundle is checked against: every original value that must not remain,
read from the original bundle itself, and a grep of every member of the redacted one.
Also the comparison of two reports' findings through the mapping."""

from __future__ import annotations

import ipaddress
import json
import re
import tarfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dpkt
from needle.redact import pcap
from needle.redact.addresses import IDENTITY_V4
from needle.redact.names import SYSTEM_NAMESPACES

IPV4 = re.compile(rb"(?<![0-9.])\d{1,3}(?:\.\d{1,3}){3}(?![0-9]|\.\d)")
IPV6 = re.compile(rb"(?<![0-9A-Za-z:.])(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{1,4}(?![0-9A-Za-z:])")
MAC = re.compile(rb"(?<![0-9A-Za-z:])[0-9a-f]{2}(?::[0-9a-f]{2}){5}(?![0-9A-Za-z:])")


def members(bundle: Path) -> Iterator[tuple[str, bytes]]:
    with tarfile.open(bundle) as tar:
        for info in tar:
            if info.isreg():
                handle = tar.extractfile(info)
                assert handle is not None
                yield info.name, handle.read()


def is_capture(name: str, data: bytes) -> bool:
    return pcap.is_capture(data) or name.endswith(".pcap")


def _packet_values(data: bytes) -> Iterator[bytes]:
    """Every address and MAC in the headers of a capture's packets (outer and VXLAN inner)."""
    reader = dpkt.pcapng.Reader if data[:4] == b"\x0a\x0d\x0d\x0a" else dpkt.pcap.Reader
    import io

    for _, frame in reader(io.BytesIO(data)):
        yield from _frame_values(frame, depth=0)


def _frame_values(frame: bytes, depth: int) -> Iterator[bytes]:
    try:
        eth = dpkt.ethernet.Ethernet(frame)
    except (dpkt.UnpackError, dpkt.NeedData):
        return
    yield eth.src
    yield eth.dst
    ip = eth.data
    if isinstance(ip, dpkt.arp.ARP):
        yield from (ip.sha, ip.tha, ip.spa, ip.tpa)
    if isinstance(ip, dpkt.ip.IP | dpkt.ip6.IP6):
        yield ip.src
        yield ip.dst
        udp = ip.data
        if isinstance(udp, dpkt.udp.UDP) and depth == 0 and 8472 in (udp.dport, udp.sport):
            yield from _frame_values(bytes(udp.data)[8:], depth + 1)


def original_values(bundle: Path) -> dict[str, set[bytes]]:
    """What must not remain: addresses (but the kept special ranges), unicast MACs, node,
    pod and namespace names (but the well-known namespaces and their system pods)."""
    found: dict[str, set[bytes]] = {"ipv4": set(), "ipv6": set(), "mac": set(), "name": set()}
    for name, data in members(bundle):
        if is_capture(name, data):
            for value in _packet_values(data):
                if len(value) == 4:
                    found["ipv4"].add(str(ipaddress.IPv4Address(value)).encode())
                elif len(value) == 6:
                    found["mac"].add(":".join(f"{b:02x}" for b in value).encode())
            continue
        found["ipv4"].update(IPV4.findall(data))
        found["ipv6"].update(IPV6.findall(data))
        found["mac"].update(MAC.findall(data))
        if name == "cluster/pods.json" or name == "cluster/nodes.json":
            for item in json.loads(data)["items"]:
                meta = item["metadata"]
                if item["kind"] == "Node" or meta.get("namespace") not in SYSTEM_NAMESPACES:
                    found["name"].add(meta["name"].encode())
    found["ipv4"] = {v for v in found["ipv4"] if _anonymised_v4(v)}
    found["ipv6"] = {v for v in found["ipv6"] if _anonymised_v6(v)}
    found["mac"] = {v for v in found["mac"] if _unicast(v)}
    return found


def _anonymised_v4(text: bytes) -> bool:
    try:
        address = ipaddress.IPv4Address(text.decode())
    except ValueError:
        return False
    return not any(address in network for network in IDENTITY_V4)


def _anonymised_v6(text: bytes) -> bool:
    try:
        address = ipaddress.IPv6Address(text.decode())
    except ValueError:
        return False
    return not (address.is_unspecified or address.is_loopback or address.is_multicast)


def _unicast(text: bytes) -> bool:
    first = int(text[:2], 16)
    return not first & 1 and text not in (b"00:00:00:00:00:00",)


def remaining(original: Path, redacted: Path) -> list[str]:
    """Every original value still found in the redacted bundle: in a member's name, its
    text (as text, with the boundaries an address has), a capture's headers, or anywhere
    in its raw bytes (MACs and IPv6 addresses as bytes too)."""
    values = original_values(original)
    patterns = {
        kind: re.compile(
            rb"(?<![0-9A-Za-z.:_-])(?:"
            + b"|".join(re.escape(v) for v in sorted(vs, key=len, reverse=True))
            + rb")(?![0-9A-Za-z:_-])(?!\.\d)"
        )
        for kind, vs in values.items()
        if vs
    }
    binary = {bytes.fromhex(v.decode().replace(":", "")) for v in values["mac"]}
    binary |= {ipaddress.IPv6Address(v.decode()).packed for v in values["ipv6"]}
    ipv4_packed = {ipaddress.IPv4Address(v.decode()).packed for v in values["ipv4"]}
    left = []
    for name, data in members(redacted):
        for kind, pattern in patterns.items():
            for where, text in (("name", name.encode()), ("data", data)):
                hit = pattern.search(text)
                if hit:
                    left.append(f"{kind} {hit.group().decode()} in {name} ({where})")
        for value in binary:
            if value in data:
                left.append(f"binary {value.hex()} in {name}")
        if is_capture(name, data):
            for value in _packet_values(data):
                if value in ipv4_packed or value in binary:
                    left.append(f"header {value.hex()} in {name}")
    return left


def finding_shape(report: dict[str, Any]) -> Counter[tuple[str, str]]:
    return Counter((f["rule"], f["severity"]) for f in report["findings"])
