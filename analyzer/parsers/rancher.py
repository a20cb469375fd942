"""k3s and RKE2 settings: their config files (`/etc/rancher/{k3s,rke2}/config.yaml` and
`config.yaml.d/*`) and their processes' command lines, as the collector stores them
(redacted on the node).

Only what decides pod networking is read: `flannel-backend` (k3s: vxlan by default,
host-gw, wireguard-native, ipsec or none), `cni` (RKE2: canal by default, calico,
cilium, none), `flannel-iface`, `flannel-external-ip`, `cluster-cidr`. Config files are
YAML, but only top-level `key: value` scalars are taken, by line: a hostile file's
anchors and aliases never get the chance to expand.
"""

from __future__ import annotations

from dataclasses import dataclass

from needle.analyzer.parsers.common import Parsed, lines_of

KEYS = frozenset({"flannel-backend", "cni", "flannel-iface", "flannel-external-ip", "cluster-cidr"})


@dataclass(frozen=True, slots=True)
class RancherSetting:
    """One setting: `flannel-backend` = `host-gw`."""

    key: str
    value: str


def _scalar(text: str) -> str:
    value = text.split(" #", 1)[0].strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return value


def parse_rancher_config(data: bytes) -> Parsed[RancherSetting]:
    """Top-level `key: value` lines of a k3s/RKE2 config.yaml; a list value (`cni:` then
    `- canal`) gives its first item, which is what RKE2 installs first."""
    records: list[RancherSetting] = []
    unparsed: list[str] = []
    lines = lines_of(data)
    for index, line in enumerate(lines):
        if not line.strip() or line.lstrip().startswith("#") or line[:1] in " \t-":
            continue
        key, colon, rest = line.partition(":")
        key = key.strip().strip("\"'")
        if not colon:
            unparsed.append(line)
            continue
        if key not in KEYS:
            continue
        value = _scalar(rest)
        if value.startswith("[") and value.endswith("]"):
            value = _scalar(value[1:-1].split(",", 1)[0])
        elif not value and index + 1 < len(lines) and lines[index + 1].lstrip().startswith("- "):
            value = _scalar(lines[index + 1].lstrip()[2:])
        if value:
            records.append(RancherSetting(key, value))
    return Parsed(tuple(records), tuple(unparsed))


def parse_rancher_cmdline(data: bytes) -> Parsed[RancherSetting]:
    """A process's arguments, one a line: `--flannel-backend=host-gw` or
    `--flannel-backend` then `host-gw`."""
    records: list[RancherSetting] = []
    args = [line.strip() for line in lines_of(data)]
    for index, arg in enumerate(args):
        if not arg.startswith("--"):
            continue
        key, equals, value = arg[2:].partition("=")
        if key not in KEYS:
            continue
        if not equals:
            following = args[index + 1] if index + 1 < len(args) else ""
            value = "" if following.startswith("-") else following
        if value:
            records.append(RancherSetting(key, _scalar(value)))
    return Parsed(tuple(records), ())
