"""Observed evidence from a bundle's captures: the pcaps decoded (pcap.py) and joined
across nodes (correlate.py) into observations (docs/observations.md)."""

from needle.analyzer.observe.captures import (
    CaptureObservations,
    listeners_of,
    observe_captures,
    underlay_ips_of,
)
from needle.analyzer.observe.correlate import correlate
from needle.analyzer.observe.delivery import PairDelivery
from needle.analyzer.observe.inputs import (
    CaptureRecord,
    CorrelationSettings,
    Listener,
    NodeCaptures,
)
from needle.analyzer.observe.observation import Observation
from needle.analyzer.observe.packets import DecodeLimits
from needle.analyzer.observe.pcap import DEFAULT_VXLAN_PORTS, decode_capture
from needle.analyzer.observe.summary import CaptureSummary

__all__ = [
    "DEFAULT_VXLAN_PORTS",
    "CaptureObservations",
    "CaptureRecord",
    "CaptureSummary",
    "CorrelationSettings",
    "DecodeLimits",
    "Listener",
    "NodeCaptures",
    "Observation",
    "PairDelivery",
    "correlate",
    "decode_capture",
    "listeners_of",
    "observe_captures",
    "underlay_ips_of",
]
