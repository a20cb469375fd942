"""The node script's probe record lines, as manifest records.

    Q  MTU  MTU_SOURCE  SIZES  PING  DF  UDP_TOOL  SOURCE_NETNS
    R  FROM  NETNS  KIND  ADDR  PORT  PEER  SIZE_NAME  SIZE  DF  TOOL  OUT  ERR  RC  T0  T1
       MISSING  CUT

(tab-separated, `-` for none; see needle_probes_start and needle_probe_rec in prelude.sh).
A line from a node is not trusted: anything that does not fit is left out, never raised.
"""

from __future__ import annotations

import math

from needle.collector.bundle.manifest import NodeProbes, NodeRecord, ProbeResult
from needle.collector.record_fields import field_value, uptime_delta, whole_number
from needle.collector.spec.loader import ProbeSettings

KINDS = ("node-gateway", "pod", "vxlan-port")
SOURCES = ("host", "pod")
UDP_TOOLS = ("nc", "socat", "bash")
SIZE_NAMES = ("small", "under-mtu", "over-mtu")


def probe_settings(fields: list[str], node: NodeRecord, settings: ProbeSettings) -> None:
    """What the node probed with (its MTU may come from its own subnet.env)."""
    if len(fields) < 8:
        return
    _, mtu, mtu_source, sizes, ping, df, udp_tool, source_ns = fields[:8]
    probes = node.probes if node.probes is not None else NodeProbes()
    probes.mtu = whole_number(mtu)
    for word in sizes.split():
        name, _, size = word.partition(":")
        number = whole_number(size)
        if name in SIZE_NAMES and number is not None and number >= 0:
            probes.sizes[name] = number
    probes.mtu_source = field_value(mtu_source)
    probes.ping = field_value(ping)
    probes.df = df == "1"
    probes.udp_tool = udp_tool if udp_tool in UDP_TOOLS else None
    probes.source_netns = field_value(source_ns)
    probes.ping_argv, probes.udp_argv = argv_templates(probes.df, probes.udp_tool, settings)
    node.probes = probes


def argv_templates(
    ping_df: bool, udp_tool: str | None, settings: ProbeSettings
) -> tuple[list[str], list[str]]:
    """What the node ran for an echo and for a datagram, rebuilt from the spec's settings
    as the script builds it; {size}, {target} and {port} stand for each probe's own."""
    deadline = str(math.ceil(settings.deadline_s))
    ping = ["ping", "-c", str(settings.count), "-i", f"{settings.interval_s:g}"]
    ping += ["-w", deadline, "-W", deadline, "-s", "{size}"]
    ping += [*(["-n", "-M", "do"] if ping_df else []), "{target}"]
    udp = {
        "nc": ["nc", "-u", "-w", deadline, "{target}", "{port}"],
        "socat": ["socat", "-T", deadline, "-", "UDP:{target}:{port}"],
        "bash": ["bash", "-c", f"printf %s {settings.udp_payload!r} >/dev/udp/{{target}}/{{port}}"],
    }.get(udp_tool or "", [])
    return ping, udp


def probe_result(fields: list[str], node: NodeRecord, sizes: dict[str, int]) -> ProbeResult | None:
    if len(fields) < 18:
        return None
    source, netns, kind, target, port, peer, size_name, size, df, tool = fields[1:11]
    output, stderr, rc, t0, t1, missing, cut = fields[11:18]
    if kind not in KINDS or source not in SOURCES:
        return None
    number = whole_number(port)
    payload = whole_number(size)
    ran = field_value(output) is not None
    return ProbeResult(
        kind=kind,
        target=target,
        peer_node=peer,
        source=source,
        netns=field_value(netns),
        port=number,
        size_name=field_value(size_name),
        size=payload,
        df=df == "1",
        tool=field_value(tool),
        exit_code=whole_number(rc) if ran else None,
        duration_s=uptime_delta(t0, t1) if ran else None,
        missing_tool=missing == "1",
        cut=field_value(cut),
        output=f"{node.dir}/{output}" if ran and output in sizes else None,
        stderr=f"{node.dir}/{stderr}" if field_value(stderr) and stderr in sizes else None,
    )
