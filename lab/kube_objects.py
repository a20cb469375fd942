"""The Kubernetes objects a real cluster of the lab's shape would show.

Written as `kubectl get -o json` List documents, one file per kind, into the lab's kube dir,
where `needle collect --kube-dir DIR` reads them. Object builders are pure; the rng makes
uids and generated names, the caller passes time and host facts.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from needle.lab.state import LabState, NodeState, PodState, write_atomic
from needle.lab.topology import CLUSTER_CIDR, VNI, deployment_name, random_suffix

FLANNEL_NAMESPACE = "kube-flannel"
FLANNEL_DAEMONSET = "kube-flannel-ds"
FLANNEL_CONFIGMAP = "kube-flannel-cfg"
FLANNEL_IMAGE = "docker.io/flannel/flannel:v0.25.6"
FLANNEL_CNI_IMAGE = "docker.io/flannel/flannel-cni-plugin:v1.5.1-flannel2"
APP_IMAGE = "registry.k8s.io/e2e-test-images/agnhost:2.52"
KUBELET_VERSION = "v1.30.4"
CONTAINERD_VERSION = "containerd://1.7.20"
OS_IMAGE = "Debian GNU/Linux 12 (bookworm)"

NODES_FILE = "nodes.json"
PODS_FILE = "pods.json"
CONFIGMAPS_FILE = "configmaps.json"
DAEMONSETS_FILE = "daemonsets.json"

# As upstream kube-flannel.yml ships them.
CNI_CONF = """{
  "name": "cbr0",
  "cniVersion": "0.3.1",
  "plugins": [
    {
      "type": "flannel",
      "delegate": {
        "hairpinMode": true,
        "isDefaultGateway": true
      }
    },
    {
      "type": "portmap",
      "capabilities": {
        "portMappings": true
      }
    }
  ]
}
"""
NET_CONF = f"""{{
  "Network": "{CLUSTER_CIDR}",
  "Backend": {{
    "Type": "vxlan"
  }}
}}
"""
FLANNEL_LABELS = {"app": "flannel", "k8s-app": "flannel", "tier": "node"}


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


def vtep_annotation(mac: str) -> str:
    """flannel.alpha.coreos.com/backend-data, byte for byte as flanneld writes it."""
    return json.dumps({"VNI": VNI, "VtepMAC": mac}, separators=(",", ":"))


def node_object(node: NodeState, index: int, facts: HostFacts, ids: _Ids) -> dict[str, Any]:
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
                "flannel.alpha.coreos.com/backend-data": vtep_annotation(node.vtep_mac),
                "flannel.alpha.coreos.com/backend-type": "vxlan",
                "flannel.alpha.coreos.com/kube-subnet-manager": "true",
                "flannel.alpha.coreos.com/public-ip": node.underlay_ip,
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


def _flannel_pod_spec() -> dict[str, Any]:
    """The pod template of upstream kube-flannel.yml's DaemonSet."""
    return {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}
                            ]
                        }
                    ]
                }
            }
        },
        "containers": [
            {
                "name": "kube-flannel",
                "image": FLANNEL_IMAGE,
                "command": ["/opt/bin/flanneld"],
                "args": ["--ip-masq", "--kube-subnet-mgr"],
                "env": [
                    {
                        "name": "POD_NAME",
                        "valueFrom": {
                            "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}
                        },
                    },
                    {
                        "name": "POD_NAMESPACE",
                        "valueFrom": {
                            "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}
                        },
                    },
                    {"name": "EVENT_QUEUE_DEPTH", "value": "5000"},
                ],
                "imagePullPolicy": "IfNotPresent",
                "resources": {"requests": {"cpu": "100m", "memory": "50Mi"}},
                "securityContext": {
                    "privileged": False,
                    "capabilities": {"add": ["NET_ADMIN", "NET_RAW"]},
                },
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "volumeMounts": [
                    {"name": "run", "mountPath": "/run/flannel"},
                    {"name": "flannel-cfg", "mountPath": "/etc/kube-flannel/"},
                    {"name": "xtables-lock", "mountPath": "/run/xtables.lock"},
                ],
            }
        ],
        "dnsPolicy": "ClusterFirst",
        "hostNetwork": True,
        "initContainers": [
            {
                "name": "install-cni-plugin",
                "image": FLANNEL_CNI_IMAGE,
                "command": ["cp"],
                "args": ["-f", "/flannel", "/opt/cni/bin/flannel"],
                "imagePullPolicy": "IfNotPresent",
                "resources": {},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "volumeMounts": [{"name": "cni-plugin", "mountPath": "/opt/cni/bin"}],
            },
            {
                "name": "install-cni",
                "image": FLANNEL_IMAGE,
                "command": ["cp"],
                "args": [
                    "-f",
                    "/etc/kube-flannel/cni-conf.json",
                    "/etc/cni/net.d/10-flannel.conflist",
                ],
                "imagePullPolicy": "IfNotPresent",
                "resources": {},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "volumeMounts": [
                    {"name": "cni", "mountPath": "/etc/cni/net.d"},
                    {"name": "flannel-cfg", "mountPath": "/etc/kube-flannel/"},
                ],
            },
        ],
        "priorityClassName": "system-node-critical",
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "securityContext": {},
        "serviceAccount": "flannel",
        "serviceAccountName": "flannel",
        "terminationGracePeriodSeconds": 30,
        "tolerations": [{"effect": "NoSchedule", "operator": "Exists"}],
        "volumes": [
            {"name": "run", "hostPath": {"path": "/run/flannel", "type": ""}},
            {"name": "cni-plugin", "hostPath": {"path": "/opt/cni/bin", "type": ""}},
            {"name": "cni", "hostPath": {"path": "/etc/cni/net.d", "type": ""}},
            {"name": "flannel-cfg", "configMap": {"name": FLANNEL_CONFIGMAP, "defaultMode": 420}},
            {
                "name": "xtables-lock",
                "hostPath": {"path": "/run/xtables.lock", "type": "FileOrCreate"},
            },
        ],
    }


