"""The address mapping a redacted bundle is analysed through: identity ranges, regions
(host bits kept), EUI-64, IPv4-mapped IPv6, notation, and that the whole thing stays an
injective, prefix-preserving map."""

from __future__ import annotations

import ipaddress
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from needle.redact.addresses import IDENTITY_V4, IDENTITY_V6, AddressMapper
from needle.redact.macs import MacMapper

KEY = random.Random(11).randbytes(32)
MAC_KEY = random.Random(12).randbytes(32)
REGIONS = [
    ipaddress.ip_network(text)
    for text in (
        "10.244.0.0/16",  # the cluster CIDR: outermost, wins over the pod CIDRs
        "10.244.1.0/24",
        "10.244.2.0/24",
        "192.168.56.0/24",  # a node subnet
        "10.0.0.0/8",  # below the floor: ignored
        "169.254.0.0/16",  # an identity range: not a region
        "fd00:10:244::/56",  # below the IPv6 floor (/64)
        "fd00:10:244:1::/64",
        "fd00:10:244:1::/96",  # nested: the /64 wins
        "fd00:aaaa::/120",
    )
]


def mapper(regions=REGIONS) -> AddressMapper:
    return AddressMapper(KEY, MacMapper(MAC_KEY), regions)


MAPPER = mapper()
PLAIN = mapper(())


