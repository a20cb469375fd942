"""Where every piece of the model comes from: one table, command id -> parser -> field.

The collector's node spec (collector/spec/node.yaml) names each command by id; the
manifest records each run under that id. This table is the only place the analyzer
links those ids to a parser and to the model field the records fill, so a command
nobody parses, a parser nobody feeds and a field nothing fills are each a failing test
(tests/test_sources.py), never a rule that silently skips.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from needle.analyzer.netfilter import Ruleset
from needle.analyzer.parsers.bridge_fdb import parse_bridge_fdb
from needle.analyzer.parsers.bridge_link import parse_bridge_link
from needle.analyzer.parsers.cni import parse_cni_config
from needle.analyzer.parsers.common import Parsed
from needle.analyzer.parsers.ethtool import parse_ethtool, parse_ethtool_i, parse_ethtool_k
from needle.analyzer.parsers.flannel import parse_flannel_net_conf, parse_flannel_subnet_env
from needle.analyzer.parsers.ip_addr import parse_ip_addr
from needle.analyzer.parsers.ip_link import parse_ip_link
from needle.analyzer.parsers.ip_neigh import parse_ip_neigh
from needle.analyzer.parsers.ip_route import parse_ip_route
from needle.analyzer.parsers.ip_rule import parse_ip_rule
from needle.analyzer.parsers.rancher import parse_rancher_cmdline, parse_rancher_config
from needle.analyzer.parsers.sysctl import parse_sysctl
from needle.analyzer.parsers.uname import parse_uname


def parse_netfilter(data: bytes) -> Parsed[Ruleset]:
    """A node's `iptables-save`, ready for traversals (its chains compile on first use)."""
    ruleset = Ruleset.from_save(data)
    return Parsed((ruleset,), ruleset.unparsed, ruleset.truncated)


# netns: every network namespace (the host's and each pod's); host: the host's only;
# interface: once per host device; files: a glob or per-process output, many files
Scope = Literal["netns", "host", "interface", "files"]


@dataclass(frozen=True)
class Source:
    kind: str  # how the model and `node.files` name it
    commands: tuple[str, ...]  # command ids that may hold it, best form first
    parser: Callable[[bytes], Parsed[Any]]
    fills: str  # the model field its records go to: "Class.attribute"
    scope: Scope


TABLE: tuple[Source, ...] = (
    Source("links", ("ip-link", "ip-link-text"), parse_ip_link, "Namespace.interfaces", "netns"),
    Source("addresses", ("ip-addr", "ip-addr-text"), parse_ip_addr, "Interface.addresses", "netns"),
    Source(
        "routes", ("ip-route", "ip-route-text"), parse_ip_route, "Namespace.loaded_routes", "netns"
    ),
    Source(
        "routes6",
        ("ip-route6", "ip-route6-text"),
        parse_ip_route,
        "Namespace.loaded_routes",
        "netns",
    ),
    Source(
        "neighbours",
        ("ip-neigh", "ip-neigh-text"),
        parse_ip_neigh,
        "Namespace.loaded_neighbours",
        "netns",
    ),
    Source("rules", ("ip-rule", "ip-rule-text"), parse_ip_rule, "Namespace.rules", "host"),
    Source("fdb", ("bridge-fdb", "bridge-fdb-text"), parse_bridge_fdb, "Node.loaded_fdb", "host"),
    Source(
        "bridge_ports",
        ("bridge-link", "bridge-link-text"),
        parse_bridge_link,
        "Node.bridge_ports",
        "host",
    ),
    Source("sysctl", ("sysctl-net",), parse_sysctl, "Node.sysctls", "host"),
    Source(
        "subnet_env", ("flannel-subnet-env",), parse_flannel_subnet_env, "Node.subnet_env", "host"
    ),
    Source(
        "k3s_net_conf", ("k3s-flannel-net-conf",), parse_flannel_net_conf, "Node.net_conf", "host"
    ),
    Source("uname", ("uname",), parse_uname, "Node.kernel", "host"),
    Source("cni", ("cni-config", "k3s-cni-config"), parse_cni_config, "Node.cni_configs", "files"),
    Source(
        "rancher_config",
        ("k3s-config", "k3s-config-d", "rke2-config", "rke2-config-d"),
        parse_rancher_config,
        "Node.rancher",
        "files",
    ),
    Source("rancher_cmdline", ("rancher-cmdline",), parse_rancher_cmdline, "Node.rancher", "files"),
    Source("netfilter", ("iptables-save",), parse_netfilter, "Node.netfilter", "host"),
    Source("driver", ("ethtool-i",), parse_ethtool_i, "Interface.driver", "interface"),
    Source("features", ("ethtool-k",), parse_ethtool_k, "Interface.features", "interface"),
    Source("settings", ("ethtool",), parse_ethtool, "Interface.settings", "interface"),
)

# Commands collected for people (and for analyses still to come), not parsed into the
# model, each with the reason.
RAW: dict[str, str] = {
    "ip6tables-save": "IPv6 packet filter rules: evidence for people (needle traces IPv4)",
    "nft-ruleset": "nftables rules: evidence for people (needle trace evaluates iptables)",
    "os-release": "the node's distribution, for people",
    "proc-modules": "loaded kernel modules, for people",
    "route-n": "net-tools' view of the routes ip-route holds, for people",
    "arp-n": "net-tools' view of the neighbours ip-neigh holds, for people",
    "brctl-show": "bridge-utils' view of the ports bridge-link holds, for people",
    "ip-netns": "`ip netns list`: the manifest's netns records are the model's source",
    "ip-netns-text": "`ip netns list`: the manifest's netns records are the model's source",
}

BY_KIND: dict[str, Source] = {source.kind: source for source in TABLE}
# per data kind read from a namespace or the host, its command ids, best form first
SOURCES: dict[str, tuple[str, ...]] = {
    source.kind: source.commands for source in TABLE if source.scope in ("netns", "host")
}
# what a rule may say it `needs: [node.X]`: each kind a node's data is read as, and
# `ethtool` for any of its outputs
NODE_DATA: frozenset[str] = frozenset(SOURCES) | {"ethtool", "cni"}
