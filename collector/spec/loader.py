"""Loads and checks the collection spec (collector/spec/node.yaml).

The spec is data, so its mistakes are caught here with the entry's id, before any
script is rendered or any node is touched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

import yaml
from needle.collector.errors import CollectorError

Scope = Literal["host", "netns", "interface"]
Kind = Literal["command", "file", "glob", "sysctl", "cmdline"]
Role = Literal["overlay", "bridge", "underlay"]
SCOPES = ("host", "netns", "interface")
KINDS = ("command", "file", "glob", "sysctl", "cmdline")
ROLES = ("overlay", "bridge", "underlay")
# What a capture filter may say about the node, found on it: each VXLAN device's own
# dstport, each pod bridge's IPv4 network.
FILTER_PLACEHOLDERS = ("{vxlan_dstport}", "{pod_net}")
_ID = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
# Output names become paths inside the bundle; {interface} is filled in on the node.
_OUTPUT = re.compile(r"^(?!/)(?!.*(^|/)\.\.?(/|$))[A-Za-z0-9._{}/-]+$")
_SYSCTL_KEY = re.compile(r"^[A-Za-z0-9_*./-]+$")
# Link kinds and process names reach the script unquoted (case patterns, words).
_WORD = re.compile(r"^[A-Za-z0-9_.*-]+$")


@dataclass(frozen=True)
class Command:
    id: str
    scope: Scope
    output: str
    kind: Kind = "command"
    argv: tuple[str, ...] = ()
    path: str | tuple[str, ...] | None = None  # file/glob: alternatives, the first found
    keys: tuple[str, ...] = ()
    names: tuple[str, ...] = ()  # cmdline: process names (sh patterns on /proc/PID/comm)
    redact: bool = False
    timeout: int = 10
    max_bytes: int = 64 * 1024 * 1024
    optional: bool = False
    fallback: Command | None = None


@dataclass(frozen=True)
class Capture:
    """A capture on the devices the node script finds for a role, never on a name."""

    devices: Role
    filter: str
    output: str  # with {interface}: one file per device; without: the first device only
    max_devices: int = 4

    @property
    def placeholder(self) -> str | None:
        return next((p for p in FILTER_PLACEHOLDERS if p in self.filter), None)

    @property
    def per_device(self) -> bool:
        return "{interface}" in self.output


@dataclass(frozen=True)
class DeviceKinds:
    """Which link kinds make a device an overlay, and a bridge or a routed port a pod's."""

    overlay: tuple[str, ...] = ("vxlan", "wireguard")
    pod_ports: tuple[str, ...] = ("veth",)


@dataclass(frozen=True)
class ProbeSettings:
    """How the node script probes its peers in the shared window (targets come per node
    from the collector, never from the spec)."""

    sources: tuple[str, ...] = ("host", "pod")
    """Where probes start: the host namespace, and one pod namespace of the node."""
    count: int = 3
    interval_s: float = 0.2
    deadline_s: float = 1.0
    """Each probe ends by then, answered or not (ping -w, nc -w)."""
    small_size: int = 56
    parallel: int = 40
    start_delay_s: float = 0.5
    """From the window's start to the first probe (counters are read first)."""
    peers: int = 6
    """Default --probe-peers: how many peer nodes each node probes."""
    udp_payload: str = "PROBE"


@dataclass(frozen=True)
class Spec:
    commands: tuple[Command, ...]
    captures: tuple[Capture, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)
    devices: DeviceKinds = field(default_factory=DeviceKinds)
    counters: tuple[Command, ...] = ()
    """Read at the start and at the end of the window (scope host or netns)."""
    probes: ProbeSettings = field(default_factory=ProbeSettings)

    def in_scope(self, scope: Scope) -> list[Command]:
        return [command for command in self.commands if command.scope == scope]


def _fail(where: str, message: str) -> CollectorError:
    return CollectorError(f"collection spec, {where}: {message}")


