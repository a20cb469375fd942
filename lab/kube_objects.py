"""The Kubernetes objects a real cluster of the lab's shape would show.

Written as `kubectl get -o json` List documents, one file per kind, into the lab's kube dir,
where `needle collect --kube-dir DIR` reads them. Object builders are pure; the rng makes
uids and generated names, the caller passes time and host facts.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from needle.lab.errors import LabError
from needle.lab.state import LabState, NodeState, PodState, write_atomic
from needle.lab.topology import deployment_name, random_suffix

APP_IMAGE = "registry.k8s.io/e2e-test-images/agnhost:2.52"
KUBELET_VERSION = "v1.30.4"
CONTAINERD_VERSION = "containerd://1.7.20"
OS_IMAGE = "Debian GNU/Linux 12 (bookworm)"

NODES_FILE = "nodes.json"
PODS_FILE = "pods.json"
CONFIGMAPS_FILE = "configmaps.json"
DAEMONSETS_FILE = "daemonsets.json"


@dataclass(frozen=True)
class HostFacts:
    """What the lab's nodes share with the host they really run on."""

    created: str
    """RFC 3339 UTC timestamp used as creation and start time."""
    kernel: str
    architecture: str
    """Kubernetes spelling: amd64, arm64, ..."""


class _Ids:
    """uids and resourceVersions, as an API server would hand them out."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._version = 1000

    def uid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def version(self) -> str:
        self._version += self._rng.randrange(1, 40)
        return str(self._version)

    def hex(self, length: int) -> str:
        return f"{self._rng.getrandbits(4 * length):0{length}x}"


def as_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}}


def node_object(
    node: NodeState,
    index: int,
    facts: HostFacts,
    ids: _Ids,
    cni_annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A Node as the API shows it; `cni_annotations` are the ones the CNI daemon writes."""
    labels = {
        "beta.kubernetes.io/arch": facts.architecture,
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": facts.architecture,
        "kubernetes.io/hostname": node.name,
        "kubernetes.io/os": "linux",
    }
    if index == 0:
        labels["node-role.kubernetes.io/control-plane"] = ""
        labels["node.kubernetes.io/exclude-from-external-load-balancers"] = ""
    condition_time = facts.created
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node.name,
            "uid": ids.uid(),
            "resourceVersion": ids.version(),
            "creationTimestamp": facts.created,
            "labels": labels,
            "annotations": {
                **(cni_annotations or {}),
                "kubeadm.alpha.kubernetes.io/cri-socket": "unix:///var/run/containerd/containerd.sock",
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": {"podCIDR": node.pod_cidr, "podCIDRs": [node.pod_cidr]},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": node.underlay_ip},
                {"type": "Hostname", "address": node.name},
            ],
            "allocatable": {
                "cpu": "2",
                "ephemeral-storage": "18566299208",
                "hugepages-2Mi": "0",
                "memory": "3922816Ki",
                "pods": "110",
            },
            "capacity": {
                "cpu": "2",
                "ephemeral-storage": "20145724Ki",
                "hugepages-2Mi": "0",
                "memory": "4025216Ki",
                "pods": "110",
            },
            "conditions": [
                _condition(
                    "NetworkUnavailable",
                    "False",
                    "FlannelIsUp",
                    "Flannel is running on this node",
                    condition_time,
                ),
                _condition(
                    "MemoryPressure",
                    "False",
                    "KubeletHasSufficientMemory",
                    "kubelet has sufficient memory available",
                    condition_time,
                ),
                _condition(
                    "DiskPressure",
                    "False",
                    "KubeletHasNoDiskPressure",
                    "kubelet has no disk pressure",
                    condition_time,
                ),
                _condition(
                    "PIDPressure",
                    "False",
                    "KubeletHasSufficientPID",
                    "kubelet has sufficient PID available",
                    condition_time,
                ),
                _condition(
                    "Ready",
                    "True",
                    "KubeletReady",
                    "kubelet is posting ready status",
                    condition_time,
                ),
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": facts.architecture,
                "bootID": ids.uid(),
                "containerRuntimeVersion": CONTAINERD_VERSION,
                "kernelVersion": facts.kernel,
                "kubeProxyVersion": KUBELET_VERSION,
                "kubeletVersion": KUBELET_VERSION,
                "machineID": ids.hex(32),
                "operatingSystem": "linux",
                "osImage": OS_IMAGE,
                "systemUUID": ids.uid(),
            },
        },
    }


