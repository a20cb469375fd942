"""Crypto-PAn: the published vectors, the kept-network guarantees, and the two properties
the redaction relies on (prefix preservation, injectivity), batched and single."""

from __future__ import annotations

import ipaddress
import random

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st
from needle.redact.crypto_pan import CryptoPAn

# The key of the Crypto-PAn reference distribution's sample.
REFERENCE_KEY = bytes.fromhex(
    "1522178d33a4cf80130a5b1649907d10d8988f837979652762574c2d2a842202"
)  # 21, 34, 23, 141, ... 34, 2
# sample_trace_raw.dat -> sample_trace_sanitized.dat of the reference distribution, as
# the Go implementation (Yawning/cryptopan) and its ports test them.
REFERENCE_V4 = [
    ("128.11.68.132", "135.242.180.132"),
    ("129.118.74.4", "134.136.186.123"),
    ("130.132.252.244", "133.68.164.234"),
    ("141.223.7.43", "141.167.8.160"),
    ("141.233.145.108", "141.129.237.235"),
    ("152.163.225.39", "151.140.114.167"),
    ("156.29.3.236", "147.225.12.42"),
    ("165.247.96.84", "162.9.99.234"),
    ("166.107.77.190", "160.132.178.185"),
    ("192.102.249.13", "252.138.62.131"),
    ("192.215.32.125", "252.43.47.189"),
    ("192.233.80.103", "252.25.108.8"),
    ("192.41.57.43", "252.222.221.184"),
    ("193.150.244.223", "253.169.52.216"),
    ("195.205.63.100", "255.186.223.5"),
    ("198.200.171.101", "249.199.68.213"),
    ("198.26.132.101", "249.36.123.202"),
    ("198.36.213.5", "249.7.21.132"),
    ("198.51.77.238", "249.18.186.254"),
    ("199.217.79.101", "248.38.184.213"),
    ("202.49.198.20", "245.206.7.234"),
    ("203.12.160.252", "244.248.163.4"),
    ("204.184.162.189", "243.192.77.90"),
    ("204.202.136.230", "243.178.4.198"),
    ("204.29.20.4", "243.33.20.123"),
    ("205.178.38.67", "242.108.198.51"),
    ("205.188.147.153", "242.96.16.101"),
    ("205.188.248.25", "242.96.88.27"),
    ("205.245.121.43", "242.21.121.163"),
    ("207.105.49.5", "241.118.205.138"),
    ("207.135.65.238", "241.202.129.222"),
    ("207.155.9.214", "241.220.250.22"),
    ("207.188.7.45", "241.255.249.220"),
    ("207.25.71.27", "241.33.119.156"),
    ("207.33.151.131", "241.1.233.131"),
    ("208.147.89.59", "227.237.98.191"),
    ("208.234.120.210", "227.154.67.17"),
    ("208.28.185.184", "227.39.94.90"),
    ("208.52.56.122", "227.8.63.165"),
    ("209.12.231.7", "226.243.167.8"),
    ("209.238.72.3", "226.6.119.243"),
    ("209.246.74.109", "226.22.124.76"),
    ("209.68.60.238", "226.184.220.233"),
    ("209.85.249.6", "226.170.70.6"),
    ("212.120.124.31", "228.135.163.231"),
    ("212.146.8.236", "228.19.4.234"),
    ("212.186.227.154", "228.59.98.98"),
    ("212.204.172.118", "228.71.195.169"),
    ("212.206.130.201", "228.69.242.193"),
    ("216.148.237.145", "235.84.194.111"),
    ("216.157.30.252", "235.89.31.26"),
    ("216.184.159.48", "235.96.225.78"),
    ("216.227.10.221", "235.28.253.36"),
    ("216.254.18.172", "235.7.16.162"),
    ("216.32.132.250", "235.192.139.38"),
    ("216.35.217.178", "235.195.157.81"),
    ("24.0.250.221", "100.15.198.226"),
    ("24.13.62.231", "100.2.192.247"),
    ("24.14.213.138", "100.1.42.141"),
    ("24.5.0.80", "100.9.15.210"),
    ("24.7.198.88", "100.10.6.25"),
    ("24.94.26.44", "100.88.228.35"),
    ("38.15.67.68", "64.3.66.187"),
    ("4.3.88.225", "124.60.155.63"),
    ("63.14.55.111", "95.9.215.7"),
    ("63.195.241.44", "95.179.238.44"),
    ("63.97.7.140", "95.97.9.123"),
    ("64.14.118.196", "0.255.183.58"),
    ("64.34.154.117", "0.221.154.117"),
    ("64.39.15.238", "0.219.7.41"),
    ("10.185.25.118", "117.161.29.118"),
]
# IPv6 has no reference-distribution sample; these are the Go implementation's, and
# yacryptopan (Python) pads IPv6 the same way.
REFERENCE_V6 = [
    ("::1", "78ff:f001:9fc0:20df:8380:b1f1:704:ed"),
    ("::2", "78ff:f001:9fc0:20df:8380:b1f1:704:ef"),
    ("::ffff", "78ff:f001:9fc0:20df:8380:b1f1:704:f838"),
    ("2001:db8::1", "4401:2bc:603f:d91d:27f:ff8e:e6f1:dc1e"),
    ("2001:db8::2", "4401:2bc:603f:d91d:27f:ff8e:e6f1:dc1c"),
]
# Other keys, from yacryptopan's and the Ruby gem's documentation and tests.
OTHER_KEYS = [
    (bytes(range(32)), "192.0.2.1", "2.90.93.17"),
    (bytes(range(32)), "148.88.132.153", "106.38.130.153"),
    (bytes(range(32)), "148.88.133.200", "106.38.131.223"),
    (bytes(range(32)), "2001:db8::1", "dd92:2c44:3fc0:ff1e:7ff9:c7f0:8180:7e00"),
    (b"32-char-str-for-AES-key-and-pad.", "192.0.2.1", "192.0.125.244"),
    (b"32-char-str-for-AES-key-and-pad.", "2001:db8::1", "27fe:8bc7:fee:1e:1e1f:f0fe:f0e1:83fd"),
]

