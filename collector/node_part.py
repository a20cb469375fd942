"""Turns the tar stream a node's script sent back into bundle files and manifest records.

The stream comes from a node we do not fully trust (a compromised or broken node must
not write outside its own directory of the bundle), and it may have been cut at any
point: every complete member before the cut is kept.
"""

from __future__ import annotations

import json
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from needle.collector.bundle.manifest import (
    CaptureRecord,
    CommandRecord,
    NetnsRecord,
    NodeProbes,
    NodeRecord,
)
from needle.collector.bundle.paths import checked_relpath
from needle.collector.bundle.writer import BundleWriter
from needle.collector.errors import CollectorError
from needle.collector.probe_records import probe_result, probe_settings
from needle.collector.record_fields import field_value, uptime_delta
from needle.collector.spec.loader import Command, Spec

MiB = 1024 * 1024
SIGXFSZ_STATUS = 128 + 25  # the shell's status for a command stopped by `ulimit -f`
_ALLOWED_TOPS = ("host/", "netns/", "captures/")
COUNTER_PHASES = ("start", "end")
_RECORDS = re.compile(r"^_needle/records\.\d+$")
_TCPDUMP_COUNT = re.compile(
    rb"^(\d+) packets? (captured|received by filter|dropped by kernel)", re.MULTILINE
)


@dataclass(frozen=True)
class CaptureLimits:
    seconds: int
    max_packets: int
    snaplen: int

    @property
    def max_bytes(self) -> int:
        # pcap: 24-byte file header, 16-byte record header per packet
        return 24 + self.max_packets * (self.snaplen + 16)


@dataclass
class NodeStream:
    """What one node sent: member sizes, record lines, and whether the stream was cut."""

    sizes: dict[str, int] = field(default_factory=dict)
    records: list[list[str]] = field(default_factory=list)
    cut_short: str | None = None


def _member_name(raw: str) -> str:
    return raw[2:] if raw.startswith("./") else raw


def read_node_stream(
    stream_file: Path,
    writer: BundleWriter,
    node: NodeRecord,
    max_member_bytes: int = 512 * MiB,
    max_total_bytes: int = 4096 * MiB,
) -> NodeStream:
    """Copy the node's members into the bundle under node.dir; collect its records."""
    result = NodeStream()
    total = 0
    try:
        with (
            stream_file.open("rb") as raw,
            tarfile.open(fileobj=raw, mode="r|", ignore_zeros=True) as tar,
        ):
            for member in tar:
                name = _member_name(member.name)
                if member.isdir() or name in {"", "."}:
                    continue
                if not member.isreg():
                    raise CollectorError(f"node sent a non-file member {member.name!r}")
                if member.size > max_member_bytes or total + member.size > max_total_bytes:
                    raise CollectorError(
                        f"node sent more data than the caps allow "
                        f"({member.name!r}, {member.size} bytes)"
                    )
                total += member.size
                source = tar.extractfile(member)
                if source is None:  # pragma: no cover - regular members have data
                    continue
                if _RECORDS.match(name):
                    text = source.read().decode("utf-8", errors="replace")
                    result.records.extend(line.split("\t") for line in text.splitlines())
                    continue
                if not name.startswith(_ALLOWED_TOPS):
                    raise CollectorError(f"node sent an unexpected member {member.name!r}")
                relpath = checked_relpath(f"{node.dir}/{name}")
                try:
                    with writer.open(relpath) as out:
                        while chunk := source.read(MiB):
                            out.write(chunk)
                except BaseException:
                    # a member cut mid-way is not kept: a half file would pass for whole
                    writer.path_of(relpath).unlink(missing_ok=True)
                    raise
                result.sizes[name] = member.size
    except (tarfile.TarError, EOFError, OSError) as exc:
        result.cut_short = f"the node's output stream ended early ({exc})"
    except CollectorError as exc:
        result.cut_short = f"stopped reading the node's output: {exc}"
    return result


def _spec_index(spec: Spec) -> dict[tuple[str, str], Command]:
    """Spec entries by (scope, the id their records carry); a counter's records carry
    its id with the window's phase (link-stats.start, link-stats.end)."""
    index: dict[tuple[str, str], Command] = {}
    for command in spec.commands:
        scope = "host" if command.scope == "interface" else command.scope
        for item in (command, command.fallback):
            if item is not None:
                index[(scope, item.id)] = item
    for counter in spec.counters:
        for item in (counter, counter.fallback):
            for phase in COUNTER_PHASES:
                if item is not None:
                    index[(item.scope, f"{item.id}.{phase}")] = item
    return index


def _argv(command: Command | None, interface: str | None) -> list[str]:
    if command is None:
        return []
    if command.kind in {"file", "glob"}:
        paths = command.path if isinstance(command.path, tuple) else (command.path or "",)
        # "redact": the file was read with its secret values replaced (docs/bundle-format.md)
        return ["redact" if command.redact else "cat", *paths]
    if command.kind == "cmdline":
        return ["redact", *(f"/proc/<pid of {name}>/cmdline" for name in command.names)]
    if command.kind == "sysctl":
        return ["read", *(f"/proc/sys/{key}" for key in command.keys)]
    return [arg.replace("{interface}", interface or "") for arg in command.argv]


