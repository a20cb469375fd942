"""What FROM and TO of `needle trace` name: a pod (`namespace/name`, or a name only one
pod has), a node (its host namespace), an IPv4 address of either, or (TO only) a Service
ClusterIP that the source node's kube-proxy rules name for the packet's protocol and port."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from needle.analyzer.errors import AnalyzerError
from needle.analyzer.model.entities import Model, Namespace, Node
from needle.analyzer.netfilter.services import services
from needle.analyzer.terminal import did_you_mean


@dataclass(frozen=True)
class Endpoint:
    kind: str  # "pod", "node" or "service"
    name: str  # namespace/name of a pod, the node's name, or a Service's ns/name:port
    node: str
    ip: str
    namespace: Namespace | None  # None: the bundle holds no namespace for it

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "name": self.name,
            "node": self.node,
            "ip": self.ip,
            "netns": _netns_label(self.namespace),
        }


def _netns_label(namespace: Namespace | None) -> str | None:
    if namespace is None:
        return None
    return "host" if namespace.is_host else (namespace.name or namespace.id)


def _node_ip(node: Node) -> str | None:
    api = node.api
    return (api.internal_ip or api.public_ip) if api is not None else None


def _of_node(model: Model, node: Node) -> Endpoint:
    ip = _node_ip(node)
    if ip is None:
        raise AnalyzerError(f"node {node.name} has no address in the bundle")
    return Endpoint("node", node.name, node.name, ip, node.host)


def _of_pod(model: Model, ref: str) -> Endpoint:
    pod = next(p for p in model.pods if p.ref == ref)
    if not pod.node or not pod.ip:
        raise AnalyzerError(f"pod {ref} has no node or no IP in the bundle")
    node = model.nodes.get(pod.node)
    if node is not None:
        node.ensure_pod_side()
    if pod.host_network:
        return Endpoint("pod", ref, pod.node, pod.ip, node.host if node else None)
    return Endpoint("pod", ref, pod.node, pod.ip, pod.netns)


def resolve(
    model: Model,
    text: str,
    *,
    source: Endpoint | None = None,
    proto: str = "icmp",
    port: int | None = None,
) -> Endpoint:
    """The endpoint `text` names, or a one-line AnalyzerError that says what exists.
    `source`: the packet's sender, when `text` is its destination (a ClusterIP is looked
    up in the sender node's kube-proxy rules)."""
    refs = {pod.ref for pod in model.pods}
    if text in refs:
        return _of_pod(model, text)
    if text in model.nodes:
        return _of_node(model, model.nodes[text])
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        named = [pod.ref for pod in model.pods if pod.name == text]
        if len(named) == 1:
            return _of_pod(model, named[0])
        if len(named) > 1:
            raise AnalyzerError(
                f"{text!r} names {len(named)} pods ({', '.join(sorted(named)[:4])}): "
                "give namespace/name"
            ) from None
        hint = did_you_mean(text, sorted(refs | set(model.nodes)))
        raise AnalyzerError(
            f"{text!r} is no pod, node or IPv4 address in the bundle"
            + (f"; {hint}" if hint else "")
        ) from None
    pods = [p for p in model.pods_by_ip.get(text, []) if not p.host_network]
    if pods:
        return _of_pod(model, pods[0].ref)
    for node in model.nodes.values():
        api = node.api
        if api is not None and text in (api.internal_ip, api.public_ip):
            return _of_node(model, node)
    if source is None:
        raise AnalyzerError(
            f"{text} is no pod or node IP in the bundle (a Service ClusterIP can only be TO)"
        )
    return _of_service(model, text, source, proto, port)


def _of_service(model: Model, ip: str, source: Endpoint, proto: str, port: int | None) -> Endpoint:
    node = model.nodes.get(source.node)
    ruleset = node.netfilter if node is not None and "netfilter" in node.present else None
    known = services(ruleset) if ruleset is not None else {}  # type: ignore[arg-type]
    found = known.get((ip, proto, port or 0))
    if found is not None:
        return Endpoint("service", found.name, source.node, ip, None)
    here = sorted(f"{p}/{n} ({known[(i, p, n)].name})" for i, p, n in known if i == ip)
    if here:
        raise AnalyzerError(
            f"{ip} is a Service ClusterIP on {source.node} for {', '.join(here[:4])}: "
            "give --proto and --port of one of them"
        )
    raise AnalyzerError(
        f"{ip} is no pod or node IP in the bundle, and {source.node}'s kube-proxy rules "
        f"(iptables-save) name no Service at {ip}:{port or '?'}/{proto}"
    )
