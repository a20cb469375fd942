"""The Kubernetes side of the model: nodes, pods and flannel's net-conf from cluster/."""

from __future__ import annotations

import json
from typing import Any

from needle.analyzer.bundle.reader import Bundle
from needle.analyzer.model.entities import Model, NodeApi, Pod
from needle.analyzer.parsers.flannel import parse_flannel_net_conf

FLANNEL = "flannel.alpha.coreos.com/"


def _resource_items(bundle: Bundle, model: Model, resource: str) -> list[dict[str, Any]] | None:
    """The items of cluster/<resource>, or None (and a note in model.missing) when absent."""
    records = {r["resource"]: r for r in bundle.manifest["cluster"]["resources"]}
    record = records.get(resource)
    if record is None:
        model.missing[f"cluster.{resource}"] = "not collected"
        return None
    if record["status"] != "ok" or not record.get("file"):
        model.missing[f"cluster.{resource}"] = f"{record['status']}: {record.get('error')}"
        return None
    data = bundle.read_bytes(record["file"])
    if data is None:
        model.missing[f"cluster.{resource}"] = f"{record['file']} is missing from the bundle"
        return None
    try:
        document = json.loads(data)
    except ValueError as exc:
        model.missing[f"cluster.{resource}"] = f"{record['file']} is not JSON ({exc})"
        return None
    items = document.get("items") if isinstance(document, dict) else None
    if not isinstance(items, list):
        model.missing[f"cluster.{resource}"] = f"{record['file']} is not a List"
        return None
    return [item for item in items if isinstance(item, dict)]


def _str_dict(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items()}


def node_api(item: dict[str, Any]) -> NodeApi | None:
    meta = item.get("metadata") or {}
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        return None
    spec = item.get("spec") or {}
    status = item.get("status") or {}
    annotations = _str_dict(meta.get("annotations"))
    backend_data: dict[str, object] = {}
    raw_backend = annotations.get(f"{FLANNEL}backend-data")
    if raw_backend:
        try:
            parsed = json.loads(raw_backend)
            backend_data = parsed if isinstance(parsed, dict) else {}
        except ValueError:
            backend_data = {}
    internal = next(
        (
            a.get("address")
            for a in status.get("addresses") or []
            if isinstance(a, dict) and a.get("type") == "InternalIP"
        ),
        None,
    )
    ready = next(
        (
            c.get("status") == "True"
            for c in status.get("conditions") or []
            if isinstance(c, dict) and c.get("type") == "Ready"
        ),
        None,
    )
    pod_cidrs = spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else [])
    vtep = backend_data.get("VtepMAC")
    return NodeApi(
        name=name,
        pod_cidr=spec.get("podCIDR") or None,
        pod_cidrs=tuple(str(c) for c in pod_cidrs),
        internal_ip=internal,
        vtep_mac=str(vtep).lower() if vtep else None,
        backend_data=backend_data,
        public_ip=annotations.get(f"{FLANNEL}public-ip") or None,
        backend_type=annotations.get(f"{FLANNEL}backend-type") or None,
        labels=_str_dict(meta.get("labels")),
        annotations=annotations,
        ready=ready,
    )


def pod_of(item: dict[str, Any]) -> Pod | None:
    meta = item.get("metadata") or {}
    spec = item.get("spec") or {}
    status = item.get("status") or {}
    if not meta.get("name"):
        return None
    return Pod(
        namespace=str(meta.get("namespace") or "default"),
        name=str(meta["name"]),
        node=spec.get("nodeName"),
        ip=status.get("podIP"),
        host_network=bool(spec.get("hostNetwork")),
        phase=status.get("phase"),
    )


def load_cluster(bundle: Bundle, model: Model) -> tuple[list[NodeApi], list[Pod]]:
    nodes = [n for n in map(node_api, _resource_items(bundle, model, "nodes") or []) if n]
    pods = [p for p in map(pod_of, _resource_items(bundle, model, "pods") or []) if p]
    for configmap in _resource_items(bundle, model, "configmaps") or []:
        data = configmap.get("data") or {}
        if isinstance(data, dict) and isinstance(data.get("net-conf.json"), str):
            parsed = parse_flannel_net_conf(data["net-conf.json"].encode())
            if parsed.records:
                model.net_conf = parsed.records[0]
                break
    if model.net_conf is None and "cluster.configmaps" not in model.missing:
        model.missing["flannel.net-conf"] = "no config map with net-conf.json in the bundle"
    return nodes, pods
