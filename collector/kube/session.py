"""One collection from a live cluster: connect, read the objects, pick the nodes, make a
pod target per node, and in the end delete every pod the run made.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from kubernetes import client
from needle.collector.bundle.writer import BundleWriter
from needle.collector.errors import CollectorError
from needle.collector.kube import debug_pod
from needle.collector.kube.calls import KubeCallError
from needle.collector.kube.client import Cluster, connect
from needle.collector.kube.objects import NodeInfo, ObjectsResult, collect_objects
from needle.collector.kube.pods import PodApi
from needle.collector.progress import Progress
from needle.collector.transports.pod import PodTarget, PodTiming

OS_LABEL = "kubernetes.io/os"


@dataclass
class ClusterOptions:
    kubeconfig: Path | None = None
    context: str | None = None
    nodes: list[str] | None = None
    selector: str | None = None
    image: str = debug_pod.DEFAULT_IMAGE
    namespace: str = debug_pod.DEFAULT_NAMESPACE
    timing: PodTiming = field(default_factory=PodTiming)


@contextlib.contextmanager
def sigint_deferred(progress: Progress) -> Iterator[None]:
    """While pods are being deleted, a second Ctrl-C must not leave them behind: it only
    says to wait. (Signal handlers belong to the main thread; elsewhere nothing changes.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def note(_signum: int, _frame: FrameType | None) -> None:
        progress.note("deleting the debug pods first; this takes a few seconds")

    previous = signal.signal(signal.SIGINT, note)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class ClusterSession:
    """Owns the API connection and the pods of one run."""

    def __init__(self, options: ClusterOptions, cluster: Cluster, progress: Progress) -> None:
        self.options = options
        self.cluster = cluster
        self.progress = progress
        self.run_id = debug_pod.new_run_id()
        self.pods = PodApi(cluster, debug_pod.check_namespace(options.namespace))
        self._closed = False

    @classmethod
    def open(cls, options: ClusterOptions, progress: Progress, pool_size: int) -> ClusterSession:
        debug_pod.check_namespace(options.namespace)
        if options.nodes is not None and options.selector is not None:
            raise CollectorError("give --nodes or -l/--selector, not both")
        return cls(options, connect(options.kubeconfig, options.context, pool_size), progress)

    @property
    def run_selector(self) -> str:
        return f"{debug_pod.RUN_LABEL}={self.run_id}"

    def collect_objects(self, writer: BundleWriter) -> ObjectsResult:
        manifest = writer.manifest
        manifest.cluster_source = "kube-api"
        manifest.cluster_origin = self.cluster.origin
        manifest.sources.append("kube-api")
        self.progress.note(f"reading cluster objects from {self.cluster.origin}")
        return collect_objects(self.cluster, writer)

    # -- which nodes -------------------------------------------------------------

    def _selected_nodes(self, objects: ObjectsResult) -> list[NodeInfo]:
        if self.options.nodes is not None:
            known = {node.name: node for node in objects.nodes or []}
            return [known.get(name, NodeInfo(name)) for name in dict.fromkeys(self.options.nodes)]
        if self.options.selector is not None:
            return self._nodes_matching(self.options.selector)
        if objects.nodes is None:
            raise CollectorError(
                "cannot list the cluster's nodes (see the nodes entry of the manifest): "
                "name them with --nodes, or grant list on nodes (`needle rbac`)"
            )
        return objects.nodes

    def _nodes_matching(self, selector: str) -> list[NodeInfo]:
        try:
            listing = self.cluster.calls.call(
                f"list nodes matching {selector}",
                client.CoreV1Api(self.cluster.api).list_node,
                label_selector=selector,
            ).object("the node list")
            items = listing.get("items") or []
        except KubeCallError as exc:
            if exc.status is None:
                raise CollectorError(f"lost the API server while listing nodes: {exc}") from exc
            raise CollectorError(f"-l {selector}: {exc}") from exc
        except (ValueError, AttributeError) as exc:
            raise CollectorError(f"-l {selector}: the answer is not a node list ({exc})") from exc
        nodes = []
        for item in items:
            meta = item.get("metadata") or {}
            nodes.append(NodeInfo(str(meta.get("name")), dict(meta.get("labels") or {})))
        if not nodes:
            raise CollectorError(f"no node matches -l {selector}")
        return nodes

    def targets(
        self, writer: BundleWriter, objects: ObjectsResult, node_deadline_s: float
    ) -> list[PodTarget]:
        """One target per selected Linux node (Windows nodes cannot run the script)."""
        nodes = self._selected_nodes(objects)
        known = None if objects.nodes is None else {node.name for node in objects.nodes}
        timing = self.options.timing
        # A pod outlives a needle killed before cleanup by no more than this.
        lifetime = int(timing.start_timeout_s + node_deadline_s + timing.stop_grace_s + 60)
        settings = debug_pod.PodSettings(
            self.options.namespace, self.options.image, self.run_id, lifetime
        )
        problem = None
        try:
            note = self.pods.ensure_namespace()
            if note:
                self.progress.note(note)
        except CollectorError as exc:
            problem = str(exc)
        targets = []
        for index, node in enumerate(nodes, start=1):
            if node.labels.get(OS_LABEL, "linux") != "linux":
                writer.manifest.errors.append(
                    f"node {node.name} runs {node.labels[OS_LABEL]}: not collected "
                    "(the node script needs Linux)"
                )
                continue
            node_problem = problem
            if known is not None and node.name not in known:
                node_problem = f"node {node.name} is not in the cluster (see `kubectl get nodes`)"
            targets.append(
                PodTarget(
                    node=node.name,
                    pod=debug_pod.pod_name(self.run_id, index, node.name),
                    pods=self.pods,
                    settings=settings,
                    timing=timing,
                    problem=node_problem,
                )
            )
        return targets

    # -- the end -----------------------------------------------------------------

    def close(self, writer: BundleWriter | None) -> None:
        """Delete every pod this run made that is still there; idempotent."""
        if self._closed:
            return
        self._closed = True
        with sigint_deferred(self.progress):
            _deleted, errors = self.pods.delete_all(self.pods.ledger.names())
            # Anything the ledger missed (a create whose answer never came): by label.
            if not errors:
                _deleted, errors = self.pods.delete_matching(self.run_selector)
        if errors:
            advice = f"run `needle cleanup --namespace {self.options.namespace}`"
            for error in errors:
                message = f"{error}; {advice}"
                if writer is not None:
                    writer.manifest.errors.append(message)
                self.progress.note(message)
        self.cluster.close()
