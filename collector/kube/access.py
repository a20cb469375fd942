"""`needle rbac --check`: ask the API server whether the current credentials may make
every call a collection makes, before a collection finds out one node at a time.

Each permission in needle.collector.rbac's rules becomes one SelfSubjectAccessReview (what
`kubectl auth can-i` sends); creating one changes nothing, so it is retried like a read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubernetes import client
from needle.collector.kube.calls import KubeCallError
from needle.collector.kube.client import Cluster
from needle.collector.rbac import CLUSTER_RULES, NAMESPACE_RULES


@dataclass(frozen=True)
class Permission:
    verb: str
    group: str
    resource: str
    """With its subresource, as RBAC writes it: pods/exec."""
    namespace: str | None

    @property
    def text(self) -> str:
        group = f".{self.group}" if self.group else ""
        where = f" in namespace {self.namespace}" if self.namespace else " cluster-wide"
        return f"{self.verb} {self.resource}{group}{where}"

    def review(self) -> dict[str, Any]:
        resource, _, subresource = self.resource.partition("/")
        attributes = {"verb": self.verb, "group": self.group, "resource": resource}
        if subresource:
            attributes["subresource"] = subresource
        if self.namespace:
            attributes["namespace"] = self.namespace
        return {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes},
        }


@dataclass(frozen=True)
class Verdict:
    permission: Permission
    allowed: bool | None
    """None when the server could not say (the review itself failed)."""
    reason: str


def needed(namespace: str) -> list[Permission]:
    """Every permission `needle rbac` grants: cluster-wide reads, and in the debug
    namespace the pod calls. Exec is one either way: `get` before 1.31, `create` since."""
    permissions = []
    for rules, scope in ((CLUSTER_RULES, None), (NAMESPACE_RULES, namespace)):
        for rule in rules:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        permissions.append(Permission(verb, group, resource, scope))
    return permissions


def check(cluster: Cluster, namespace: str) -> list[Verdict]:
    api = client.AuthorizationV1Api(cluster.api)
    verdicts = []
    for permission in needed(namespace):
        try:
            status = (
                cluster.calls.call(
                    f"review access to {permission.text}",
                    api.create_self_subject_access_review,
                    permission.review(),
                )
                .object("the review")
                .get("status")
                or {}
            )
        except KubeCallError as exc:
            verdicts.append(Verdict(permission, None, f"cannot ask the API server: {exc}"))
            continue
        except (ValueError, AttributeError) as exc:
            verdicts.append(Verdict(permission, None, f"the answer is not a review ({exc})"))
            continue
        if not isinstance(status, dict):
            verdicts.append(Verdict(permission, None, "the answer's status is not an object"))
            continue
        allowed = status.get("allowed") is True and status.get("denied") is not True
        reason = str(status.get("reason") or status.get("evaluationError") or "")
        verdicts.append(Verdict(permission, allowed, reason))
    return _one_exec_verdict(verdicts)


def _one_exec_verdict(verdicts: list[Verdict]) -> list[Verdict]:
    """Exec needs `get` (before 1.31) or `create` (since): one verdict, allowed by either."""
    execs = [v for v in verdicts if v.permission.resource == "pods/exec"]
    if not execs:
        return verdicts
    rest = [v for v in verdicts if v.permission.resource != "pods/exec"]
    first = execs[0].permission
    merged = Permission(
        " or ".join(v.permission.verb for v in execs), first.group, first.resource, first.namespace
    )
    allowed: bool | None
    if any(v.allowed is True for v in execs):
        allowed = True
    elif any(v.allowed is None for v in execs):
        allowed = None
    else:
        allowed = False
    reasons = "; ".join(v.reason for v in execs if v.reason and v.allowed is not True)
    return [*rest, Verdict(merged, allowed, "" if allowed else reasons)]
