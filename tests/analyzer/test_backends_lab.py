"""Each data plane the lab builds, collected as a user would (`needle collect`) and
analyzed: healthy, it gives no error or warning and is recognised as what it is; with
each of its faults, the rule for it names the node and the values."""

from __future__ import annotations

import pytest
from needle.lab import api as lab_api
from test_faults_lab import collect_and_analyze

pytestmark = [pytest.mark.root, pytest.mark.tools("nsenter", "tcpdump")]

# lab backend -> what analyze must call it (coverage.dataplane)
BACKENDS = {
    "vxlan": ("vxlan", "flannel vxlan"),
    "vxlan-directrouting": ("vxlan", "flannel vxlan with DirectRouting"),
    "host-gw": ("host-gw", "flannel host-gw"),
    "canal": ("canal", "Canal (Calico CNI, flannel vxlan)"),
}

# (backend, fault) -> (rule that must fire, subject fields it must name)
FAULTS = {
    ("host-gw", "route-missing"): (
        "flannel.route.peer-podcidr-missing",
        {"node": "lab-node-1", "peer_node": "lab-node-2", "interface": "ens3"},
    ),
    ("host-gw", "route-wrong-nexthop"): (
        "flannel.route.peer-podcidr-wrong-way",
        {"node": "lab-node-1", "peer_node": "lab-node-2", "cidr": "10.244.2.0/24"},
    ),
    ("host-gw", "peer-off-link"): (
        "flannel.hostgw.node-off-segment",
        {"node": "lab-node-1", "interface": "ens3"},
    ),
    ("canal", "pod-route-missing"): ("canal.route.pod-missing", {"node": "lab-node-1"}),
    ("canal", "proxy-arp-off"): ("canal.veth.proxy-arp-off", {"node": "lab-node-1"}),
    ("canal", "veth-orphan"): ("flannel.veth.orphaned", {"node": "lab-node-1"}),
    ("vxlan", "vtep-entries-missing"): (
        "flannel.vtep.entries-missing",
        {"node": "lab-node-1", "interface": "flannel.1"},
    ),
    ("canal", "vtep-entries-missing"): (
        "flannel.vtep.entries-missing",
        {"node": "lab-node-1", "interface": "flannel.1"},
    ),
    ("vxlan-directrouting", "vxlan-route-no-fdb"): (
        "flannel.route.peer-podcidr-wrong-way",
        {"node": "lab-node-1", "peer_node": "lab-node-2", "interface": "flannel.1"},
    ),
}


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_a_healthy_lab_of_each_data_plane_is_clean_and_recognised(lab_factory, tmp_path, backend):
    report = collect_and_analyze(lab_factory(nodes=3, pods=2, backend=backend), tmp_path)
    assert [f["message"] for f in report["findings"] if f["severity"] != "info"] == []
    assert report["coverage"]["rules_skipped"] == []
    plane = report["coverage"]["dataplane"]
    assert (plane["backend"], plane["label"]) == BACKENDS[backend]


@pytest.mark.parametrize(("backend", "fault"), sorted(FAULTS))
def test_each_data_plane_fault_is_named_once_by_its_rule(lab_factory, tmp_path, backend, fault):
    state = lab_factory(nodes=3, pods=2, backend=backend)
    lab_api.fault(state.name, fault)
    report = collect_and_analyze(lab_api.status(state.name), tmp_path)
    rule, subject = FAULTS[(backend, fault)]
    serious = [f for f in report["findings"] if f["severity"] in ("error", "warning")]
    # one cause, one finding: the fault's rule, for the node it was made on
    assert [f["rule"] for f in serious] == [rule], [(f["rule"], f["message"]) for f in serious]
    assert all(serious[0]["subject"].get(key) == value for key, value in subject.items()), serious[
        0
    ]["subject"]
