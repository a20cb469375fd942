"""Parsers: one per collected command output, pure functions from raw bytes to records.

Every parser takes the bytes the collector stored and returns ``Parsed[Record]``
(``records``, ``unparsed`` lines, ``truncated``; see ``common``). Parsers never raise on
content and know nothing of bundles, rules or the model. Commands with a JSON form have
``parse_X_json`` and ``parse_X_text`` giving the same record type, and ``parse_X`` that
picks by the first character of the output.

Speed for bundles of 10^6 records lives apart from the readers, behind plain calls:
``elements`` holds the only state kept between calls (one shared record per distinct
``-j`` element, one copy of each repeated string), ``ip_route_fast`` the quicker readers
of everyday routes (each gives the general reader's record or declines), and the quick
builders of ``ip_neigh`` and ``bridge_fdb`` sit in one marked section of their modules.
"""

from needle.analyzer.parsers.bridge_fdb import (
    FdbEntry,
    parse_bridge_fdb,
    parse_bridge_fdb_json,
    parse_bridge_fdb_text,
)
from needle.analyzer.parsers.bridge_link import (
    BridgePort,
    parse_bridge_link,
    parse_bridge_link_json,
    parse_bridge_link_text,
)
from needle.analyzer.parsers.cni import CniConfig, CniPlugin, parse_cni_config
from needle.analyzer.parsers.common import Parsed
from needle.analyzer.parsers.ethtool import (
    EthtoolDriver,
    EthtoolFeature,
    EthtoolFeatures,
    EthtoolSettings,
    parse_ethtool,
    parse_ethtool_i,
    parse_ethtool_k,
)
from needle.analyzer.parsers.flannel import (
    FlannelNetConf,
    FlannelSubnetEnv,
    parse_flannel_net_conf,
    parse_flannel_subnet_env,
)
from needle.analyzer.parsers.ip_addr import (
    Address,
    InterfaceAddresses,
    parse_ip_addr,
    parse_ip_addr_json,
    parse_ip_addr_text,
)
from needle.analyzer.parsers.ip_link import (
    Link,
    Vxlan,
    parse_ip_link,
    parse_ip_link_json,
    parse_ip_link_text,
)
from needle.analyzer.parsers.ip_neigh import (
    Neighbour,
    parse_ip_neigh,
    parse_ip_neigh_json,
    parse_ip_neigh_text,
)
from needle.analyzer.parsers.ip_route import (
    Nexthop,
    Route,
    parse_ip_route,
    parse_ip_route_json,
    parse_ip_route_text,
)
from needle.analyzer.parsers.ip_rule import (
    Rule,
    parse_ip_rule,
    parse_ip_rule_json,
    parse_ip_rule_text,
)
from needle.analyzer.parsers.sysctl import SysctlEntry, parse_sysctl
from needle.analyzer.parsers.uname import Uname, parse_uname

__all__ = [
    "Address",
    "BridgePort",
    "CniConfig",
    "CniPlugin",
    "EthtoolDriver",
    "EthtoolFeature",
    "EthtoolFeatures",
    "EthtoolSettings",
    "FdbEntry",
    "FlannelNetConf",
    "FlannelSubnetEnv",
    "InterfaceAddresses",
    "Link",
    "Neighbour",
    "Nexthop",
    "Parsed",
    "Route",
    "Rule",
    "SysctlEntry",
    "Uname",
    "Vxlan",
    "parse_bridge_fdb",
    "parse_bridge_fdb_json",
    "parse_bridge_fdb_text",
    "parse_bridge_link",
    "parse_bridge_link_json",
    "parse_bridge_link_text",
    "parse_cni_config",
    "parse_ethtool",
    "parse_ethtool_i",
    "parse_ethtool_k",
    "parse_flannel_net_conf",
    "parse_flannel_subnet_env",
    "parse_ip_addr",
    "parse_ip_addr_json",
    "parse_ip_addr_text",
    "parse_ip_link",
    "parse_ip_link_json",
    "parse_ip_link_text",
    "parse_ip_neigh",
    "parse_ip_neigh_json",
    "parse_ip_neigh_text",
    "parse_ip_route",
    "parse_ip_route_json",
    "parse_ip_route_text",
    "parse_ip_rule",
    "parse_ip_rule_json",
    "parse_ip_rule_text",
    "parse_sysctl",
    "parse_uname",
]
