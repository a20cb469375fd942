"""Canal as RKE2 ships it: Calico's CNI plugin attaches pods, flannel VXLAN joins nodes.

No bridge. Each pod's host-side veth is `cali` + the first 11 hex digits of
sha1("<namespace>.<pod>") (Calico's VethNameForWorkload), with no address and no master,
MAC ee:ee:ee:ee:ee:ee, proxy_arp=1, forwarding=1 and proxy_delay=0; the node routes
`<pod IP> dev cali... scope link`. In the pod, eth0 holds `<pod IP>/32` with routes
`169.254.1.1 dev eth0 scope link` and `default via 169.254.1.1 dev eth0` (the host answers
ARP for 169.254.1.1 by proxy). Between nodes, flannel VXLAN exactly as the vxlan backend.
Pod MTU = uplink - 50. Objects: DaemonSet rke2-canal and config map rke2-canal-config
(net-conf.json, cni_network_config) in kube-system; the node file
/etc/cni/net.d/10-canal.conflist.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, ClassVar

from needle.lab import netns
from needle.lab.backends import bridge, flannel
from needle.lab.backends.base import (
    UNDERLAY_DEVICE,
    Backend,
    Fault,
    Route,
    SystemObjects,
    Target,
)
from needle.lab.batches import Batch
from needle.lab.kube_objects import (
    KubeContext,
    configmap_object,
    daemonset_object,
    daemonset_pod_object,
)
from needle.lab.state import FaultRecord, LabState, NodeState, PodState

VETH_PREFIX = "cali"
HOST_VETH_MAC = "ee:ee:ee:ee:ee:ee"
"""Calico gives every host-side veth this MAC; the pod only ever talks to it."""
LINK_LOCAL_GATEWAY = "169.254.1.1"
"""The pods' default gateway: no one has it, the host answers ARP for it by proxy."""

NAMESPACE = "kube-system"
DAEMONSET = "rke2-canal"
CONFIGMAP = "rke2-canal-config"
CALICO_IMAGE = "docker.io/rancher/hardened-calico:v3.28.1-build20240806"
FLANNEL_IMAGE = "docker.io/rancher/hardened-flannel:v0.25.5-build20240801"
LABELS = {"k8s-app": "canal"}
CNI_CONF_NAME = "10-canal.conflist"
CNI_CONF_FILE = f"/etc/cni/net.d/{CNI_CONF_NAME}"
KUBECONFIG_FILE = "/etc/cni/net.d/calico-kubeconfig"

# The template in rke2-canal-config; calico's install-cni fills in the __X__ values.
CNI_NETWORK_CONFIG = """{
  "name": "k8s-pod-network",
  "cniVersion": "0.3.1",
  "plugins": [
    {
      "type": "calico",
      "log_level": "info",
      "datastore_type": "kubernetes",
      "nodename": "__KUBERNETES_NODE_NAME__",
      "mtu": __CNI_MTU__,
      "ipam": {
          "type": "host-local",
          "subnet": "usePodCidr"
      },
      "policy": {
          "type": "k8s"
      },
      "kubernetes": {
          "kubeconfig": "__KUBECONFIG_FILEPATH__"
      }
    },
    {
      "type": "portmap",
      "snat": true,
      "capabilities": {"portMappings": true}
    },
    {
      "type": "bandwidth",
      "capabilities": {"bandwidth": true}
    }
  ]
}"""


def host_veth_name(pod: PodState) -> str:
    """Calico's name for a pod's host-side veth (cni-plugin VethNameForWorkload)."""
    digest = hashlib.sha1(f"{pod.namespace}.{pod.name}".encode()).hexdigest()  # noqa: S324 - Calico's naming, not security
    return f"{VETH_PREFIX}{digest[:11]}"


def pod_route(pod: PodState) -> Route:
    return Route(pod.ip, pod.host_veth, scope_link=True)


def conflist(node: NodeState, mtu: int) -> str:
    """10-canal.conflist as install-cni writes it from the config map's template."""
    text = (
        CNI_NETWORK_CONFIG.replace("__KUBERNETES_NODE_NAME__", node.name)
        .replace("__CNI_MTU__", str(mtu))
        .replace("__KUBECONFIG_FILEPATH__", KUBECONFIG_FILE)
    )
    return json.dumps(json.loads(text), indent=2) + "\n"