KEPT_V4 = [
    (int(ipaddress.IPv4Address(text.split("/")[0])), int(text.split("/")[1]))
    for text in ("0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "128.0.0.0/32")
]
KEPT_V6 = [(0, 128), (1, 128), (0xFF << 120, 8), (0xFE80 << 112, 64)]


def anonymized(cp: CryptoPAn, text: str) -> str:
    address = ipaddress.ip_address(text)
    return str(ipaddress.ip_address(cp.anonymize(int(address), address.version)))


@pytest.mark.parametrize(("original", "expected"), REFERENCE_V4 + REFERENCE_V6)
def test_reference_vectors_single(original, expected):
    assert anonymized(CryptoPAn(REFERENCE_KEY), original) == expected


def test_reference_vectors_batched():
    cp = CryptoPAn(REFERENCE_KEY)
    for version, vectors in ((4, REFERENCE_V4), (6, REFERENCE_V6)):
        ints = {int(ipaddress.ip_address(a)): int(ipaddress.ip_address(b)) for a, b in vectors}
        assert cp.anonymize_many(ints, version) == ints


@pytest.mark.parametrize(("key", "original", "expected"), OTHER_KEYS)
def test_vectors_of_other_keys(key, original, expected):
    assert anonymized(CryptoPAn(key), original) == expected


def test_rejects_bad_keys_addresses_and_versions():
    with pytest.raises(ValueError, match="32 bytes"):
        CryptoPAn(bytes(16))
    cp = CryptoPAn(REFERENCE_KEY)
    for bad in (-1, 1 << 32):
        with pytest.raises(ValueError):
            cp.anonymize_v4(bad)
        with pytest.raises(ValueError):
            cp.anonymize_many([1, bad], 4)
    with pytest.raises(ValueError):
        cp.anonymize_v6(1 << 128)
    with pytest.raises(ValueError):
        cp.anonymize(1, 5)
    with pytest.raises(ValueError):
        CryptoPAn(REFERENCE_KEY, kept_v4=[(0, 33)])


# --- a straightforward per-bit implementation, kept networks and marker included ---------
def per_bit(key: bytes, address: int, bits: int, kept=(), eui64_marker=False) -> int:
    encrypt = Cipher(algorithms.AES(key[:16]), modes.ECB()).encryptor().update
    pad = int.from_bytes(encrypt(key[16:]), "big")
    block = address << (128 - bits)
    result = 0
    for i in range(bits):
        prefix = address >> (bits - i)
        forced = any(i < length and network >> (bits - i) == prefix for network, length in kept)
        if eui64_marker and 88 <= i < 104:
            agreed = i - 88
            forced = forced or (prefix & ((1 << agreed) - 1)) == 0xFFFE >> (16 - agreed)
        high = ((1 << i) - 1) << (128 - i)
        inp = ((block & high) | (pad & ~high & ((1 << 128) - 1))).to_bytes(16, "big")
        flip = 0 if forced else encrypt(inp)[0] >> 7
        result = (result << 1) | flip
    return address ^ result


def test_matches_the_per_bit_definition_with_kept_networks_and_marker():
    rnd = random.Random(7)
    key = rnd.randbytes(32)
    cp = CryptoPAn(key, KEPT_V4, KEPT_V6, eui64_marker=True)
    v4 = [rnd.getrandbits(32) for _ in range(40)]
    v4 += [
        (network | rnd.getrandbits(32 - length)) ^ (1 << rnd.randrange(32))
        for network, length in KEPT_V4
    ]
    for address in v4:
        assert cp.anonymize_v4(address) == per_bit(key, address, 32, KEPT_V4)
    v6 = [rnd.getrandbits(128) for _ in range(10)]
    v6 += [(rnd.getrandbits(88) << 40) | (0xFFFE << 24) | rnd.getrandbits(24) for _ in range(5)]
    v6 += [(rnd.getrandbits(88) << 40) | (0xFFF0 << 24) | rnd.getrandbits(24) for _ in range(5)]
    v6 += [(0xFE80 << 112) | rnd.getrandbits(64), 2, 3, (0xFF << 120) ^ (1 << 121)]
    for address in v6:
        assert cp.anonymize_v6(address) == per_bit(key, address, 128, KEPT_V6, True)


# --- properties ----------------------------------------------------------------------------
def common_prefix(a: int, b: int, bits: int) -> int:
    return bits - (a ^ b).bit_length()


def near(bits: int, anchors: list[int]) -> st.SearchStrategy[int]:
    """Addresses anywhere, or sharing a long prefix with an anchor (where kept networks
    and regions make the interesting cases)."""
    anywhere = st.integers(0, (1 << bits) - 1)
    close = st.builds(
        lambda anchor, low, noise: anchor ^ (noise & ((1 << low) - 1)),
        st.sampled_from(anchors),
        st.integers(0, bits),
        anywhere,
    )
    return st.one_of(anywhere, close)


V4_ANCHORS = [network for network, _ in KEPT_V4] + [0x0AF40100, 0xC0A80001, 0xFFFFFFFF]
V6_ANCHORS = [network for network, _ in KEPT_V6] + [0x20010DB8 << 96, (0xFFFE << 24) | 1]
KEY = random.Random(3).randbytes(32)
PLAIN = CryptoPAn(KEY)
KEPT = CryptoPAn(KEY, KEPT_V4, KEPT_V6, eui64_marker=True)


@settings(max_examples=300, deadline=None)
@given(near(32, V4_ANCHORS), near(32, V4_ANCHORS))
def test_v4_prefix_preserving_and_injective(a, b):
    for cp in (PLAIN, KEPT):
        x, y = cp.anonymize_v4(a), cp.anonymize_v4(b)
        assert common_prefix(x, y, 32) == common_prefix(a, b, 32)  # implies x != y if a != b


@settings(max_examples=150, deadline=None)
@given(near(128, V6_ANCHORS), near(128, V6_ANCHORS))
def test_v6_prefix_preserving_and_injective(a, b):
    for cp in (PLAIN, KEPT):
        x, y = cp.anonymize_v6(a), cp.anonymize_v6(b)
        assert common_prefix(x, y, 128) == common_prefix(a, b, 128)


@settings(max_examples=300, deadline=None)
@given(near(32, V4_ANCHORS))
def test_kept_networks_keep_their_prefix_and_receive_nothing_else(address):
    mapped = KEPT.anonymize_v4(address)
    for network, length in KEPT_V4:
        shift = 32 - length
        assert (address >> shift == network >> shift) == (mapped >> shift == network >> shift)


@settings(max_examples=150, deadline=None)
@given(near(128, V6_ANCHORS))
def test_v6_kept_networks_and_eui64_marker_are_invariant(address):
    mapped = KEPT.anonymize_v6(address)
    for network, length in KEPT_V6:
        shift = 128 - length
        assert (address >> shift == network >> shift) == (mapped >> shift == network >> shift)
    assert ((address >> 24) & 0xFFFF == 0xFFFE) == ((mapped >> 24) & 0xFFFF == 0xFFFE)


def test_without_kept_networks_kept_ranges_are_not_special():
    # The guarantee above comes from `kept`, not from luck: plain Crypto-PAn moves them.
    loopback = 0x7F000001
    assert PLAIN.anonymize_v4(loopback) >> 24 != 127
    assert KEPT.anonymize_v4(loopback) >> 24 == 127
    assert KEPT.anonymize_v4(loopback) != loopback  # kept keeps the prefix, not the host


@settings(max_examples=60, deadline=None)
@given(
    st.lists(near(32, V4_ANCHORS), max_size=60),
    st.lists(near(128, V6_ANCHORS), max_size=20),
)
def test_batched_equals_single(v4, v6):
    batched = CryptoPAn(KEY, KEPT_V4, KEPT_V6, eui64_marker=True)
    single = CryptoPAn(KEY, KEPT_V4, KEPT_V6, eui64_marker=True)
    assert batched.anonymize_many(v4, 4) == {a: single.anonymize_v4(a) for a in v4}
    assert batched.anonymize_many(v6, 6) == {a: single.anonymize_v6(a) for a in v6}
    # and the batch's cache answers single lookups identically
    assert all(batched.anonymize_v4(a) == single.anonymize_v4(a) for a in v4)


def test_single_path_checkpoints_agree_with_a_fresh_instance():
    # A warm cache (a /24 already seen) must give what a cold instance computes.
    warm = CryptoPAn(KEY, KEPT_V4)
    warm.anonymize_many(range(0x0AF40100, 0x0AF40180), 4)
    for address in range(0x0AF40180, 0x0AF40200, 7):
        assert warm.anonymize_v4(address) == CryptoPAn(KEY, KEPT_V4).anonymize_v4(address)


def test_a_dense_block_is_a_bijection_onto_a_block():
    # Prefix preservation maps a /20 onto a /20: all 4,096 results, no collision.
    cp = CryptoPAn(KEY)
    results = cp.anonymize_many(range(0x0AF40000, 0x0AF41000), 4)
    values = set(results.values())
    assert len(values) == 4096
    assert len({value >> 12 for value in values}) == 1