def _command_record(
    fields: list[str],
    node: NodeRecord,
    sizes: dict[str, int],
    index: dict[tuple[str, str], Command],
) -> CommandRecord | None:
    if len(fields) < 11:
        return None
    _, cid, scope, iface, output, stderr, rc, t0, t1, timed_out, missing = fields[:11]
    netns = field_value(scope)
    command = index.get(("netns" if netns else "host", cid))
    output_name = field_value(output)
    size = sizes.get(output_name) if output_name else None
    exit_code = int(rc) if rc.lstrip("-").isdigit() else None
    killed = timed_out == "1"
    truncated = bool(
        output_name is not None
        and command is not None
        and (exit_code == SIGXFSZ_STATUS or (size is not None and size >= command.max_bytes))
    )
    if killed:
        exit_code = None
        node.degrade(
            f"{cid}{' in ' + netns if netns else ''}{' on ' + iface if iface != '-' else ''}"
            f" timed out after {command.timeout if command else '?'} s and was killed"
        )
    if truncated:
        node.degrade(
            f"{cid} printed more than {command.max_bytes if command else '?'} bytes; "
            "its output was cut and is marked truncated"
        )
    if missing == "1" and command is not None and not command.optional:
        tool = command.argv[0] if command.argv else command.path
        node.degrade(f"{cid}: {tool} is not available on this node")
    return CommandRecord(
        id=cid,
        netns=netns,
        interface=field_value(iface),
        argv=_argv(command, field_value(iface)),
        exit_code=exit_code,
        timed_out=killed,
        truncated=truncated,
        missing_tool=missing == "1",
        duration_s=uptime_delta(t0, t1),
        bytes=size,
        output=f"{node.dir}/{output_name}" if output_name and size is not None else None,
        stderr=f"{node.dir}/{field_value(stderr)}"
        if field_value(stderr) and field_value(stderr) in sizes
        else None,
    )


def _tcpdump_counts(stderr: bytes) -> dict[str, int]:
    names = {
        b"captured": "packets_captured",
        b"received by filter": "packets_received_by_filter",
        b"dropped by kernel": "packets_dropped_by_kernel",
    }
    return {names[kind]: int(count) for count, kind in _TCPDUMP_COUNT.findall(stderr)}


def _nsids(writer: BundleWriter, node: NodeRecord) -> dict[str, int]:
    """Names of named namespaces -> the nsid the node's host namespace knows them by."""
    path = f"{node.dir}/host/ip-netns.json"
    if not writer.exists(path):
        return {}
    try:
        entries = json.loads(writer.path_of(path).read_bytes() or b"[]")
    except (ValueError, OSError):
        return {}
    return {
        str(entry["name"]): int(entry["id"])
        for entry in entries
        if isinstance(entry, dict) and "name" in entry and "id" in entry
    }


def apply_records(
    stream: NodeStream,
    writer: BundleWriter,
    node: NodeRecord,
    spec: Spec,
    limits: CaptureLimits | None,
) -> None:
    """Fill the node's manifest entry from what its script recorded."""
    index = _spec_index(spec)
    nsids = _nsids(writer, node)
    for fields in stream.records:
        kind = fields[0] if fields else ""
        if kind == "C":
            record = _command_record(fields, node, stream.sizes, index)
            if record is not None:
                node.commands.append(record)
        elif kind == "N" and len(fields) >= 6:
            _, ns_id, inode, name, _path, pids = fields[:6]
            node.netns.append(
                NetnsRecord(
                    id=ns_id,
                    dir=f"{node.dir}/netns/{ns_id}",
                    inode=int(inode) if inode.isdigit() else None,
                    nsid=nsids.get(name),
                    name=field_value(name),
                    pids=[int(pid) for pid in pids.split() if pid.isdigit()][:64],
                )
            )
        elif kind == "P" and len(fields) >= 6 and limits is not None:
            _, iface, output, bpf, rc, error = fields[:6]
            role, skipped = [*fields[6:8], "-", "-"][:2]
            stored = f"captures/{output}"
            counts = {}
            if f"{stored}.stderr" in stream.sizes:
                counts = _tcpdump_counts(writer.path_of(f"{node.dir}/{stored}.stderr").read_bytes())
            exit_code = int(rc) if rc.isdigit() else None
            problem = field_value(error)
            if problem is None and exit_code not in (0, None):
                stderr_path = f"{node.dir}/{stored}.stderr"
                text = (
                    writer.path_of(stderr_path).read_text(errors="replace")
                    if (f"{stored}.stderr" in stream.sizes)
                    else ""
                )
                problem = next(
                    (line for line in text.splitlines() if "tcpdump:" in line),
                    f"tcpdump exited {exit_code}",
                )
            node.captures.append(
                CaptureRecord(
                    interface="" if field_value(skipped) else iface,
                    role=field_value(role),
                    skipped=field_value(skipped),
                    netns=None,
                    filter="" if bpf == "-" else bpf,
                    file=f"{node.dir}/{stored}"
                    if field_value(output) and stored in stream.sizes
                    else None,
                    seconds=limits.seconds,
                    max_packets=limits.max_packets,
                    max_bytes=limits.max_bytes,
                    snaplen=limits.snaplen,
                    exit_code=exit_code,
                    error=problem,
                    **counts,
                )
            )
        elif kind == "Q":
            probe_settings(fields, node, spec.probes)
        elif kind == "R":
            result = probe_result(fields, node, stream.sizes)
            if result is not None:
                if node.probes is None:
                    node.probes = NodeProbes()
                node.probes.results.append(result)
        elif kind == "E" and len(fields) >= 2:
            node.degrade(fields[1])
    if stream.cut_short:
        node.degrade(stream.cut_short)
