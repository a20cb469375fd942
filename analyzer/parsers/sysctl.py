"""Parses ``sysctl -a`` style output: ``key = value`` lines (procps, busybox).

Form: text only. One ``SysctlEntry`` per setting, value kept as printed (multi-number
values such as ``tcp_rmem`` stay one string). Interface names with dots appear with ``/``
in keys (``net.ipv4.conf.flannel/1.forwarding``); ``interface_key`` builds such keys.
Lines ``sysctl:`` prints on errors (``cannot stat``, ``permission denied``) are skipped
and reported in ``unparsed``.
"""

from __future__ import annotations

from dataclasses import dataclass

from needle.analyzer.parsers.common import Parsed, lines_of


@dataclass(frozen=True, slots=True)
class SysctlEntry:
    """One kernel setting."""

    key: str
    value: str


def interface_key(prefix: str, interface: str, name: str) -> str:
    """The sysctl key for a per-interface setting, as ``sysctl -a`` spells it."""
    return f"{prefix}.{interface.replace('.', '/')}.{name}"


def parse_sysctl(data: bytes) -> Parsed[SysctlEntry]:
    """``key = value`` (or ``key=value``) lines."""
    records: list[SysctlEntry] = []
    unparsed: list[str] = []
    for line in lines_of(data):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key or " " in key or key.startswith("sysctl:"):
            unparsed.append(line)
            continue
        records.append(SysctlEntry(key, value.strip()))
    return Parsed(tuple(records), tuple(unparsed))


def as_dict(parsed: Parsed[SysctlEntry]) -> dict[str, str]:
    """The settings by key (a later duplicate wins, as the kernel has one value)."""
    return {entry.key: entry.value for entry in parsed.records}
