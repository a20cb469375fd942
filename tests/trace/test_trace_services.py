"""`needle trace` follows nat: kube-proxy's Service DNAT (each endpoint in turn), an
SNAT or MASQUERADE whose reply conntrack restores where it was made, and a pod that
reaches itself through its Service (hairpin). The lab runs no kube-proxy: each bundle is
the healthy lab with the rules kube-proxy would write (service_bundle.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from service_bundle import (
    NEEDLE,
    SAMPLES,
    Service,
    service_bundle,
    set_hairpin,
    set_sysctl,
    trace,
)

# the healthy lab's pods: web on each node, api on each node
WEB_1, WEB_2, API_3 = "10.244.1.2", "10.244.2.2", "10.244.3.3"
WEB_1_PORT = "veth4d2cdbc3"  # web-1's port on lab-node-1's cni0
SERVICES = [
    Service("default/web:http", "10.96.0.20", 80, (f"{WEB_1}:8080", f"{WEB_2}:8080")),
    Service("default/solo:http", "10.96.0.21", 80, (f"{WEB_1}:8080",)),
    Service("default/empty:http", "10.96.0.30", 80, ()),
    Service("default/hollow:http", "10.96.0.31", 80, (), empty_chain=True),
]
TCP_80 = ("--proto", "tcp", "--port", "80")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return service_bundle(tmp_path_factory.mktemp("services"), SERVICES)


def _nat_hops(hops: list[dict]) -> list[tuple[str, str]]:
    return [(h["node"], h["detail"]) for h in hops if h["step"] == "nat"]


def test_a_service_with_two_endpoints_on_two_nodes_is_delivered_to_each(bundle):
    code, document = trace(bundle, API_3, "10.96.0.20", *TCP_80)
    assert (code, document["verdict"]) == (0, "delivered")
    assert document["to"]["kind"] == "service" and document["to"]["name"] == "default/web:http"
    branches = document["endpoints"]
    assert [b["address"] for b in branches] == [f"{WEB_1}:8080", f"{WEB_2}:8080"]
    for branch, node in zip(branches, ("lab-node-1", "lab-node-2"), strict=True):
        assert branch["verdict"] == "delivered" and branch["drop"] is None
        (where, detail), *_ = _nat_hops(branch["hops"])
        assert where == "lab-node-3" and detail.startswith("nat PREROUTING: DNAT")
        assert branch["address"] in detail and "of 2" in detail
        last = branch["hops"][-1]
        assert (last["node"], last["step"]) == (node, "deliver")
    back = document["return"]
    assert back["verdict"] == "delivered"
    assert [b["address"] for b in back["endpoints"]] == [f"{WEB_1}:8080", f"{WEB_2}:8080"]
    for branch in back["endpoints"]:
        assert branch["hops"][-1]["node"] == "lab-node-3"
        assert any("DNAT undone" in detail for _, detail in _nat_hops(branch["hops"]))


def test_an_endpoint_on_a_broken_node_drops_the_trace_naming_the_endpoint(tmp_path):
    bundle = service_bundle(tmp_path, SERVICES)
    set_sysctl(bundle, "lab-node-2", "net/ipv4/ip_forward", "0")
    code, document = trace(bundle, API_3, "10.96.0.20", *TCP_80)
    assert (code, document["verdict"]) == (1, "dropped")
    assert [b["verdict"] for b in document["endpoints"]] == ["delivered", "dropped"]
    drop = document["drop"]
    assert drop["endpoint"] == f"{WEB_2}:8080"
    assert (drop["node"], drop["step"]) == ("lab-node-2", "sysctl")
    # the top-level hops are the failing endpoint's
    assert document["hops"] == document["endpoints"][1]["hops"]
    text = subprocess.run(
        [*NEEDLE, "trace", str(bundle), API_3, "10.96.0.20", *TCP_80],
        capture_output=True,
        text=True,
        check=False,
        env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
    ).stdout
    assert f"to endpoint {WEB_1}:8080: delivered" in text
    assert f"to endpoint {WEB_2}:8080: dropped" in text


def test_a_service_without_endpoints_drops_naming_it(bundle):
    # kube-proxy's REJECT for a Service without endpoints, in filter KUBE-SERVICES
    code, document = trace(bundle, API_3, "10.96.0.30", *TCP_80)
    assert (code, document["verdict"]) == (1, "dropped")
    assert (document["drop"]["node"], document["drop"]["step"]) == ("lab-node-3", "filter")
    hop = next(h for h in document["hops"] if h["verdict"] == "drop")
    assert "default/empty:http has no endpoints" in hop["evidence"][0]["detail"]
    assert document["return"]["verdict"] == "unknown" and document["return"]["hops"] == []
    # a Service chain that jumps to no endpoint chain
    code, document = trace(bundle, API_3, "10.96.0.31", *TCP_80)
    assert (code, document["verdict"]) == (1, "dropped")
    assert (document["drop"]["node"], document["drop"]["step"]) == ("lab-node-3", "nat")
    assert "default/hollow:http" in document["drop"]["reason"]


def test_a_pod_reaches_itself_through_its_service_with_hairpin_on(bundle):
    code, document = trace(bundle, WEB_1, "10.96.0.21", *TCP_80)
    assert (code, document["verdict"]) == (0, "delivered")
    hops = document["hops"]
    nat = _nat_hops(hops)
    assert nat[0][1].startswith("nat PREROUTING: DNAT 10.244.1.2:8080")
    assert nat[1][1] == "nat POSTROUTING: MASQUERADE"  # KUBE-SEP marks its own endpoint
    bridged = [h for h in hops if h["step"] == "bridge" and h["interface"] == "cni0"]
    assert bridged[-1]["detail"] == f"cni0 forwards to {WEB_1_PORT}"
    # the reply goes to cni0's address, is un-SNATed there and hairpins back
    back = document["return"]
    assert back["verdict"] == "delivered"
    assert any("SNAT undone" in d for _, d in _nat_hops(back["hops"]))
    assert back["hops"][-1]["detail"] == f"{WEB_1} is eth0's address: delivered"


def test_a_pod_through_its_own_service_dies_at_its_port_with_hairpin_off(tmp_path):
    bundle = service_bundle(tmp_path, SERVICES)
    set_hairpin(bundle, "lab-node-1", WEB_1_PORT, on=False)
    code, document = trace(bundle, WEB_1, "10.96.0.21", *TCP_80)
    assert (code, document["verdict"]) == (1, "dropped")
    hop = next(h for h in document["hops"] if h["verdict"] == "drop")
    assert (hop["node"], hop["step"], hop["interface"]) == ("lab-node-1", "bridge", WEB_1_PORT)
    assert "hairpin" in hop["detail"]
    # another pod of that node reaches the same Service: its packet leaves by another port
    code, document = trace(bundle, "10.244.1.3", "10.96.0.21", *TCP_80)
    assert (code, document["verdict"]) == (0, "delivered")


def test_a_masqueraded_reply_is_restored_on_the_node_that_masqueraded(bundle):
    # a node's own packet to a Service: kube-proxy masquerades what is not pod traffic
    code, document = trace(bundle, "lab-node-3", "10.96.0.20", *TCP_80)
    assert (code, document["verdict"]) == (0, "delivered")
    for branch in document["endpoints"]:
        nat = _nat_hops(branch["hops"])
        assert nat[0] == ("lab-node-3", nat[0][1]) and nat[0][1].startswith("nat OUTPUT: DNAT")
        assert ("lab-node-3", "nat POSTROUTING: MASQUERADE") in nat
    for branch in document["return"]["endpoints"]:
        nat = _nat_hops(branch["hops"])
        assert (
            "lab-node-3",
            "conntrack: the reply to 10.244.3.0 is for 192.168.122.13 (the connection's SNAT "
            "undone)",
        ) in nat
        last = branch["hops"][-1]
        assert (last["node"], last["netns"], last["interface"]) == ("lab-node-3", "host", "ens3")


def _with_snat(tmp_path: Path, to_source: str) -> Path:
    """web-1's packets to lab-node-2's pods SNATed by lab-node-1 to `to_source`."""
    bundle = service_bundle(tmp_path, [])
    rules = bundle / "nodes" / "lab-node-1" / "host" / "iptables-save.txt"
    text = rules.read_text()
    snat = f"-A POSTROUTING -s {WEB_1}/32 -d 10.244.2.0/24 -j SNAT --to-source {to_source}\n"
    head, tail = text.split("-A POSTROUTING", 1)
    rules.write_text(head + snat + "-A POSTROUTING" + tail)
    return bundle


def test_an_snat_reply_goes_to_the_snat_address_and_is_restored_there(tmp_path):
    bundle = _with_snat(tmp_path, "192.168.122.11")
    code, document = trace(bundle, WEB_1, WEB_2)
    assert (code, document["verdict"]) == (0, "delivered")
    assert _nat_hops(document["hops"]) == [("lab-node-1", "nat POSTROUTING: SNAT 192.168.122.11")]
    back = document["return"]["hops"]
    undone = [i for i, h in enumerate(back) if "SNAT undone" in h["detail"]]
    assert len(undone) == 1 and back[undone[0]]["node"] == "lab-node-1"
    assert back[-1]["detail"] == f"{WEB_1} is eth0's address: delivered"


def test_an_snat_to_another_nodes_address_loses_the_reply_there(tmp_path):
    bundle = _with_snat(tmp_path, "192.168.122.13")
    code, document = trace(bundle, WEB_1, WEB_2)
    assert (code, document["verdict"]) == (1, "dropped")
    assert document["return"]["drop"]["node"] == "lab-node-3"
    assert document["return"]["drop"]["step"] == "deliver"


@pytest.mark.parametrize(
    ("target", "options", "says"),
    [
        ("10.96.0.20", (), "give --proto and --port"),
        ("10.96.0.20", ("--proto", "udp", "--port", "80"), "give --proto and --port"),
        ("10.96.0.99", TCP_80, "name no Service at 10.96.0.99:80/tcp"),
    ],
)
def test_a_clusterip_the_rules_do_not_name_is_a_one_line_error(bundle, target, options, says):
    assert says in _usage_error(bundle, API_3, target, *options)


def _usage_error(bundle: Path, *arguments: str) -> str:
    """The one line `needle trace` says on stderr when it exits 2."""
    result = subprocess.run(
        [*NEEDLE, "trace", str(bundle), *arguments], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def test_a_clusterip_is_no_source_and_needs_kube_proxy_rules(bundle):
    for bundle_path, source, target in [
        (bundle, "10.96.0.20", API_3),
        (SAMPLES / "lab-healthy.tar.gz", API_3, "10.96.0.20"),  # no kube-proxy there
    ]:
        _usage_error(bundle_path, source, target, *TCP_80)


def test_a_rewrite_the_trace_cannot_follow_is_unknown_with_its_rule(tmp_path):
    services = [
        Service("default/bad:http", "10.96.0.40", 80, ("[bad]:80",)),
        Service("default/local:http", "10.96.0.41", 80, (f"{WEB_1}:8080",)),
    ]
    bundle = service_bundle(tmp_path, services)
    rules = bundle / "nodes" / "lab-node-3" / "host" / "iptables-save.txt"
    redirect = "-j REDIRECT --to-ports 8080"
    rules.write_text(rules.read_text().replace(f"-j DNAT --to-destination {WEB_1}:8080", redirect))
    cases = [("10.96.0.40", "--to-destination [bad]:80"), ("10.96.0.41", redirect)]
    for target, rule_ends in cases:
        code, document = trace(bundle, API_3, target, *TCP_80)
        assert (code, document["verdict"]) == (1, "unknown")
        hop = next(h for h in document["hops"] if h["verdict"] != "pass")
        assert (hop["node"], hop["step"], hop["verdict"]) == ("lab-node-3", "nat", "unknown")
        assert hop["evidence"][0]["detail"].endswith(rule_ends)


def test_a_service_with_more_endpoints_than_traced_is_unknown_saying_so(tmp_path):
    endpoints = tuple(f"10.244.{1 + n % 3}.{2 + n % 2}:8080" for n in range(70))
    bundle = service_bundle(tmp_path, [Service("default/big:http", "10.96.0.50", 80, endpoints)])
    code, document = trace(bundle, API_3, "10.96.0.50", *TCP_80)
    assert (code, document["verdict"]) == (1, "unknown")
    *traced, cut = document["endpoints"]
    assert len(traced) == 64 and all(b["verdict"] == "delivered" for b in traced)
    assert cut["verdict"] == "unknown" and cut["hops"][0]["node"] == "lab-node-3"
    assert "more than 64 endpoints" in cut["hops"][0]["detail"]
