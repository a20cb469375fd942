"""An observation: something the captures show happened, with the numbers and the
files that show it (docs/observations.md). Findings cite them as evidence with
`"source": "capture"`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SOURCE = "capture"

# the kinds correlate.py makes, most severe first (the order reports list them in)
KINDS = (
    "underlay-loss",
    "no-listener",
    "vni-mismatch",
    "unknown-destination",
    "frag-needed",
    "unreachable",
    "underlay-unverified",
    "retransmissions",
    "fragments",
)


@dataclass(slots=True)
class Observation:
    kind: str  # one of KINDS
    node: str  # the node whose capture shows it (for loss: the sender)
    peer_node: str | None  # the other node, when the packets name one
    message: str  # one sentence naming the nodes, addresses and numbers
    counts: dict[str, int] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    evidence: list[dict[str, str]] = field(default_factory=list)  # {"file", "detail"}

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "source": SOURCE,
            "node": self.node,
            "peer_node": self.peer_node,
            "message": self.message,
            "counts": dict(self.counts),
            "details": self.details,
            "evidence": [{**item, "source": SOURCE} for item in self.evidence],
        }


def sort_key(observation: Observation) -> tuple[int, str, str]:
    rank = KINDS.index(observation.kind) if observation.kind in KINDS else len(KINDS)
    return rank, observation.node, observation.peer_node or ""
