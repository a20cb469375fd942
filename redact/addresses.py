"""Addresses mapped so that the redacted bundle still tells the same story.

Three rules on top of Crypto-PAn, each keeping the map an injective, prefix-preserving
function of the address (every flip still depends only on the bits before it):

- Identity ranges (unspecified, loopback, link-local IPv4, multicast, netmask-looking
  values) stay as they are: they are protocol constants, and the analysis compares
  against them. They are also Crypto-PAn's `kept` networks, so nothing maps into them.
- Known subnets ("regions": pod CIDRs, the cluster CIDR, node subnets) keep an
  address's host bits: flannel's VTEP is its pod CIDR's network address, the bridge
  the .1, and those relations survive. The OUTERMOST region wins, so nested regions
  cannot disagree; regions shorter than a floor are ignored (a /8 would keep 24 bits).
- An IPv6 interface id built from a MAC (EUI-64) is rebuilt from the mapped MAC, so the
  link-local address of an interface still matches its mapped MAC. Crypto-PAn keeps the
  EUI-64 marker invariant, so no other address can take such an id; below the /64 such
  addresses are consistent with their MAC rather than prefix-preserving.

IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) carry their IPv4 address's mapping.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence

from needle.redact.crypto_pan import CryptoPAn
from needle.redact.macs import MacMapper

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

IDENTITY_V4 = tuple(
    ipaddress.IPv4Network(text)
    for text in (
        "0.0.0.0/8",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "224.0.0.0/4",
        "240.0.0.0/4",  # also 255.255.255.255 and netmasks from /4 to /32
        "128.0.0.0/32",  # the /1 and /2 netmasks
        "192.0.0.0/32",
    )
)
IDENTITY_V6 = tuple(ipaddress.IPv6Network(text) for text in ("::/128", "::1/128", "ff00::/8"))
LINK_LOCAL_V6 = ipaddress.IPv6Network("fe80::/64")  # prefix kept, interface id mapped
MAPPED_V6 = ipaddress.IPv6Network("::ffff:0:0/96")  # carries an IPv4 address


def kept() -> dict[str, list[str]]:
    """What the mapping keeps as it is, as the redaction record lists it: the identity
    ranges, then the prefixes kept while the rest of the address is mapped."""
    return {
        "ipv4": [str(network) for network in IDENTITY_V4],
        "ipv6": [
            *(str(network) for network in IDENTITY_V6),
            f"{LINK_LOCAL_V6} (prefix; EUI-64 ids follow the MAC)",
            f"{MAPPED_V6} (prefix; the IPv4 address in it mapped as IPv4)",
        ],
    }


_ALL_V4 = (1 << 32) - 1
_ALL_V6 = (1 << 128) - 1
_TOP_64 = _ALL_V6 ^ ((1 << 64) - 1)
_MAPPED_PREFIX = int(MAPPED_V6.network_address)
_ZONE = re.compile(r"[\w.-]+")
_CACHED = 1 << 14  # addresses (and texts) past which `trim` forgets them


class _Regions:
    """The outermost regions of one family, searchable by address."""

    def __init__(self, networks: Sequence[Network]) -> None:
        self.networks = tuple(networks)  # sorted, disjoint
        self._starts = [int(network.network_address) for network in networks]
        self._ends = [int(network.broadcast_address) for network in networks]
        self._hostmasks = [int(network.hostmask) for network in networks]

    def find(self, address: int) -> tuple[int, int] | None:
        """(network address, host mask) of the region holding `address`, if any."""
        index = bisect_right(self._starts, address) - 1
        if index >= 0 and address <= self._ends[index]:
            return self._starts[index], self._hostmasks[index]
        return None


class AddressMapper:
    """Keyed address mapping for a bundle (see the module docstring).

    `key` is the 32-byte Crypto-PAn key, `macs` maps the MACs inside EUI-64 interface
    ids. Results are cached by value and by text: a bundle repeats its addresses a lot;
    `trim` forgets them once there are more than a node or two brings (a mapping is a
    function of the key, so it comes out the same when computed again). `noted` is told
    of every address mapped, as (version, address, mapped).
    """

    def __init__(
        self,
        key: bytes,
        macs: MacMapper,
        regions: Iterable[Network | str] = (),
        v4_floor: int = 16,
        v6_floor: int = 64,
        noted: Callable[[int, int, int], None] | None = None,
    ) -> None:
        kept_v4 = [_pair(network) for network in IDENTITY_V4]
        kept_v6 = [_pair(network) for network in (*IDENTITY_V6, LINK_LOCAL_V6, MAPPED_V6)]
        self._cp = CryptoPAn(key, kept_v4, kept_v6, eui64_marker=True)
        self._macs = macs
        networks = [
            ipaddress.ip_network(region, strict=False) if isinstance(region, str) else region
            for region in regions
        ]
        self._regions = {
            4: _Regions(_outermost(networks, 4, v4_floor, IDENTITY_V4)),
            6: _Regions(
                _outermost(networks, 6, v6_floor, (*IDENTITY_V6, LINK_LOCAL_V6, MAPPED_V6))
            ),
        }
        self._identity = {
            4: _Regions(_outermost(IDENTITY_V4, 4, 0, ())),
            6: _Regions(_outermost(IDENTITY_V6, 6, 0, ())),
        }
        self._v4: dict[int, int] = {}
        self._v6: dict[int, int] = {}
        self._texts: dict[str, str] = {}
        self._noted = noted

    def regions(self) -> tuple[Network, ...]:
        """The regions in effect: outermost, at least the floor long, outside the
        identity ranges (to count them; their values are the customer's)."""
        return self._regions[4].networks + self._regions[6].networks

    def trim(self) -> None:
        """Forget the cached mappings once there are more than _CACHED."""
        if len(self._v4) + len(self._v6) > _CACHED:
            self._v4.clear()
            self._v6.clear()
        if len(self._texts) > _CACHED:
            self._texts.clear()
        self._cp.trim(_CACHED)

    # --- values --------------------------------------------------------------------------
    def map_v4(self, address: int) -> int:
        cached = self._v4.get(address)
        if cached is not None:
            return cached
        if not 0 <= address <= _ALL_V4:
            raise ValueError(f"{address!r} is not an IPv4 address")
        if self._is_identity(address, 4):
            mapped = address
        else:
            region = self._regions[4].find(address)
            if region is None:
                mapped = self._cp.anonymize_v4(address)
            else:
                network, hostmask = region
                mapped = (self._cp.anonymize_v4(network) & ~hostmask) | (address & hostmask)
        self._v4[address] = mapped
        if self._noted is not None:
            self._noted(4, address, mapped)
        return mapped

    def map_v6(self, address: int) -> int:
        cached = self._v6.get(address)
        if cached is not None:
            return cached
        if not 0 <= address <= _ALL_V6:
            raise ValueError(f"{address!r} is not an IPv6 address")
        if self._is_identity(address, 6):
            mapped = address
        elif address >> 32 == _MAPPED_PREFIX >> 32:
            mapped = _MAPPED_PREFIX | self.map_v4(address & _ALL_V4)
        else:
            eui64 = _is_eui64(address)
            region = self._regions[6].find(address)
            if region is not None:
                network, hostmask = region
                mapped = (self._cp.anonymize_v6(network) & ~hostmask) | (address & hostmask)
            else:
                # An EUI-64 id is replaced below: only the /64 needs Crypto-PAn.
                mapped = self._cp.anonymize_v6(address & _TOP_64 if eui64 else address)
            if eui64:
                mapped = (mapped & _TOP_64) | self._interface_id(address)
        self._v6[address] = mapped
        if self._noted is not None:
            self._noted(6, address, mapped)
        return mapped

    def _is_identity(self, address: int, version: int) -> bool:
        return self._identity[version].find(address) is not None

    def _interface_id(self, address: int) -> int:
        """The EUI-64 interface id of `address` rebuilt from its MAC's mapping."""
        iid = (address & ~_TOP_64).to_bytes(8, "big")
        mac = self._macs.map(bytes((iid[0] ^ 0x02, iid[1], iid[2], iid[5], iid[6], iid[7])))
        return int.from_bytes(bytes((mac[0] ^ 0x02, mac[1], mac[2], 0xFF, 0xFE, *mac[3:])), "big")

    # --- text ----------------------------------------------------------------------------
    def map_address(self, text: str) -> str:
        """An address as text, mapped, in the same family and notation (dotted quad;
        RFC 5952 IPv6, with a dotted tail when the input had one; a zone kept)."""
        cached = self._texts.get(text)
        if cached is not None:
            return cached
        mapped = self._render(*_parse(text))
        self._texts[text] = mapped
        return mapped

    def _render(self, version: int, value: int, dotted: bool, zone: str) -> str:
        if version == 4:
            return _format_v4(self.map_v4(value))
        return _format_v6(self.map_v6(value), dotted=dotted) + zone

    def map_network(self, text: str, prefixlen: int) -> str:
        """An address written with a prefix length: a network (host bits all zero)
        stays a network; any other address maps exactly as `map_address` maps it."""
        version, value, dotted, zone = _parse(text)
        bits = 32 if version == 4 else 128
        if not 0 <= prefixlen <= bits:
            raise ValueError(f"/{prefixlen} is not an IPv{version} prefix length")
        hostmask = (1 << (bits - prefixlen)) - 1
        if value & hostmask:
            return self.map_address(text)
        if version == 4:
            return _format_v4(self.map_v4(value) & ~hostmask)
        return _format_v6(self.map_v6(value) & ~hostmask, dotted=dotted) + zone

    def prepare(
        self, addresses: Iterable[str | int | ipaddress.IPv4Address | ipaddress.IPv6Address]
    ) -> None:
        """Map many addresses in one batch so later lookups are cache hits. Text that is
        not an address is skipped; a bare int is taken as IPv4 when it fits (a wrong
        guess costs only time: this only fills caches)."""
        texts: dict[str, tuple[int, int, bool, str]] = {}
        values: dict[int, set[int]] = {4: set(), 6: set()}
        for item in addresses:
            if isinstance(item, str):
                if item in self._texts or item in texts:
                    continue
                try:
                    parsed = _parse(item)
                except ValueError:
                    continue
                texts[item] = parsed
                version, value = parsed[0], parsed[1]
            elif isinstance(item, int):
                if not 0 <= item <= _ALL_V6:
                    continue
                version, value = (4, item) if item <= _ALL_V4 else (6, item)
            else:
                version, value = item.version, int(item)
            values[version].add(value)
        values[6].difference_update(self._v6)
        anonymize_v6: set[int] = set()
        macs: list[bytes] = []
        for address in values[6]:
            if self._is_identity(address, 6):
                continue
            if address >> 32 == _MAPPED_PREFIX >> 32:
                values[4].add(address & _ALL_V4)
                continue
            region = self._regions[6].find(address)
            eui64 = _is_eui64(address)
            if region is not None:
                anonymize_v6.add(region[0])
            else:
                anonymize_v6.add(address & _TOP_64 if eui64 else address)
            if eui64:
                iid = (address & ~_TOP_64).to_bytes(8, "big")
                macs.append(bytes((iid[0] ^ 0x02, iid[1], iid[2], iid[5], iid[6], iid[7])))
        values[4].difference_update(self._v4)
        anonymize_v4: set[int] = set()
        for address in values[4]:
            if not self._is_identity(address, 4):
                region = self._regions[4].find(address)
                anonymize_v4.add(address if region is None else region[0])
        self._macs.map_many(macs)
        self._cp.anonymize_many(anonymize_v4, 4)
        self._cp.anonymize_many(anonymize_v6, 6)
        for text, parsed in texts.items():
            self._texts[text] = self._render(*parsed)
        for address in values[4]:
            self.map_v4(address)
        for address in values[6]:
            self.map_v6(address)


def _pair(network: Network) -> tuple[int, int]:
    return int(network.network_address), network.prefixlen


def _outermost(
    networks: Iterable[Network], version: int, floor: int, excluded: Sequence[Network]
) -> list[Network]:
    candidates = sorted(
        {
            network
            for network in networks
            if network.version == version
            and network.prefixlen >= floor
            and not any(network.subnet_of(other) for other in excluded)
        },
        key=lambda network: (int(network.network_address), network.prefixlen),
    )
    kept: list[Network] = []
    for network in candidates:
        if not kept or not network.subnet_of(kept[-1]):
            kept.append(network)
    return kept


def _is_eui64(address: int) -> bool:
    return (address >> 24) & 0xFFFF == 0xFFFE


def _parse(text: str) -> tuple[int, int, bool, str]:
    """(version, value, written with a dotted tail, "%zone" or "") of an address."""
    if not isinstance(text, str):
        raise ValueError(f"not an IP address: {text!r}")
    try:
        if ":" not in text:
            return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big"), True, ""
        address, percent, zone = text.partition("%")
        if percent and _ZONE.fullmatch(zone) is None:
            raise ValueError(f"not an IP address: {text!r}")
        value = int.from_bytes(socket.inet_pton(socket.AF_INET6, address), "big")
    except (OSError, UnicodeError) as error:
        raise ValueError(f"not an IP address: {text!r}") from error
    return 6, value, "." in address, percent + zone


def _format_v4(value: int) -> str:
    return socket.inet_ntop(socket.AF_INET, value.to_bytes(4, "big"))


def _format_v6(value: int, *, dotted: bool = False) -> str:
    """RFC 5952: lowercase, no leading zeros, the longest (first) run of two or more
    zero groups as `::`; with `dotted`, the last 32 bits as a dotted quad."""
    groups = 6 if dotted else 8
    hextets = [(value >> (112 - 16 * index)) & 0xFFFF for index in range(groups)]
    parts = [f"{hextet:x}" for hextet in hextets]
    if dotted:
        parts.append(_format_v4(value & _ALL_V4))
    best_start, best_length, index = 0, 0, 0
    while index < groups:
        if hextets[index]:
            index += 1
            continue
        end = index
        while end < groups and not hextets[end]:
            end += 1
        if end - index > best_length:
            best_start, best_length = index, end - index
        index = end
    if best_length < 2:
        return ":".join(parts)
    head = ":".join(parts[:best_start])
    tail = ":".join(parts[best_start + best_length :])
    return f"{head}::{tail}"
