"""How long needle takes on a large kube-proxy ruleset (numbers for notes, not a test):

.venv/bin/python tests/netfilter/bench_kubeproxy.py [SERVICES] [ENDPOINTS]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from kubeproxy_gen import kube_proxy_save
from needle.analyzer.netfilter import Packet, Ruleset, parse_iptables_save


def main() -> None:
    services = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    endpoints = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    data = kube_proxy_save(services, endpoints)
    last = f"10.96.{(services - 1) // 250}.{(services - 1) % 250 + 1}"
    packet = Packet("10.244.0.9", last, "tcp", 40000, 80, iif="cni0", mark=0)
    t0 = time.perf_counter()
    ruleset = Ruleset.from_save(data)
    t1 = time.perf_counter()
    first = ruleset.traverse("nat", "PREROUTING", packet)
    t2 = time.perf_counter()
    ruleset.traverse("nat", "PREROUTING", packet)
    t3 = time.perf_counter()
    parsed = parse_iptables_save(data)
    t4 = time.perf_counter()
    rules = sum(len(c.rules) for t in parsed.records for c in t.chains)
    print(f"{services} services x {endpoints} endpoints: {rules} rules, {len(data) / 1e6:.1f} MB")
    print(f"Ruleset.from_save            {t1 - t0:.3f} s")
    print(
        f"first traversal (last svc)   {t2 - t1:.3f} s  ({first.verdict}, "
        f"{len(first.alternatives)} alternatives)"
    )
    print(f"from_save + first traversal  {t2 - t0:.3f} s")
    print(f"next traversal               {t3 - t2:.4f} s")
    print(f"parse_iptables_save (all)    {t4 - t3:.3f} s")


if __name__ == "__main__":
    main()
