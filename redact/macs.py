"""MAC addresses mapped by a keyed permutation that keeps what the analysis reads from
them: whether a MAC is multicast (the I/G bit) and whether it is locally administered
(the U/L bit; flannel's VTEPs and veths have random local MACs, NICs have vendor ones).

Multicast and broadcast MACs are protocol constants (01:00:5e:..., 33:33:...), not
identities, and stay as they are; so does the all-zero MAC. The other 46 bits go
through an 8-round Feistel network with AES as round function: a permutation, so two
MACs never collide, and without the key nothing links a mapped MAC to its vendor.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

MIN_KEY_BYTES = 16
_ROUNDS = 8
_HALF_BITS = 23
_HALF_MASK = (1 << _HALF_BITS) - 1
_FLAG_BITS = 0x03 << 40  # I/G and U/L, the low two bits of the first octet
_LOW_40 = (1 << 40) - 1
_CACHED = 1 << 14  # MACs past which `trim` forgets them
_TEXT = re.compile(r"[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}")


class MacMapper:
    """Keyed, cached, bijective MAC mapping (see the module docstring). `trim` empties
    the cache once it is large (a mapping is a function of the key: it comes out the
    same again); `noted` is told of every MAC mapped, as (MAC, mapped)."""

    def __init__(self, key: bytes, noted: Callable[[bytes, bytes], None] | None = None) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"a MAC key needs at least {MIN_KEY_BYTES} bytes, not {len(key)}")
        aes_key = bytes(key) if len(key) in (16, 24, 32) else hashlib.sha256(key).digest()
        # ECB as a pseudorandom function: each round encrypts independent single blocks.
        cipher = Cipher(algorithms.AES(aes_key), modes.ECB())  # noqa: S305
        self._encrypt = cipher.encryptor().update
        self._cache: dict[bytes, bytes] = {}
        self._noted = noted

    def trim(self) -> None:
        if len(self._cache) > _CACHED:
            self._cache.clear()

    def map(self, mac: bytes) -> bytes:
        """The mapped form of a 6-byte MAC."""
        cached = self._cache.get(mac)
        if cached is not None:
            return cached
        if len(mac) != 6:
            raise ValueError(f"a MAC address is 6 bytes, not {len(mac)}")
        value = int.from_bytes(mac, "big")
        if _kept(value):
            mapped = bytes(mac)
        else:
            flags = value & _FLAG_BITS
            rest = _squeeze(value)
            while True:  # cycle-walk off 0, which stands for a kept MAC
                rest = self._permute([rest])[0]
                if rest:
                    break
            mapped = (_spread(rest) | flags).to_bytes(6, "big")
        self._cache[bytes(mac)] = mapped
        if self._noted is not None:
            self._noted(bytes(mac), mapped)
        return mapped

    def map_many(self, macs: Iterable[bytes]) -> dict[bytes, bytes]:
        """Many MACs at once: one AES call per Feistel round for all of them."""
        wanted = {bytes(mac) for mac in macs}
        todo = [mac for mac in wanted if mac not in self._cache]
        for mac in todo:
            if len(mac) != 6:
                raise ValueError(f"a MAC address is 6 bytes, not {len(mac)}")
        values = [int.from_bytes(mac, "big") for mac in todo]
        moving = [(mac, value) for mac, value in zip(todo, values, strict=True) if not _kept(value)]
        for mac, value in zip(todo, values, strict=True):
            if _kept(value):
                self._cache[mac] = mac
        rests = self._permute([_squeeze(value) for _, value in moving])
        for (mac, value), rest in zip(moving, rests, strict=True):
            while not rest:  # as in map(): never on 0
                rest = self._permute([rest])[0]
            self._cache[mac] = (_spread(rest) | (value & _FLAG_BITS)).to_bytes(6, "big")
        if self._noted is not None:
            for mac in todo:
                self._noted(mac, self._cache[mac])
        return {mac: self._cache[mac] for mac in wanted}

    def map_text(self, text: str) -> str:
        """A MAC written aa:bb:cc:dd:ee:ff (or with `-`), mapped, in the input's separator
        and letter case."""
        if _TEXT.fullmatch(text) is None:
            raise ValueError(f"not a MAC address: {text!r}")
        separator = text[2]
        mapped = self.map(bytes.fromhex(text.replace(separator, ""))).hex(separator)
        upper = any(c in "ABCDEF" for c in text) and not any(c in "abcdef" for c in text)
        return mapped.upper() if upper else mapped

    def _permute(self, values: list[int]) -> list[int]:
        """The keyed Feistel permutation of 46-bit values, every value per AES call."""
        lefts = [value >> _HALF_BITS for value in values]
        rights = [value & _HALF_MASK for value in values]
        for round_number in range(_ROUNDS):
            prefix = bytes((0x6D, round_number))  # "m" keeps these blocks apart from others
            blocks = b"".join([prefix + right.to_bytes(14, "big") for right in rights])
            keyed = self._encrypt(blocks)
            mixes = [int.from_bytes(keyed[i : i + 3], "big") >> 1 for i in range(0, len(keyed), 16)]
            lefts, rights = rights, [left ^ mix for left, mix in zip(lefts, mixes, strict=True)]
        return [(left << _HALF_BITS) | right for left, right in zip(lefts, rights, strict=True)]


def _kept(value: int) -> bool:
    """Multicast (broadcast included) and the all-zero MAC pass through; so does a MAC
    whose 46 permuted bits are all zero (02:00:00:00:00:00), so 0 is never an output."""
    return bool(value & (1 << 40)) or _squeeze(value) == 0


def _squeeze(value: int) -> int:
    """The 46 bits other than I/G and U/L."""
    return ((value >> 42) << 40) | (value & _LOW_40)


def _spread(rest: int) -> int:
    return ((rest >> 40) << 42) | (rest & _LOW_40)