def _condition(kind: str, status: str, reason: str, message: str, when: str) -> dict[str, str]:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastHeartbeatTime": when,
        "lastTransitionTime": when,
    }


def _pod_conditions(when: str) -> list[dict[str, Any]]:
    return [
        {"type": kind, "status": "True", "lastProbeTime": None, "lastTransitionTime": when}
        for kind in (
            "PodReadyToStartContainers",
            "Initialized",
            "Ready",
            "ContainersReady",
            "PodScheduled",
        )
    ]


def _service_account_volume(suffix: str) -> tuple[dict[str, Any], dict[str, Any]]:
    name = f"kube-api-access-{suffix}"
    volume = {
        "name": name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {
                    "configMap": {
                        "name": "kube-root-ca.crt",
                        "items": [{"key": "ca.crt", "path": "ca.crt"}],
                    }
                },
                {
                    "downwardAPI": {
                        "items": [
                            {
                                "path": "namespace",
                                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                            }
                        ]
                    }
                },
            ],
        },
    }
    mount = {
        "name": name,
        "readOnly": True,
        "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
    }
    return volume, mount


def _container_status(name: str, image: str, when: str, ids: _Ids) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "imageID": f"{image.rsplit(':', 1)[0]}@sha256:{ids.hex(64)}",
        "containerID": f"containerd://{ids.hex(64)}",
        "ready": True,
        "started": True,
        "restartCount": 0,
        "state": {"running": {"startedAt": when}},
        "lastState": {},
    }


_NOT_READY_TOLERATIONS = [
    {
        "key": "node.kubernetes.io/not-ready",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 300,
    },
    {
        "key": "node.kubernetes.io/unreachable",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 300,
    },
]


def app_pod_object(
    pod: PodState,
    slot: int,
    node: NodeState,
    replicaset_uid: str,
    facts: HostFacts,
    ids: _Ids,
    rng: random.Random,
) -> dict[str, Any]:
    deployment = deployment_name(slot)
    template_hash = pod.name[len(deployment) + 1 :].rsplit("-", 1)[0]
    volume, mount = _service_account_volume(random_suffix(rng, 5))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod.name,
            "generateName": f"{deployment}-{template_hash}-",
            "namespace": pod.namespace,
            "uid": ids.uid(),
            "resourceVersion": ids.version(),
            "creationTimestamp": facts.created,
            "labels": {"app": deployment, "pod-template-hash": template_hash},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": f"{deployment}-{template_hash}",
                    "uid": replicaset_uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "containers": [
                {
                    "name": deployment,
                    "image": APP_IMAGE,
                    "args": ["netexec", "--http-port=8080"],
                    "imagePullPolicy": "IfNotPresent",
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                    "resources": {},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "volumeMounts": [mount],
                }
            ],
            "dnsPolicy": "ClusterFirst",
            "enableServiceLinks": True,
            "nodeName": node.name,
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0,
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "securityContext": {},
            "serviceAccount": "default",
            "serviceAccountName": "default",
            "terminationGracePeriodSeconds": 30,
            "tolerations": _NOT_READY_TOLERATIONS,
            "volumes": [volume],
        },
        "status": {
            "phase": "Running",
            "conditions": _pod_conditions(facts.created),
            "containerStatuses": [_container_status(deployment, APP_IMAGE, facts.created, ids)],
            "hostIP": node.underlay_ip,
            "hostIPs": [{"ip": node.underlay_ip}],
            "podIP": pod.ip,
            "podIPs": [{"ip": pod.ip}],
            "qosClass": "BestEffort",
            "startTime": facts.created,
        },
    }


