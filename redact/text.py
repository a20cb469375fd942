"""The one pass that rewrites text: every address, MAC, bridge id and name in a command's
output, a file name or a manifest string, found by one regular expression and replaced
through the bundle's maps.

Text is decoded with surrogateescape, so bytes that are not UTF-8 come back out
unchanged; what is not an address, a MAC or a known name is never touched. Plain words
(`link`, `master`) are never taken for names here: a node named `master` is mapped where
a name is expected (the Kubernetes objects, the manifest, file names), never in `ip`'s
output, where the word has its own meaning.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from needle.redact.addresses import AddressMapper
from needle.redact.macs import MacMapper
from needle.redact.names import NameMap

_HEX = "[0-9A-Fa-f]"
_MAC = rf"(?<![0-9A-Za-z:]){_HEX}{{2}}(?::{_HEX}{{2}}){{5}}(?![0-9A-Za-z:])"
# a bridge id: priority, then the MAC as brctl (12 digits) or ip -d (unpadded) prints it
_BRIDGE = (
    r"(?<![0-9A-Za-z.])[0-9a-f]{4}\."
    r"(?P<bridge_mac>[0-9a-f]{12}|[0-9a-f]{1,2}(?::[0-9a-f]{1,2}){5})(?![0-9A-Za-z:])"
)
_V6 = (
    rf"(?<![0-9A-Za-z:.])(?:{_HEX}{{0,4}}:){{2,7}}(?:{_HEX}{{1,4}}|\d{{1,3}}(?:\.\d{{1,3}}){{3}})?"
    r"(?:/(?P<v6len>\d{1,3}))?(?![0-9A-Za-z:])"
)
_V4 = r"(?<![0-9A-Za-z.])\d{1,3}(?:\.\d{1,3}){3}(?:/(?P<v4len>\d{1,2})(?!\d))?(?!\d|\.\d)"
# a word a name can be: lowercase, with a digit, a dash or a dot in it
_WORD = (
    r"(?<![A-Za-z0-9_.-])(?=[a-z0-9_.-]*[0-9.-])[a-z0-9][a-z0-9_.-]*(?<![.-])"
    r"(?![A-Za-z0-9_-])(?!\.[A-Za-z0-9_])"
)
PATTERN = re.compile(
    f"(?P<mac>{_MAC})|(?P<bridge>{_BRIDGE})|(?P<v6>{_V6})|(?P<v4>{_V4})|(?P<word>{_WORD})"
)
# Addresses worth mapping in one batch before a large text is rewritten.
_ADDRESSES = re.compile(
    r"(?<![0-9A-Za-z.])\d{1,3}(?:\.\d{1,3}){3}(?!\d|\.\d)"
    r"|(?<![0-9A-Za-z:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{1,4}(?![0-9A-Za-z:])"
)
BATCH_FROM = 256 * 1024  # characters


@dataclass
class Counts:
    """What one rewriter replaced (for the redaction record; never the values)."""

    addresses: int = 0
    macs: int = 0
    names: int = 0


class TextRewriter:
    def __init__(self, addresses: AddressMapper, macs: MacMapper, names: NameMap) -> None:
        self.addresses = addresses
        self.macs = macs
        self.names = names
        self.counts = Counts()
        self._handlers: dict[str, Callable[[re.Match[str]], str]] = {
            "mac": self._mac,
            "bridge": self._bridge,
            "v6": self._v6,
            "v4": self._v4,
            "word": self._word,
        }

    # --- entry points ------------------------------------------------------------------
    def text(self, text: str) -> str:
        if len(text) >= BATCH_FROM:
            self.addresses.prepare(_ADDRESSES.findall(text))
        return PATTERN.sub(self._replace, text)

    def data(self, data: bytes) -> bytes:
        return self.text(data.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")

    def path(self, path: str) -> str:
        """A member name: each part mapped as a whole name first (a node named `master`
        has its directory), then as text."""
        return "/".join(self.part(part) for part in path.split("/"))

    def part(self, part: str) -> str:
        exact = self.names.lookup(part)
        if exact is not None:
            self.counts.names += 1
            return exact
        return self.text(part)

    def strings(self, values: Iterable[str]) -> list[str]:
        return [self.text(value) for value in values]

    # --- matches -----------------------------------------------------------------------
    def _replace(self, match: re.Match[str]) -> str:
        return self._handlers[match.lastgroup or "word"](match)

    def _mac(self, match: re.Match[str]) -> str:
        self.counts.macs += 1
        return self.macs.map_text(match.group())

    def _bridge(self, match: re.Match[str]) -> str:
        text = match.group()
        mac = match.group("bridge_mac")
        start = match.start("bridge_mac") - match.start()
        if ":" in mac:
            octets = bytes(int(octet, 16) for octet in mac.split(":"))
            mapped = ":".join(f"{octet:x}" for octet in self.macs.map(octets))
        else:
            mapped = self.macs.map(bytes.fromhex(mac)).hex()
        self.counts.macs += 1
        return text[:start] + mapped

    def _v4(self, match: re.Match[str]) -> str:
        text = match.group()
        length = match.group("v4len")
        address = text if length is None else text[: -len(length) - 1]
        octets = [int(octet) for octet in address.split(".")]
        if any(octet > 255 for octet in octets):
            return text  # a version number or the like, not an address
        address = ".".join(map(str, octets))  # 10.01.02.03 is 10.1.2.3 to whom reads it
        self.counts.addresses += 1
        if length is None:
            return self.addresses.map_address(address)
        if int(length) > 32:
            return f"{self.addresses.map_address(address)}/{length}"
        return f"{self.addresses.map_network(address, int(length))}/{length}"

    def _v6(self, match: re.Match[str]) -> str:
        text = match.group()
        length = match.group("v6len")
        address = text if length is None else text[: -len(length) - 1]
        try:
            if length is None or int(length) > 128:
                mapped = self.addresses.map_address(address)
                result = mapped if length is None else f"{mapped}/{length}"
            else:
                result = f"{self.addresses.map_network(address, int(length))}/{length}"
        except ValueError:
            return text  # a time of day, a port range: not an address
        self.counts.addresses += 1
        return result

    def _word(self, match: re.Match[str]) -> str:
        word = match.group()
        mapped = self.names.lookup(word)
        if mapped is None:
            mapped = self.names.interface(word)
        if mapped is not None:
            self.counts.names += 1
            return mapped
        if "." not in word:
            return word
        # a hostname's first label, a sysctl key's interface (net.ipv4.conf.vethX.rp_filter)
        parts = word.split(".")
        changed = False
        for index, part in enumerate(parts):
            replacement = self.names.lookup(part) or self.names.interface(part)
            if replacement is not None:
                parts[index] = replacement
                changed = True
        if not changed:
            return word
        self.counts.names += 1
        return ".".join(parts)
