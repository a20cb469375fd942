"""One model of a bundle's network: nodes, namespaces, interfaces, veth pairs, routes,
neighbours, FDB, pods and podCIDRs, joined and indexed so rules are short predicates."""

from needle.analyzer.model.build import build_model
from needle.analyzer.model.entities import (
    Interface,
    Model,
    MtuHop,
    Namespace,
    Node,
    NodeApi,
    Pod,
)

__all__ = ["Interface", "Model", "MtuHop", "Namespace", "Node", "NodeApi", "Pod", "build_model"]
