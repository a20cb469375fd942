"""`needle analyze` checks each pod sending to the Service ports it backs, where kube-proxy
rules exist: kube-proxy's DNAT may choose the sender itself, and the packet then leaves
the bridge by the port it came in by (hairpin). The lab runs no kube-proxy: the bundles
are the healthy lab with the rules kube-proxy would write (tests/service_bundle.py)."""

from __future__ import annotations

import json
import subprocess

from service_bundle import NEEDLE, Service, service_bundle, set_hairpin

# the healthy lab's web pods on lab-node-1 and lab-node-2, and web-1's bridge port
WEB_1, WEB_2 = "10.244.1.2", "10.244.2.2"
WEB_1_PORT = "veth4d2cdbc3"
SERVICES = [
    Service("default/web:http", "10.96.0.20", 80, (f"{WEB_1}:8080", f"{WEB_2}:8080")),
    Service("default/solo:http", "10.96.0.21", 80, (f"{WEB_1}:8080",)),
    Service("default/empty:http", "10.96.0.30", 80, ()),
]


def analyze(bundle) -> dict:
    result = subprocess.run(
        [*NEEDLE, "analyze", str(bundle), "--format", "json", "--fail-on", "never"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def test_every_pod_reaches_the_services_it_backs(tmp_path):
    report = analyze(service_bundle(tmp_path, SERVICES))
    assert [f["rule"] for f in report["findings"] if f["severity"] == "error"] == []
    reach = report["coverage"]["reachability"]
    # 42 pairs between pods and nodes, and web-1 -> web and solo, web-2 -> web
    assert reach["pairs"] == reach["delivered"] == 45


def test_a_pod_whose_port_has_hairpin_off_cannot_reach_its_own_service(tmp_path):
    bundle = service_bundle(tmp_path, SERVICES)
    set_hairpin(bundle, "lab-node-1", WEB_1_PORT, on=False)
    report = analyze(bundle)
    errors = [f for f in report["findings"] if f["severity"] == "error"]
    assert [(f["rule"], f["subject"]["node"]) for f in errors] == [
        ("reachability.bridge", "lab-node-1")
    ]
    message = errors[0]["message"]
    assert "hairpin" in message and "pod to a Service it backs" in message
    assert "breaks 2 pairs" in message  # web-1 to web and to solo
    assert report["coverage"]["reachability"]["dropped"] == 2
