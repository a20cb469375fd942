"""kube-proxy's Services read back from its iptables rules (netfilter/services.py): the
real proxier dump (data/README.md) and the shapes kube-proxy writes around it."""

from __future__ import annotations

from pathlib import Path

from helpers import save
from needle.analyzer.netfilter import Ruleset
from needle.analyzer.netfilter.services import cluster_ips, services

KUBE = Path(__file__).parent / "data" / "realworld__kube-proxy__kubernetes-proxier-test.txt"


def test_the_proxier_dump_names_each_cluster_ip_with_its_endpoints():
    found = services(Ruleset.from_save(KUBE.read_bytes()))
    one = found[("172.30.0.41", "tcp", 80)]
    assert (one.name, one.chain, one.endpoints) == (
        "ns1/svc1:p80",
        "KUBE-SVC-XPGD46QRK7WJZT7O",
        1,
    )
    assert found[("172.30.0.44", "tcp", 80)].endpoints == 2  # the statistic-mode pair
    # the load balancer's firewall chain and the external IP's chain are no cluster IP
    assert ("1.2.3.4", "tcp", 80) not in found and ("192.168.99.11", "tcp", 80) not in found


def test_a_service_without_endpoints_is_its_reject_and_others_are_not_services():
    rules = Ruleset.from_save(
        save(
            "filter",
            '-A KUBE-SERVICES -d 10.96.0.30/32 -p tcp -m comment --comment "default/empty:http'
            ' has no endpoints" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable\n'
            "-A KUBE-SERVICES -d 10.96.0.31/32 -p tcp -m tcp --dport 80 -j REJECT\n"
            "-A KUBE-SERVICES ! -d 10.96.0.32/32 -p tcp -m comment --comment"
            ' "x has no endpoints" -m tcp --dport 80 -j REJECT\n',
            chains=("KUBE-SERVICES",),
        )
    )
    found = services(rules)
    empty = found[("10.96.0.30", "tcp", 80)]
    assert (empty.name, empty.chain, empty.endpoints) == ("default/empty:http", None, 0)
    assert cluster_ips(rules) == frozenset({"10.96.0.30"})
