"""The Services a node's pods back, from the node's kube-proxy rules: each pod that is an
endpoint of a Service port is checked sending to that Service (the hairpin: kube-proxy's
DNAT may send the packet back to the pod it came from, through the bridge port it came in
by)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from needle.analyzer.model.entities import Node
from needle.analyzer.netfilter.save import parse_rule
from needle.analyzer.netfilter.services import ENDPOINT_CHAIN, services

_DESTINATION = re.compile(r"--to-destination\s+(\d{1,3}(?:\.\d{1,3}){3})(?::\d+)?")


@dataclass(frozen=True)
class Backed:
    """A pod of the node that backs a Service port."""

    pod_ip: str
    service: str  # ns/name:port
    ip: str  # the ClusterIP
    proto: str
    port: int


def backed(node: Node) -> list[Backed]:
    """Every (endpoint address, Service port) of the node's kube-proxy rules whose
    endpoint is an address; the caller keeps those of its own pods."""
    ruleset = node.netfilter
    if ruleset is None:
        return []
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
                match = _DESTINATION.search(rule)
                if match is not None:
                    found.append(
                        Backed(
                            match.group(1), service.name, service.ip, service.proto, service.port
                        )
                    )
    return found
