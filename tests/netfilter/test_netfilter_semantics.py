"""Each netfilter semantic the evaluator models, with a case that fails if it were wrong."""

from __future__ import annotations

from dataclasses import replace

import pytest
from helpers import POD, forward, save
from needle.analyzer.netfilter import Packet, Ruleset, parse_iptables_save


def test_rules_apply_in_order():
    first_accept = forward("-A FORWARD -j ACCEPT\n-A FORWARD -j DROP")
    first_drop = forward("-A FORWARD -j DROP\n-A FORWARD -j ACCEPT")
    assert first_accept.traverse("filter", "FORWARD", POD).verdict == "accept"
    v = first_drop.traverse("filter", "FORWARD", POD)
    assert v.verdict == "drop"
    assert v.rule == "-A FORWARD -j DROP"
    assert v.reason == "DROP rule 1 of FORWARD matched"


def test_policy_decides_when_no_rule_does():
    rs = forward("-A FORWARD -s 192.168.0.0/16 -j ACCEPT", policy="DROP")
    v = rs.traverse("filter", "FORWARD", POD)
    assert (v.verdict, v.rule, v.decided_in) == ("drop", ":FORWARD DROP", "FORWARD")
    assert "policy DROP" in v.reason


def test_jump_and_return_come_back_to_the_caller():
    rs = forward(
        """
        -A FORWARD -j CHECK
        -A FORWARD -j DROP
        -A CHECK -d 10.244.2.0/24 -j RETURN
        -A CHECK -j ACCEPT
        """,
        chains=("CHECK",),
    )
    v = rs.traverse("filter", "FORWARD", POD)
    assert v.verdict == "drop"
    assert v.path == ("FORWARD", "CHECK")
    assert v.rule == "-A FORWARD -j DROP"


def test_falling_off_a_user_chain_returns_to_the_caller():
    rs = forward("-A FORWARD -j EMPTY\n-A FORWARD -j DROP", chains=("EMPTY",))
    assert rs.traverse("filter", "FORWARD", POD).verdict == "drop"


def test_goto_returns_to_the_callers_caller():
    # With -g, RETURN in B goes back to FORWARD (rule 2: DROP), not to A (ACCEPT).
    rs = forward(
        """
        -A FORWARD -j A
        -A FORWARD -j DROP
        -A A -g B
        -A A -j ACCEPT
        -A B -j RETURN
        """,
        chains=("A", "B"),
    )
    v = rs.traverse("filter", "FORWARD", POD)
    assert v.verdict == "drop"
    assert v.path == ("FORWARD", "A", "B")
    jump = forward(
        "-A FORWARD -j A\n-A FORWARD -j DROP\n-A A -j B\n-A A -j ACCEPT\n-A B -j RETURN",
        chains=("A", "B"),
    )
    assert jump.traverse("filter", "FORWARD", POD).verdict == "accept"


def test_goto_from_the_builtin_chain_ends_in_its_policy():
    rs = forward("-A FORWARD -g B\n-A FORWARD -j ACCEPT\n-A B -j RETURN", "DROP", ("B",))
    v = rs.traverse("filter", "FORWARD", POD)
    assert (v.verdict, v.rule) == ("drop", ":FORWARD DROP")


def test_return_in_a_builtin_chain_means_its_policy():
    rs = forward("-A FORWARD -j RETURN\n-A FORWARD -j ACCEPT", policy="DROP")
    v = rs.traverse("filter", "FORWARD", POD)
    assert (v.verdict, v.rule) == ("drop", ":FORWARD DROP")
    assert "RETURN rule 1 of FORWARD" in v.reason


def test_reject_is_a_drop_for_the_trace():
    rs = forward("-A FORWARD -j REJECT --reject-with icmp-host-prohibited")
    v = rs.traverse("filter", "FORWARD", POD)
    assert v.verdict == "drop"
    assert v.reason.startswith("REJECT rule 1 of FORWARD")


