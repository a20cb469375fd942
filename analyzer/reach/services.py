"""The Services a node's pods back, from the node's kube-proxy rules: each pod that is an
endpoint of a Service port is checked sending to that Service (the hairpin: kube-proxy's
DNAT may send the packet back to the pod it came from, through the bridge port it came in
by)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from needle.analyzer.model.entities import Node
from needle.analyzer.netfilter.services import ENDPOINT_CHAIN, parse_rule, services

_DESTINATION = re.compile(r"--to-destination\s+(\d{1,3}(?:\.\d{1,3}){3})(?::\d+)?")


@functools.lru_cache(maxsize=1 << 18)
def _destination(rule: str) -> str | None:
    """The address a KUBE-SEP rule DNATs to (each distinct line read once a run)."""
    match = _DESTINATION.search(rule)
    return match.group(1) if match is not None else None


@dataclass(frozen=True)
class Backed:
    """A pod of the node that backs a Service port."""

    pod_ip: str
    service: str  # ns/name:port
    ip: str  # the ClusterIP
    proto: str
    port: int


# kube-proxy writes the same Services on every node: read once a run per distinct set
_READ: dict[tuple[tuple[str, ...], tuple[str, ...]], list[Backed]] = {}


def backed(node: Node) -> list[Backed]:
    """Every (endpoint address, Service port) of the node's kube-proxy rules whose
    endpoint is an address; the caller keeps those of its own pods."""
    ruleset = node.netfilter
    if ruleset is None:
        return []
    # the portals and the chain names say which Services and endpoints the rules hold
    key = (
        tuple(ruleset.lines("nat", "KUBE-SERVICES")),  # type: ignore[attr-defined]
        tuple(sorted(ruleset.policies("nat"))),  # type: ignore[attr-defined]
    )
    if key not in _READ:
        if len(_READ) > 64:
            _READ.clear()
        _READ[key] = _read(ruleset)
    return _READ[key]


def _read(ruleset: object) -> list[Backed]:
    found: list[Backed] = []
    for service in services(ruleset).values():  # type: ignore[arg-type]
        if service.chain is None:
            continue
        for line in ruleset.lines("nat", service.chain):  # type: ignore[attr-defined]
            jump = parse_rule(line)
            target = jump.target if jump is not None else None
            if not target or not target.startswith(ENDPOINT_CHAIN):
                continue
            for rule in ruleset.lines("nat", target):  # type: ignore[attr-defined]
                address = _destination(rule)
                if address is not None:
                    found.append(
                        Backed(address, service.name, service.ip, service.proto, service.port)
                    )
    return found