def v4(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def v6(text: str) -> int:
    return int(ipaddress.IPv6Address(text))


def common_prefix(a: int, b: int, bits: int) -> int:
    return bits - (a ^ b).bit_length()


def test_regions_in_effect_are_the_outermost_above_the_floor():
    assert [str(network) for network in MAPPER.regions()] == [
        "10.244.0.0/16",
        "192.168.56.0/24",
        "fd00:10:244:1::/64",
        "fd00:aaaa::/120",
    ]
    assert PLAIN.regions() == ()
    assert mapper(["10.1.0.0/16"]).regions() == (ipaddress.ip_network("10.1.0.0/16"),)


def test_identity_ranges_are_unchanged():
    for text in (
        "0.0.0.0",
        "127.0.0.1",
        "127.53.1.9",
        "169.254.169.254",
        "224.0.0.251",
        "239.255.255.250",
        "255.255.255.255",
        "255.255.255.0",
        "255.255.240.0",
        "254.0.0.0",
        "240.0.0.0",
        "192.0.0.0",
        "128.0.0.0",
        "::",
        "::1",
        "ff02::1:ff00:1",
        "ff05::2",
    ):
        assert MAPPER.map_address(text) == text


def test_private_and_public_addresses_do_change():
    for text in ("10.96.0.1", "172.17.0.1", "8.8.8.8", "192.168.1.1", "2001:db8::1"):
        assert MAPPER.map_address(text) != text


IDENTITY = [(4, network) for network in IDENTITY_V4] + [(6, network) for network in IDENTITY_V6]


def addresses(bits: int, anchors: list[int]) -> st.SearchStrategy[int]:
    """Anywhere, or close to an anchor: inside and just outside identity ranges and
    regions, where the rules meet."""
    anywhere = st.integers(0, (1 << bits) - 1)
    close = st.builds(
        lambda anchor, low, noise: anchor ^ (noise & ((1 << low) - 1)),
        st.sampled_from(anchors),
        st.integers(0, bits),
        anywhere,
    )
    return st.one_of(anywhere, close)


V4_ANCHORS = [int(n.network_address) for n in IDENTITY_V4 + tuple(REGIONS[:5])] + [
    0x0AF40101,
    0xFFFFFFFF,
]
V6_ANCHORS = [int(n.network_address) for n in IDENTITY_V6 + tuple(REGIONS[6:])] + [
    v6("fe80::1"),
    v6("fe80::a8bb:ccff:fedd:eeff"),
    v6("fd00:10:244:1:a8bb:ccff:fedd:eeff"),
    v6("::ffff:10.244.1.1"),
]


@settings(max_examples=400, deadline=None)
@given(addresses(32, V4_ANCHORS))
def test_v4_identity_ranges_hold_exactly_their_own(address):
    mapped = MAPPER.map_v4(address)
    for network in IDENTITY_V4:
        inside = address & int(network.netmask) == int(network.network_address)
        assert inside == (mapped & int(network.netmask) == int(network.network_address))
        if inside:
            assert mapped == address


@settings(max_examples=300, deadline=None)
@given(addresses(128, V6_ANCHORS))
def test_v6_identity_ranges_hold_exactly_their_own(address):
    mapped = MAPPER.map_v6(address)
    for network in (*IDENTITY_V6, ipaddress.ip_network("fe80::/64")):
        inside = address & int(network.netmask) == int(network.network_address)
        assert inside == (mapped & int(network.netmask) == int(network.network_address))


@settings(max_examples=400, deadline=None)
@given(addresses(32, V4_ANCHORS), addresses(32, V4_ANCHORS))
def test_v4_mapping_is_prefix_preserving_and_injective(a, b):
    for mapping in (MAPPER, PLAIN):
        x, y = mapping.map_v4(a), mapping.map_v4(b)
        assert common_prefix(x, y, 32) == common_prefix(a, b, 32)


def is_eui64(address: int) -> bool:
    return (address >> 24) & 0xFFFF == 0xFFFE


@settings(max_examples=300, deadline=None)
@given(addresses(128, V6_ANCHORS), addresses(128, V6_ANCHORS))
def test_v6_mapping_is_injective_and_prefix_preserving(a, b):
    for mapping in (MAPPER, PLAIN):
        x, y = mapping.map_v6(a), mapping.map_v6(b)
        assert (x == y) == (a == b)
        shared = common_prefix(a, b, 128)
        if is_eui64(a) or is_eui64(b):
            # an EUI-64 interface id follows its MAC: prefix-preserving down to the /64
            assert min(common_prefix(x, y, 128), 64) == min(shared, 64)
        else:
            assert common_prefix(x, y, 128) == shared


def test_injective_on_a_dense_sample_with_every_rule():
    rnd = random.Random(5)
    sample = {rnd.getrandbits(32) for _ in range(20000)}
    sample |= set(range(v4("10.244.0.0"), v4("10.244.8.0")))
    sample |= {int(network.network_address) + i for network in IDENTITY_V4 for i in range(64)}
    mapping = mapper()
    mapping.prepare(ipaddress.IPv4Address(address) for address in sample)
    assert len({mapping.map_v4(address) for address in sample}) == len(sample)


def test_regions_keep_host_bits_and_flannel_relations():
    pod_cidr = v4("10.244.1.0")
    mapped = MAPPER.map_v4(pod_cidr)
    assert mapped & 0xFFFF == pod_cidr & 0xFFFF  # the /16 is the region: host bits kept
    assert mapped >> 16 != pod_cidr >> 16
    for host in (1, 5, 255):  # the bridge .1, a pod, the broadcast
        assert MAPPER.map_v4(pod_cidr + host) == mapped + host
    assert MAPPER.map_network("10.244.1.0", 24) == str(ipaddress.IPv4Address(mapped))
    assert MAPPER.map_address("10.244.1.0") == str(ipaddress.IPv4Address(mapped))
    # the node subnet keeps its hosts too, the address outside any region does not
    node = MAPPER.map_v4(v4("192.168.56.11"))
    assert node & 0xFF == 11
    assert MAPPER.map_v4(v4("192.168.57.11")) >> 8 != node >> 8  # a different /24 still


def test_outermost_region_wins_and_floor_drops_short_regions():
    inner_only = mapper([ipaddress.ip_network("10.244.1.0/24")])
    both = mapper([ipaddress.ip_network("10.244.1.0/24"), ipaddress.ip_network("10.244.0.0/16")])
    address = v4("10.244.1.7")
    assert both.map_v4(address) & 0xFFFF == address & 0xFFFF
    assert inner_only.map_v4(address) & 0xFF == 7
    assert inner_only.map_v4(address) & 0xFF00 != address & 0xFF00
    short = mapper([ipaddress.ip_network("10.0.0.0/8")])
    assert short.regions() == ()
    assert short.map_v4(address) == PLAIN.map_v4(address)
    assert short.map_v4(address) & 0xFFFFFF != address & 0xFFFFFF


def test_v6_regions_keep_host_bits():
    mapped = MAPPER.map_v6(v6("fd00:10:244:1::5"))
    assert mapped & ((1 << 64) - 1) == 5
    assert mapped >> 64 != v6("fd00:10:244:1::5") >> 64
    assert MAPPER.map_v6(v6("fd00:10:244:2::5")) & ((1 << 64) - 1) != 5  # /56 is no region
    small = MAPPER.map_v6(v6("fd00:aaaa::7"))
    assert small & 0xFF == 7
    assert small >> 8 != v6("fd00:aaaa::7") >> 8


def eui64_from_mac(prefix: int, mac: bytes) -> int:
    iid = bytes((mac[0] ^ 0x02, mac[1], mac[2], 0xFF, 0xFE, mac[3], mac[4], mac[5]))
    return prefix | int.from_bytes(iid, "big")


def test_eui64_link_local_follows_the_mac_mapping():
    macs = MacMapper(MAC_KEY)
    mac = bytes.fromhex("aabbccddeeff")
    link_local = eui64_from_mac(v6("fe80::"), mac)
    assert str(ipaddress.IPv6Address(link_local)) == "fe80::a8bb:ccff:fedd:eeff"
    expected = eui64_from_mac(v6("fe80::"), macs.map(mac))
    assert MAPPER.map_v6(link_local) == expected
    assert expected != link_local
    # a global address with the same interface id: its /64 mapped, the same mapped MAC
    global_address = eui64_from_mac(v6("2001:db8:1:2::"), mac)
    mapped = MAPPER.map_v6(global_address)
    assert mapped & ((1 << 64) - 1) == expected & ((1 << 64) - 1)
    assert mapped >> 64 == MAPPER.map_v6(v6("2001:db8:1:2::1")) >> 64
    # in a region, too: the /64 follows the region, the id the MAC
    in_region = MAPPER.map_v6(eui64_from_mac(v6("fd00:10:244:1::"), mac))
    assert in_region & ((1 << 64) - 1) == expected & ((1 << 64) - 1)
    assert in_region >> 64 == MAPPER.map_v6(v6("fd00:10:244:1::")) >> 64


def test_link_local_without_eui64_keeps_only_the_prefix():
    mapped = MAPPER.map_v6(v6("fe80::1"))
    assert mapped >> 64 == v6("fe80::") >> 64
    assert mapped != v6("fe80::1")
    assert not is_eui64(mapped)


def test_ipv4_mapped_ipv6_follows_ipv4():
    mapped_v4 = MAPPER.map_address("10.244.1.1")
    assert MAPPER.map_address("::ffff:10.244.1.1") == f"::ffff:{mapped_v4}"
    assert MAPPER.map_address("::FFFF:10.244.1.1") == f"::ffff:{mapped_v4}"
    hex_form = MAPPER.map_address("::ffff:af4:101")
    assert ipaddress.IPv6Address(hex_form).ipv4_mapped == ipaddress.IPv4Address(mapped_v4)
    assert "." not in hex_form
    assert MAPPER.map_address("::ffff:127.0.0.1") == "::ffff:127.0.0.1"


@settings(max_examples=300, deadline=None)
@given(st.integers(0, (1 << 128) - 1), st.sampled_from([0, 1, 2, 3]))
def test_v6_text_is_rfc5952(value, zeros):
    # force runs of zero groups, where compression has choices to make
    for _ in range(zeros):
        start = random.Random(value + zeros).randrange(8)
        value &= ~(0xFFFF << (16 * start))
    text = str(ipaddress.IPv6Address(value))
    mapped = MAPPER.map_address(text)
    assert mapped == str(ipaddress.IPv6Address(mapped))  # Python writes RFC 5952
    assert int(ipaddress.IPv6Address(mapped)) == MAPPER.map_v6(value)


def test_dotted_tail_is_kept_for_other_ipv6_too():
    mapped = MAPPER.map_address("64:ff9b::192.0.2.33")
    assert mapped.count(".") == 3
    assert int(ipaddress.IPv6Address(mapped)) == MAPPER.map_v6(v6("64:ff9b::c000:221"))


def test_zone_is_kept():
    assert MAPPER.map_address("fe80::1%eth0") == MAPPER.map_address("fe80::1") + "%eth0"


@pytest.mark.parametrize(
    "text",
    [
        "10.0.0.256",
        "1.2.3",
        "1.2.3.4.5",
        "hello",
        "",
        " 1.2.3.4",
        "fe80::1%",
        "1::2::3",
        "12:30:45",
        "010.1.1.1",
        "::ffff:1.2.3.4.5",
        "fe80::1%a b",
    ],
)
def test_invalid_text_raises_value_error(text):
    with pytest.raises(ValueError):
        MAPPER.map_address(text)
    with pytest.raises(ValueError):
        MAPPER.map_network(text, 8)


def test_map_network_keeps_networks_networks():
    for text, length in (("10.0.0.0", 8), ("172.16.0.0", 12), ("10.96.0.0", 12), ("8.8.8.0", 24)):
        mapped = ipaddress.IPv4Address(MAPPER.map_network(text, length))
        assert int(mapped) & ((1 << (32 - length)) - 1) == 0
        # and it is the network of what the members map to
        member = MAPPER.map_v4(v4(text) + 1)
        assert int(mapped) == member & ~((1 << (32 - length)) - 1) & 0xFFFFFFFF
    mapped6 = ipaddress.IPv6Address(MAPPER.map_network("2001:db8:abcd::", 48))
    assert int(mapped6) & ((1 << 80) - 1) == 0
    assert MAPPER.map_network("0.0.0.0", 0) == "0.0.0.0"
    assert MAPPER.map_network("::", 0) == "::"


def test_map_network_of_a_host_is_map_address():
    assert MAPPER.map_network("10.96.0.10", 12) == MAPPER.map_address("10.96.0.10")
    assert MAPPER.map_network("10.244.1.5", 24) == MAPPER.map_address("10.244.1.5")
    assert MAPPER.map_network("2001:db8::5", 64) == MAPPER.map_address("2001:db8::5")
    with pytest.raises(ValueError):
        MAPPER.map_network("10.0.0.0", 33)


def test_prepare_gives_what_single_lookups_give():
    rnd = random.Random(9)
    texts = [str(ipaddress.IPv4Address(rnd.getrandbits(32))) for _ in range(300)]
    texts += [f"10.244.{rnd.randrange(4)}.{rnd.randrange(256)}" for _ in range(300)]
    texts += [str(ipaddress.IPv6Address(rnd.getrandbits(128))) for _ in range(100)]
    texts += ["fe80::a8bb:ccff:fedd:eeff", "fd00:10:244:1::9", "::ffff:10.244.3.3", "::1"]
    junk = ["12:30:45", "999.1.1.1", "not-an-address"]
    batched = mapper()
    batched.prepare(texts + junk + [v4("10.244.9.9"), ipaddress.IPv6Address("2001:db8::7")])
    single = mapper()
    assert [batched.map_address(t) for t in texts] == [single.map_address(t) for t in texts]
    assert batched.map_v4(v4("10.244.9.9")) == single.map_v4(v4("10.244.9.9"))
    assert batched.map_v6(v6("2001:db8::7")) == single.map_v6(v6("2001:db8::7"))


def test_different_keys_give_different_maps():
    other = AddressMapper(bytes(32), MacMapper(MAC_KEY), REGIONS)
    assert other.map_address("10.96.0.1") != MAPPER.map_address("10.96.0.1")
    with pytest.raises(ValueError):
        AddressMapper(bytes(16), MacMapper(MAC_KEY))
