"""The Kubernetes side of the model: nodes, pods and flannel's net-conf from cluster/.

Every object is validated once against the typed models of kube_objects; an invalid
field becomes a problem in `Model.objects_invalid` (the report's
`coverage.objects_invalid`) and the rest is read."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from needle.analyzer.bundle.reader import Bundle
from needle.analyzer.model.entities import Model, NodeApi, Pod
from needle.analyzer.model.kube_objects import (
    BACKEND_DATA,
    FLANNEL,
    BackendData,
    ConfigMapObject,
    NetConf,
    NodeObject,
    ObjectProblem,
    PodObject,
    load_json,
    validate,
)
from needle.analyzer.parsers.flannel import parse_flannel_net_conf

T = TypeVar("T")

NET_CONF = "net-conf.json"


def _resource_items(bundle: Bundle, model: Model, resource: str) -> tuple[list[Any], str] | None:
    """The items of cluster/<resource> and its file, or None (and a note in
    model.missing) when absent."""
    records = {r["resource"]: r for r in bundle.manifest["cluster"]["resources"]}
    record = records.get(resource)
    if record is None:
        model.missing[f"cluster.{resource}"] = "not collected"
        return None
    if record["status"] != "ok" or not record.get("file"):
        model.missing[f"cluster.{resource}"] = f"{record['status']}: {record.get('error')}"
        return None
    data = bundle.read_records(record["file"])
    if data is None:
        model.missing[f"cluster.{resource}"] = f"{record['file']} is missing from the bundle"
        return None
    document, why = load_json(data, whole_file=True)
    if why is not None:
        model.missing[f"cluster.{resource}"] = f"{record['file']} {why}"
        return None
    items = document.get("items") if isinstance(document, dict) else None
    if not isinstance(items, list):
        model.missing[f"cluster.{resource}"] = f"{record['file']} is not a List"
        return None
    return items, str(record["file"])


def _name_of(item: Any, index: int, file: str) -> str:
    """How a problem names an object: namespace/name when it has them, else its index."""
    meta = item.get("metadata") if isinstance(item, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    namespace = meta.get("namespace") if isinstance(meta, dict) else None
    if isinstance(name, str) and name:
        return f"{namespace}/{name}" if isinstance(namespace, str) and namespace else name
    return f"items[{index}]"


def _backend_data(
    annotations: dict[str, str], name: str, file: str, problems: list[ObjectProblem]
) -> tuple[dict[str, object], str | None]:
    raw = annotations.get(BACKEND_DATA)
    if not raw:
        return {}, None
    field = f"metadata.annotations[{BACKEND_DATA}]"
    parsed, why = load_json(raw)
    if why is not None:
        problems.append(ObjectProblem("Node", name, field, why, file))
        return {}, None
    if parsed is None:  # "null": what flanneld writes for backends with no data (host-gw)
        return {}, None
    typed, found = validate(BackendData, parsed, "Node", name, file, prefix=field)
    problems.extend(found)
    if typed is None:
        return {}, None
    return parsed if isinstance(parsed, dict) else {}, typed.VtepMAC


def node_api(
    item: Any, index: int = 0, file: str = "", problems: list[ObjectProblem] | None = None
) -> NodeApi | None:
    problems = [] if problems is None else problems
    name = _name_of(item, index, file)
    typed, found = validate(NodeObject, item, "Node", name, file)
    problems.extend(found)
    if typed is None:
        return None
    meta = typed.metadata
    if meta is None or not meta.name:
        if not found:  # a name of the wrong type is already said
            problems.append(ObjectProblem("Node", name, "metadata.name", "is missing", file))
        return None
    spec, status = typed.spec, typed.status
    annotations = dict(meta.annotations or {})
    backend_data, vtep = _backend_data(annotations, meta.name, file, problems)
    addresses = (status.addresses if status else None) or []
    conditions = (status.conditions if status else None) or []
    internal = next((a.address for a in addresses if a.type == "InternalIP"), None)
    ready = next((c.status == "True" for c in conditions if c.type == "Ready"), None)
    pod_cidr = (spec.podCIDR if spec else None) or None
    pod_cidrs = (spec.podCIDRs if spec else None) or ([pod_cidr] if pod_cidr else [])
    return NodeApi(
        name=meta.name,
        pod_cidr=pod_cidr,
        pod_cidrs=tuple(pod_cidrs),
        internal_ip=internal,
        vtep_mac=vtep.lower() if vtep else None,
        backend_data=backend_data,
        public_ip=annotations.get(f"{FLANNEL}public-ip") or None,
        backend_type=annotations.get(f"{FLANNEL}backend-type") or None,
        labels=dict(meta.labels or {}),
        annotations=annotations,
        ready=ready,
    )


def pod_of(
    item: Any, index: int = 0, file: str = "", problems: list[ObjectProblem] | None = None
) -> Pod | None:
    problems = [] if problems is None else problems
    name = _name_of(item, index, file)
    typed, found = validate(PodObject, item, "Pod", name, file)
    problems.extend(found)
    if typed is None:
        return None
    meta = typed.metadata
    if meta is None or not meta.name:
        if not found:  # a name of the wrong type is already said
            problems.append(ObjectProblem("Pod", name, "metadata.name", "is missing", file))
        return None
    spec, status = typed.spec, typed.status
    return Pod(
        namespace=meta.namespace or "default",
        name=meta.name,
        node=(spec.nodeName if spec else None) or None,
        ip=(status.podIP if status else None) or None,
        host_network=bool(spec.hostNetwork) if spec else False,
        phase=status.phase if status else None,
    )


def _net_conf(item: Any, index: int, file: str, problems: list[ObjectProblem]) -> bytes | None:
    """The net-conf.json of a config map holding one, its problems noted."""
    name = _name_of(item, index, file)
    typed, found = validate(ConfigMapObject, item, "ConfigMap", name, file)
    problems.extend(found)
    text = (typed.data or {}).get(NET_CONF) if typed is not None else None
    if text is None:
        return None
    field = f"data[{NET_CONF}]"
    parsed, why = load_json(text)
    if why is not None:
        problems.append(ObjectProblem("ConfigMap", name, field, why, file))
        return None
    _, found = validate(NetConf, parsed, "ConfigMap", name, file, prefix=field)
    problems.extend(found)
    return text.encode()


def _first_of_each(
    built: Iterable[T | None],
    key: Callable[[T], str],
    kind: str,
    file: str,
    problems: list[ObjectProblem],
) -> list[T]:
    """The objects in list order, each name once: a repeat is a problem, not an overwrite."""
    kept: list[T] = []
    seen: set[str] = set()
    for thing in built:
        if thing is None:
            continue
        name = key(thing)
        if name in seen:
            problems.append(
                ObjectProblem(
                    kind, name, "metadata.name", f"names a {kind.lower()} listed before", file
                )
            )
            continue
        seen.add(name)
        kept.append(thing)
    return kept


def load_cluster(bundle: Bundle, model: Model) -> tuple[list[NodeApi], list[Pod]]:
    problems = model.objects_invalid
    nodes: list[NodeApi] = []
    pods: list[Pod] = []
    found = _resource_items(bundle, model, "nodes")
    if found is not None:
        items, file = found
        built = (node_api(item, index, file, problems) for index, item in enumerate(items))
        nodes = _first_of_each(built, lambda api: api.name, "Node", file, problems)
    found = _resource_items(bundle, model, "pods")
    if found is not None:
        items, file = found
        made = (pod_of(item, index, file, problems) for index, item in enumerate(items))
        pods = _first_of_each(made, lambda pod: pod.ref, "Pod", file, problems)
    found = _resource_items(bundle, model, "configmaps")
    for index, item in enumerate(found[0] if found else []):
        text = _net_conf(item, index, found[1] if found else "", problems)
        if text is not None:
            parsed = parse_flannel_net_conf(text)
            if parsed.records:
                model.net_conf = parsed.records[0]
                model.net_conf_origin = (found[1], _name_of(item, index, found[1]))
                break
    if model.net_conf is None and "cluster.configmaps" not in model.missing:
        unread = any(p.kind == "ConfigMap" and NET_CONF in p.field for p in problems)
        model.missing["flannel.net-conf"] = (
            f"{NET_CONF} is invalid (see coverage.objects_invalid)"
            if unread
            else f"no config map with {NET_CONF} in the bundle"
        )
    return nodes, pods