def test_log_comment_and_counters_continue():
    rs = forward(
        """
        [12:720] -A FORWARD -j LOG --log-prefix "fwd: "
        -A FORWARD -m comment --comment "a \\"quoted\\" note" -j NFLOG
        -A FORWARD -m comment --comment "count only"
        -A FORWARD -j DROP
        """
    )
    v = rs.traverse("filter", "FORWARD", POD)
    assert (v.verdict, v.reason) == ("drop", "DROP rule 4 of FORWARD matched")


def test_mark_target_updates_the_mark_and_continues():
    rs = forward(
        """
        -A FORWARD -j MARK --set-xmark 0x4000/0x4000
        -A FORWARD -m mark --mark 0x4000/0x4000 -j ACCEPT
        -A FORWARD -j DROP
        """
    )
    v = rs.traverse("filter", "FORWARD", replace(POD, mark=0x1))
    assert v.verdict == "accept"
    assert v.mark == 0x4001
    # --set-mark with the full mask: the result is known even from an unknown mark
    rs2 = forward("-A FORWARD -j MARK --set-mark 0x20\n-A FORWARD -m mark --mark 0x20 -j DROP")
    assert rs2.traverse("filter", "FORWARD", POD).verdict == "drop"


def test_or_and_xor_mark():
    rs = forward("-A FORWARD -j MARK --or-mark 0x4000\n-A FORWARD -j MARK --xor-mark 0x1")
    assert rs.traverse("filter", "FORWARD", replace(POD, mark=0x1)).mark == 0x4000
    # on an unknown mark, --or-mark leaves it unknown
    assert rs.traverse("filter", "FORWARD", POD).mark is None


def test_connmark_save_continues_restore_makes_the_mark_unknown():
    rs = forward(
        """
        -A FORWARD -j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff
        -A FORWARD -m mark --mark 0x1 -j DROP
        """
    )
    assert rs.traverse("filter", "FORWARD", replace(POD, mark=0)).verdict == "accept"
    restored = forward(
        "-A FORWARD -j CONNMARK --restore-mark\n-A FORWARD -m mark --mark 0x1 -j DROP"
    )
    v = restored.traverse("filter", "FORWARD", replace(POD, mark=0))
    assert v.verdict == "unknown"
    assert v.rule == "-A FORWARD -m mark --mark 0x1 -j DROP"


@pytest.mark.parametrize(
    ("rule", "verdict"),
    [
        ("-s 10.0.0.0/8", "drop"),
        ("-s 10.245.0.0/16", "accept"),
        ("! -s 10.245.0.0/16", "drop"),
        ("-d 10.244.2.7/32", "drop"),
        ("-d 10.244.2.7", "drop"),
        ("-d 10.244.0.0/255.255.0.0", "drop"),
        ("! -d 10.244.2.0/24", "accept"),
        ("-i cni+", "drop"),
        ("-i cni1", "accept"),
        ("! -o eth0", "drop"),
        ("-o flannel+", "drop"),
        ("! -i cni+", "accept"),
        ("-p tcp", "drop"),
        ("-p udp", "accept"),
        ("! -p udp", "drop"),
        ("-p 6", "drop"),
        ("-p all", "drop"),
        ("-p tcp -m tcp --dport 8080", "drop"),
        ("-p tcp -m tcp --dport 8000:8100", "drop"),
        ("-p tcp -m tcp --dport :8079", "accept"),
        ("-p tcp -m tcp ! --dport 8080", "accept"),
        ("-p tcp -m tcp --sport 40000", "drop"),
        ("-p tcp --dport 8080", "drop"),
        ("-p udp -m udp --dport 8080", "accept"),
        ("-p tcp -m multiport --dports 22,80,8000:9000", "drop"),
        ("-p tcp -m multiport --dports 22,80", "accept"),
        ("-p tcp -m multiport --sports 40000", "drop"),
        ("-p tcp -m multiport --ports 8080", "drop"),
        ("-m conntrack --ctstate NEW", "drop"),
        ("-m conntrack --ctstate RELATED,ESTABLISHED", "accept"),
        ("-m conntrack ! --ctstate RELATED,ESTABLISHED", "drop"),
        ("-m state --state NEW", "drop"),
        ("-m comment --comment x", "drop"),
        ("-m iprange --dst-range 10.244.2.1-10.244.2.9", "drop"),
        ("-m iprange --src-range 10.244.2.1-10.244.2.9", "accept"),
        ("-p tcp -m tcp --syn", "drop"),
    ],
)
def test_matches(rule: str, verdict: str):
    rs = forward(f"-A FORWARD {rule} -j DROP")
    v = rs.traverse("filter", "FORWARD", POD)
    assert v.verdict == verdict, v.reason


