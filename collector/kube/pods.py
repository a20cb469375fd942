"""Debug pods through the API: the namespace, create, wait until running, delete.

Every pod created is remembered in a `PodLedger` before the create call goes out (a
create whose answer is lost still made a pod), so whatever happens, the run can
delete everything it made.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from threading import Event, Lock
from typing import Any

from kubernetes import client
from needle.collector.errors import CollectorError
from needle.collector.kube import debug_pod
from needle.collector.kube.calls import ONE_TRY, KubeCallError, RetryPolicy
from needle.collector.kube.client import Cluster

# A waiting reason that no amount of waiting cures.
_HOPELESS = {
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
}
# Image pull failures are retried by the kubelet and may clear (a registry hiccup, a rate
# limit); past a grace period they are reported instead of waiting out the timeout.
_PULL_ERRORS = {"ErrImagePull", "ImagePullBackOff", "RegistryUnavailable"}
# Polls start fast (a warm node starts the pod in well under a second) and slow down.
_POLL_START_S = 0.05
_POLL_MAX_S = 1.0
# A status read inside the wait loop: the loop is the retry, so a read tries briefly.
POLL_POLICY = RetryPolicy(attempts=3, budget_s=5.0)


class PodStartError(Exception):
    """The pod did not get to run; the message names the pod, the node and the reason."""


class Interrupted(Exception):
    """The run was stopped (Ctrl-C) while waiting."""


class PodLedger:
    """The pods this run created and has not deleted yet, with their nodes (thread-safe)."""

    def __init__(self) -> None:
        self._lock = Lock()
        self._nodes: dict[str, str | None] = {}

    def add(self, name: str, node: str | None = None) -> None:
        with self._lock:
            self._nodes[name] = node

    def discard(self, name: str) -> None:
        with self._lock:
            self._nodes.pop(name, None)

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._nodes)

    def node_of(self, name: str) -> str | None:
        with self._lock:
            return self._nodes.get(name)


@dataclass
class PodPhase:
    """What a pod's status says, reduced to what waiting needs."""

    running: bool
    finished: bool
    reason: str | None
    message: str | None


def read_phase(pod: dict[str, Any]) -> PodPhase:
    status = pod.get("status") or {}
    phase = status.get("phase") or "Pending"
    statuses = status.get("containerStatuses") or []
    state = (statuses[0].get("state") or {}) if statuses else {}
    if phase in ("Failed", "Succeeded"):
        terminated = state.get("terminated") or {}
        return PodPhase(
            False,
            True,
            status.get("reason") or terminated.get("reason") or phase,
            status.get("message") or terminated.get("message"),
        )
    if phase == "Running" and "running" in state:
        return PodPhase(True, False, None, None)
    waiting = state.get("waiting") or {}
    if waiting:
        return PodPhase(False, False, waiting.get("reason"), waiting.get("message"))
    # No container status yet: look at the conditions (e.g. PodScheduled=False).
    for condition in status.get("conditions") or []:
        if condition.get("status") == "False" and condition.get("reason"):
            return PodPhase(False, False, condition["reason"], condition.get("message"))
    return PodPhase(False, False, phase, None)


def _describe(phase: PodPhase) -> str:
    return f"{phase.reason}: {phase.message}" if phase.message else str(phase.reason)


def _backoff() -> Iterator[float]:
    delay = _POLL_START_S
    while True:
        yield delay
        delay = min(delay * 2, _POLL_MAX_S)