class Canal(Backend):
    name: ClassVar[str] = "canal"
    title: ClassVar[str] = "Canal (Calico CNI, flannel VXLAN)"
    overhead: ClassVar[int] = flannel.VXLAN_OVERHEAD
    build_step: ClassVar[str] = (
        f"build nodes ({UNDERLAY_DEVICE}, {flannel.VTEP_DEVICE}, {VETH_PREFIX} veths, routes, "
        "neighbours)"
    )
    finish_step: ClassVar[str] = "program flannel FDB, sysctls and pods"
    pod_mtu_devices: ClassVar[str] = f"its {VETH_PREFIX} veth and {flannel.VTEP_DEVICE}"
    pod_cidr_users: ClassVar[str] = "its pods' addresses"
    orphan_remains: ClassVar[str] = "stays on the node with its /32 route"

    def adjust_plan(self, nodes: list[NodeState]) -> None:
        for node in nodes:
            for pod in node.pods:
                pod.host_veth = host_veth_name(pod)

    def node(self, node: NodeState, peers: list[NodeState], overlay_mtu: int) -> Batch:
        lines = bridge.uplink_lines(node) + flannel.vtep_lines(node, overlay_mtu)
        for pod in node.pods:
            lines += [
                f"link add {pod.host_veth} address {HOST_VETH_MAC} mtu {overlay_mtu} type veth "
                f"peer name eth0 mtu {overlay_mtu} netns {pod.netns}",
                f"link set {pod.host_veth} up",
                f"route add {pod_route(pod).spec}",
            ]
        for peer in peers:
            lines += flannel.vxlan_peer_lines(peer)
        return Batch("ip", node.netns, tuple(lines), f"node {node.name}")

    def node_fdb(self, node: NodeState, peers: list[NodeState]) -> Batch | None:
        if not peers:
            return None
        lines = tuple(flannel.fdb_line(peer) for peer in peers)
        return Batch("bridge", node.netns, lines, f"flannel FDB of node {node.name}")

    def node_sysctls(self, node: NodeState) -> dict[str, str]:
        # What Calico's CNI plugin sets on each host veth (configureSysctls).
        sysctls = {"net.ipv4.ip_forward": "1"}
        for pod in node.pods:
            sysctls[f"net.ipv4.conf.{pod.host_veth}.proxy_arp"] = "1"
            sysctls[f"net.ipv4.neigh.{pod.host_veth}.proxy_delay"] = "0"
            sysctls[f"net.ipv4.conf.{pod.host_veth}.forwarding"] = "1"
        return sysctls

    def pods(self, node: NodeState) -> list[Batch]:
        return [
            Batch(
                "ip",
                pod.netns,
                (
                    "link set lo up",
                    f"addr add {pod.ip}/32 dev eth0",
                    "link set eth0 up",
                    f"route add {LINK_LOCAL_GATEWAY} dev eth0 scope link",
                    f"route add default via {LINK_LOCAL_GATEWAY} dev eth0",
                ),
                f"pod {pod.ref} on {node.name}",
            )
            for pod in node.pods
        ]

    def peer_route(self, node: NodeState, peer: NodeState) -> Route | None:
        return flannel.vxlan_route(peer)

    def node_annotations(self, node: NodeState) -> dict[str, str]:
        # Canal's flannel runs with the kube subnet manager: the same annotations.
        return flannel.annotations(node, "vxlan", flannel.vtep_annotation(node.vtep_mac))

    def system_objects(self, state: LabState, kube: KubeContext) -> SystemObjects:
        daemonset_uid = kube.ids.uid()
        revision = kube.ids.hex(10)
        pods = [
            daemonset_pod_object(
                node,
                daemonset=DAEMONSET,
                namespace=NAMESPACE,
                daemonset_uid=daemonset_uid,
                revision=revision,
                labels=LABELS,
                spec=_pod_spec(),
                containers=[("calico-node", CALICO_IMAGE), ("kube-flannel", FLANNEL_IMAGE)],
                init_containers=[("install-cni", CALICO_IMAGE), ("flexvol-driver", CALICO_IMAGE)],
                ctx=kube,
            )
            for node in state.nodes
        ]
        configmap = configmap_object(
            name=CONFIGMAP,
            namespace=NAMESPACE,
            labels={"app.kubernetes.io/managed-by": "Helm"},
            annotations={
                "meta.helm.sh/release-name": DAEMONSET,
                "meta.helm.sh/release-namespace": NAMESPACE,
            },
            data={
                "typha_service_name": "none",
                "canal_iface": "",
                "masquerade": "true",
                "veth_mtu": str(state.overlay_mtu),
                "cni_network_config": CNI_NETWORK_CONFIG,
                "net-conf.json": flannel.net_conf({"Type": "vxlan"}),
            },
            ctx=kube,
        )
        daemonset = daemonset_object(
            name=DAEMONSET,
            namespace=NAMESPACE,
            uid=daemonset_uid,
            labels={**LABELS, "app.kubernetes.io/managed-by": "Helm"},
            selector=LABELS,
            spec=_pod_spec(),
            nodes=len(state.nodes),
            ctx=kube,
            annotations={
                "meta.helm.sh/release-name": DAEMONSET,
                "meta.helm.sh/release-namespace": NAMESPACE,
            },
        )
        return SystemObjects(pods=pods, configmaps=[configmap], daemonsets=[daemonset])

    def node_files(self, state: LabState, node: NodeState) -> dict[str, str]:
        return {
            CNI_CONF_FILE: conflist(node, state.overlay_mtu),
            flannel.SUBNET_ENV_FILE: flannel.subnet_env(node, state.overlay_mtu),
        }

    def faults(self) -> list[Fault]:
        return [POD_ROUTE_MISSING, PROXY_ARP_OFF]