def test_conntrack_state_of_a_later_packet():
    rs = forward("-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", "DROP")
    assert rs.traverse("filter", "FORWARD", POD).verdict == "drop"
    assert rs.traverse("filter", "FORWARD", replace(POD, state="ESTABLISHED")).verdict == "accept"


def test_ctstate_dnat_is_not_known_for_a_new_packet():
    rs = forward("-A FORWARD -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP")
    v = rs.traverse("filter", "FORWARD", POD)
    assert v.verdict == "unknown"
    assert "--ctstate" in v.reason


def test_addrtype_local_is_decided_from_local_addresses():
    rs = Ruleset.from_save(
        save("filter", "-A INPUT -m addrtype --dst-type LOCAL -j DROP", "INPUT ACCEPT")
    )
    to_node = Packet("10.244.1.5", "192.168.122.11", "tcp", sport=1, dport=22, iif="cni0")
    local = frozenset({"192.168.122.11"})
    assert rs.traverse("filter", "INPUT", to_node, local_addresses=local).verdict == "drop"
    assert rs.traverse("filter", "INPUT", to_node).verdict == "accept"
    loopback = replace(to_node, dst="127.0.0.1")
    assert rs.traverse("filter", "INPUT", loopback).verdict == "drop"


def test_mark_match_value_mask_and_unknown_mark():
    rs = forward("-A FORWARD -m mark --mark 0x4000/0x4000 -j DROP")
    assert rs.traverse("filter", "FORWARD", replace(POD, mark=0x4001)).verdict == "drop"
    assert rs.traverse("filter", "FORWARD", replace(POD, mark=0x1)).verdict == "accept"
    v = rs.traverse("filter", "FORWARD", POD)  # mark None: not known at this hook
    assert v.verdict == "unknown"
    assert v.rule == "-A FORWARD -m mark --mark 0x4000/0x4000 -j DROP"


@pytest.mark.parametrize(
    "match",
    [
        "-m physdev --physdev-is-bridged",
        "-m set --match-set KUBE-CLUSTER-IP dst,dst",
        "-m recent --rcheck --seconds 60 --name ssh --rsource",
        "-m statistic --mode nth --every 2 --packet 0",
        "-m owner --uid-owner 0",
        "-f",
        "-m u32 --u32 0>>22&0x3C@4=0x29",
        "-p tcp -m tcp --tcp-flags SYN,RST SYN",
    ],
)
def test_unmodelled_matches_give_unknown_when_they_decide(match: str):
    rs = forward(f"-A FORWARD {match} -j DROP")
    v = rs.traverse("filter", "FORWARD", POD)
    assert v.verdict == "unknown"
    assert v.rule == f"-A FORWARD {match} -j DROP"
    assert "decides" in v.reason


def test_unmodelled_match_on_a_log_rule_does_not_matter():
    rs = forward("-A FORWARD -m set --match-set BAD src -j LOG\n-A FORWARD -j DROP")
    v = rs.traverse("filter", "FORWARD", POD)
    assert (v.verdict, v.rule) == ("drop", "-A FORWARD -j DROP")


