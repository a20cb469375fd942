"""What every flannel data plane shares: flanneld's VXLAN programming (the VTEP device,
per-peer route, permanent ARP entry and FDB entry), its node annotations, net-conf.json,
subnet.env, and the upstream kube-flannel DaemonSet objects.

Used by the vxlan, vxlan-directrouting and host-gw backends (canal reuses the VXLAN part).
"""

from __future__ import annotations

import json
from typing import Any

from needle.lab.backends.base import UNDERLAY_DEVICE, Route, SystemObjects
from needle.lab.kube_objects import (
    KubeContext,
    configmap_object,
    daemonset_object,
    daemonset_pod_object,
)
from needle.lab.state import LabState, NodeState
from needle.lab.topology import CLUSTER_CIDR, gateway, vtep_address

VTEP_DEVICE = "flannel.1"
"""flanneld names its VXLAN device flannel.<VNI>."""
VNI = 1
VXLAN_PORT = 8472
"""flannel's default: the Linux kernel's historical VXLAN port, not IANA's 4789."""
VXLAN_OVERHEAD = 50
"""Outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8: flannel subtracts this from the uplink MTU."""

ANNOTATION_PREFIX = "flannel.alpha.coreos.com/"
NAMESPACE = "kube-flannel"
DAEMONSET = "kube-flannel-ds"
CONFIGMAP = "kube-flannel-cfg"
IMAGE = "docker.io/flannel/flannel:v0.25.6"
CNI_IMAGE = "docker.io/flannel/flannel-cni-plugin:v1.5.1-flannel2"
LABELS = {"app": "flannel", "k8s-app": "flannel", "tier": "node"}
CNI_CONF_FILE = "/etc/cni/net.d/10-flannel.conflist"
SUBNET_ENV_FILE = "/run/flannel/subnet.env"

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


def net_conf(backend: dict[str, Any]) -> str:
    """net-conf.json as kube-flannel.yml lays it out, with `backend` as its Backend."""
    lines = [f'    "{key}": {json.dumps(value)}' for key, value in backend.items()]
    return (
        f'{{\n  "Network": "{CLUSTER_CIDR}",\n  "Backend": {{\n' + ",\n".join(lines) + "\n  }\n}\n"
    )


def vtep_annotation(mac: str) -> str:
    """flannel.alpha.coreos.com/backend-data, byte for byte as flanneld writes it."""
    return json.dumps({"VNI": VNI, "VtepMAC": mac}, separators=(",", ":"))


def annotations(node: NodeState, backend_type: str, backend_data: str) -> dict[str, str]:
    """The annotations flanneld (kube subnet manager) writes on its Node."""
    return {
        f"{ANNOTATION_PREFIX}backend-data": backend_data,
        f"{ANNOTATION_PREFIX}backend-type": backend_type,
        f"{ANNOTATION_PREFIX}kube-subnet-manager": "true",
        f"{ANNOTATION_PREFIX}public-ip": node.underlay_ip,
    }


def subnet_env(node: NodeState, mtu: int) -> str:
    """/run/flannel/subnet.env as flanneld writes it (--ip-masq on)."""
    return (
        f"FLANNEL_NETWORK={CLUSTER_CIDR}\n"
        f"FLANNEL_SUBNET={gateway(node.pod_cidr)}/{node.pod_cidr.split('/')[1]}\n"
        f"FLANNEL_MTU={mtu}\n"
        "FLANNEL_IPMASQ=true\n"
    )


# --- VXLAN as flanneld programs it (vxlan_network.go, device.go) ----------------------


def vtep_lines(node: NodeState, mtu: int) -> list[str]:
    """The VXLAN device: VNI 1, port 8472, bound to the uplink, learning off, the pod
    CIDR's network address as a /32."""
    return [
        f"link add {VTEP_DEVICE} address {node.vtep_mac} mtu {mtu} type vxlan id {VNI} "
        f"local {node.underlay_ip} dev {UNDERLAY_DEVICE} dstport {VXLAN_PORT} nolearning",
        f"addr add {vtep_address(node.pod_cidr)}/32 dev {VTEP_DEVICE}",
        f"link set {VTEP_DEVICE} up",
    ]


def vxlan_route(peer: NodeState) -> Route:
    """`<peer CIDR> via <peer VTEP address> dev flannel.1 onlink`."""
    return Route(peer.pod_cidr, VTEP_DEVICE, via=vtep_address(peer.pod_cidr), onlink=True)


def direct_route(peer: NodeState) -> Route:
    """`<peer CIDR> via <peer node IP> dev <uplink>`: host-gw's, and DirectRouting's."""
    return Route(peer.pod_cidr, UNDERLAY_DEVICE, via=peer.underlay_ip)


def vxlan_peer_lines(peer: NodeState) -> list[str]:
    """The route and permanent ARP entry flanneld adds for a VXLAN peer."""
    return [
        f"route add {vxlan_route(peer).spec}",
        f"neigh replace {vtep_address(peer.pod_cidr)} lladdr {peer.vtep_mac} "
        f"dev {VTEP_DEVICE} nud permanent",
    ]


def fdb_line(peer: NodeState) -> str:
    """The FDB entry sending the peer's VTEP MAC to the peer's node IP."""
    return f"fdb replace {peer.vtep_mac} dev {VTEP_DEVICE} dst {peer.underlay_ip} self permanent"


# --- the kube-flannel DaemonSet ---------------------------------------------------------


def system_objects(state: LabState, ctx: KubeContext, backend: dict[str, Any]) -> SystemObjects:
    """kube-flannel.yml's DaemonSet, one pod per node, and its config map with `backend`
    as net-conf.json's Backend."""
    daemonset_uid = ctx.ids.uid()
    revision = ctx.ids.hex(10)
    pods = [
        daemonset_pod_object(
            node,
            daemonset=DAEMONSET,
            namespace=NAMESPACE,
            daemonset_uid=daemonset_uid,
            revision=revision,
            labels=LABELS,
            spec=pod_spec(),
            containers=[("kube-flannel", IMAGE)],
            init_containers=[("install-cni-plugin", CNI_IMAGE), ("install-cni", IMAGE)],
            ctx=ctx,
        )
        for node in state.nodes
    ]
    configmap = configmap_object(
        name=CONFIGMAP,
        namespace=NAMESPACE,
        labels=LABELS,
        data={"cni-conf.json": CNI_CONF, "net-conf.json": net_conf(backend)},
        ctx=ctx,
    )
    daemonset = daemonset_object(
        name=DAEMONSET,
        namespace=NAMESPACE,
        uid=daemonset_uid,
        labels=LABELS,
        selector={"app": "flannel", "k8s-app": "flannel"},
        spec=pod_spec(),
        nodes=len(state.nodes),
        ctx=ctx,
    )
    return SystemObjects(pods=pods, configmaps=[configmap], daemonsets=[daemonset])


def pod_spec() -> dict[str, Any]:
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
                "image": IMAGE,
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
                "image": CNI_IMAGE,
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
                "image": IMAGE,
                "command": ["cp"],
                "args": [
                    "-f",
                    "/etc/kube-flannel/cni-conf.json",
                    CNI_CONF_FILE,
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
            {"name": "flannel-cfg", "configMap": {"name": CONFIGMAP, "defaultMode": 420}},
            {
                "name": "xtables-lock",
                "hostPath": {"path": "/run/xtables.lock", "type": "FileOrCreate"},
            },
        ],
    }
