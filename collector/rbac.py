"""`needle rbac`: the least access cluster collection needs, as manifests for kubectl.

Cluster-wide: read nodes, pods, config maps and daemonsets (objects), and read or make
the debug namespace. In the debug namespace only: make, read and delete pods, and exec
into them. Nothing can read Secrets. The rules here are the ones a test replays every
API call of a collection against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from needle.collector.errors import CollectorError
from needle.collector.kube import debug_pod

NAME = "needle-collector"
DEFAULT_GROUP = "needle-collectors"

CLUSTER_RULES: list[dict[str, Any]] = [
    {"apiGroups": [""], "resources": ["nodes", "pods", "configmaps"], "verbs": ["get", "list"]},
    {"apiGroups": ["apps"], "resources": ["daemonsets"], "verbs": ["get", "list"]},
    # the debug namespace: read it, and make it (labelled privileged) if it is missing
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "create"]},
]
NAMESPACE_RULES: list[dict[str, Any]] = [
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "get", "list", "delete"]},
    # exec over a websocket is a GET, authorized as `get` before Kubernetes 1.31 and as
    # `create` since (and with SPDY): both, so one ClusterRole fits every version
    {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create", "get"]},
]


@dataclass(frozen=True)
class Subject:
    kind: str  # User, Group or ServiceAccount
    name: str
    namespace: str | None = None

    def manifest(self) -> dict[str, Any]:
        if self.kind == "ServiceAccount":
            return {"kind": "ServiceAccount", "name": self.name, "namespace": self.namespace}
        return {"kind": self.kind, "apiGroup": "rbac.authorization.k8s.io", "name": self.name}


def parse_subjects(
    users: list[str], groups: list[str], service_accounts: list[str]
) -> list[Subject]:
    subjects = [Subject("User", name) for name in users]
    subjects += [Subject("Group", name) for name in groups]
    for value in service_accounts:
        namespace, sep, name = value.partition(":")
        if not sep:
            namespace, sep, name = value.partition("/")
        if not sep or not namespace or not name:
            raise CollectorError(f"--service-account takes NAMESPACE:NAME, not {value!r}")
        subjects.append(Subject("ServiceAccount", name, namespace))
    return subjects or [Subject("Group", DEFAULT_GROUP)]


def manifests(namespace: str, subjects: list[Subject]) -> list[dict[str, Any]]:
    """Namespace, ClusterRole + binding, Role + binding: `kubectl apply -f -` order."""
    debug_pod.check_namespace(namespace)
    labels = {"app.kubernetes.io/name": "needle"}
    bound = [subject.manifest() for subject in subjects]
    return [
        debug_pod.namespace_manifest(namespace),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": NAME, "labels": labels},
            "rules": CLUSTER_RULES,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": NAME, "labels": labels},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": NAME,
            },
            "subjects": bound,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": NAME, "namespace": namespace, "labels": labels},
            "rules": NAMESPACE_RULES,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": NAME, "namespace": namespace, "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": NAME},
            "subjects": bound,
        },
    ]


def render(namespace: str, subjects: list[Subject]) -> str:
    header = (
        "# needle: the access `needle collect` needs against a live cluster.\n"
        f"# Debug pods run in namespace {namespace} (labelled for privileged pods);\n"
        "# bind other users, groups or service accounts with needle rbac --user/--group/\n"
        "# --service-account. Apply with: needle rbac | kubectl apply -f -\n"
    )
    return header + yaml.safe_dump_all(
        manifests(namespace, subjects), sort_keys=False, explicit_start=True
    )
