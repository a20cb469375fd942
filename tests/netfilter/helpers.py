"""Small builders shared by the netfilter tests."""

from __future__ import annotations

from needle.analyzer.netfilter import Packet, Ruleset


def save(table: str, body: str, policies: str = "", chains: tuple[str, ...] = ()) -> bytes:
    """One table's iptables-save text: `policies` like "FORWARD DROP,INPUT ACCEPT"."""
    lines = [f"*{table}"]
    for pair in filter(None, policies.split(",")):
        name, policy = pair.split()
        lines.append(f":{name} {policy} [0:0]")
    lines += [f":{c} - [0:0]" for c in chains]
    lines += [line.strip() for line in body.strip().splitlines() if line.strip()]
    lines.append("COMMIT")
    return ("\n".join(lines) + "\n").encode()


def forward(body: str, policy: str = "ACCEPT", chains: tuple[str, ...] = ()) -> Ruleset:
    return Ruleset.from_save(save("filter", body, f"FORWARD {policy}", chains))


POD = Packet(
    "10.244.1.5", "10.244.2.7", "tcp", sport=40000, dport=8080, iif="cni0", oif="flannel.1"
)
