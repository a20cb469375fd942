"""`needle show` views of what was observed: each probe and what came back, and the
flows each capture holds (decoded here: docs/observations.md). They read the bundle's
files, so they take the open bundle as well as the model."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from needle.analyzer.bundle.reader import Bundle
from needle.analyzer.model.entities import Model
from needle.analyzer.observe.captures import observe_captures
from needle.analyzer.observe.counters import counter_rows, node_counters
from needle.analyzer.observe.probes import probe_results
from needle.analyzer.observe.summary import PROTOCOLS

Row = dict[str, Any]


def probes_view(bundle: Bundle, model: Model, only: str | None) -> Iterator[Row]:
    for probe in probe_results(bundle, model):
        if only is not None and probe.node != only:
            continue
        yield {
            "node": probe.node,
            "from": probe.source if probe.source == "host" else f"pod {probe.netns}",
            "kind": probe.kind,
            "target": probe.target + (f":{probe.port}" if probe.port else ""),
            "peer": probe.peer_node,
            "bytes": probe.packet,
            "df": probe.df,
            "outcome": probe.outcome,
            "answered": None if probe.sent is None else f"{probe.received}/{probe.sent}",
            "rtt_ms": probe.rtt_avg_ms,
            "errors": "; ".join(dict.fromkeys(probe.errors)) or probe.why,
            "file": probe.file,
        }


def flows_view(bundle: Bundle, model: Model, only: str | None) -> Iterator[Row]:
    observed = observe_captures(bundle, model, workers=1)
    for record in observed.captures:
        if only is not None and record.node != only:
            continue
        summary = record.summary
        for layer, flows in (("outer", summary.flows), ("inner", summary.inner_flows)):
            for flow in flows:
                tunnel = flow.tunnel
                yield {
                    "node": record.node,
                    "interface": record.interface,
                    "layer": layer,
                    "src": flow.src,
                    "dst": flow.dst,
                    "proto": PROTOCOLS.get(flow.proto, flow.proto),
                    "sport": flow.sport or None,
                    "dport": flow.dport or None,
                    "vni": tunnel.vni if tunnel is not None else None,
                    "packets": flow.packets,
                    "bytes": flow.bytes,
                    "file": record.file,
                }


def counters_view(bundle: Bundle, model: Model, only: str | None) -> Iterator[Row]:
    for name in sorted(model.nodes):
        if only is not None and name != only:
            continue
        found = node_counters(bundle, model.nodes[name])
        if found is not None:
            yield from counter_rows(found)


BUNDLE_VIEWS: dict[str, Callable[[Bundle, Model, str | None], Iterator[Row]]] = {
    "probes": probes_view,
    "flows": flows_view,
    "counters": counters_view,
}