@dataclass(frozen=True)
class KubeContext:
    """What a backend needs to build its objects the way the rest of the lab does."""

    facts: HostFacts
    ids: _Ids
    rng: random.Random


# Every DaemonSet pod tolerates these (added by the DaemonSet controller).
_DAEMONSET_TOLERATIONS = [
    {"key": f"node.kubernetes.io/{taint}", "operator": "Exists", "effect": effect}
    for taint, effect in (
        ("not-ready", "NoExecute"),
        ("unreachable", "NoExecute"),
        ("disk-pressure", "NoSchedule"),
        ("memory-pressure", "NoSchedule"),
        ("pid-pressure", "NoSchedule"),
        ("unschedulable", "NoSchedule"),
        ("network-unavailable", "NoSchedule"),
    )
]


def daemonset_pod_object(
    node: NodeState,
    *,
    daemonset: str,
    namespace: str,
    daemonset_uid: str,
    revision: str,
    labels: dict[str, str],
    spec: dict[str, Any],
    containers: list[tuple[str, str]],
    init_containers: list[tuple[str, str]],
    ctx: KubeContext,
) -> dict[str, Any]:
    """One hostNetwork pod of a CNI DaemonSet, pinned to `node` as the controller does.
    `spec` is the DaemonSet's pod template spec (a fresh copy; it is changed here)."""
    facts, ids = ctx.facts, ctx.ids
    # The DaemonSet controller pins each pod to its node with a matchFields term.
    spec.setdefault("affinity", {}).setdefault("nodeAffinity", {})[
        "requiredDuringSchedulingIgnoredDuringExecution"
    ] = {
        "nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node.name]}]}
        ]
    }
    spec["nodeName"] = node.name
    spec["tolerations"] = spec.get("tolerations", []) + _DAEMONSET_TOLERATIONS
    name = f"{daemonset}-{random_suffix(ctx.rng, 5)}"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "generateName": f"{daemonset}-",
            "namespace": namespace,
            "uid": ids.uid(),
            "resourceVersion": ids.version(),
            "creationTimestamp": facts.created,
            "labels": {
                **labels,
                "controller-revision-hash": revision,
                "pod-template-generation": "1",
            },
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "DaemonSet",
                    "name": daemonset,
                    "uid": daemonset_uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": spec,
        "status": {
            "phase": "Running",
            "conditions": _pod_conditions(facts.created),
            "containerStatuses": [
                _container_status(container, image, facts.created, ids)
                for container, image in containers
            ],
            "initContainerStatuses": [
                {
                    **_container_status(init, image, facts.created, ids),
                    "ready": True,
                    "started": False,
                    "state": {
                        "terminated": {
                            "exitCode": 0,
                            "reason": "Completed",
                            "startedAt": facts.created,
                            "finishedAt": facts.created,
                        }
                    },
                }
                for init, image in init_containers
            ],
            "hostIP": node.underlay_ip,
            "hostIPs": [{"ip": node.underlay_ip}],
            "podIP": node.underlay_ip,
            "podIPs": [{"ip": node.underlay_ip}],
            "qosClass": "Burstable",
            "startTime": facts.created,
        },
    }


