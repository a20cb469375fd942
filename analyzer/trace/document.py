"""A trace as `needle.trace/v1` JSON and as text that reads like a traceroute of the data
plane (docs/trace-format.md). Text goes through the output boundary: every bundle string
(pod, node and device names, details) is shown escaped, never interpreted."""

from __future__ import annotations

from typing import Any, TextIO

from needle.analyzer.terminal import make_console, safe_markup
from needle.analyzer.trace.endpoints import Endpoint
from needle.analyzer.trace.walk import NOT_MODELLED, Packet, Path

FORMAT = "needle.trace/v1"

# What to look at when a step drops, by step.
FIXES = {
    "link": "bring the device up (ip link set DEV up) and find what took it down",
    "route": "compare the namespace's routes and policy rules (ip rule; ip route show table all) "
    "with what the CNI programs",
    "neigh": "check the neighbour entry (ip neigh show dev DEV) against the next hop's MAC",
    "fdb": "check the forwarding database (bridge fdb show dev DEV): flanneld writes one entry "
    "per peer",
    "bridge": "check the bridge port (bridge link show): state forwarding, hairpin where a pod "
    "talks to itself",
    "filter": "read the rule the hop names (iptables-save) and find the tool that wrote it",
    "nat": "check the nat rule the hop names; for a Service, its endpoints (kubectl get "
    "endpointslices) and kube-proxy's rules on that node",
    "encap": "compare the VXLAN device (ip -d link show DEV) with the peers'",
    "underlay": "check the route between the node IPs (ip route get NODE_IP) and the underlay "
    "network in between",
    "decap": "compare the receiving node's VXLAN device (ip -d link show) with the sender's: "
    "VNI, port, MAC, state",
    "mtu": "make every MTU on the path fit the packet (the overlay is the underlay's MTU "
    "minus the encapsulation)",
    "sysctl": "set the sysctl the hop names (sysctl -w ...) and persist it in /etc/sysctl.d/",
    "deliver": "check the destination pod's eth0 and address (kubectl exec POD -- ip addr)",
}


def verdict_of(forward: Path, back: Path) -> str:
    if forward.verdict == "delivered" and back.verdict == "delivered":
        return "delivered"
    if "dropped" in (forward.verdict, back.verdict):
        return "dropped"
    return "unknown"


def trace_document(
    source: Endpoint, target: Endpoint, packet: Packet, forward: Path, back: Path
) -> dict[str, Any]:
    path = forward.to_json()
    return {
        "format": FORMAT,
        "from": source.to_json(),
        "to": target.to_json(),
        "packet": packet.to_json(),
        "verdict": verdict_of(forward, back),
        "hops": path["hops"],
        "drop": path["drop"],
        "endpoints": path["endpoints"],
        "return": back.to_json(),
        "not_modelled": list(NOT_MODELLED),
    }


def _lines(console: Any, hops: list[dict[str, Any]], start: int) -> None:
    for number, hop in enumerate(hops, start):
        mark = {"pass": "  ", "drop": "[bold red]X[/] ", "unknown": "[yellow]?[/] "}[hop["verdict"]]
        device = safe_markup(hop["interface"] or "-")
        console.print(
            f"{mark}{number:>2}  {safe_markup(hop['node'])}  {safe_markup(hop['netns'])}  "
            f"{hop['step']:<8} {device}  {safe_markup(hop['detail'])}"
        )
        if hop["verdict"] != "pass":
            for item in hop["evidence"]:
                console.print(
                    f"        evidence: {safe_markup(item['file'])}: {safe_markup(item['detail'])}"
                )
            if hop["verdict"] == "drop":
                console.print(f"        fix: {FIXES.get(hop['step'], '')}")


def _path_lines(console: Any, path: dict[str, Any]) -> None:
    """A path's hops; one block per endpoint when a Service's DNAT chose among several."""
    branches = path.get("endpoints") or []
    if not path["hops"] and not branches:
        console.print("      (no packet arrived to answer)")
        return
    if len(branches) <= 1:
        _lines(console, path["hops"], 1)
        return
    for branch in branches:
        style = {"delivered": "green", "dropped": "bold red", "unknown": "yellow"}[
            branch["verdict"]
        ]
        console.print(
            f"to endpoint {safe_markup(branch['address'])}: [{style}]{branch['verdict']}[/]"
        )
        _lines(console, branch["hops"], 1)


def render_text(document: dict[str, Any], stream: TextIO, color: bool | None = None) -> None:
    console = make_console(stream, color, soft_wrap=True)
    source, target, packet = document["from"], document["to"], document["packet"]
    console.print(
        f"needle trace {safe_markup(source['name'])} ({safe_markup(source['ip'])} on "
        f"{safe_markup(source['node'])}) -> {safe_markup(target['name'])} "
        f"({safe_markup(target['ip'])} on {safe_markup(target['node'])}): {packet['proto']}, "
        f"{packet['size']} bytes, {'DF' if packet['df'] else 'no DF'}"
    )
    _path_lines(console, document)
    back = document["return"]
    console.print(f"reply ({safe_markup(target['name'])} -> {safe_markup(source['name'])}):")
    _path_lines(console, back)
    verdict = document["verdict"]
    style = {"delivered": "green", "dropped": "bold red", "unknown": "yellow"}[verdict]
    console.print(
        f"[{style}]{verdict}[/]"
        f" (there: {document_verdict(document)}, back: {back['verdict']}); not modelled yet: "
        f"{', '.join(document['not_modelled'])}"
    )


def document_verdict(document: dict[str, Any]) -> str:
    branches = document.get("endpoints") or []
    if branches:
        verdicts = {branch["verdict"] for branch in branches}
        if verdicts == {"delivered"}:
            return "delivered"
        return "dropped" if "dropped" in verdicts else "unknown"
    failing = next((hop for hop in document["hops"] if hop["verdict"] != "pass"), None)
    if failing is None:
        return "delivered"
    return "dropped" if failing["verdict"] == "drop" else "unknown"
