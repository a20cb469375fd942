"""What one decoded capture holds: the records a pcap decodes into (docs/observations.md).

Plain dataclasses with slots, picklable (a forked worker sends them back) and turned into
JSON by `to_json()`. Addresses are dotted strings: they are made once per flow when a
decode finishes, never once per packet.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Any

PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp"}


def row_json(row: Any) -> dict[str, Any]:
    """A table row's fields as JSON: protocol numbers by name where they have one, and
    nested rows (a tunnel, a quoted packet) as their own JSON."""
    found: dict[str, Any] = {}
    for name in row.__dataclass_fields__:
        value = getattr(row, name)
        if name == "proto":
            value = PROTOCOLS.get(value, value)
        elif hasattr(value, "__dataclass_fields__"):
            value = row_json(value)
        found[name] = value
    return found


@dataclass(frozen=True, slots=True)
class TunnelKey:
    """A VXLAN tunnel as the outer headers show it: who to whom, on which port and VNI."""

    src: str
    dst: str
    port: int  # the outer UDP destination port
    vni: int

    def to_json(self) -> dict[str, Any]:
        return row_json(self)


@dataclass(slots=True)
class FlowCount:
    """An IPv4 flow (ports 0 for protocols without them) and how much of it was seen."""

    src: str
    dst: str
    proto: int
    sport: int
    dport: int
    packets: int
    bytes: int  # IPv4 total lengths, as sent (not as captured: the snap length cuts)
    tunnel: TunnelKey | None = None  # the VXLAN tunnel it was carried in, if any

    def to_json(self) -> dict[str, Any]:
        return row_json(self)


@dataclass(slots=True)
class TunnelCount:
    tunnel: TunnelKey
    packets: int
    bytes: int

    def to_json(self) -> dict[str, Any]:
        return {**self.tunnel.to_json(), "packets": self.packets, "bytes": self.bytes}


@dataclass(frozen=True, slots=True)
class QuotedPacket:
    """The start of the packet an ICMP error quotes: the one that could not go on."""

    src: str
    dst: str
    proto: int
    sport: int | None  # None when the quote stops before the ports
    dport: int | None

    def to_json(self) -> dict[str, Any]:
        return row_json(self)


@dataclass(slots=True)
class IcmpError:
    """ICMP destination unreachable seen in a capture: code 4 is "fragmentation needed"
    (`mtu` the next hop's MTU it reports), code 3 "port unreachable"."""

    sender: str  # who sent the ICMP error (a router, or the host that refused)
    to: str  # whom it was sent to: the quoted packet's sender
    code: int
    mtu: int | None  # next-hop MTU (code 4 only; 0 from routers older than RFC 1191)
    quoted: QuotedPacket
    packets: int
    first_ts: float
    tunnel: TunnelKey | None = None  # carried inside a VXLAN tunnel (pod traffic)

    @property
    def frag_needed(self) -> bool:
        return self.code == 4

    def to_json(self) -> dict[str, Any]:
        return {**row_json(self), "what": UNREACHABLE_CODES.get(self.code, f"code {self.code}")}


UNREACHABLE_CODES = {
    0: "net unreachable",
    1: "host unreachable",
    2: "protocol unreachable",
    3: "port unreachable",
    4: "fragmentation needed",
    9: "net administratively prohibited",
    10: "host administratively prohibited",
    13: "communication administratively prohibited",
}


@dataclass(slots=True)
class FragmentCount:
    """IPv4 fragments (MF set or a non-zero offset) of one src/dst/protocol."""

    src: str
    dst: str
    proto: int
    fragments: int
    tunnel: TunnelKey | None = None

    def to_json(self) -> dict[str, Any]:
        return row_json(self)


@dataclass(slots=True)
class RetransmissionCount:
    """TCP segments of one flow that carried data at a sequence number already seen."""

    src: str
    dst: str
    sport: int
    dport: int
    retransmissions: int
    tunnel: TunnelKey | None = None

    def to_json(self) -> dict[str, Any]:
        return row_json(self)


IDENTITY_SIZE = 8  # IP id (2) + UDP source port (2) + CRC-32 of the inner frame's start (4)


@dataclass(slots=True)
class PacketIdentities:
    """One compact identity per VXLAN packet, for finding the same packet in another
    node's capture, grouped by the outer (src, dst) addresses (8 bytes, as on the wire):
    the IP id, the UDP source port and a CRC-32 of the start of the inner frame, packed
    into IDENTITY_SIZE bytes, beside the packet's timestamp. None of these change
    between the two ends of an underlay without NAT. 16 bytes a packet: the 2,000,000
    packets of a 1,000-node bundle fit in 32 MB. The decoder (packets.py) fills it."""

    pairs: dict[bytes, tuple[bytearray, array[float]]] = field(default_factory=dict)
    count: int = 0

    def __len__(self) -> int:
        return self.count

    @staticmethod
    def split(packed: bytes | bytearray) -> list[bytes]:
        """The identities of one pair's packed run, in capture order."""
        data = bytes(packed)
        return [data[start : start + IDENTITY_SIZE] for start in range(0, len(data), IDENTITY_SIZE)]


@dataclass(slots=True)
class CaptureSummary:
    """Everything decoded from one capture file. `partial` says why it may be incomplete
    (decoding stopped there: the records before it are all counted); `capped` names the
    tables that stopped growing at their bound while decoding went on."""

    format: str | None = None  # "pcap" or "pcapng"; None when not even the header read
    link_type: int | None = None
    link_name: str | None = None
    snaplen: int | None = None
    packets: int = 0  # records read
    bytes: int = 0  # original lengths on the wire
    first_ts: float | None = None
    last_ts: float | None = None
    malformed: int = 0  # records too short or inconsistent to decode past some header
    not_ipv4: int = 0  # ARP, IPv6, LLDP, ...: counted, not decoded
    flows: list[FlowCount] = field(default_factory=list)
    tunnels: list[TunnelCount] = field(default_factory=list)
    inner_flows: list[FlowCount] = field(default_factory=list)
    icmp_errors: list[IcmpError] = field(default_factory=list)
    fragments: list[FragmentCount] = field(default_factory=list)
    retransmissions: list[RetransmissionCount] = field(default_factory=list)
    identities: PacketIdentities = field(default_factory=PacketIdentities)
    # the last timestamp up to which every VXLAN packet's identity was kept (identities
    # stop at their cap; correlation must not look past it)
    identities_until: float | None = None
    partial: str | None = None
    capped: list[str] = field(default_factory=list)

    @property
    def vxlan_packets(self) -> int:
        return sum(tunnel.packets for tunnel in self.tunnels)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "link_type": self.link_type,
            "link_name": self.link_name,
            "snaplen": self.snaplen,
            "packets": self.packets,
            "bytes": self.bytes,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "malformed": self.malformed,
            "not_ipv4": self.not_ipv4,
            "vxlan_packets": self.vxlan_packets,
            "identities": len(self.identities),
            "flows": [flow.to_json() for flow in self.flows],
            "tunnels": [tunnel.to_json() for tunnel in self.tunnels],
            "inner_flows": [flow.to_json() for flow in self.inner_flows],
            "icmp_errors": [error.to_json() for error in self.icmp_errors],
            "fragments": [count.to_json() for count in self.fragments],
            "retransmissions": [count.to_json() for count in self.retransmissions],
            "partial": self.partial,
            "capped": list(self.capped),
        }
