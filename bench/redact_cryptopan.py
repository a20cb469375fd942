"""How fast is needle's Crypto-PAn, and what would the obvious alternatives cost?

Times, on cold instances (no cache carried over between rows):
- CryptoPAn.anonymize_many (batched) and anonymize_v4/v6 (single, per-prefix cache) on
  100,000 distinct IPv4 addresses, consecutive from 10.244.0.0 (a /16 only holds 65,536,
  so they run into 10.245.x) and random over the whole space, and 20,000 IPv6 addresses
  (random, and 200 hosts in each of 100 /64s);
- a level-by-level variant over the distinct prefixes (a dict per level, one ECB call per
  level), the other batched design that was considered;
- a straightforward per-bit implementation (one AES call per bit, what pycryptopan and
  yacryptopan do) on a 5,000-address sample, extrapolated to 100,000;
- AddressMapper end to end (prepare() then map_address() on every text), as the
  redaction of a large node runs it.
Every implementation is checked against the others on the sample.

    .venv/bin/python bench/redact_cryptopan.py [--pycryptopan]

--pycryptopan also tries PyPI's pycryptopan 0.01 in a throwaway venv under /tmp (never
in the project), and times it if it imports.
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from needle.redact.addresses import AddressMapper
from needle.redact.crypto_pan import CryptoPAn
from needle.redact.macs import MacMapper

KEY = bytes.fromhex(
    "1522178d33a4cf80130a5b1649907d10d8988f837979652762574c2d2a842202"
)  # 21, 34, 23, 141, ... 34, 2
SAMPLE = 5_000


class PerBit:
    """One AES call per bit of each address, nothing cached (the textbook loop)."""

    def __init__(self, key: bytes) -> None:
        self._encrypt = Cipher(algorithms.AES(key[:16]), modes.ECB()).encryptor().update
        self._pad = int.from_bytes(self._encrypt(key[16:]), "big")

    def anonymize(self, address: int, bits: int) -> int:
        block = address << (128 - bits)
        flips = 0
        for i in range(bits):
            high = ((1 << i) - 1) << (128 - i)
            data = ((block & high) | (self._pad & ~high & ((1 << 128) - 1))).to_bytes(16, "big")
            flips = (flips << 1) | (self._encrypt(data)[0] >> 7)
        return address ^ flips


class DistinctPrefixes:
    """Level by level over the distinct i-bit prefixes: one ECB call per level, the
    flips kept in a dict per level (the design the batched path was compared with)."""

    def __init__(self, key: bytes) -> None:
        self._encrypt = Cipher(algorithms.AES(key[:16]), modes.ECB()).encryptor().update
        self._pad = int.from_bytes(self._encrypt(key[16:]), "big")

    def anonymize_many(self, addresses: Iterable[int], bits: int) -> dict[int, int]:
        levels = [set(addresses)]
        for _ in range(bits):
            levels.append({prefix >> 1 for prefix in levels[-1]})
        levels.reverse()  # levels[i]: the distinct i-bit prefixes
        outputs = {0: 0}  # i-bit prefix -> its anonymised i bits
        for i in range(bits):
            prefixes = list(outputs)
            low = self._pad & ((1 << (128 - i)) - 1)
            shift = 128 - i
            blocks = b"".join([((p << shift) | low).to_bytes(16, "big") for p in prefixes])
            flips = self._encrypt(blocks)[::16]
            steps = {
                p: (outputs[p] << 1) | (flip >> 7) for p, flip in zip(prefixes, flips, strict=True)
            }
            outputs = {p: steps[p >> 1] ^ (p & 1) for p in levels[i + 1]}
        return outputs


def timed(function: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def row(name: str, count: int, seconds: float, note: str = "") -> None:
    per = seconds / count * 1e6
    print(f"{name:<70} {count:>8,} {seconds:>9.3f} s {per:>9.2f} us/addr  {note}")


def bench_family(label: str, addresses: list[int], version: int) -> None:
    bits = 32 if version == 4 else 128
    seconds, batched = timed(lambda: CryptoPAn(KEY).anonymize_many(addresses, version))
    row(f"{label}: CryptoPAn.anonymize_many", len(addresses), seconds)
    cp = CryptoPAn(KEY)
    single = cp.anonymize_v4 if version == 4 else cp.anonymize_v6
    seconds, singles = timed(lambda: [single(address) for address in addresses])
    row(f"{label}: CryptoPAn.anonymize_v{version} (single)", len(addresses), seconds)
    assert singles == [batched[address] for address in addresses]  # type: ignore[index]
    seconds, levels = timed(lambda: DistinctPrefixes(KEY).anonymize_many(addresses, bits))
    row(f"{label}: distinct prefixes, dict per level", len(addresses), seconds)
    assert levels == batched
    sample = random.Random(1).sample(addresses, min(SAMPLE, len(addresses)))
    reference = PerBit(KEY)
    seconds, slow = timed(lambda: [reference.anonymize(address, bits) for address in sample])
    estimate = seconds / len(sample) * len(addresses)
    row(f"{label}: per-bit reference", len(sample), seconds, f"~{estimate:.1f} s for all")
    assert slow == [batched[address] for address in sample]  # type: ignore[index]


def bench_mapper(label: str, texts: list[str], regions: list[str]) -> None:
    mapper = AddressMapper(KEY, MacMapper(KEY), [ipaddress.ip_network(r) for r in regions])

    def run() -> list[str]:
        mapper.prepare(texts)
        return [mapper.map_address(text) for text in texts]

    seconds, _ = timed(run)
    row(f"{label}: AddressMapper prepare+map_address", len(texts), seconds)


def try_pycryptopan(sample: list[int]) -> None:
    """PyPI's pycryptopan in a throwaway venv: does it install, import, run?"""
    root = Path(tempfile.mkdtemp(prefix="pycryptopan-", dir="/tmp"))
    try:
        subprocess.run([sys.executable, "-m", "venv", str(root)], check=True)
        python = str(root / "bin" / "python")
        install = subprocess.run(
            [python, "-m", "pip", "install", "-q", "pycryptopan==0.01"],
            capture_output=True,
            text=True,
            check=False,
        )
        if install.returncode != 0:
            print(f"pycryptopan: pip install failed: {install.stderr.strip()[-300:]}")
            return
        texts = [str(ipaddress.IPv4Address(address)) for address in sample]
        script = (
            "import sys, time\n"
            "import cryptopan\n"
            "cp = cryptopan.CryptoPan(bytes(range(32)))\n"
            "texts = sys.stdin.read().split()\n"
            "t = time.perf_counter()\n"
            "[cp.anonymize(x) for x in texts]\n"
            "print(time.perf_counter() - t)\n"
        )
        run = subprocess.run(
            [python, "-c", script],
            input="\n".join(texts),
            capture_output=True,
            text=True,
            check=False,
        )
        if run.returncode != 0:
            last = run.stderr.strip().splitlines()[-1] if run.stderr.strip() else "?"
            print(f"pycryptopan: installs (module `cryptopan`) but does not run: {last}")
            return
        row("pycryptopan 0.01 (IPv4 only)", len(sample), float(run.stdout))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pycryptopan", action="store_true", help="also try PyPI pycryptopan")
    args = parser.parse_args()
    rnd = random.Random(42)
    dense_v4 = [int(ipaddress.IPv4Address("10.244.0.0")) + i for i in range(100_000)]
    random_v4 = list({rnd.getrandbits(32) for _ in range(100_500)})[:100_000]
    random_v6 = list({rnd.getrandbits(128) for _ in range(20_000)})
    subnets_v6 = [
        (0xFD00_0010_0244_0000 + net) << 64 | rnd.getrandbits(64)
        for net in range(100)
        for _ in range(200)
    ]
    print(f"{'':<70} {'count':>8} {'time':>11} {'per address':>15}")
    bench_family("IPv4 100k consecutive from 10.244.0.0", dense_v4, 4)
    bench_family("IPv4 100k random", random_v4, 4)
    bench_family("IPv6 20k random", random_v6, 6)
    bench_family("IPv6 20k in 100 /64s", subnets_v6, 6)
    dense_texts = [str(ipaddress.IPv4Address(a)) for a in dense_v4]
    random_texts = [str(ipaddress.IPv4Address(a)) for a in random_v4]
    bench_mapper("IPv4 100k consecutive, no region", dense_texts, [])
    bench_mapper("IPv4 100k consecutive, region /15", dense_texts, ["10.244.0.0/15"])
    bench_mapper("IPv4 100k random, no region", random_texts, [])
    bench_mapper("IPv6 20k random", [str(ipaddress.IPv6Address(a)) for a in random_v6], [])
    if args.pycryptopan:
        try_pycryptopan(random.Random(1).sample(random_v4, SAMPLE))


if __name__ == "__main__":
    main()
