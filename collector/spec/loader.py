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
Kind = Literal["command", "file", "glob", "sysctl"]
SCOPES = ("host", "netns", "interface")
KINDS = ("command", "file", "glob", "sysctl")
_ID = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
# Output names become paths inside the bundle; {interface} is filled in on the node.
_OUTPUT = re.compile(r"^(?!/)(?!.*(^|/)\.\.?(/|$))[A-Za-z0-9._{}/-]+$")
_SYSCTL_KEY = re.compile(r"^[A-Za-z0-9_*./-]+$")


@dataclass(frozen=True)
class Command:
    id: str
    scope: Scope
    output: str
    kind: Kind = "command"
    argv: tuple[str, ...] = ()
    path: str | tuple[str, ...] | None = None  # file: alternatives, the first that exists
    keys: tuple[str, ...] = ()
    timeout: int = 10
    max_bytes: int = 64 * 1024 * 1024
    optional: bool = False
    fallback: Command | None = None


@dataclass(frozen=True)
class Capture:
    interface: str
    filter: str
    output: str


@dataclass(frozen=True)
class Spec:
    commands: tuple[Command, ...]
    captures: tuple[Capture, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)

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
        raise _fail(where, f"kind {kind} needs an absolute path (or, for file, a list of them)")
    if kind == "glob" and isinstance(path, list):
        raise _fail(where, "kind glob takes one pattern")
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
    captures = []
    for index, entry in enumerate(raw.get("captures") or []):
        where = f"captures[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("interface"), str):
            raise _fail(where, "each capture names an interface")
        output = entry.get("output")
        if not isinstance(output, str) or "/" in output or not _OUTPUT.match(output):
            raise _fail(where, f"output {output!r} must be a plain file name")
        captures.append(Capture(entry["interface"], str(entry.get("filter") or ""), output))
    return Spec(commands=commands, captures=tuple(captures), defaults=defaults)


def default_spec() -> Spec:
    return parse_spec((resources.files("needle.collector") / "spec" / "node.yaml").read_text())
