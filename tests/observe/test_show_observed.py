"""`needle show BUNDLE flows`: the flows a bundle's captures hold, outer and inner (with
the VXLAN VNI), from real lab captures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def show(sample: str, view: str, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "needle", "show", str(SAMPLES / f"{sample}.tar.gz"), view, *options],
        capture_output=True,
        text=True,
        check=False,
    )


def test_flows_show_the_vxlan_tunnels_and_the_pod_traffic_inside():
    result = show("lab-vxlan-port-blocked", "flows", "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    outer = [r for r in rows if r["layer"] == "outer" and r["dport"] == 8472]
    inner = [r for r in rows if r["layer"] == "inner"]
    assert outer and all(r["proto"] == "udp" and r["src"].startswith("192.168.122.") for r in outer)
    assert inner and all(r["vni"] == 1 and r["src"].startswith("10.244.") for r in inner)
    assert all(r["file"].startswith(f"nodes/{r['node']}/captures/") for r in rows)


def test_flows_of_one_node_and_a_bundle_without_probes():
    rows = json.loads(
        show("lab-vxlan-port-blocked", "flows", "--node", "lab-node-3", "--format", "json").stdout
    )
    assert rows and {r["node"] for r in rows} == {"lab-node-3"}
    result = show("lab-healthy", "probes")
    assert result.returncode == 0 and "no probes in" in result.stdout