def test_unmodelled_match_whose_branches_agree_does_not_matter():
    rs = forward("-A FORWARD -m set --match-set OK src -j ACCEPT\n-A FORWARD -j ACCEPT")
    v = rs.traverse("filter", "FORWARD", POD)
    assert v.verdict == "accept"
    assert "the same whether or not -m set --match-set OK src (not modelled)" in v.reason
    differs = forward("-A FORWARD -m set --match-set OK src -j ACCEPT\n-A FORWARD -j DROP")
    v = differs.traverse("filter", "FORWARD", POD)
    assert v.verdict == "unknown"
    assert v.rule == "-A FORWARD -m set --match-set OK src -j ACCEPT"


def test_unmodelled_match_after_the_decision_does_not_matter():
    rs = forward(
        "-A FORWARD -d 10.244.2.0/24 -j DROP\n-A FORWARD -m set --match-set X src -j ACCEPT"
    )
    assert rs.traverse("filter", "FORWARD", POD).verdict == "drop"


def test_unknown_interface_only_matters_where_matched_on():
    rs = forward("-A FORWARD -i cni0 -j ACCEPT", "DROP")
    no_iif = replace(POD, iif=None)
    assert rs.traverse("filter", "FORWARD", no_iif).verdict == "unknown"
    other = forward("-A FORWARD -d 10.0.0.0/8 -j ACCEPT\n-A FORWARD -i cni0 -j DROP")
    assert other.traverse("filter", "FORWARD", no_iif).verdict == "accept"


def test_limit_is_treated_as_matching_and_said():
    rs = forward("-A FORWARD -m limit --limit 5/sec --limit-burst 10 -j ACCEPT", "DROP")
    v = rs.traverse("filter", "FORWARD", POD)
    assert v.verdict == "accept"
    assert "-m limit" in v.reason


def test_icmp_type():
    rs = Ruleset.from_save(
        save(
            "filter",
            """
            -A INPUT -p icmp -m icmp --icmp-type 0 -j DROP
            -A INPUT -p icmp -m icmp --icmp-type echo-request -j ACCEPT
            -A INPUT -j DROP
            """,
            "INPUT ACCEPT",
        )
    )
    ping = Packet("10.244.1.5", "192.168.122.11", "icmp", iif="eth0")
    assert rs.traverse("filter", "INPUT", ping).verdict == "accept"
    reply = replace(ping, icmp_type=0)
    assert rs.traverse("filter", "INPUT", reply).verdict == "drop"
    unknown_type = replace(ping, icmp_type=None)
    assert rs.traverse("filter", "INPUT", unknown_type).verdict == "unknown"


@pytest.mark.parametrize(
    ("target", "nat"),
    [
        ("DNAT --to-destination 10.244.2.5:8080", "DNAT 10.244.2.5:8080"),
        ("SNAT --to-source 192.168.122.11", "SNAT 192.168.122.11"),
        ("MASQUERADE", "MASQUERADE"),
        ("MASQUERADE --random-fully", "MASQUERADE"),
        ("REDIRECT --to-ports 15001", "REDIRECT 15001"),
    ],
)
def test_nat_targets_are_recorded_and_end_the_traversal(target: str, nat: str):
    rs = Ruleset.from_save(
        save(
            "nat",
            f"""
            -A PREROUTING -j NATME
            -A PREROUTING -j DNAT --to-destination 1.1.1.1
            -A NATME -p tcp -j {target}
            -A NATME -j DNAT --to-destination 2.2.2.2
            """,
            "PREROUTING ACCEPT",
            ("NATME",),
        )
    )
    v = rs.traverse("nat", "PREROUTING", POD)
    assert v.verdict == "accept"
    assert v.nat == (nat,)
    assert v.path == ("PREROUTING", "NATME")
    assert v.decided_in == "NATME"


