"""`needle redact`: one bundle in, its redacted copy out, or nothing out at all.

Two passes over the input: the first learns what the mapping needs (redact/scan.py),
the second rewrites every member through it: Kubernetes objects as objects
(redact/kube.py), captures packet by packet (redact/pcap.py), the manifest record by
record (redact/manifest.py), everything else as text (redact/text.py).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from needle.redact import secrets
from needle.redact.addresses import AddressMapper
from needle.redact.archive import MANIFEST, ArchiveError, BundleOutput, read_members
from needle.redact.keys import RedactionKeys, new_secret
from needle.redact.kube import ObjectRedactor
from needle.redact.macs import MacMapper
from needle.redact.manifest import ManifestError, ManifestRedactor
from needle.redact.names import KEPT_NAMESPACES, SYSTEM_NAMESPACES, NameMap
from needle.redact.pcap import rewrite_capture
from needle.redact.scan import Listing, scan, wanted
from needle.redact.text import TextRewriter

FORMAT = "needle.redaction/v1"
_CAPTURE_MAGICS = (
    b"\xd4\xc3\xb2\xa1",
    b"\xa1\xb2\xc3\xd4",
    b"\x4d\x3c\xb2\xa1",
    b"\xa1\xb2\x3c\x4d",
    b"\x0a\x0d\x0d\x0a",
)
KEPT_IPV4 = ["0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "240.0.0.0/4"]
KEPT_IPV6 = ["::/128", "::1/128", "ff00::/8", "fe80::/64 (prefix; EUI-64 ids follow the MAC)"]


class RedactError(Exception):
    """Redaction could not be done; nothing was written. One sentence."""


@dataclass
class RedactionResult:
    output: Path
    members: int = 0
    captures: int = 0
    packets: int = 0
    packets_dropped: int = 0
    emptied: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    addresses: int = 0
    macs: int = 0
    names: int = 0
    seconds: float = 0.0


class _PacketMapper:
    """The address and MAC maps as the capture rewriter asks for them."""

    def __init__(self, addresses: AddressMapper, macs: MacMapper) -> None:
        self.map_v4 = addresses.map_v4
        self.map_v6 = addresses.map_v6
        self.map_mac = macs.map


def redact_bundle(
    source: Path,
    output: Path,
    *,
    secret: bytes | None = None,
    keep_names: bool = False,
    map_out: Path | None = None,
) -> RedactionResult:
    """Redact the bundle at `source` into `output` (.tar.gz or .tar.zst). Without
    `secret` a random one is used and forgotten. Raises RedactError, leaving no output."""
    started = time.monotonic()
    keyed = secret is not None
    keys = RedactionKeys.from_secret(secret if secret is not None else new_secret())
    names = NameMap(keys.names, keep=keep_names)
    try:
        inventory = scan(read_members(source, wanted), names)
    except ArchiveError as exc:
        raise RedactError(str(exc)) from exc
    if not inventory.has_manifest:
        raise RedactError(f"{source} is not a needle bundle: it has no {MANIFEST}")
    macs = MacMapper(keys.macs)
    addresses = AddressMapper(keys.addresses, macs, inventory.regions)
    rewriter = TextRewriter(addresses, macs, names)
    objects = ObjectRedactor(rewriter, names)
    packets = _PacketMapper(addresses, macs)
    result = RedactionResult(output)
    ports = frozenset(inventory.vxlan_ports)
    manifest: Path | None = None  # set aside on disk until every member is written
    try:
        out = BundleOutput(output, mtime=int(time.time()))
    except ArchiveError as exc:
        raise RedactError(str(exc)) from exc
    try:
        for member in read_members(source):
            if member.name == MANIFEST:
                manifest = out.scratch(MANIFEST)
                manifest.write_bytes(member.data)
                continue
            result.members += 1
            name = rewriter.path(member.name)
            out.add(
                name, _member(member.name, member.data, rewriter, objects, packets, ports, result)
            )
        assert manifest is not None  # the scan saw it
        record = _record(keyed, keep_names, addresses, names, result, rewriter)
        redacted = out.scratch(f"{MANIFEST}.redacted")
        with redacted.open("wb") as sink:
            ManifestRedactor(rewriter, names).rewrite(manifest.read_bytes(), record, sink)
        if map_out is not None:  # before OUT appears: a map that cannot be written stops it
            try:
                _write_map(map_out, names, addresses, macs)
            except OSError as exc:
                raise ArchiveError(f"cannot write {map_out}: {exc.strerror or exc}") from exc
        out.finish(redacted)
    except (ArchiveError, ManifestError) as exc:
        out.abort()
        raise RedactError(str(exc)) from exc
    except BaseException:
        out.abort()
        raise
    result.addresses = rewriter.counts.addresses
    result.macs = rewriter.counts.macs
    result.names = rewriter.counts.names
    result.seconds = time.monotonic() - started
    return result


def _member(
    name: str,
    data: bytes,
    rewriter: TextRewriter,
    objects: ObjectRedactor,
    packets: _PacketMapper,
    ports: frozenset[int],
    result: RedactionResult,
) -> bytes:
    if data[:4] in _CAPTURE_MAGICS or name.endswith((".pcap", ".pcapng")):
        rewritten = rewrite_capture(data, packets, ports)
        result.captures += 1
        result.packets += rewritten.packets
        result.packets_dropped += rewritten.dropped
        if rewritten.problem:
            result.problems.append(f"{rewriter.path(name)}: {rewriter.text(rewritten.problem)}")
        return rewritten.data
    if name.startswith("cluster/") and name.endswith(".json"):
        listed = Listing.read(data)
        if listed is not None:
            return _listing(listed, objects)
        try:
            document = json.loads(data)
        except (ValueError, RecursionError):
            result.emptied.append(rewriter.path(name))
            return b""  # not JSON: nothing to tell its names from its other strings
        return (
            json.dumps(objects.document(document), indent=1, ensure_ascii=False) + "\n"
        ).encode()
    if b"\0" in data:
        result.emptied.append(rewriter.path(name))
        return b""  # binary that is no capture: no way to know what it holds
    if name.endswith(".json"):
        return rewriter.data(data)
    text = data.decode("utf-8", "surrogateescape")
    return rewriter.text(secrets.text(text)).encode("utf-8", "surrogateescape")


def _listing(listed: Listing, objects: ObjectRedactor) -> bytes:
    """What the json.dumps above writes for a List, made an item at a time: the items,
    each redacted as the whole document would redact it (ObjectRedactor keeps nothing
    from one value to the next), written into the rest of the document."""
    head = json.dumps(objects.document(listed.shell), indent=1, ensure_ascii=False)
    pieces = []
    for item in listed.items():
        # redacted as an item of the document's "items" is
        redacted = objects.document({"items": [item]})["items"][0]
        dumped = json.dumps(redacted, indent=1, ensure_ascii=False)
        # two levels deeper: JSON text has no newline but those the indenting puts in
        pieces.append("  " + dumped.replace("\n", "\n  "))
    if pieces:  # in place of the empty "items" of the top level (one space in)
        items = "[\n" + ",\n".join(pieces) + "\n ]"
        head = head.replace('\n "items": []', '\n "items": ' + items, 1)
    return (head + "\n").encode()


def _record(
    keyed: bool,
    keep_names: bool,
    addresses: AddressMapper,
    names: NameMap,
    result: RedactionResult,
    rewriter: TextRewriter,
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "tool": {"name": "needle", "version": _version()},
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "key": "from a key file" if keyed else "random, not kept",
        "addresses": {
            "algorithm": "Crypto-PAn (AES-128), prefix-preserving",
            "kept": {"ipv4": KEPT_IPV4, "ipv6": KEPT_IPV6},
            "host_bits_kept_in_known_subnets": len(addresses.regions()),
            "known_subnets": "pod CIDRs, the cluster network, node subnets "
            "(at least /16 IPv4, /64 IPv6)",
        },
        "macs": {
            "algorithm": "keyed permutation of 46 bits (AES Feistel)",
            "kept": "the multicast and locally-administered bits; broadcast, multicast and "
            "zero MACs",
        },
        "names": {
            "mapped": not keep_names,
            "counts": names.summary(),
            "kept_namespaces": sorted(KEPT_NAMESPACES),
            "system_namespaces_pod_names_kept": sorted(SYSTEM_NAMESPACES),
            "interfaces": "cni0, flannel.1, eth0 kept; veth, cali, lxc and the like mapped",
        },
        "secrets": "values of keys and flags naming a token, password, secret, credential or key; "
        "bearer tokens, JWTs, private keys, URL passwords",
        "captures": {
            "files": result.captures,
            "packets": result.packets,
            "packets_dropped": result.packets_dropped,
            "payload": "dropped after the last header; checksums updated for the mapped addresses",
            "problems": result.problems,
        },
        "emptied": result.emptied,
        "manifest": "command bytes set to null; cluster.origin and the collector's paths and "
        "context redacted",
        "replaced": {
            "addresses": rewriter.counts.addresses,
            "macs": rewriter.counts.macs,
            "names": rewriter.counts.names,
        },
    }


def _write_map(path: Path, names: NameMap, addresses: AddressMapper, macs: MacMapper) -> None:
    document = {
        "format": "needle.redaction-map/v1",
        "warning": "this file reverses the redaction: keep it with the customer",
        "names": dict(sorted(names.mapped.items())),
        "interfaces": dict(sorted(names.interfaces().items())),
        "addresses": addresses.mapped(),
        "macs": macs.mapped(),
    }
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(document, handle, indent=1)
        handle.write("\n")
    temporary.replace(path)


def _version() -> str:
    try:
        return metadata.version("kube-needle")
    except metadata.PackageNotFoundError:
        return "0+unknown"
