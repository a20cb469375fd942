"""The short-lived debug pod that runs the node script on one node, and its namespace.

Pure functions that return manifests (plain dicts, as `kubectl apply` would take them);
creating and deleting them is needle.collector.kube.pods' job.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from needle.collector.errors import CollectorError

# nicolaka/netshoot is the de-facto network-debugging image: Alpine with iproute2,
# tcpdump, ethtool, util-linux (nsenter, setsid), bridge-utils, iptables/nftables and
# busybox, for amd64 and arm64. Pinned to a tag so every node runs the same tools and a
# collection can be repeated; air-gapped sites mirror it and pass --image.
DEFAULT_IMAGE = "nicolaka/netshoot:v0.13"
DEFAULT_NAMESPACE = "needle"

# Labels that find every pod needle made (`needle cleanup`) and the pods of one run.
APP_LABEL = "app.kubernetes.io/name"
APP_VALUE = "needle"
RUN_LABEL = "needle.io/run"
NODE_ANNOTATION = "needle.io/node"
COMPONENT_LABELS = {
    APP_LABEL: APP_VALUE,
    "app.kubernetes.io/component": "node-collector",
    "app.kubernetes.io/managed-by": "needle",
}
ALL_RUNS_SELECTOR = f"{APP_LABEL}={APP_VALUE}"
# Pod Security admission: the debug pod is privileged with host namespaces, which only
# the `privileged` level admits. Set on a namespace needle creates, never on one it finds.
PRIVILEGED_NAMESPACE_LABELS = {
    "pod-security.kubernetes.io/enforce": "privileged",
    "pod-security.kubernetes.io/audit": "privileged",
    "pod-security.kubernetes.io/warn": "privileged",
}
CONTAINER = "needle"
# Where the node script's wrapper leaves its process id for a later stop request.
PID_FILE = "/tmp/needle-node.pid"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_NOT_IN_NAME = re.compile(r"[^a-z0-9-]+")


def new_run_id() -> str:
    """Six hex digits: short in pod names, and two runs practically never collide."""
    return secrets.token_hex(3)


def check_namespace(name: str) -> str:
    if len(name) > 63 or not _DNS_LABEL.match(name):
        raise CollectorError(
            f"--namespace {name!r} is not a valid namespace name "
            "(lower-case letters, digits and '-', at most 63)"
        )
    return name


def pod_name(run_id: str, index: int, node: str) -> str:
    """needle-<run>-<index>-<node>, cut to 63 characters: unique through the index,
    readable through the node name (`kubectl get pods` shows which node it serves)."""
    slug = _NOT_IN_NAME.sub("-", node.lower()).strip("-")
    return f"needle-{run_id}-{index}-{slug}"[:63].rstrip("-")


@dataclass(frozen=True)
class PodSettings:
    namespace: str
    image: str
    run_id: str
    lifetime_s: int
    """activeDeadlineSeconds, and how long the container sleeps: a pod whose needle
    died before deleting it ends by itself."""


def namespace_manifest(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/managed-by": "needle", **PRIVILEGED_NAMESPACE_LABELS},
        },
    }


def _host_path(
    name: str, path: str, mount: str, kind: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    volume = {"name": name, "hostPath": {"path": path, "type": kind}}
    # HostToContainer: network namespaces bind-mounted on the host after the pod started
    # (a pod scheduled meanwhile) still show up inside.
    mount_spec = {
        "name": name,
        "mountPath": mount,
        "readOnly": True,
        "mountPropagation": "HostToContainer",
    }
    return volume, mount_spec


def pod_manifest(settings: PodSettings, name: str, node: str) -> dict[str, Any]:
    """A privileged pod pinned to `node` in the host's network and PID namespaces."""
    volumes_and_mounts = [
        # /run carries /run/netns (named pod namespaces), /run/flannel/subnet.env and,
        # through the image's /var/run -> /run link, /var/run/docker/netns.
        _host_path("host-run", "/run", "/run", "Directory"),
        # the CNI configuration the script copies (absent only on a broken node; then an
        # empty directory is made, which is what the script would have found anyway)
        _host_path("host-cni-conf", "/etc/cni/net.d", "/etc/cni/net.d", "DirectoryOrCreate"),
    ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": settings.namespace,
            "labels": {**COMPONENT_LABELS, RUN_LABEL: settings.run_id},
            # node names may be longer than a label value may be
            "annotations": {NODE_ANNOTATION: node},
        },
        "spec": {
            # set directly, so no scheduler is involved: the pod lands on that node even
            # when it is cordoned, full of pending pods or tainted
            "nodeName": node,
            "hostNetwork": True,
            "hostPID": True,
            "dnsPolicy": "ClusterFirstWithHostNet",
            "restartPolicy": "Never",
            "activeDeadlineSeconds": settings.lifetime_s,
            "terminationGracePeriodSeconds": 2,
            "tolerations": [{"operator": "Exists"}],
            # the script never talks to the API: no token in a privileged pod
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "containers": [
                {
                    "name": CONTAINER,
                    "image": settings.image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["sleep", str(settings.lifetime_s)],
                    # root whatever the image says: a privileged container whose
                    # process is not root has no effective capabilities, so ip netns,
                    # nsenter and tcpdump would fail and the bundle be quietly partial
                    "securityContext": {"privileged": True, "runAsUser": 0},
                    "volumeMounts": [mount for _volume, mount in volumes_and_mounts],
                }
            ],
            "volumes": [volume for volume, _mount in volumes_and_mounts],
        },
    }
