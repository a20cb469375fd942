"""Crypto-PAn (Xu, Fan, Ammar, Moon 2002): keyed, prefix-preserving address anonymisation.

Output bit i is input bit i XOR f_i, where f_i is the top bit of AES(first i bits of the
address, then the pad's bits from i on). Because f_i depends only on the first i bits,
any two addresses sharing exactly n leading bits still share exactly n after the
mapping, and the mapping is a bijection. This is the reference C++ implementation's
algorithm (IPv4 in the top 32 bits of the block) and reproduces its sample trace.

`kept` networks extend it without losing either property: f_i is forced to 0 while the
address still agrees with a kept network's first i bits (i below its prefix length). An
address inside a kept network therefore keeps the network's prefix, and one outside it
keeps the bit where it first leaves the network, so it can never be mapped into it.

Speed: the batched path does not walk addresses one by one. For each level it builds
the AES input for every address at once with strided byte-slice assignments (the first
i bits of every address are a few byte columns, the rest is the constant pad), encrypts
them with one ECB `update()` and reads the flip bits with one slice and one
`translate`. OpenSSL encrypts ~1 GB/s, so encrypting a block per address per level is
cheaper than any per-prefix deduplication done in Python would be.
"""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import rshift

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

KEY_BYTES = 32
_BLOCK_BITS = 128
# byte -> its top bit, as 0/1 (batched path) and as ASCII "0"/"1" (for int(..., 2)).
_TOP_BIT = bytes(b >> 7 for b in range(256))
_TOP_BIT_ASCII = bytes(0x30 + (b >> 7) for b in range(256))
# Cached anonymised prefixes for the single-address path: a new address in a known
# subnet then needs only the AES calls below the subnet. Few levels keep memory bounded.
_CHECKPOINTS = {4: (24, 16), 6: (64, 48, 32)}
# The EUI-64 marker (ff:fe in bytes 11-12 of an IPv6 address) occupies bits 88-103.
_EUI64_FIRST_BIT = 88
_EUI64_MARKER = 0xFFFE


@dataclass
class _Family:
    version: int
    bits: int
    kept: tuple[tuple[int, int], ...]
    eui64_marker: bool
    # level -> [lo, hi) value ranges whose flip is forced to 0 at that level (batched path)
    forced_ranges: list[list[tuple[int, int]]] = field(default_factory=list)
    results: dict[int, int] = field(default_factory=dict)
    checkpoints: dict[int, dict[int, int]] = field(default_factory=dict)