def flannel_pod_object(
    node: NodeState,
    daemonset_uid: str,
    revision: str,
    facts: HostFacts,
    ids: _Ids,
    rng: random.Random,
) -> dict[str, Any]:
    spec = _flannel_pod_spec()
    # The DaemonSet controller pins each pod to its node with a matchFields term.
    spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ] = [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node.name]}]}]
    spec["nodeName"] = node.name
    spec["tolerations"] = spec["tolerations"] + [
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
    name = f"{FLANNEL_DAEMONSET}-{random_suffix(rng, 5)}"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "generateName": f"{FLANNEL_DAEMONSET}-",
            "namespace": FLANNEL_NAMESPACE,
            "uid": ids.uid(),
            "resourceVersion": ids.version(),
            "creationTimestamp": facts.created,
            "labels": {
                **FLANNEL_LABELS,
                "controller-revision-hash": revision,
                "pod-template-generation": "1",
            },
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "DaemonSet",
                    "name": FLANNEL_DAEMONSET,
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
                _container_status("kube-flannel", FLANNEL_IMAGE, facts.created, ids)
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
                for init, image in (
                    ("install-cni-plugin", FLANNEL_CNI_IMAGE),
                    ("install-cni", FLANNEL_IMAGE),
                )
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
    uid: str,
    revision: str,
    nodes: int,
    facts: HostFacts,
    ids: _Ids,
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "name": FLANNEL_DAEMONSET,
            "namespace": FLANNEL_NAMESPACE,
            "uid": uid,
            "generation": 1,
            "resourceVersion": ids.version(),
            "creationTimestamp": facts.created,
            "labels": FLANNEL_LABELS,
            "annotations": {"deprecated.daemonset.template.generation": "1"},
        },
        "spec": {
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"app": "flannel", "k8s-app": "flannel"}},
            "template": {
                "metadata": {"creationTimestamp": None, "labels": FLANNEL_LABELS},
                "spec": _flannel_pod_spec(),
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


def configmap_object(facts: HostFacts, ids: _Ids) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": FLANNEL_CONFIGMAP,
            "namespace": FLANNEL_NAMESPACE,
            "uid": ids.uid(),
            "resourceVersion": ids.version(),
            "creationTimestamp": facts.created,
            "labels": FLANNEL_LABELS,
        },
        "data": {"cni-conf.json": CNI_CONF, "net-conf.json": NET_CONF},
    }


def build(state: LabState, facts: HostFacts, rng: random.Random) -> dict[str, dict[str, Any]]:
    """File name -> List document, for every kind the lab writes."""
    ids = _Ids(rng)
    daemonset_uid = ids.uid()
    revision = ids.hex(10)[:10]
    replicaset_uids: dict[str, str] = {}
    nodes = [node_object(node, index, facts, ids) for index, node in enumerate(state.nodes)]
    pods: list[dict[str, Any]] = []
    for node in state.nodes:
        pods.append(flannel_pod_object(node, daemonset_uid, revision, facts, ids, rng))
    for node in state.nodes:
        for slot, pod in enumerate(node.pods):
            rs_uid = replicaset_uids.setdefault(deployment_name(slot), ids.uid())
            pods.append(app_pod_object(pod, slot, node, rs_uid, facts, ids, rng))
    return {
        NODES_FILE: as_list(nodes),
        PODS_FILE: as_list(pods),
        CONFIGMAPS_FILE: as_list([configmap_object(facts, ids)]),
        DAEMONSETS_FILE: as_list(
            [daemonset_object(daemonset_uid, revision, len(nodes), facts, ids)]
        ),
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
