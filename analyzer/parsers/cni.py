"""Parses CNI network configuration files (``/etc/cni/net.d/*.conflist`` and ``*.conf``).

Form: one JSON object. A ``.conflist`` has ``plugins``; a ``.conf`` is one plugin at the
top level. One ``CniConfig`` per file, with its plugins in chain order. For flannel the
settings that matter live in ``delegate`` (``hairpinMode``, ``isDefaultGateway``, ``mtu``):
they are lifted onto the plugin record, the plugin's own keys taking precedence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from needle.analyzer.parsers.common import Parsed, json_dumps_safe, json_object, to_int, to_str


@dataclass(frozen=True, slots=True)
class CniPlugin:
    """One plugin of a CNI chain."""

    type: str | None
    mtu: int | None = None
    bridge: str | None = None
    hairpin_mode: bool | None = None
    is_gateway: bool | None = None
    is_default_gateway: bool | None = None
    ip_masq: bool | None = None
    ipam_type: str | None = None
    delegate: dict[str, Any] = field(default_factory=dict)
    capabilities: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CniConfig:
    """One CNI network configuration."""

    name: str | None
    cni_version: str | None = None
    plugins: tuple[CniPlugin, ...] = ()
    is_list: bool = False  # a .conflist (``plugins``) rather than a single .conf
    disable_check: bool | None = None

    @property
    def plugin_types(self) -> tuple[str | None, ...]:
        return tuple(plugin.type for plugin in self.plugins)


def parse_cni_config(data: bytes) -> Parsed[CniConfig]:
    """A .conflist or .conf. Broken or cut-off JSON gives no record, never an exception."""
    obj = json_object(data)
    if isinstance(obj, Parsed):
        return obj
    plugins_raw = obj.get("plugins")
    is_list = isinstance(plugins_raw, list)
    plugin_objs = plugins_raw if isinstance(plugins_raw, list) else [obj]
    plugins = tuple(_plugin(p) for p in plugin_objs if isinstance(p, dict))
    unparsed = tuple(json_dumps_safe(p) for p in plugin_objs if not isinstance(p, dict))
    disable_check = obj.get("disableCheck")
    record = CniConfig(
        name=to_str(obj.get("name")),
        cni_version=to_str(obj.get("cniVersion")),
        plugins=plugins,
        is_list=is_list,
        disable_check=disable_check if isinstance(disable_check, bool) else None,
    )
    return Parsed((record,), unparsed)


def _plugin(obj: dict[str, Any]) -> CniPlugin:
    delegate = obj.get("delegate")
    delegate = delegate if isinstance(delegate, dict) else {}

    def pick(key: str) -> Any:
        return obj[key] if key in obj else delegate.get(key)

    def flag(key: str) -> bool | None:
        value = pick(key)
        return value if isinstance(value, bool) else None

    ipam = pick("ipam")
    capabilities = obj.get("capabilities")
    return CniPlugin(
        type=to_str(obj.get("type")),
        mtu=to_int(pick("mtu")),
        bridge=to_str(pick("bridge")),
        hairpin_mode=flag("hairpinMode"),
        is_gateway=flag("isGateway"),
        is_default_gateway=flag("isDefaultGateway"),
        ip_masq=flag("ipMasq"),
        ipam_type=to_str(ipam.get("type")) if isinstance(ipam, dict) else None,
        delegate=delegate,
        capabilities=capabilities if isinstance(capabilities, dict) else {},
        raw=obj,
    )