def test_nat_sees_only_the_first_packet():
    rs = Ruleset.from_save(
        save("nat", "-A PREROUTING -j DNAT --to-destination 1.1.1.1", "PREROUTING ACCEPT")
    )
    v = rs.traverse("nat", "PREROUTING", replace(POD, state="ESTABLISHED"))
    assert (v.verdict, v.nat) == ("accept", ())


def test_random_choice_gives_one_alternative_per_endpoint_in_rule_order():
    rs = Ruleset.from_save(
        save(
            "nat",
            """
            -A PREROUTING -j SVC
            -A SVC -m statistic --mode random --probability 0.33333333349 -j SEP1
            -A SVC -m statistic --mode random --probability 0.50000000000 -j SEP2
            -A SVC -j SEP3
            -A SEP1 -p tcp -j DNAT --to-destination 10.244.1.2:8080
            -A SEP2 -p tcp -j DNAT --to-destination 10.244.2.2:8080
            -A SEP3 -p tcp -j DNAT --to-destination 10.244.3.2:8080
            """,
            "PREROUTING ACCEPT",
            ("SVC", "SEP1", "SEP2", "SEP3"),
        )
    )
    v = rs.traverse("nat", "PREROUTING", POD)
    assert v.verdict == "accept"
    assert [a.nat for a in v.alternatives] == [
        ("DNAT 10.244.1.2:8080",),
        ("DNAT 10.244.2.2:8080",),
        ("DNAT 10.244.3.2:8080",),
    ]
    assert [a.path[-1] for a in v.alternatives] == ["SEP1", "SEP2", "SEP3"]
    assert v.path == ("PREROUTING", "SVC")
    assert v.nat == ()  # the endpoints differ
    assert "3 alternatives" in v.reason


def test_alternatives_that_differ_make_the_whole_unknown():
    rs = forward(
        "-A FORWARD -m statistic --mode random --probability 0.5 -j DROP\n-A FORWARD -j ACCEPT"
    )
    v = rs.traverse("filter", "FORWARD", POD)
    assert v.verdict == "unknown"
    assert [a.verdict for a in v.alternatives] == ["drop", "accept"]


def test_missing_table_missing_chain_and_user_chain():
    rs = forward("-A FORWARD -j ACCEPT", chains=("MINE",))
    assert rs.traverse("nat", "PREROUTING", POD).verdict == "accept"
    assert rs.traverse("filter", "PREROUTING", POD).verdict == "unknown"
    assert rs.traverse("filter", "MINE", POD).verdict == "unknown"


def test_jump_to_an_undeclared_chain_or_unknown_target_is_unknown():
    rs = forward("-A FORWARD -j NOPE")
    assert rs.traverse("filter", "FORWARD", POD).verdict == "unknown"
    queue = forward("-A FORWARD -p udp -j NFQUEUE --queue-num 1\n-A FORWARD -j NFQUEUE")
    v = queue.traverse("filter", "FORWARD", POD)
    assert v.verdict == "unknown"
    assert v.rule == "-A FORWARD -j NFQUEUE"


def test_parse_records():
    parsed = parse_iptables_save(
        save(
            "filter",
            '-A FORWARD ! -s 10.0.0.0/8 -p tcp -m tcp --dport 80 -m comment --comment "a b" '
            "-m set --match-set S dst -j ACCEPT",
            "FORWARD DROP",
        )
    )
    assert parsed.clean
    (table,) = parsed.records
    chain = table.chain("FORWARD")
    assert chain is not None and chain.policy == "DROP" and chain.builtin
    (rule,) = chain.rules
    assert rule.number == 1 and rule.target == "ACCEPT"
    kinds = [m.kind for m in rule.matches]
    assert kinds == ["src", "proto", "tcp", "comment", "set"]
    assert rule.matches[0].negated and rule.matches[0].value == "10.0.0.0/8"
    assert rule.matches[3].options[0].args == ("a b",)
    assert rule.matches[4].text == "-m set --match-set S dst"