def _env_from_config(name: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"configMapKeyRef": {"name": CONFIGMAP, "key": key}}}


def _env_field(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}}


def _pod_spec() -> dict[str, Any]:
    """The pod template of the rke2-canal chart's DaemonSet (the fields that matter)."""
    return {
        "containers": [
            {
                "name": "calico-node",
                "image": CALICO_IMAGE,
                "env": [
                    {"name": "DATASTORE_TYPE", "value": "kubernetes"},
                    {"name": "USE_POD_CIDR", "value": "true"},
                    {"name": "WAIT_FOR_DATASTORE", "value": "true"},
                    _env_field("NODENAME", "spec.nodeName"),
                    {"name": "CALICO_NETWORKING_BACKEND", "value": "none"},
                    {"name": "CLUSTER_TYPE", "value": "k8s,canal"},
                    {"name": "FELIX_IPTABLESREFRESHINTERVAL", "value": "60"},
                    {"name": "IP", "value": ""},
                    {"name": "CALICO_DISABLE_FILE_LOGGING", "value": "true"},
                    {"name": "FELIX_DEFAULTENDPOINTTOHOSTACTION", "value": "ACCEPT"},
                    {"name": "FELIX_IPV6SUPPORT", "value": "false"},
                    {"name": "FELIX_HEALTHENABLED", "value": "true"},
                    {"name": "FELIX_IPTABLESBACKEND", "value": "auto"},
                ],
                "securityContext": {"privileged": True},
                "volumeMounts": [
                    {"name": "lib-modules", "mountPath": "/lib/modules", "readOnly": True},
                    {"name": "xtables-lock", "mountPath": "/run/xtables.lock"},
                    {"name": "var-run-calico", "mountPath": "/var/run/calico"},
                    {"name": "var-lib-calico", "mountPath": "/var/lib/calico"},
                ],
            },
            {
                "name": "kube-flannel",
                "image": FLANNEL_IMAGE,
                "command": [
                    "/opt/bin/flanneld",
                    "--ip-masq",
                    "--kube-subnet-mgr",
                    "--iptables-forward-rules=false",
                ],
                "env": [
                    _env_field("POD_NAME", "metadata.name"),
                    _env_field("POD_NAMESPACE", "metadata.namespace"),
                    _env_from_config("FLANNELD_IFACE", "canal_iface"),
                    _env_from_config("FLANNELD_IP_MASQ", "masquerade"),
                ],
                "securityContext": {"privileged": False, "capabilities": {"add": ["NET_ADMIN"]}},
                "volumeMounts": [
                    {"name": "xtables-lock", "mountPath": "/run/xtables.lock"},
                    {"name": "flannel-cfg", "mountPath": "/etc/kube-flannel/"},
                ],
            },
        ],
        "hostNetwork": True,
        "initContainers": [
            {
                "name": "install-cni",
                "image": CALICO_IMAGE,
                "command": ["/opt/cni/bin/install"],
                "env": [
                    {"name": "CNI_CONF_NAME", "value": CNI_CONF_NAME},
                    _env_from_config("CNI_NETWORK_CONFIG", "cni_network_config"),
                    _env_field("KUBERNETES_NODE_NAME", "spec.nodeName"),
                    _env_from_config("CNI_MTU", "veth_mtu"),
                    {"name": "SLEEP", "value": "false"},
                ],
                "securityContext": {"privileged": True},
                "volumeMounts": [
                    {"name": "cni-bin-dir", "mountPath": "/host/opt/cni/bin"},
                    {"name": "cni-net-dir", "mountPath": "/host/etc/cni/net.d"},
                ],
            },
            {
                "name": "flexvol-driver",
                "image": CALICO_IMAGE,
                "command": ["sh", "-c", "cp -f /usr/local/bin/flexvol.sh /host/driver/uds"],
                "securityContext": {"privileged": True},
                "volumeMounts": [{"name": "flexvol-driver-host", "mountPath": "/host/driver"}],
            },
        ],
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "priorityClassName": "system-node-critical",
        "restartPolicy": "Always",
        "serviceAccount": "canal",
        "serviceAccountName": "canal",
        "terminationGracePeriodSeconds": 0,
        "tolerations": [
            {"effect": "NoSchedule", "operator": "Exists"},
            {"key": "CriticalAddonsOnly", "operator": "Exists"},
            {"effect": "NoExecute", "operator": "Exists"},
        ],
        "volumes": [
            {"name": "lib-modules", "hostPath": {"path": "/lib/modules", "type": ""}},
            {"name": "var-run-calico", "hostPath": {"path": "/var/run/calico", "type": ""}},
            {"name": "var-lib-calico", "hostPath": {"path": "/var/lib/calico", "type": ""}},
            {
                "name": "xtables-lock",
                "hostPath": {"path": "/run/xtables.lock", "type": "FileOrCreate"},
            },
            {"name": "flannel-cfg", "configMap": {"name": CONFIGMAP, "defaultMode": 420}},
            {"name": "cni-bin-dir", "hostPath": {"path": "/opt/cni/bin", "type": ""}},
            {"name": "cni-net-dir", "hostPath": {"path": "/etc/cni/net.d", "type": ""}},
            {
                "name": "flexvol-driver-host",
                "hostPath": {
                    "path": "/var/lib/kubelet/volumeplugins/nodeagent~uds",
                    "type": "DirectoryOrCreate",
                },
            },
        ],
    }


