"""Debug pods through the API: the namespace, create, wait until running, delete.

Every pod created is remembered in a `PodLedger` before the create call goes out (a
create whose answer is lost still made a pod), so whatever happens, the run can
delete everything it made.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from threading import Event, Lock
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.rest import ApiException

from collector.errors import CollectorError
from collector.kube import debug_pod
from collector.kube.client import REQUEST_TIMEOUT, Cluster, api_error_text, transport_error_text

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


class PodStartError(Exception):
    """The pod did not get to run; the message names the pod, the node and the reason."""


class Interrupted(Exception):
    """The run was stopped (Ctrl-C) while waiting."""


class PodLedger:
    """The pods this run created and has not deleted yet (thread-safe)."""

    def __init__(self) -> None:
        self._lock = Lock()
        self._names: set[str] = set()

    def add(self, name: str) -> None:
        with self._lock:
            self._names.add(name)

    def discard(self, name: str) -> None:
        with self._lock:
            self._names.discard(name)

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._names)


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
        try:
            self._core.read_namespace(
                self.namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
            ).release_conn()
            return None
        except ApiException as exc:
            if exc.status == 403:
                # May read pods there but not namespaces: go on, pod creation will tell.
                return None
            if exc.status != 404:
                raise CollectorError(
                    f"cannot read namespace {self.namespace}: {api_error_text(exc)}"
                ) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise CollectorError(
                f"lost the API server while reading namespace {self.namespace}: "
                f"{transport_error_text(exc)}"
            ) from exc
        try:
            self._core.create_namespace(
                debug_pod.namespace_manifest(self.namespace),
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT,
            ).release_conn()
        except ApiException as exc:
            if exc.status == 409:  # made meanwhile by a concurrent run
                return None
            raise CollectorError(
                f"namespace {self.namespace} does not exist and cannot be created "
                f"({api_error_text(exc)}): create it, labelled "
                "pod-security.kubernetes.io/enforce=privileged, or pick one with --namespace"
            ) from exc
        return (
            f"created namespace {self.namespace}, labelled "
            "pod-security.kubernetes.io/enforce=privileged for the debug pods"
        )

    # -- pods ------------------------------------------------------------------------

    def create(self, manifest: dict[str, Any]) -> None:
        name = manifest["metadata"]["name"]
        node = manifest["spec"]["nodeName"]
        self.ledger.add(name)
        try:
            self._core.create_namespaced_pod(
                self.namespace, manifest, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
            ).release_conn()
        except ApiException as exc:
            if exc.status != 409:  # 409: exists, i.e. an earlier try's answer got lost
                self.ledger.discard(name)
            text = api_error_text(exc)
            hint = ""
            if exc.status == 403 and "PodSecurity" in text:
                hint = (
                    f" (label namespace {self.namespace} "
                    "pod-security.kubernetes.io/enforce=privileged)"
                )
            raise PodStartError(f"cannot create pod {name} on {node}: {text}{hint}") from exc
        except urllib3.exceptions.HTTPError as exc:
            raise PodStartError(
                f"cannot create pod {name} on {node}: {transport_error_text(exc)}"
            ) from exc

    def read(self, name: str) -> dict[str, Any]:
        response = self._core.read_namespaced_pod(
            name, self.namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
        )
        try:
            return dict(json.loads(response.data))
        finally:
            response.release_conn()

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
                phase = read_phase(self.read(name))
            except ApiException as exc:
                if exc.status == 404:
                    raise PodStartError(
                        f"pod {name} on {node} was deleted while starting (by someone else?)"
                    ) from exc
                last = f"reading it failed: {api_error_text(exc)}"
                phase = None
            except (urllib3.exceptions.HTTPError, ValueError) as exc:
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
        """Delete one pod; return an error sentence, or None when it is gone."""
        try:
            self._core.delete_namespaced_pod(
                name, self.namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
            ).release_conn()
        except ApiException as exc:
            if exc.status != 404:
                return f"could not delete pod {name}: {api_error_text(exc)}"
        except urllib3.exceptions.HTTPError as exc:
            return f"could not delete pod {name}: {transport_error_text(exc)}"
        self.ledger.discard(name)
        return None

    def list_names(self, selector: str) -> list[str]:
        response = self._core.list_namespaced_pod(
            self.namespace,
            label_selector=selector,
            _preload_content=False,
            _request_timeout=REQUEST_TIMEOUT,
        )
        try:
            items = json.loads(response.data).get("items") or []
        finally:
            response.release_conn()
        return sorted(str((item.get("metadata") or {}).get("name")) for item in items)

    def delete_matching(self, selector: str) -> tuple[list[str], list[str]]:
        """Delete every pod the selector matches: (deleted names, error sentences)."""
        try:
            names = self.list_names(selector)
        except ApiException as exc:
            if exc.status == 404:
                return [], []
            return [], [f"cannot list pods in {self.namespace}: {api_error_text(exc)}"]
        except (urllib3.exceptions.HTTPError, ValueError) as exc:
            return [], [f"cannot list pods in {self.namespace}: {exc}"]
        deleted, errors = [], []
        for name in names:
            error = self.delete(name)
            if error is None:
                deleted.append(name)
            else:
                errors.append(error)
        return deleted, errors
