"""Cluster objects from the API, stored as List JSON the way `kubectl get -o json` prints it.

Lists are read page by page (limit/continue) and written to the bundle as they arrive,
so 10,000 pods never sit in memory at once. The server's JSON is kept as sent, with
`apiVersion` and `kind` put back on every item (a List response leaves them out).
Config maps and daemonsets are filtered by `selection.keeps`: only networking ones are
stored, and Secrets are never read at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from kubernetes import client
from needle.collector.bundle.manifest import ResourceRecord
from needle.collector.bundle.writer import BundleWriter
from needle.collector.kube.calls import KubeCallError, KubeCalls
from needle.collector.kube.client import Cluster
from needle.collector.kube.selection import keeps

PAGE_SIZE = 500
ListCall = Callable[..., Any]


@dataclass(frozen=True)
class ResourceList:
    resource: str
    """The bundle's name for it: cluster/<resource>.json."""
    kind: str
    api_version: str
    call: Callable[[client.ApiClient], ListCall]


RESOURCES = (
    ResourceList("nodes", "Node", "v1", lambda api: client.CoreV1Api(api).list_node),
    ResourceList(
        "pods", "Pod", "v1", lambda api: client.CoreV1Api(api).list_pod_for_all_namespaces
    ),
    ResourceList(
        "configmaps",
        "ConfigMap",
        "v1",
        lambda api: client.CoreV1Api(api).list_config_map_for_all_namespaces,
    ),
    ResourceList(
        "daemonsets",
        "DaemonSet",
        "apps/v1",
        lambda api: client.AppsV1Api(api).list_daemon_set_for_all_namespaces,
    ),
)


@dataclass
class NodeInfo:
    """What node selection needs to know about a node."""

    name: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class ObjectsResult:
    nodes: list[NodeInfo] | None = None
    """Every node, or None when nodes could not be listed."""


class _Expired(Exception):
    """The continue token expired (HTTP 410) before the last page."""


def pages(
    calls: KubeCalls, what: str, list_call: ListCall, **params: Any
) -> Iterator[dict[str, Any]]:
    """Each page of a List as the server sent it (parsed JSON), following `continue`."""
    token: str | None = None
    while True:
        extra = {"_continue": token} if token else {}
        page = calls.call(what, list_call, limit=PAGE_SIZE, **params, **extra).object("a list page")
        yield page
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return


def _write_items(
    out: IO[bytes],
    calls: KubeCalls,
    spec: ResourceList,
    call: ListCall,
    on_item: Callable[[dict[str, Any]], None],
) -> int:
    out.write(b'{"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},\n')
    out.write(b' "items": [')
    count = 0
    try:
        for page in pages(calls, f"list {spec.resource}", call):
            for item in page.get("items") or []:
                name = str((item.get("metadata") or {}).get("name") or "")
                if not keeps(spec.kind, name):
                    continue
                whole = {"apiVersion": spec.api_version, "kind": spec.kind, **item}
                on_item(whole)
                out.write(b",\n  " if count else b"\n  ")
                out.write(json.dumps(whole, separators=(",", ":")).encode())
                count += 1
    except KubeCallError as exc:
        if exc.status == 410 and count:
            raise _Expired from exc
        raise
    out.write(b"\n ]\n}\n")
    return count


def _list_one(
    cluster: Cluster, writer: BundleWriter, spec: ResourceList, on_item: Callable[[Any], None]
) -> ResourceRecord:
    relpath = f"cluster/{spec.resource}.json"
    call = spec.call(cluster.api)
    error: ResourceRecord | None = None
    for _attempt in range(2):  # a list whose continue token expired is read once more
        try:
            with writer.open(relpath) as out:
                count = _write_items(out, cluster.calls, spec, call, on_item)
            return ResourceRecord(spec.resource, "ok", relpath, count)
        except _Expired:
            error = ResourceRecord(
                spec.resource, "error", None, None, "the list changed too fast to page through"
            )
        except KubeCallError as exc:
            if exc.status is None:
                text = f"reading the list failed: {exc}"
                error = ResourceRecord(spec.resource, "error", None, None, text)
                break
            status = {403: "forbidden", 404: "not-found"}.get(exc.status, "error")
            error = ResourceRecord(spec.resource, status, None, None, str(exc))  # type: ignore[arg-type]
            break
        except ValueError as exc:  # not JSON: a proxy's error page, a cut response
            text = f"the server sent something that is not JSON ({exc})"
            error = ResourceRecord(spec.resource, "error", None, None, text)
            break
    writer.path_of(relpath).unlink(missing_ok=True)
    assert error is not None
    return error


def collect_objects(cluster: Cluster, writer: BundleWriter) -> ObjectsResult:
    """Write cluster/<resource>.json for each resource; a failure is recorded, never raised."""
    result = ObjectsResult()
    # by name: a list read twice (expired continue token) must not count a node twice
    nodes: dict[str, NodeInfo] = {}

    def remember_node(item: dict[str, Any]) -> None:
        meta = item.get("metadata") or {}
        name = str(meta.get("name"))
        nodes[name] = NodeInfo(name, dict(meta.get("labels") or {}))

    for spec in RESOURCES:
        on_item = remember_node if spec.resource == "nodes" else _ignore
        record = _list_one(cluster, writer, spec, on_item)
        writer.add_resource(record)
        if spec.resource == "nodes" and record.status == "ok":
            result.nodes = list(nodes.values())
    return result


def _ignore(_item: Any) -> None:
    pass