def pod_route_missing(target: Target) -> FaultRecord:
    """The node lost a pod's /32 route (as when the CNI ADD was interrupted after creating
    the veth, or something flushed routes): traffic to that pod follows the default route."""
    node, pod = target.node, target.pod("pod-route-missing")
    route = pod_route(pod)
    what = f"fault pod-route-missing on {node.name}"
    netns.run_batch(Batch("ip", node.netns, (f"route del {route.spec}",), what))
    return FaultRecord(
        fault="pod-route-missing",
        message=f"{node.name}: route `{route.spec}` to pod {pod.ref} deleted",
        node=node.name,
        netns=node.netns,
        pod=pod.ref,
        interface=pod.host_veth,
        cidr=f"{pod.ip}/32",
        before=route.spec,
        after=None,
    )


def proxy_arp_off(target: Target) -> FaultRecord:
    """proxy_arp off on a pod's host veth: nobody answers the pod's ARP for 169.254.1.1, so
    the pod cannot send (shown at once on a pod whose neighbour cache is still empty)."""
    node, pod = target.node, target.pod("proxy-arp-off")
    key = f"net.ipv4.conf.{pod.host_veth}.proxy_arp"
    netns.set_sysctls(node.netns, {key: "0"}, {})
    return FaultRecord(
        fault="proxy-arp-off",
        message=f"{node.name}: {key} set from 1 to 0 (host veth of pod {pod.ref})",
        node=node.name,
        netns=node.netns,
        pod=pod.ref,
        interface=pod.host_veth,
        before="1",
        after="0",
    )


POD_ROUTE_MISSING = Fault(
    "pod-route-missing",
    "a node lacks the /32 route to one of its pods",
    pod_route_missing,
    ("canal",),
)
PROXY_ARP_OFF = Fault(
    "proxy-arp-off",
    "proxy ARP is off on a pod's host veth (no answer for its gateway)",
    proxy_arp_off,
    ("canal",),
)
