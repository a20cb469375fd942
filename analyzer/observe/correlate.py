"""Joining the nodes' decoded captures into observations: delivery between nodes judged
by matching packets across their captures (delivery.py), and what the packets say on
their own (packet_checks.py)."""

from __future__ import annotations

import socket

from needle.analyzer.observe.delivery import PairDelivery, judge_delivery
from needle.analyzer.observe.inputs import CorrelationSettings, NodeCaptures
from needle.analyzer.observe.observation import Observation, sort_key
from needle.analyzer.observe.packet_checks import icmp_errors, repeats, tunnel_checks


def correlate(
    nodes: list[NodeCaptures], settings: CorrelationSettings | None = None
) -> tuple[list[Observation], list[PairDelivery]]:
    """Observations across `nodes`' captures, most severe first, and the per-pair
    delivery table the loss observations were judged on."""
    settings = settings or CorrelationSettings()
    owner = {ip: node.name for node in nodes for ip in node.underlay_ips}
    packed_owner = {
        packed: name for ip, name in owner.items() if (packed := _packed_ipv4(ip)) is not None
    }
    by_name = {node.name: node for node in nodes}
    observations, deliveries = judge_delivery(nodes, packed_owner, settings)
    observations += tunnel_checks(nodes, owner, by_name)
    observations += icmp_errors(nodes, owner)
    observations += repeats(nodes, owner, settings)
    observations.sort(key=sort_key)
    return observations, deliveries


def _packed_ipv4(text: str) -> bytes | None:
    """The 4 bytes of a dotted IPv4 address; None for anything else (IPv6, junk)."""
    if text.count(".") != 3:
        return None
    try:
        return socket.inet_aton(text)
    except OSError:
        return None
