"""Rulesets from someone else's cluster: loops, depth, garbage, cut-off dumps, random input.
The evaluator answers `unknown` and says why; it never raises."""

from __future__ import annotations

import os

from helpers import POD, forward, save
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubeproxy_gen import kube_proxy_save
from needle.analyzer.netfilter import Packet, Ruleset, evaluate, parse_iptables_save

FUZZ = settings(
    max_examples=int(os.environ.get("NEEDLE_FUZZ_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def test_jump_loop_is_unknown_and_named():
    rs = forward("-A FORWARD -j A\n-A A -j B\n-A B -j A", chains=("A", "B"))
    v = rs.traverse("filter", "FORWARD", POD)
    assert v.verdict == "unknown"
    assert "A -> B -> A" in v.reason


def test_goto_loop_is_unknown_and_named():
    rs = forward("-A FORWARD -j A\n-A A -g B\n-A B -g A", chains=("A", "B"))
    v = rs.traverse("filter", "FORWARD", POD)
    assert v.verdict == "unknown"
    assert "loop" in v.reason and "A -> B -> A" in v.reason


def test_self_jump_in_a_builtin_chain_is_a_loop():
    rs = forward("-A FORWARD -j FORWARD")
    assert rs.traverse("filter", "FORWARD", POD).verdict == "unknown"


def test_deep_nesting_is_bounded_without_recursion_error():
    names = tuple(f"C{i}" for i in range(5000))
    body = "-A FORWARD -j C0\n" + "\n".join(f"-A C{i} -j C{i + 1}" for i in range(4999))
    v = forward(body, chains=names).traverse("filter", "FORWARD", POD)
    assert v.verdict == "unknown"
    assert "deeper" in v.reason


def test_many_random_forks_are_bounded():
    body = "\n".join(
        f"-A FORWARD -m statistic --mode random --probability 0.5 -j C{i}" for i in range(40)
    )
    body += "\n" + "\n".join(
        f"-A C{i} -m statistic --mode random --probability 0.5 -j RETURN" for i in range(40)
    )
    v = forward(body, chains=tuple(f"C{i}" for i in range(40))).traverse("filter", "FORWARD", POD)
    assert v.verdict in ("accept", "unknown")  # bounded: no blow-up, an answer


def test_garbage_lines_are_unparsed():
    data = (
        b"$ sudo iptables-save\n*filter\n:FORWARD DROP [0:0]\n-N SHOULD-NOT-BE-HERE\n"
        b"-A NOCHAIN -j ACCEPT\n-A FORWARD -j ACCEPT\nrandom words\n\xff\xfe\nCOMMIT\n"
    )
    parsed = parse_iptables_save(data)
    assert len(parsed.unparsed) == 5
    assert parsed.records[0].chain("FORWARD").rules[0].target == "ACCEPT"
    assert Ruleset.from_save(data).traverse("filter", "FORWARD", POD).verdict == "accept"


def test_words_outside_the_syntax_make_the_rule_unknown_not_weaker():
    rs = forward("-A FORWARD -d 10.244.2.0/24 bogus -j DROP")
    v = rs.traverse("filter", "FORWARD", POD)
    assert v.verdict == "unknown"


def test_cut_off_dump_is_truncated_and_unknown():
    data = save("filter", "-A FORWARD -j ACCEPT", "FORWARD DROP").replace(b"COMMIT\n", b"")
    parsed = parse_iptables_save(data)
    assert parsed.truncated and not parsed.records[0].committed
    v = Ruleset.from_save(data).traverse("filter", "FORWARD", POD)
    assert v.verdict == "unknown"
    assert "COMMIT" in v.reason


def test_two_sections_for_one_table_are_unknown():
    data = save("filter", "-A FORWARD -j ACCEPT", "FORWARD ACCEPT") * 2
    v = Ruleset.from_save(data).traverse("filter", "FORWARD", POD)
    assert v.verdict == "unknown"


def test_kube_proxy_with_10000_services_gives_the_right_endpoints():
    rs = Ruleset.from_save(kube_proxy_save(10_000))
    # the last Service: every KUBE-SERVICES rule before it is looked at
    v = rs.traverse("nat", "PREROUTING", Packet("10.244.0.9", "10.96.39.250", "tcp", 1, 80, mark=0))
    assert v.verdict == "accept"
    assert len(v.alternatives) == 3
    assert all(a.nat[0].startswith("DNAT 10.244.") for a in v.alternatives)
    outside = Packet("192.168.1.9", "10.96.0.1", "tcp", 1, 80, mark=0)
    masq = rs.traverse("nat", "PREROUTING", outside)
    assert masq.mark == 0x4000  # KUBE-MARK-MASQ: from outside the pod network


LINES = st.one_of(
    st.sampled_from(
        [
            "*filter", "*nat", "*mangle", "COMMIT", ":FORWARD DROP [0:0]", ":PREROUTING ACCEPT",
            ":A - [0:0]", ":B - [0:0]", ":INPUT ACCEPT [1:2]", "-A FORWARD -j A",
            "-A A -j B", "-A B -g A", "-A A -j RETURN", "-A FORWARD -j DROP",
            "-A FORWARD -m set --match-set X src -j ACCEPT", "-A A -m mark --mark 0x1/0x1 -j DROP",
            "-A B -j MARK --set-xmark 0x1/0xff", "-A PREROUTING -j DNAT --to-destination 1.2.3.4",
            "-A A -m statistic --mode random --probability 0.5 -j B", "-A B -i cni+ -j ACCEPT",
            '-A A -m comment --comment "x y" -j LOG', "-A FORWARD -p tcp --dport 1:99 -j A",
            "-A A ! -s 10.0.0.0/8 -j RETURN", "-A B -m conntrack --ctstate NEW -j REJECT",
            "-A FORWARD -j NOPE", "-A A -m addrtype --dst-type LOCAL -j ACCEPT", "[3:4] -A B",
            "-A FORWARD -m limit --limit 1/s -j ACCEPT", "-A A -d 1.2.3.4/255.0.0.0 -j B",
            '-A B -m comment --comment "unterminated -j ACCEPT', "-A A -p icmp --icmp-type 8",
        ]
    ),
    st.text(max_size=40),
)  # fmt: skip
PACKETS = st.builds(
    Packet,
    src=st.sampled_from(["10.244.1.5", "127.0.0.1", "300.1.1.1", "", "1.2.3.4"]),
    dst=st.sampled_from(["10.244.2.7", "1.2.3.4", "nonsense"]),
    proto=st.sampled_from(["tcp", "udp", "icmp", "sctp"]),
    sport=st.one_of(st.none(), st.integers(0, 65535)),
    dport=st.one_of(st.none(), st.integers(0, 65535)),
    iif=st.one_of(st.none(), st.sampled_from(["cni0", "eth0", ""])),
    oif=st.one_of(st.none(), st.sampled_from(["flannel.1", "eth0"])),
    state=st.sampled_from(["NEW", "ESTABLISHED", "RELATED", "INVALID", "weird"]),
    mark=st.one_of(st.none(), st.integers(0, 2**32 - 1)),
    length=st.one_of(st.none(), st.integers(0, 70000)),
    icmp_type=st.one_of(st.none(), st.integers(0, 255)),
)


@FUZZ
@given(
    lines=st.lists(LINES, max_size=40),
    packet=PACKETS,
    where=st.sampled_from([("filter", "FORWARD"), ("nat", "PREROUTING"), ("filter", "INPUT")]),
)
def test_random_rulesets_and_packets_never_raise(lines, packet, where):
    data = "\n".join(lines).encode()
    parse_iptables_save(data)
    v = Ruleset.from_save(data).traverse(*where, packet, local_addresses=frozenset({"1.2.3.4"}))
    assert v.verdict in ("accept", "drop", "unknown")
    assert all(a.verdict in ("accept", "drop", "unknown") for a in v.alternatives)
    assert isinstance(v.reason, str) and v.reason


@FUZZ
@given(data=st.binary(max_size=2000))
def test_random_bytes_never_raise(data):
    parse_iptables_save(data)
    v = Ruleset.from_save(data).traverse("filter", "FORWARD", POD)
    assert v.verdict in ("accept", "drop", "unknown")


def test_hidden_legacy_tables_make_every_verdict_unknown():
    data = save("filter", "-A FORWARD -j ACCEPT", "FORWARD ACCEPT")
    warned = b"# Warning: iptables-legacy tables present, use iptables-legacy-save to see them\n"
    v = Ruleset.from_save(warned + data).traverse("filter", "FORWARD", POD)
    assert v.verdict == "unknown"
    assert "iptables-legacy" in v.reason and "say accept" in v.reason
    assert Ruleset.from_save(data).traverse("filter", "FORWARD", POD).verdict == "accept"


def test_a_service_with_300_endpoints_gives_300_alternatives():
    rs = Ruleset.from_save(kube_proxy_save(3, endpoints=300))
    v = rs.traverse("nat", "PREROUTING", Packet("10.244.0.9", "10.96.0.2", "tcp", 1, 80, mark=0))
    assert v.verdict == "accept"
    assert len(v.alternatives) == 300
    assert len({a.nat for a in v.alternatives}) == 300


DST_LINES = st.sampled_from(
    [
        "-A FORWARD -d 10.244.2.0/24 -j A",
        "-A FORWARD ! -d 10.244.2.0/24 -j DROP",
        '-A FORWARD -m comment --comment "x -d 10.0.0.1 y" -d 10.244.2.7/32 -j ACCEPT',
        '-A A -m comment --comment " -d 1.1.1.1 " -j DROP',
        "-A A -d 10.244.2.7,1.2.3.4 -j DROP",
        "-A A -d 1.2.3.4/255.255.0.0 -p tcp -m tcp --dport 8080 -j RETURN",
        '-A A -m comment --comment "esc \\" -d 9.9.9.9 " -d 10.244.0.0/16 -j ACCEPT',
        "-A FORWARD -d -j DROP",
        "-A FORWARD --destination 10.244.2.7 -j DROP",
        "-A A -d 10.244.2.7 -d 1.2.3.4 -j DROP",
    ]
)


@FUZZ
@given(
    lines=st.lists(st.one_of(DST_LINES, LINES), max_size=30),
    dst=st.sampled_from(["10.244.2.7", "1.2.3.4", "9.9.9.9", "10.0.0.1", "x"]),
)
def test_destination_prefilter_never_changes_an_answer(lines, dst):
    data = ("*filter\n:FORWARD DROP [0:0]\n:A - [0:0]\n" + "\n".join(lines) + "\nCOMMIT\n").encode()
    packet = Packet("10.244.1.5", dst, "tcp", 1, 8080, iif="cni0", oif="flannel.1", mark=0)
    fast = Ruleset.from_save(data).traverse("filter", "FORWARD", packet)
    evaluate._PREFILTER = False
    try:
        slow = Ruleset.from_save(data).traverse("filter", "FORWARD", packet)
    finally:
        evaluate._PREFILTER = True
    assert fast == slow


def test_a_table_iptables_nft_cannot_show_is_unknown():
    data = b"# Table `filter' is incompatible, use 'nft' tool.\n" + save(
        "nat", "", "PREROUTING ACCEPT"
    )
    rs = Ruleset.from_save(data)
    v = rs.traverse("filter", "FORWARD", POD)
    assert v.verdict == "unknown" and "nft" in v.reason
    assert rs.traverse("nat", "PREROUTING", POD).verdict == "accept"


def test_thousands_of_unmodelled_matches_in_a_row_never_recurse():
    agree = "\n".join("-A FORWARD -m set --match-set S src -j ACCEPT" for _ in range(3000))
    v = forward(agree + "\n-A FORWARD -j ACCEPT").traverse("filter", "FORWARD", POD)
    assert v.verdict == "accept"
    differ = "\n".join("-A FORWARD -m set --match-set S src -j DROP" for _ in range(6000))
    v = forward(differ + "\n-A FORWARD -j ACCEPT").traverse("filter", "FORWARD", POD)
    assert v.verdict == "unknown"
