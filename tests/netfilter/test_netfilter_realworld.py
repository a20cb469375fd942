"""Real rulesets (tests/netfilter/data, see its README): Docker's default, kube-proxy's
iptables mode, firewalld's zones, and the lab's flannel node. Each case states what Linux
does with the packet and why."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from needle.analyzer.netfilter import Packet, Ruleset, parse_iptables_save

DATA = Path(__file__).parent / "data"


def load(name: str) -> Ruleset:
    return Ruleset.from_save((DATA / name).read_bytes())


SAVES = sorted(p for p in DATA.glob("*__*.txt") if "__nft-" not in p.name)


@pytest.mark.parametrize("path", SAVES, ids=lambda p: p.name)
def test_every_iptables_save_file_parses_clean(path: Path):
    parsed = parse_iptables_save(path.read_bytes())
    assert parsed.clean, parsed.unparsed
    assert parsed.records
    for table in parsed.records:
        for chain in table.chains:
            for rule in chain.rules:
                assert all(m.kind != "?" for m in rule.matches), rule.text


# Docker's default ruleset -------------------------------------------------------------

DOCKER = "realworld__docker-default__open5gs-faq.txt"
CONTAINER_OUT = Packet("172.17.0.2", "8.8.8.8", "udp", 40000, 53, iif="docker0", oif="eth0")


def test_docker_container_to_the_world_is_forwarded_and_masqueraded():
    rs = load(DOCKER)
    v = rs.traverse("filter", "FORWARD", CONTAINER_OUT)
    assert v.verdict == "accept"
    assert v.rule == "-A FORWARD -i docker0 ! -o docker0 -j ACCEPT"
    assert v.path == (
        "FORWARD",
        "DOCKER-USER",
        "DOCKER-ISOLATION-STAGE-1",
        "DOCKER-ISOLATION-STAGE-2",
    )
    post = rs.traverse("nat", "POSTROUTING", CONTAINER_OUT)
    assert (post.verdict, post.nat) == ("accept", ("MASQUERADE",))


def test_docker_new_connection_from_outside_hits_forward_drop_policy():
    inbound = Packet("8.8.8.8", "172.17.0.2", "tcp", 5555, 80, iif="eth0", oif="docker0")
    v = load(DOCKER).traverse("filter", "FORWARD", inbound)
    assert (v.verdict, v.rule) == ("drop", ":FORWARD DROP")
    reply = replace(inbound, state="ESTABLISHED")
    v = load(DOCKER).traverse("filter", "FORWARD", reply)
    assert v.rule == "-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"


def test_docker_container_to_container_is_not_masqueraded():
    same_bridge = replace(CONTAINER_OUT, dst="172.17.0.3", oif="docker0")
    v = load(DOCKER).traverse("nat", "POSTROUTING", same_bridge)
    assert (v.verdict, v.nat) == ("accept", ())
    assert v.rule == ":POSTROUTING ACCEPT"


# kube-proxy (iptables mode) ------------------------------------------------------------

KUBE = "realworld__kube-proxy__kubernetes-proxier-test.txt"
POD_TO_SVC4 = Packet("10.0.1.5", "172.30.0.44", "tcp", 40000, 80, iif="cni0", mark=0)


def test_kube_proxy_cluster_ip_gives_each_endpoint_as_an_alternative():
    v = load(KUBE).traverse("nat", "PREROUTING", POD_TO_SVC4)
    assert v.verdict == "accept"
    assert [a.nat for a in v.alternatives] == [("DNAT 10.180.0.4:80",), ("DNAT 10.180.0.5:80",)]
    assert [a.path for a in v.alternatives] == [
        ("PREROUTING", "KUBE-SERVICES", "KUBE-SVC-4SW47YFZTEDKD3PK", "KUBE-SEP-UKSFD7AGPMPPLUHC"),
        ("PREROUTING", "KUBE-SERVICES", "KUBE-SVC-4SW47YFZTEDKD3PK", "KUBE-SEP-C6EBXVWJJZMIWKLZ"),
    ]
    assert v.mark == 0  # a pod inside 10.0.0.0/8: no KUBE-MARK-MASQ
    assert v.rule is not None and "--probability 0.5000000000" in v.rule


def test_kube_proxy_marks_traffic_from_outside_the_cluster_for_masquerade():
    outside = replace(POD_TO_SVC4, src="192.168.1.9", dst="172.30.0.41", iif="eth0")
    rs = load(KUBE)
    v = rs.traverse("nat", "PREROUTING", outside)
    assert (v.verdict, v.nat, v.mark) == ("accept", ("DNAT 10.180.0.1:80",), 0x4000)
    assert "KUBE-MARK-MASQ" in v.path
    dnated = replace(outside, dst="10.180.0.1", oif="flannel.1", mark=v.mark)
    post = rs.traverse("nat", "POSTROUTING", dnated)
    assert (post.verdict, post.nat, post.mark) == ("accept", ("MASQUERADE",), 0)
    fwd = rs.traverse("filter", "FORWARD", dnated)
    assert fwd.rule is not None and "--mark 0x4000/0x4000 -j ACCEPT" in fwd.rule


def test_kube_proxy_hairpin_marks_only_the_endpoint_that_is_the_client():
    hairpin = replace(POD_TO_SVC4, src="10.180.0.4")
    v = load(KUBE).traverse("nat", "PREROUTING", hairpin)
    assert [a.mark for a in v.alternatives] == [0x4000, 0]
    assert v.mark is None  # which one depends on the random choice


def test_kube_proxy_postrouting_leaves_unmarked_traffic_alone():
    v = load(KUBE).traverse("nat", "POSTROUTING", replace(POD_TO_SVC4, dst="10.180.0.4"))
    assert (v.verdict, v.nat) == ("accept", ())


def test_kube_proxy_node_port():
    to_node = replace(POD_TO_SVC4, src="192.168.1.9", dst="192.168.122.11", dport=3002)
    local = frozenset({"192.168.122.11"})
    v = load(KUBE).traverse("nat", "PREROUTING", to_node, local_addresses=local)
    assert (v.nat, v.mark) == (("DNAT 10.180.0.3:80",), 0x4000)
    assert v.path == (
        "PREROUTING",
        "KUBE-SERVICES",
        "KUBE-NODEPORTS",
        "KUBE-SVC-X27LE4BHSL4DOUIK",
        "KUBE-MARK-MASQ",
        "KUBE-SEP-OYPFS5VJICHGATKP",
    )
    # without knowing the node's addresses the NodePort rule is not reached: no DNAT
    assert load(KUBE).traverse("nat", "PREROUTING", to_node).nat == ()


def test_kube_proxy_load_balancer_without_local_endpoints_reaches_an_undeclared_chain():
    lb = replace(POD_TO_SVC4, src="203.0.113.5", dst="1.2.3.4", iif="eth0")
    v = load(KUBE).traverse("nat", "PREROUTING", lb)
    assert v.verdict == "unknown"
    assert v.rule is not None and v.rule.endswith("-j KUBE-MARK-DROP")


def test_kube_proxy_localnet_guard_depends_on_conntrack_nat_status():
    rs = load(KUBE)
    normal = Packet("10.0.1.5", "192.168.122.11", "tcp", 1, 22, iif="cni0")
    assert rs.traverse("filter", "INPUT", normal).verdict == "accept"
    to_localhost = replace(normal, src="192.168.1.9", dst="127.0.0.1", iif="eth0")
    v = rs.traverse("filter", "INPUT", to_localhost)
    assert v.verdict == "unknown"
    assert "KUBE-FIREWALL" in v.reason


# firewalld ------------------------------------------------------------------------------

FIREWALLD = "realworld__firewalld-centos7.txt"
SSH = Packet("198.51.100.7", "192.168.122.11", "tcp", 50000, 22, iif="eth0")


def test_firewalld_allows_ssh_through_its_zone_chains():
    v = load(FIREWALLD).traverse("filter", "INPUT", SSH)
    assert v.verdict == "accept"
    assert v.decided_in == "IN_public_allow"
    assert v.path == (
        "INPUT",
        "INPUT_direct",
        "INPUT_ZONES_SOURCE",
        "INPUT_ZONES",
        "IN_public",
        "IN_public_log",
        "IN_public_deny",
        "IN_public_allow",
    )


def test_firewalld_rejects_other_ports_after_the_zone_goto_returns():
    v = load(FIREWALLD).traverse("filter", "INPUT", replace(SSH, dport=80))
    assert v.verdict == "drop"
    assert v.rule == "-A INPUT -j REJECT --reject-with icmp-host-prohibited"


def test_firewalld_forwards_icmp_but_rejects_pod_traffic():
    rs = load(FIREWALLD)
    pod = Packet("10.244.1.5", "10.244.2.7", "tcp", 1, 8080, iif="cni0", oif="flannel.1")
    assert rs.traverse("filter", "FORWARD", pod).verdict == "drop"
    ping = Packet("10.244.1.5", "10.244.2.7", "icmp", iif="cni0", oif="flannel.1")
    v = rs.traverse("filter", "FORWARD", ping)
    assert (v.verdict, v.decided_in) == ("accept", "FWDI_public")


def test_firewalld_nat_gotos_end_in_the_policy():
    v = load(FIREWALLD).traverse("nat", "PREROUTING", SSH)
    assert (v.verdict, v.rule) == ("accept", ":PREROUTING ACCEPT")
    assert v.path[-1] == "PRE_public_allow"


# the lab's flannel node -------------------------------------------------------------------

LAB = "lab__flannel-node.txt"
POD = Packet("10.244.1.5", "10.244.2.7", "tcp", 40000, 8080, iif="cni0", oif="flannel.1")


def test_lab_pod_to_pod_is_accepted_whatever_the_unknown_mark():
    v = load(LAB).traverse("filter", "FORWARD", POD)  # mark None: KUBE-FORWARD's mark rule
    assert v.verdict == "accept"
    v0 = load(LAB).traverse("filter", "FORWARD", replace(POD, mark=0))
    assert (
        v0.rule
        == '-A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT'
    )


def test_lab_guard_chain_return_falls_to_forward_drop_policy():
    outside = Packet("192.168.1.9", "10.99.0.1", "tcp", 1, 80, iif="eth0", oif="cni0", mark=0)
    v = load(LAB).traverse("filter", "FORWARD", outside)
    assert (v.verdict, v.rule) == ("drop", ":FORWARD DROP")
    assert v.path == ("FORWARD", "KUBE-FORWARD", "FLANNEL-FWD", "NDL-GUARD")


def test_lab_input_limit_log_and_drop():
    rs = load(LAB)
    ping = Packet("192.168.1.9", "192.168.122.11", "icmp", iif="eth0")
    v = rs.traverse("filter", "INPUT", ping)
    assert v.verdict == "accept" and "-m limit" in v.reason
    web = Packet("192.168.1.9", "192.168.122.11", "tcp", 1, 80, iif="eth0")
    v = rs.traverse("filter", "INPUT", web)
    assert (v.verdict, v.rule) == ("drop", "-A INPUT -j DROP")
    vxlan = Packet("192.168.122.12", "192.168.122.11", "udp", 1, 8472, iif="eth0")
    assert rs.traverse("filter", "INPUT", vxlan).verdict == "accept"


def test_lab_mangle_mark_and_flannel_masquerade():
    rs = load(LAB)
    metrics = Packet("10.244.1.5", "192.168.122.11", "tcp", 1, 9100, iif="cni0", mark=0x3)
    assert rs.traverse("mangle", "PREROUTING", metrics).mark == 0x10
    out = Packet("10.244.1.5", "8.8.8.8", "udp", 1, 53, oif="eth0", mark=0)
    assert rs.traverse("nat", "POSTROUTING", out).nat == ("MASQUERADE",)
    assert rs.traverse("nat", "POSTROUTING", replace(out, dst="10.244.2.7")).nat == ()