def daemonset_object(
    *,
    name: str,
    namespace: str,
    uid: str,
    labels: dict[str, str],
    selector: dict[str, str],
    spec: dict[str, Any],
    nodes: int,
    ctx: KubeContext,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A CNI DaemonSet running ready on all `nodes` nodes."""
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid,
            "generation": 1,
            "resourceVersion": ctx.ids.version(),
            "creationTimestamp": ctx.facts.created,
            "labels": labels,
            "annotations": {"deprecated.daemonset.template.generation": "1", **(annotations or {})},
        },
        "spec": {
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"creationTimestamp": None, "labels": labels},
                "spec": spec,
            },
            "updateStrategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1},
            },
        },
        "status": {
            "currentNumberScheduled": nodes,
            "desiredNumberScheduled": nodes,
            "numberAvailable": nodes,
            "numberMisscheduled": 0,
            "numberReady": nodes,
            "observedGeneration": 1,
            "updatedNumberScheduled": nodes,
        },
    }


def configmap_object(
    *,
    name: str,
    namespace: str,
    labels: dict[str, str],
    data: dict[str, str],
    ctx: KubeContext,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "uid": ctx.ids.uid(),
        "resourceVersion": ctx.ids.version(),
        "creationTimestamp": ctx.facts.created,
        "labels": labels,
    }
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


def build(state: LabState, facts: HostFacts, rng: random.Random) -> dict[str, dict[str, Any]]:
    """File name -> List document, for every kind the lab writes."""
    # Imported here: backends build their objects with this module's helpers.
    from needle.lab.backends import get

    backend = get(state.backend)
    ids = _Ids(rng)
    ctx = KubeContext(facts=facts, ids=ids, rng=rng)
    replicaset_uids: dict[str, str] = {}
    nodes = [
        node_object(node, index, facts, ids, backend.node_annotations(node))
        for index, node in enumerate(state.nodes)
    ]
    system = backend.system_objects(state, ctx)
    pods: list[dict[str, Any]] = list(system.pods)
    for node in state.nodes:
        for slot, pod in enumerate(node.pods):
            rs_uid = replicaset_uids.setdefault(deployment_name(slot), ids.uid())
            pods.append(app_pod_object(pod, slot, node, rs_uid, facts, ids, rng))
    return {
        NODES_FILE: as_list(nodes),
        PODS_FILE: as_list(pods),
        CONFIGMAPS_FILE: as_list(system.configmaps),
        DAEMONSETS_FILE: as_list(system.daemonsets),
    }


def write(kube_dir: Path, documents: dict[str, dict[str, Any]]) -> None:
    kube_dir.mkdir(mode=0o700, exist_ok=True)
    for file_name, document in documents.items():
        write_list(kube_dir / file_name, document)


def write_list(path: Path, document: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(document, indent=2) + "\n")


def read_list(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def edit_node_object(kube_dir: Path, node: str, edit: Callable[[dict[str, Any]], None]) -> None:
    """Change one Node in nodes.json in place (faults that make the API disagree)."""
    path = kube_dir / NODES_FILE
    document = read_list(path)
    for item in document["items"]:
        if item["metadata"]["name"] == node:
            edit(item)
            break
    else:
        raise LabError(f"{path} has no node {node}; was it edited by hand?")
    write_list(path, document)


def move_node_address(kube_dir: Path, node: str, old_ip: str, new_ip: str) -> None:
    """What the API shows once a node's address changed: its InternalIP, every annotation
    holding the old address (flannel's public-ip), and hostIP (and hostNetwork pods' podIP)
    of the pods on it."""

    def edit(item: dict[str, Any]) -> None:
        for address in item["status"]["addresses"]:
            if address["address"] == old_ip:
                address["address"] = new_ip
        annotations = item["metadata"].get("annotations", {})
        for key, value in annotations.items():
            if value == old_ip:
                annotations[key] = new_ip

    edit_node_object(kube_dir, node, edit)
    path = kube_dir / PODS_FILE
    document = read_list(path)
    for item in document["items"]:
        if item["spec"].get("nodeName") != node:
            continue
        status = item["status"]
        for key in ("hostIP", "podIP"):
            if status.get(key) == old_ip:
                status[key] = new_ip
        for key in ("hostIPs", "podIPs"):
            for entry in status.get(key, []):
                if entry.get("ip") == old_ip:
                    entry["ip"] = new_ip
    write_list(path, document)
