"""Builds the model of a whole bundle: the API view, every node's data plane, the joins
between them, and the indexes rules look things up in."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from needle.analyzer.bundle.reader import Bundle
from needle.analyzer.gcpause import paused_gc
from needle.analyzer.model.dataplane import (
    SOURCES,
    NodeOutputs,
    ParseCache,
    fill_host_extras,
    fill_namespace,
)
from needle.analyzer.model.entities import (
    HOST,
    Model,
    Namespace,
    Node,
    Pod,
    normalize_cidr,
)
from needle.analyzer.model.kube import load_cluster
from needle.analyzer.model.veths import resolve_veths

if TYPE_CHECKING:
    from needle.analyzer.backends import Backend


def _load_node(
    bundle: Bundle,
    record: dict[str, Any],
    node: Node,
    pod_details: bool,
    model: Model,
    cache: ParseCache | None,
) -> None:
    node.collected = record["status"] != "failed"
    node.status = record["status"]
    node.errors = list(record.get("errors", []))
    node.captures = list(record.get("captures", []))
    probes = record.get("probes")
    node.probes = probes if isinstance(probes, dict) else None
    outputs = NodeOutputs(bundle, record, cache)
    for what in SOURCES:
        path = outputs.path_of(HOST, what)
        if path is not None:
            node.outputs[what] = path
    for (netns, command_id, interface), found in outputs.index.items():
        if netns == HOST and command_id in ("ethtool-k", "ethtool-i", "ethtool") and interface:
            node.outputs[f"{command_id}:{interface}"] = found[0][0]
        elif netns == HOST and command_id == "uname":
            node.outputs["uname"] = found[0][0]
        elif command_id.endswith((".start", ".end")) and interface is None:
            ok = [path for path, fine in found if fine]
            if ok:  # read at both ends of the capture window (observe/counters.py)
                node.counters[(netns, command_id)] = ok[0]
    host = Namespace(node=node.name, id=HOST, dir=f"{record['dir']}/host")
    # routes, neighbours and FDB: read when a rule or view first asks for this node's
    fill_namespace(host, outputs, details="lazy")
    node.host = host
    fill_host_extras(node, outputs)
    node.load_pod_side = PodSideLoader(outputs, tuple(record.get("netns", [])), pod_details, model)


class PodSideLoader:
    """A node's pod namespaces, its veth pairs and its pods' joins to them: 99% of a
    node's files, so a model can leave them to the process that checks the node."""

    def __init__(
        self,
        outputs: NodeOutputs,
        netns: tuple[dict[str, Any], ...],
        pod_details: bool,
        model: Model,
    ) -> None:
        self.outputs, self.netns, self.pod_details, self.model = outputs, netns, pod_details, model

    def __call__(self, node: Node) -> None:
        with paused_gc():  # 10^2 namespaces of new objects a node, none of them garbage
            self._load(node)

    def _load(self, node: Node) -> None:
        for ns_record in self.netns:
            namespace = Namespace(
                node=node.name,
                id=ns_record["id"],
                dir=ns_record["dir"],
                inode=ns_record.get("inode"),
                nsid=ns_record.get("nsid"),
                name=ns_record.get("name"),
                pids=list(ns_record.get("pids", [])),
            )
            fill_namespace(namespace, self.outputs, details="lazy" if self.pod_details else "never")
            node.pods_netns[namespace.id] = namespace
        resolve_veths(node)
        _join_pods(self.model, node)


def _join_pods(model: Model, node: Node) -> None:
    """Each pod to the namespace holding its IP. Where two namespaces hold one address
    (an IPAM that lost its allocations hands it out again) and the API lists as many pods
    with it, each pod gets one of them, in order: nothing in a bundle says which is whose,
    and what the data plane does with the address is the same either way."""
    by_ip: dict[str, list[tuple[Namespace, Any]]] = {}
    for namespace in node.pods_netns.values():
        for interface in namespace.interfaces.values():
            for ip in interface.ipv4:
                by_ip.setdefault(ip, []).append((namespace, interface))
    for pod in model.pods_by_node.get(node.name, []):
        holders = by_ip.get(pod.ip or "") if not pod.host_network else None
        if not holders:
            continue
        namespace, interface = next(
            ((ns, i) for ns, i in holders if ns.pod is None or ns.pod is pod), holders[-1]
        )
        pod.netns, pod.eth0 = namespace, interface
        pod.host_veth = interface.peer
        namespace.pod = pod


def _index(model: Model, backend: Backend) -> None:
    for node in model.nodes.values():
        if node.api and node.api.pod_cidr:
            model.node_by_pod_cidr[node.api.pod_cidr] = node
        host = node.host
        if host is None:
            continue
        vxlan = backend.overlay_interface(node)
        if vxlan is not None and vxlan.mac:
            model.node_by_vtep_mac[vxlan.mac.lower()] = node
        if vxlan is not None and vxlan.link.vxlan and vxlan.link.vxlan.local:
            model.node_by_underlay_ip[vxlan.link.vxlan.local] = node
    for pod in model.pods:
        if pod.ip:
            model.pods_by_ip.setdefault(pod.ip, []).append(pod)


def build_model(
    bundle: Bundle,
    pod_details: bool = True,
    lazy_nodes: bool = False,
    cache: ParseCache | None = None,
    backend: str | None = None,
) -> Model:
    """The model of `bundle`. Routes, neighbours and FDB entries are read when first used
    (keep the bundle open until then); `pod_details=False` leaves pod namespaces' routes
    and neighbours out altogether. With `lazy_nodes`, each node's pod side (namespaces,
    veths, pod joins) waits for `Model.load_nodes()`. A `cache` shared with
    another bundle's build parses identical files once. The data plane is detected from
    the bundle (backends/detection.py) unless `backend` names it (--backend)."""
    # the backends read the model's entities (and its JSON reading): imported here,
    # once both packages are loaded
    from needle.analyzer.backends.detection import detect

    with paused_gc():
        model = _build(bundle, pod_details, cache)
        model.dataplane = detect(model, backend)
        _index(model, model.dataplane.backend)
        if not lazy_nodes:
            model.load_nodes()
        return model


def _build(bundle: Bundle, pod_details: bool, cache: ParseCache | None) -> Model:
    manifest = bundle.manifest
    model = Model(created=manifest.get("created"), bundle_status=manifest.get("status"))
    apis, pods = load_cluster(bundle, model)
    for api in apis:
        model.nodes[api.name] = Node(name=api.name, api=api)
    model.pods = pods
    for pod in pods:
        if pod.node:
            model.pods_by_node.setdefault(pod.node, []).append(pod)
    for record in manifest["nodes"]:
        node = model.nodes.setdefault(record["name"], Node(name=record["name"]))
        _load_node(bundle, record, node, pod_details, model, cache)
    return model


__all__ = ["ParseCache", "Pod", "build_model", "normalize_cidr"]
