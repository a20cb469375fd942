"""`needle redact`: one bundle in, its redacted copy out, or nothing out at all.

Two passes over the input: the first learns what the mapping needs (redact/scan.py),
the second rewrites every member through it: Kubernetes objects as objects
(redact/kube.py), captures packet by packet (redact/pcap.py), the manifest record by
record (redact/manifest.py), everything else as text (redact/text.py).

Memory stays flat in the size of the cluster: the members that grow with it (the
manifest, cluster/*.json) come as streams and are redacted a value at a time, and the
mappers' caches are trimmed between members (docs/redaction.md, "Memory").
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from needle.redact import secrets
from needle.redact.addresses import AddressMapper, kept
from needle.redact.archive import MANIFEST, ArchiveError, BundleOutput, Member, read_members
from needle.redact.errors import RedactError
from needle.redact.keys import RedactionKeys, new_secret
from needle.redact.kube import ObjectRedactor
from needle.redact.macs import MacMapper
from needle.redact.manifest import ManifestError, ManifestRedactor
from needle.redact.mapfile import Ledger, write_map
from needle.redact.names import KEPT_NAMESPACES, SYSTEM_NAMESPACES, NameMap
from needle.redact.pcap import is_capture, rewrite_capture
from needle.redact.scan import Listing, scan, streamed, wanted
from needle.redact.text import TextRewriter

FORMAT = "needle.redaction/v1"
_TRIM_EVERY = 64  # members rewritten between two looks at the size of the caches


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
    try:
        out = BundleOutput(output, mtime=int(time.time()))
    except ArchiveError as exc:
        raise RedactError(str(exc)) from exc
    try:
        with _ledger(map_out) as ledger:
            result = _redact(source, out, keys, keyed, keep_names, map_out, ledger)
    except (ArchiveError, ManifestError) as exc:
        out.abort()
        raise RedactError(str(exc)) from exc
    except BaseException:
        out.abort()
        raise
    result.seconds = time.monotonic() - started
    return result


def _ledger(map_out: Path | None) -> contextlib.AbstractContextManager[Ledger | None]:
    """Where the mappings are noted for the map file, when one is asked for."""
    if map_out is None:
        return contextlib.nullcontext()
    try:
        return contextlib.closing(Ledger(map_out.parent))
    except OSError as exc:
        raise ArchiveError(f"cannot write {map_out}: {exc.strerror or exc}") from exc


def _redact(
    source: Path,
    out: BundleOutput,
    keys: RedactionKeys,
    keyed: bool,
    keep_names: bool,
    map_out: Path | None,
    ledger: Ledger | None,
) -> RedactionResult:
    names = NameMap(keys.names, keep_names, None if ledger is None else ledger.interface)
    inventory = scan(read_members(source, wanted, streamed), names, out.scratch)
    if not inventory.has_manifest:
        raise ArchiveError(f"{source} is not a needle bundle: it has no {MANIFEST}")
    macs = MacMapper(keys.macs, None if ledger is None else ledger.mac)
    addresses = AddressMapper(
        keys.addresses,
        macs,
        inventory.regions,
        noted=None if ledger is None else ledger.address,
    )
    rewriter = TextRewriter(addresses, macs, names)
    objects = ObjectRedactor(rewriter, names)
    packets = _PacketMapper(addresses, macs)
    result = RedactionResult(out.output)
    ports = frozenset(inventory.vxlan_ports)
    manifest: Path | None = None  # set aside on disk until every member is written
    for member in read_members(source, streamed=streamed):
        if member.name == MANIFEST:
            manifest = out.scratch(MANIFEST)
            member.save(manifest)
            continue
        result.members += 1
        name = rewriter.path(member.name)
        if member.stream is not None:
            redacted = _objects(member, out.scratch, rewriter, objects, result)
            out.add_file(name, redacted)
            redacted.unlink()
        else:
            out.add(name, _member(member.name, member.data, rewriter, packets, ports, result))
        if not result.members % _TRIM_EVERY:
            rewriter.trim()
    assert manifest is not None  # the scan saw it
    record = _record(keyed, keep_names, addresses, names, result, rewriter)
    redacted = out.scratch(f"{MANIFEST}.redacted")
    with manifest.open("rb") as original, redacted.open("wb") as sink:
        ManifestRedactor(rewriter, names).rewrite(original, record, sink)
    manifest.unlink()
    if map_out is not None and ledger is not None:  # before OUT appears: a map that
        try:  # cannot be written stops it
            write_map(map_out, names.pairs(), ledger)
        except OSError as exc:
            raise ArchiveError(f"cannot write {map_out}: {exc.strerror or exc}") from exc
    out.finish(redacted)
    result.addresses = rewriter.counts.addresses
    result.macs = rewriter.counts.macs
    result.names = rewriter.counts.names
    return result


def _member(
    name: str,
    data: bytes,
    rewriter: TextRewriter,
    packets: _PacketMapper,
    ports: frozenset[int],
    result: RedactionResult,
) -> bytes:
    if is_capture(data) or name.endswith((".pcap", ".pcapng")):
        rewritten = rewrite_capture(data, packets, ports)
        result.captures += 1
        result.packets += rewritten.packets
        result.packets_dropped += rewritten.dropped
        if rewritten.problem:
            result.problems.append(f"{rewriter.path(name)}: {rewriter.text(rewritten.problem)}")
        return rewritten.data
    if b"\0" in data:
        result.emptied.append(rewriter.path(name))
        return b""  # binary that is no capture: no way to know what it holds
    if name.endswith(".json"):
        return rewriter.data(data)
    text = data.decode("utf-8", "surrogateescape")
    return rewriter.text(secrets.text(text)).encode("utf-8", "surrogateescape")


def _objects(
    member: Member,
    scratch: Callable[[str], Path],
    rewriter: TextRewriter,
    objects: ObjectRedactor,
    result: RedactionResult,
) -> Path:
    """A file of Kubernetes objects (cluster/*.json), redacted into a scratch file: a
    List an item at a time, anything else whole."""
    source, target = scratch("objects"), scratch("objects.redacted")
    member.save(source)
    listed = Listing.read(source)
    if listed is not None:
        with target.open("wb") as sink:
            _listing(listed, objects, sink.write)
    else:
        try:
            document = json.loads(source.read_bytes())
        except (ValueError, RecursionError):
            result.emptied.append(rewriter.path(member.name))
            document = None  # not JSON: nothing to tell its names from its other strings
        target.write_bytes(
            b""
            if document is None
            else (
                json.dumps(objects.document(document), indent=1, ensure_ascii=False) + "\n"
            ).encode()
        )
    source.unlink()
    return target


def _listing(listed: Listing, objects: ObjectRedactor, write: Callable[[bytes], object]) -> None:
    """What the json.dumps above writes for a List, written an item at a time: the items,
    each redacted as the whole document would redact it (ObjectRedactor keeps nothing
    from one value to the next), in place of the empty "items" of the top level (one
    space in) of the rest of the document."""
    head = json.dumps(objects.document(listed.shell), indent=1, ensure_ascii=False)
    before, found, after = head.partition('\n "items": []')
    first = True
    for item in listed.items():
        # redacted as an item of the document's "items" is
        redacted = objects.document({"items": [item]})["items"][0]
        dumped = json.dumps(redacted, indent=1, ensure_ascii=False)
        # two levels deeper: JSON text has no newline but those the indenting puts in
        piece = "  " + dumped.replace("\n", "\n  ")
        if found:
            write(((before + '\n "items": [\n') if first else ",\n").encode() + piece.encode())
        first = False
        objects.rewriter.trim()
    write((head if first or not found else "\n ]" + after).encode() + b"\n")


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
            "kept": kept(),
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


def _version() -> str:
    try:
        return metadata.version("kube-needle")
    except metadata.PackageNotFoundError:
        return "0+unknown"