class CryptoPAn:
    """Crypto-PAn over `cryptography`'s AES-128-ECB, for IPv4 and IPv6 addresses as ints.

    `key` is 32 bytes: the AES key, then the bytes that, encrypted, become the pad.
    `kept_v4`/`kept_v6` are (network, prefix length) pairs (see the module docstring).
    `eui64_marker` keeps IPv6's EUI-64 marker invariant the same way, relative to every
    /88: an address carries ff:fe in bits 88-103 after the mapping iff it did before, so
    a caller that rewrites EUI-64 interface ids by other means never collides with an
    address whose interface id came from Crypto-PAn.
    """

    def __init__(
        self,
        key: bytes,
        kept_v4: Sequence[tuple[int, int]] = (),
        kept_v6: Sequence[tuple[int, int]] = (),
        *,
        eui64_marker: bool = False,
    ) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"a Crypto-PAn key is {KEY_BYTES} bytes, not {len(key)}")
        # ECB is Crypto-PAn's pseudorandom function: independent one-block encryptions.
        cipher = Cipher(algorithms.AES(bytes(key[:16])), modes.ECB())  # noqa: S305
        self._encrypt = cipher.encryptor().update
        self._pad = self._encrypt(bytes(key[16:]))
        pad_int = int.from_bytes(self._pad, "big")
        # level i: (mask of the block's top i bits, the pad below them)
        self._level_parts = [
            (_top_mask(i, _BLOCK_BITS), pad_int & ((1 << (_BLOCK_BITS - i)) - 1))
            for i in range(_BLOCK_BITS)
        ]
        # level i, i % 8 != 0: translation table for the byte holding bit i, mixing the
        # address's top i % 8 bits with the pad's bits below them.
        self._mix_tables = [
            bytes(
                (b & (0xFF00 >> (i % 8)) & 0xFF) | (self._pad[i // 8] & (0xFF >> (i % 8)))
                for b in range(256)
            )
            for i in range(_BLOCK_BITS)
        ]
        self._families = {
            4: self._family(4, 32, kept_v4, eui64_marker=False),
            6: self._family(6, 128, kept_v6, eui64_marker=eui64_marker),
        }

    @staticmethod
    def _family(
        version: int, bits: int, kept: Sequence[tuple[int, int]], *, eui64_marker: bool
    ) -> _Family:
        normalised = []
        for network, length in kept:
            if not 0 <= length <= bits or not 0 <= network < 1 << bits:
                raise ValueError(f"kept network {network:#x}/{length} is not IPv{version}")
            normalised.append((network & _top_mask(length, bits), length))
        family = _Family(version, bits, tuple(sorted(set(normalised))), eui64_marker)
        for level in range(bits):
            ranges = set()
            for network, length in family.kept:
                if level < length:
                    low_bits = bits - level
                    start = network >> low_bits << low_bits
                    ranges.add((start, start + (1 << low_bits)))
            family.forced_ranges.append(sorted(ranges))
        family.checkpoints = {level: {} for level in _CHECKPOINTS[version]}
        return family

    def trim(self, limit: int) -> None:
        """Forget the cached results and prefixes of a family once there are more than
        `limit` of them (they are computed again, the same)."""
        for family in self._families.values():
            if len(family.results) > limit:
                family.results.clear()
            for prefixes in family.checkpoints.values():
                if len(prefixes) > limit:
                    prefixes.clear()

    # --- single addresses --------------------------------------------------------------
    def anonymize_v4(self, address: int) -> int:
        return self._one(self._families[4], address)

    def anonymize_v6(self, address: int) -> int:
        return self._one(self._families[6], address)

    def anonymize(self, address: int, version: int) -> int:
        return self._one(self._family_of(version), address)

    def _one(self, family: _Family, address: int) -> int:
        cached = family.results.get(address)
        if cached is not None:
            return cached
        bits = family.bits
        if not 0 <= address < 1 << bits:
            raise ValueError(f"{address!r} is not an IPv{family.version} address")
        start, top = 0, 0
        for level, prefixes in family.checkpoints.items():  # deepest first
            known = prefixes.get(address >> (bits - level))
            if known is not None:
                start, top = level, known
                break
        block = address << (_BLOCK_BITS - bits)
        blocks = b"".join(
            [
                ((block & high) | pad).to_bytes(16, "big")
                for high, pad in self._level_parts[start:bits]
            ]
        )
        # One ECB call for all remaining levels; "0"/"1" per level, read as one integer.
        flips = int(self._encrypt(blocks)[::16].translate(_TOP_BIT_ASCII), 2)
        flips &= self._unforced(family, address)
        low_bits = bits - start
        result = (top << low_bits) | ((address ^ flips) & ((1 << low_bits) - 1))
        for level, prefixes in family.checkpoints.items():
            if level > start:
                prefixes[address >> (bits - level)] = result >> (bits - level)
        family.results[address] = result
        return result

    @staticmethod
    def _unforced(family: _Family, address: int) -> int:
        """The bits of `address` whose flip is not forced to 0 (a mask over all bits)."""
        bits = family.bits
        mask = (1 << bits) - 1
        deepest = -1  # the last level whose flip a kept network forces to 0
        for network, length in family.kept:
            agreed = bits - (address ^ network).bit_length()  # leading bits in common
            deepest = max(deepest, min(agreed, length - 1))
        if deepest >= 0:
            mask &= (1 << (bits - 1 - deepest)) - 1
        if family.eui64_marker:
            field_bits = (address >> (bits - _EUI64_FIRST_BIT - 16)) & 0xFFFF
            agreed = min(16 - (field_bits ^ _EUI64_MARKER).bit_length(), 15)
            last_position = bits - 1 - _EUI64_FIRST_BIT
            mask &= ~(((1 << (agreed + 1)) - 1) << (last_position - agreed))
        return mask

    # --- many addresses ----------------------------------------------------------------
    def anonymize_many(self, addresses: Iterable[int], version: int) -> dict[int, int]:
        """Every distinct address in `addresses` -> its anonymised form (also cached for
        the single-address methods)."""
        family = self._family_of(version)
        wanted = set(addresses)
        todo = sorted(wanted.difference(family.results))
        if todo:
            if todo[0] < 0 or todo[-1] >= 1 << family.bits:
                bad = todo[0] if todo[0] < 0 else todo[-1]
                raise ValueError(f"{bad!r} is not an IPv{version} address")
            self._batch(family, todo)
        results = family.results
        return {address: results[address] for address in wanted}

    def _batch(self, family: _Family, addresses: list[int]) -> None:
        bits = family.bits
        width = bits // 8
        count = len(addresses)
        packed = _pack(addresses, width)
        columns = [packed[j::width] for j in range(width)]  # byte j of every address
        blocks = bytearray(self._pad * count)
        flip_columns = [0] * width  # per byte column, every address's flips, as one int
        marker = _all_ones(count) if family.eui64_marker else 0
        for level in range(bits):
            column, bit = divmod(level, 8)
            if bit == 0 and column > 0:
                blocks[column - 1 :: 16] = columns[column - 1]
            elif bit:
                blocks[column::16] = columns[column].translate(self._mix_tables[level])
            flags = bytearray(self._encrypt(blocks)[::16].translate(_TOP_BIT))
            for start, stop in family.forced_ranges[level]:
                low, high = bisect_left(addresses, start), bisect_left(addresses, stop)
                flags[low:high] = bytes(high - low)
            flags_int = int.from_bytes(flags, "big")
            if family.eui64_marker and _EUI64_FIRST_BIT <= level < _EUI64_FIRST_BIT + 16:
                position = level - _EUI64_FIRST_BIT
                if position:  # still agreeing with the marker's bits before this level
                    previous = level - 1
                    marker_bit = (_EUI64_MARKER >> (16 - position)) & 1
                    table = _bit_equals_table(previous % 8, marker_bit)
                    marker &= int.from_bytes(columns[previous // 8].translate(table), "big")
                flags_int ^= flags_int & marker
            # Each byte is 0 or 1, so shifting by under 8 never crosses into a neighbour.
            flip_columns[column] |= flags_int << (7 - bit)
        flips = bytearray(width * count)
        for j, value in enumerate(flip_columns):
            flips[j::width] = value.to_bytes(count, "big")
        mapped = int.from_bytes(packed, "big") ^ int.from_bytes(flips, "big")
        results = _unpack(mapped.to_bytes(width * count, "big"), width)
        family.results.update(zip(addresses, results, strict=True))
        for level, prefixes in family.checkpoints.items():
            shift = bits - level
            prefixes.update(
                zip(
                    map(rshift, addresses, repeat(shift)),
                    map(rshift, results, repeat(shift)),
                    strict=True,
                )
            )

    def _family_of(self, version: int) -> _Family:
        family = self._families.get(version)
        if family is None:
            raise ValueError(f"IP version must be 4 or 6, not {version!r}")
        return family


def _top_mask(length: int, bits: int) -> int:
    return ((1 << length) - 1) << (bits - length)


def _all_ones(count: int) -> int:
    """An int whose `count` big-endian bytes are each 1."""
    return int.from_bytes(b"\x01" * count, "big")


def _bit_equals_table(bit: int, wanted: int) -> bytes:
    """byte -> 1 if its bit `bit` (0 = most significant) is `wanted`, else 0."""
    return bytes(int((b >> (7 - bit)) & 1 == wanted) for b in range(256))


def _pack(addresses: list[int], width: int) -> bytes:
    if width == 4:
        words = array("I", addresses) if array("I").itemsize == 4 else array("L", addresses)
        if sys.byteorder == "little":
            words.byteswap()
        return words.tobytes()
    return b"".join([address.to_bytes(width, "big") for address in addresses])


def _unpack(data: bytes, width: int) -> list[int]:
    if width == 4:
        words = array("I") if array("I").itemsize == 4 else array("L")
        words.frombytes(data)
        if sys.byteorder == "little":
            words.byteswap()
        return words.tolist()
    return [int.from_bytes(data[i : i + width], "big") for i in range(0, len(data), width)]
