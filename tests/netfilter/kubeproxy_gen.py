"""A synthetic kube-proxy (iptables mode) ruleset of any size, shaped like the rules
kube-proxy's proxier writes (tests/netfilter/data/kube-proxy_*.txt is the real thing):
KUBE-SERVICES -> KUBE-SVC-* (KUBE-MARK-MASQ, statistic per endpoint) -> KUBE-SEP-* DNAT."""

from __future__ import annotations


def _chain_id(kind: str, n: int) -> str:
    return f"{kind}-{n:016X}"


def kube_proxy_save(services: int, endpoints: int = 3) -> bytes:
    head = [
        "*nat",
        ":PREROUTING ACCEPT [0:0]",
        ":INPUT ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":POSTROUTING ACCEPT [0:0]",
        ":KUBE-SERVICES - [0:0]",
        ":KUBE-NODEPORTS - [0:0]",
        ":KUBE-POSTROUTING - [0:0]",
        ":KUBE-MARK-MASQ - [0:0]",
    ]
    body = [
        '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000",
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT"'
        " -j MASQUERADE --random-fully",
        "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000",
    ]
    svc_rules = []
    for s in range(services):
        svc = _chain_id("KUBE-SVC", s)
        ip = f"10.96.{s // 250}.{s % 250 + 1}"
        name = f"ns{s}/svc{s}:http"
        head.append(f":{svc} - [0:0]")
        svc_rules.append(
            f'-A KUBE-SERVICES -d {ip}/32 -p tcp -m comment --comment "{name} cluster IP"'
            f" -m tcp --dport 80 -j {svc}"
        )
        body.append(
            f'-A {svc} ! -s 10.244.0.0/16 -d {ip}/32 -p tcp -m comment --comment "{name}'
            f' cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ'
        )
        for e in range(endpoints):
            sep = _chain_id("KUBE-SEP", s * endpoints + e)
            pod = f"10.244.{(s * endpoints + e) // 250 % 256}.{(s * endpoints + e) % 250 + 2}"
            head.append(f":{sep} - [0:0]")
            left = endpoints - e
            stat = f" -m statistic --mode random --probability {1 / left:.11f}" if left > 1 else ""
            body.append(f'-A {svc} -m comment --comment "{name} -> {pod}:8080"{stat} -j {sep}')
            body.append(f'-A {sep} -s {pod}/32 -m comment --comment "{name}" -j KUBE-MARK-MASQ')
            body.append(
                f'-A {sep} -p tcp -m comment --comment "{name}" -m tcp -j DNAT'
                f" --to-destination {pod}:8080"
            )
    svc_rules.append(
        '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must'
        ' be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS'
    )
    return ("\n".join([*head, *svc_rules, *body, "COMMIT", ""])).encode()
