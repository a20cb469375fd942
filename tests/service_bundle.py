"""The healthy lab as a directory bundle whose nodes run kube-proxy (iptables mode): the
lab has none, so each test writes the rules kube-proxy would, the same on every node, as
each node's iptables-save (a real dump's shape: tests/netfilter/data/kube-proxy_*.txt)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
NEEDLE = (sys.executable, "-m", "needle")
DATA = Path(__file__).resolve().parent / "trace" / "data"
NODES = ("lab-node-1", "lab-node-2", "lab-node-3")
CLUSTER_CIDR = "10.244.0.0/16"


@dataclass(frozen=True)
class Service:
    name: str  # ns/name:port
    ip: str
    port: int
    endpoints: tuple[str, ...]  # ip:port; none: kube-proxy's REJECT (or an empty chain)
    proto: str = "tcp"
    empty_chain: bool = False  # a KUBE-SVC chain that jumps to no KUBE-SEP

    def chain(self, kind: str, key: str = "") -> str:
        digest = hashlib.sha256(f"{self.name}{key}".encode()).hexdigest()[:16].upper()
        return f"{kind}-{digest}"


FILTER = (DATA / "kube-proxy-filter.txt").read_text()

NAT_HEAD = (DATA / "kube-proxy-nat-head.txt").read_text()

NAT_BASE = (DATA / "kube-proxy-nat-base.txt").read_text()


def kube_proxy_save(services: list[Service]) -> str:
    """iptables-save as kube-proxy's proxier writes it for these Services."""
    filter_rules, chains, portals, bodies = [], [], [], []
    for svc in services:
        cluster = f"-d {svc.ip}/32 -p {svc.proto}"
        dport = f"-m {svc.proto} --dport {svc.port}"
        if not svc.endpoints and not svc.empty_chain:
            filter_rules.append(
                f'-A KUBE-SERVICES {cluster} -m comment --comment "{svc.name} has no endpoints"'
                f" {dport} -j REJECT --reject-with icmp-port-unreachable"
            )
            continue
        svc_chain = svc.chain("KUBE-SVC")
        chains.append(f":{svc_chain} - [0:0]")
        portals.append(
            f'-A KUBE-SERVICES {cluster} -m comment --comment "{svc.name} cluster IP"'
            f" {dport} -j {svc_chain}"
        )
        bodies.append(
            f"-A {svc_chain} ! -s {CLUSTER_CIDR} {cluster}"
            f' -m comment --comment "{svc.name} cluster IP" {dport} -j KUBE-MARK-MASQ'
        )
        for n, endpoint in enumerate(svc.endpoints):
            sep = svc.chain("KUBE-SEP", endpoint)
            chains.append(f":{sep} - [0:0]")
            left = len(svc.endpoints) - n
            stat = f" -m statistic --mode random --probability {1 / left:.11f}" if left > 1 else ""
            bodies.append(
                f'-A {svc_chain} -m comment --comment "{svc.name} -> {endpoint}"{stat} -j {sep}'
            )
            address = endpoint.split(":")[0]
            bodies.append(
                f'-A {sep} -s {address}/32 -m comment --comment "{svc.name}" -j KUBE-MARK-MASQ'
            )
            bodies.append(
                f'-A {sep} -p {svc.proto} -m comment --comment "{svc.name}"'
                f" -m {svc.proto} -j DNAT --to-destination {endpoint}"
            )
    portals.append(
        '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must'
        ' be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS'
    )
    nat = NAT_HEAD + "".join(c + "\n" for c in chains) + NAT_BASE
    nat += "".join(line + "\n" for line in portals + bodies)
    return FILTER + "".join(r + "\n" for r in filter_rules) + "COMMIT\n" + nat + "COMMIT\n"


def service_bundle(tmp_path: Path, services: list[Service]) -> Path:
    """The healthy lab unpacked under tmp_path, every node running these Services."""
    root = tmp_path / "bundle"
    with tarfile.open(SAMPLES / "lab-healthy.tar.gz") as tar:
        tar.extractall(root, filter="data")
    rules = kube_proxy_save(services)
    for node in NODES:
        (root / "nodes" / node / "host" / "iptables-save.txt").write_text(rules)
    return root


def set_sysctl(bundle: Path, node: str, key: str, value: str) -> None:
    """One line of the node's sysctl dump changed (key as /proc/sys names it)."""
    path = bundle / "nodes" / node / "host" / "sysctl-net.txt"
    lines = path.read_text().splitlines()
    changed = [f"{key} = {value}" if line.split(" = ")[0] == key else line for line in lines]
    assert changed != lines, key
    path.write_text("\n".join(changed) + "\n")


def set_hairpin(bundle: Path, node: str, port: str, on: bool) -> None:
    path = bundle / "nodes" / node / "host" / "bridge-link.json"
    ports = json.loads(path.read_text())
    found = [p for p in ports if p["ifname"] == port]
    assert found, port
    for entry in found:
        entry["hairpin"] = on
    path.write_text(json.dumps(ports))


def trace(bundle: Path, source: str, target: str, *options: str) -> tuple[int, dict]:
    result = subprocess.run(
        [*NEEDLE, "trace", str(bundle), source, target, "--format", "json", *options],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)