class PodApi:
    """Debug pod operations in one namespace."""

    def __init__(self, cluster: Cluster, namespace: str, ledger: PodLedger | None = None) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.ledger = ledger or PodLedger()
        self._core = client.CoreV1Api(cluster.api)

    # -- namespace -------------------------------------------------------------------

    def ensure_namespace(self) -> str | None:
        """Make sure the namespace exists; return a note when needle created it."""
        calls = self.cluster.calls
        try:
            calls.call(
                f"read namespace {self.namespace}", self._core.read_namespace, self.namespace
            )
            return None
        except KubeCallError as exc:
            if exc.status == 403:
                # May read pods there but not namespaces: go on, pod creation will tell.
                return None
            if exc.status is None:
                raise CollectorError(
                    f"lost the API server while reading namespace {self.namespace}: {exc}"
                ) from exc
            if exc.status != 404:
                raise CollectorError(f"cannot read namespace {self.namespace}: {exc}") from exc
        try:
            calls.call(
                f"create namespace {self.namespace}",
                self._core.create_namespace,
                debug_pod.namespace_manifest(self.namespace),
            )
        except KubeCallError as exc:
            if exc.status == 409:  # made meanwhile (a concurrent run, or our lost answer)
                return None
            raise CollectorError(
                f"namespace {self.namespace} does not exist and cannot be created "
                f"({exc}): create it, labelled "
                "pod-security.kubernetes.io/enforce=privileged, or pick one with --namespace"
            ) from exc
        return (
            f"created namespace {self.namespace}, labelled "
            "pod-security.kubernetes.io/enforce=privileged for the debug pods"
        )

    # -- pods ------------------------------------------------------------------------

    def create(self, manifest: dict[str, Any], stop: Event | None = None) -> None:
        """Create a debug pod. Its name carries this run's id, so a 409 AlreadyExists
        can only be an earlier try of this call whose answer was lost: it exists."""
        name = manifest["metadata"]["name"]
        node = manifest["spec"]["nodeName"]
        self.ledger.add(name, node)
        try:
            self.cluster.calls.call(
                f"create pod {self.namespace}/{name}",
                self._core.create_namespaced_pod,
                self.namespace,
                manifest,
                stop=stop,
            )
        except KubeCallError as exc:
            if exc.status == 409:
                return
            if exc.interrupted:
                raise Interrupted(f"interrupted while creating pod {name} on {node}") from exc
            if exc.status is not None and 400 <= exc.status < 500 and exc.status != 429:
                self.ledger.discard(name)  # refused: no pod was made
            hint = ""
            if exc.status == 403 and "PodSecurity" in exc.detail:
                hint = (
                    f" (label namespace {self.namespace} "
                    "pod-security.kubernetes.io/enforce=privileged)"
                )
            raise PodStartError(f"cannot create pod {name} on {node}: {exc}{hint}") from exc

    def read(
        self, name: str, stop: Event | None = None, deadline: float | None = None
    ) -> dict[str, Any]:
        reply = self.cluster.calls.call(
            f"read pod {self.namespace}/{name}",
            self._core.read_namespaced_pod,
            name,
            self.namespace,
            stop=stop,
            deadline=deadline,
            policy=POLL_POLICY,
        )
        return reply.object("the pod")

    def wait_running(
        self, name: str, node: str, timeout_s: float, pull_grace_s: float, stop: Event
    ) -> None:
        """Return once the pod's container runs; raise PodStartError or Interrupted."""
        started = time.monotonic()
        pull_failing_since: float | None = None
        last = "no status yet"
        for delay in _backoff():
            if stop.wait(delay):
                raise Interrupted(f"interrupted while pod {name} on {node} was starting")
            now = time.monotonic()
            try:
                phase = read_phase(self.read(name, stop, started + timeout_s))
            except KubeCallError as exc:
                if exc.status == 404:
                    raise PodStartError(
                        f"pod {name} on {node} was deleted while starting (by someone else?)"
                    ) from exc
                last = f"reading it failed: {exc}"
                phase = None
            except ValueError as exc:
                last = f"reading it failed: {exc}"
                phase = None
            if phase is not None:
                if phase.running:
                    return
                last = _describe(phase)
                if phase.finished:
                    raise PodStartError(f"pod {name} on {node} never started: {last}")
                if phase.reason in _HOPELESS:
                    raise PodStartError(f"pod {name} on {node} never started: {last}")
                if phase.reason in _PULL_ERRORS:
                    pull_failing_since = pull_failing_since or now
                    if now - pull_failing_since >= pull_grace_s:
                        raise PodStartError(f"pod {name} on {node} never started: {last}")
                else:
                    pull_failing_since = None
            if now - started >= timeout_s:
                if last in ("Pending", "no status yet"):
                    last += " (is the node's kubelet up?)"
                raise PodStartError(
                    f"pod {name} on {node} never started within {timeout_s:g} s: {last}"
                )

    def delete(self, name: str) -> str | None:
        """Delete one pod; return an error sentence (naming the pod and its node), or None
        when it is gone."""
        failure = self._delete(name, None)
        return None if failure is None else self._deletion_error(name, failure)

    def delete_all(self, names: list[str]) -> tuple[list[str], list[str]]:
        """Delete these pods: (deleted names, error sentences). Once the API cannot be
        reached even after retries, the rest get one try each: waiting out every pod's
        retries against a dead server would hold Ctrl-C for minutes."""
        deleted: list[str] = []
        errors: list[str] = []
        policy: RetryPolicy | None = None
        for name in names:
            failure = self._delete(name, policy)
            if failure is None:
                deleted.append(name)
                continue
            errors.append(self._deletion_error(name, failure))
            if failure.status is None:
                policy = ONE_TRY
        return deleted, errors

    def _delete(self, name: str, policy: RetryPolicy | None) -> KubeCallError | None:
        try:
            self.cluster.calls.call(
                f"delete pod {self.namespace}/{name}",
                self._core.delete_namespaced_pod,
                name,
                self.namespace,
                policy=policy,
            )
        except KubeCallError as exc:
            if exc.status != 404:  # 404: gone already (or an earlier try's answer was lost)
                return exc
        self.ledger.discard(name)
        return None

    def _deletion_error(self, name: str, failure: KubeCallError) -> str:
        node = self.ledger.node_of(name)
        where = f" (on {node})" if node else ""
        return f"could not delete pod {self.namespace}/{name}{where}: {failure}"

    def list_names(self, selector: str) -> list[str]:
        reply = self.cluster.calls.call(
            f"list pods in {self.namespace}",
            self._core.list_namespaced_pod,
            self.namespace,
            label_selector=selector,
        )
        listing = reply.json()
        items = (listing.get("items") if isinstance(listing, dict) else None) or []
        return sorted(str((item.get("metadata") or {}).get("name")) for item in items)

    def delete_matching(self, selector: str) -> tuple[list[str], list[str]]:
        """Delete every pod the selector matches: (deleted names, error sentences)."""
        try:
            names = self.list_names(selector)
        except KubeCallError as exc:
            if exc.status == 404:
                return [], []
            return [], [f"cannot list pods in {self.namespace}: {exc}"]
        except (ValueError, AttributeError) as exc:
            text = f"cannot list pods in {self.namespace}: the answer is not a pod list ({exc})"
            return [], [text]
        return self.delete_all(names)
