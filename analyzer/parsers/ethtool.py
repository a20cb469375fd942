"""Parses ``ethtool -i IFACE`` (driver), ``ethtool -k IFACE`` (offload features) and
``ethtool IFACE`` (link settings).

Form: text only (ethtool's ``--json`` covers few subcommands and is absent from old
versions). Each output describes one interface and gives one record. ``Cannot get ...``
lines (ethtool's partial failures, e.g. without CAP_NET_ADMIN) are kept in ``errors``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from needle.analyzer.parsers.common import Parsed, lines_of, to_int


@dataclass(frozen=True, slots=True)
class EthtoolDriver:
    """``ethtool -i``: which driver runs the interface."""

    driver: str | None = None
    version: str | None = None
    firmware_version: str | None = None
    bus_info: str | None = None
    supports: dict[str, bool] = field(default_factory=dict)  # supports-statistics ...
    fields: dict[str, str] = field(default_factory=dict)  # every "key: value" as printed


@dataclass(frozen=True, slots=True)
class EthtoolFeature:
    """One offload feature of ``ethtool -k``."""

    name: str
    enabled: bool
    fixed: bool = False  # "[fixed]": the driver does not let it change
    requested: bool | None = None  # "[requested on|off]" when it differs from the state
    parent: str | None = None  # the indented sub-features belong to the line above


@dataclass(frozen=True, slots=True)
class EthtoolFeatures:
    """``ethtool -k``: the offload features of one interface."""

    interface: str | None
    features: dict[str, EthtoolFeature] = field(default_factory=dict)

    def enabled(self, name: str) -> bool | None:
        """Whether a feature is on; None when the output does not list it."""
        feature = self.features.get(name)
        return None if feature is None else feature.enabled


@dataclass(frozen=True, slots=True)
class EthtoolSettings:
    """``ethtool IFACE``: link settings."""

    interface: str | None
    speed_mbps: int | None = None
    duplex: str | None = None
    port: str | None = None
    auto_negotiation: bool | None = None
    link_detected: bool | None = None
    supported_link_modes: tuple[str, ...] = ()
    advertised_link_modes: tuple[str, ...] = ()
    fields: dict[str, str] = field(default_factory=dict)  # every setting, wrapped lines joined
    errors: tuple[str, ...] = ()


def _key_value(line: str) -> tuple[str, str] | None:
    key, sep, value = line.strip().partition(":")
    if not sep or not key:
        return None
    return key.strip(), value.strip()


def parse_ethtool_i(data: bytes) -> Parsed[EthtoolDriver]:
    """``ethtool -i``: ``key: value`` lines."""
    values: dict[str, str] = {}
    unparsed: list[str] = []
    for line in lines_of(data):
        if not line.strip():
            continue
        pair = _key_value(line)
        if pair is None or " " in pair[0]:
            unparsed.append(line)
            continue
        values[pair[0]] = pair[1]
    if not values:
        return Parsed((), tuple(unparsed))
    supports = {
        key[len("supports-") :]: value == "yes"
        for key, value in values.items()
        if key.startswith("supports-")
    }
    record = EthtoolDriver(
        driver=values.get("driver"),
        version=values.get("version"),
        firmware_version=values.get("firmware-version"),
        bus_info=values.get("bus-info"),
        supports=supports,
        fields=values,
    )
    return Parsed((record,), tuple(unparsed))


def parse_ethtool_k(data: bytes) -> Parsed[EthtoolFeatures]:
    """``ethtool -k``: ``Features for IFACE:`` then ``name: on|off [fixed]`` lines."""
    records: list[EthtoolFeatures] = []
    unparsed: list[str] = []
    interface: str | None = None
    features: dict[str, EthtoolFeature] = {}
    parent: str | None = None
    started = False
    for line in lines_of(data):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("Features for ") and stripped.endswith(":"):
            if started:
                records.append(EthtoolFeatures(interface, features))
            interface = stripped[len("Features for ") : -1]
            features = {}
            parent = None
            started = True
            continue
        feature = _feature(line, parent)
        if feature is None:
            unparsed.append(line)
            continue
        if feature.parent is None:
            parent = feature.name
        features[feature.name] = feature
        started = True
    if started:
        records.append(EthtoolFeatures(interface, features))
    return Parsed(tuple(records), tuple(unparsed))


def _feature(line: str, parent: str | None) -> EthtoolFeature | None:
    pair = _key_value(line)
    if pair is None:
        return None
    name, rest = pair
    words = rest.split()
    if not words or words[0] not in ("on", "off") or " " in name:
        return None
    remark = " ".join(words[1:])
    requested = None
    if remark.startswith("[requested ") and remark.endswith("]"):
        requested = remark[len("[requested ") : -1] == "on"
    return EthtoolFeature(
        name=name,
        enabled=words[0] == "on",
        fixed=remark == "[fixed]",
        requested=requested,
        parent=parent if line[:1] in (" ", "\t") and parent != name else None,
    )


def parse_ethtool(data: bytes) -> Parsed[EthtoolSettings]:
    """``ethtool IFACE``: ``Settings for IFACE:`` then ``Key: value`` lines, with values
    that wrap onto further indented lines (link modes, message level names)."""
    interface: str | None = None
    values: dict[str, list[str]] = {}
    errors: list[str] = []
    unparsed: list[str] = []
    last: str | None = None
    for line in lines_of(data):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("Settings for ") and stripped.endswith(":"):
            interface = stripped[len("Settings for ") : -1]
            continue
        if stripped.startswith(("Cannot ", "No data available")):
            errors.append(stripped)
            last = None
            continue
        pair = _key_value(line)
        if pair is not None and pair[0][:1].isupper():
            last = pair[0]
            values[last] = [pair[1]] if pair[1] else []
        elif last is not None:
            values[last].append(stripped)
        else:
            unparsed.append(line)
    if interface is None and not values:
        return Parsed((), tuple(unparsed) + tuple(errors))
    joined = {key: " ".join(parts) for key, parts in values.items()}
    record = EthtoolSettings(
        interface=interface,
        speed_mbps=_speed(joined.get("Speed")),
        duplex=joined.get("Duplex"),
        port=joined.get("Port"),
        auto_negotiation=_yes(joined.get("Auto-negotiation")),
        link_detected=_yes(joined.get("Link detected")),
        supported_link_modes=_modes(joined.get("Supported link modes")),
        advertised_link_modes=_modes(joined.get("Advertised link modes")),
        fields=joined,
        errors=tuple(errors),
    )
    return Parsed((record,), tuple(unparsed))


def _speed(value: str | None) -> int | None:
    if value is None or not value.endswith("Mb/s"):
        return None
    return to_int(value[: -len("Mb/s")])


def _yes(value: str | None) -> bool | None:
    if value is None:
        return None
    word = value.split()[0].lower() if value.split() else ""
    return {"yes": True, "on": True, "no": False, "off": False}.get(word)


def _modes(value: str | None) -> tuple[str, ...]:
    if value is None or value == "Not reported":
        return ()
    return tuple(value.split())