def _command(
    raw: object, defaults: dict[str, Any], where: str, scope: str | None = None
) -> Command:
    if not isinstance(raw, dict):
        raise _fail(where, "each entry is a mapping with id, scope, argv, output, ...")
    entry_id = raw.get("id")
    if not isinstance(entry_id, str) or not _ID.match(entry_id):
        raise _fail(where, f"id {entry_id!r} must be lowercase letters, digits, '.', '-'")
    where = f"{where} ({entry_id})"
    scope = raw.get("scope", scope)
    if scope not in SCOPES:
        raise _fail(where, f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
    kind = raw.get("kind", "command")
    if kind not in KINDS:
        raise _fail(where, f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    output = raw.get("output")
    if not isinstance(output, str) or not _OUTPUT.match(output):
        raise _fail(where, f"output {output!r} must be a relative path without '..'")
    if "{interface}" in output and scope != "interface":
        raise _fail(where, "{interface} is only known for scope: interface")
    argv = raw.get("argv", [])
    if kind == "command" and (
        not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv)
    ):
        raise _fail(where, "argv must be a non-empty list of strings")
    path = raw.get("path")
    paths = path if isinstance(path, list) else [path]
    if kind in {"file", "glob"} and not all(
        isinstance(p, str) and p.startswith("/") for p in paths
    ):
        raise _fail(where, f"kind {kind} needs an absolute path (or a list of them)")
    if kind == "glob" and any("'" in p for p in paths):
        raise _fail(where, "a glob pattern cannot hold a single quote")
    names = raw.get("names", [])
    if kind == "cmdline" and (
        not isinstance(names, list)
        or not names
        or not all(isinstance(n, str) and _WORD.match(n) for n in names)
    ):
        raise _fail(where, "kind cmdline needs names: process names such as k3s or 'k3s-*'")
    redact = raw.get("redact", kind == "cmdline")
    if not isinstance(redact, bool) or (redact and kind not in {"file", "glob", "cmdline"}):
        raise _fail(where, "redact: true is for kinds file, glob and cmdline")
    if kind == "cmdline" and not redact:
        raise _fail(where, "command lines carry join tokens: kind cmdline is always redacted")
    keys = raw.get("keys", [])
    if kind == "sysctl" and (
        not keys or not all(isinstance(k, str) and _SYSCTL_KEY.match(k) for k in keys)
    ):
        raise _fail(where, "kind sysctl needs keys: /proc/sys paths such as net/ipv4/ip_forward")
    timeout = raw.get("timeout", defaults.get("timeout", 10))
    max_bytes = raw.get("max_bytes", defaults.get("max_bytes", 64 * 1024 * 1024))
    for name, value in (("timeout", timeout), ("max_bytes", max_bytes)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise _fail(where, f"{name} must be a positive whole number")
    fallback = raw.get("fallback")
    return Command(
        id=entry_id,
        scope=scope,
        output=output,
        kind=kind,
        argv=tuple(argv),
        path=tuple(path) if isinstance(path, list) else path,
        keys=tuple(keys),
        names=tuple(names),
        redact=redact,
        timeout=timeout,
        max_bytes=max_bytes,
        optional=bool(raw.get("optional", False)),
        fallback=None
        if fallback is None
        else _command(
            {
                "timeout": timeout,
                "max_bytes": max_bytes,
                "optional": raw.get("optional"),
                **fallback,
            },
            defaults,
            f"{where} fallback",
            scope,
        ),
    )


def parse_spec(text: str) -> Spec:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CollectorError(f"collection spec is not valid YAML: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("commands"), list):
        raise CollectorError("collection spec must be a mapping with a commands: list")
    defaults = raw.get("defaults") or {}
    commands = tuple(
        _command(entry, defaults, f"commands[{index}]")
        for index, entry in enumerate(raw["commands"])
    )
    _check_unique(commands)
    captures = tuple(
        _capture(entry, f"captures[{index}]")
        for index, entry in enumerate(raw.get("captures") or [])
    )
    counters = tuple(
        _command(entry, defaults, f"counters[{index}]")
        for index, entry in enumerate(raw.get("counters") or [])
    )
    _check_unique(counters)
    for counter in counters:
        if counter.scope == "interface" or counter.kind in {"glob", "cmdline", "sysctl"}:
            raise _fail(f"counters ({counter.id})", "a counter is a command or a file")
    return Spec(
        commands=commands,
        captures=captures,
        defaults=defaults,
        devices=_device_kinds(raw.get("devices")),
        counters=counters,
        probes=_probe_settings(raw.get("probes")),
    )


def _check_unique(commands: tuple[Command, ...]) -> None:
    seen: set[tuple[str, str]] = set()
    for command in commands:
        for item in (command, command.fallback):
            if item is None:
                continue
            key = (item.scope, item.id)
            if key in seen:
                raise CollectorError(
                    f"collection spec: id {item.id!r} appears twice in scope {item.scope}"
                )
            seen.add(key)


def _number(raw: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise _fail(f"probes.{key}", f"must be a number from {low:g} to {high:g}")
    return float(value)


def _whole(raw: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fail(f"probes.{key}", f"must be a whole number from {low} to {high}")
    return value


def _probe_settings(raw: object) -> ProbeSettings:
    if raw is None:
        return ProbeSettings()
    if not isinstance(raw, dict):
        raise _fail("probes", "a mapping of probe settings (count, interval, deadline, ...)")
    base = ProbeSettings()
    sources = raw.get("from", list(base.sources))
    if (
        not isinstance(sources, list)
        or not sources
        or not set(sources) <= {"host", "pod"}
        or len(set(sources)) != len(sources)
    ):
        raise _fail("probes.from", "a list of host and/or pod")
    payload = raw.get("udp_payload", base.udp_payload)
    # The payload's first byte must not have VXLAN's I flag (0x08): a VXLAN socket then
    # drops it as a bad header, and nothing is ever injected into the overlay.
    if (
        not isinstance(payload, str)
        or not re.fullmatch(r"[A-Za-z0-9 .:_-]{1,64}", payload)
        or ord(payload[0]) & 0x08
    ):
        raise _fail("probes.udp_payload", "1-64 plain characters, the first without bit 0x08")
    settings = ProbeSettings(
        sources=tuple(sources),
        count=_whole(raw, "count", base.count, 1, 10),
        interval_s=_number(raw, "interval", base.interval_s, 0.2, 5),
        # whole seconds: ping -w and nc -w take no fractions
        deadline_s=float(_whole(raw, "deadline", int(base.deadline_s), 1, 30)),
        small_size=_whole(raw, "small", base.small_size, 8, 1400),
        parallel=_whole(raw, "parallel", base.parallel, 1, 200),
        start_delay_s=_number(raw, "start_delay", base.start_delay_s, 0, 30),
        peers=_whole(raw, "peers", base.peers, 0, 1000),
        udp_payload=payload,
    )
    if (settings.count - 1) * settings.interval_s >= settings.deadline_s:
        raise _fail("probes", "count x interval must leave time for the last echo's answer")
    return settings


def _capture(entry: object, where: str) -> Capture:
    if not isinstance(entry, dict) or "interface" in entry:
        # a name would tie the collector to one data plane's devices
        raise _fail(where, f"each capture names its devices by role ({', '.join(ROLES)})")
    devices = entry.get("devices")
    if devices not in ROLES:
        raise _fail(where, f"devices must be one of {', '.join(ROLES)}, not {devices!r}")
    output = entry.get("output")
    if not isinstance(output, str) or "/" in output or not _OUTPUT.match(output):
        raise _fail(where, f"output {output!r} must be a plain file name")
    if output.count("{interface}") > 1 or (
        "{" in output.replace("{interface}", "") or "}" in output.replace("{interface}", "")
    ):
        raise _fail(where, "output may hold {interface} once and no other placeholder")
    bpf = entry.get("filter") or ""
    if not isinstance(bpf, str) or "'" in bpf or "\t" in bpf or "\n" in bpf:
        raise _fail(where, "filter must be one line of text without single quotes")
    used = [p for p in FILTER_PLACEHOLDERS if p in bpf]
    rest = bpf.replace(used[0], "", 1) if used else bpf
    if len(used) > 1 or "{" in rest or "}" in rest:
        names = " or ".join(FILTER_PLACEHOLDERS)
        raise _fail(where, f"filter may hold one placeholder ({names}), once")
    max_devices = entry.get("max_devices", 4)
    if not isinstance(max_devices, int) or isinstance(max_devices, bool) or max_devices <= 0:
        raise _fail(where, "max_devices must be a positive whole number")
    return Capture(devices=devices, filter=bpf, output=output, max_devices=max_devices)


def _device_kinds(raw: object) -> DeviceKinds:
    if raw is None:
        return DeviceKinds()
    if not isinstance(raw, dict):
        raise _fail("devices", "a mapping with overlay: and pod_ports: lists of link kinds")
    found: dict[str, tuple[str, ...]] = {}
    for key in ("overlay", "pod_ports"):
        kinds = raw.get(key, list(getattr(DeviceKinds(), key)))
        if (
            not isinstance(kinds, list)
            or not kinds
            or not all(isinstance(k, str) and _WORD.match(k) and "*" not in k for k in kinds)
        ):
            raise _fail(f"devices.{key}", "a non-empty list of link kinds such as vxlan")
        found[key] = tuple(kinds)
    return DeviceKinds(**found)


def default_spec() -> Spec:
    return parse_spec((resources.files("needle.collector") / "spec" / "node.yaml").read_text())
