"""Which Kubernetes objects a bundle keeps: networking evidence, never Secrets."""

from __future__ import annotations

import re

# The bundle's cluster/ files, by the kind of object they hold.
RESOURCE_BY_KIND = {
    "Node": "nodes",
    "Pod": "pods",
    "ConfigMap": "configmaps",
    "DaemonSet": "daemonsets",
}
# Config maps and daemonsets are kept only when they configure pod networking; a dump
# of a whole namespace must not carry application configuration into a support ticket.
_NETWORKING_NAME = re.compile(
    r"flannel|kube-proxy|calico|cilium|canal|weave|multus|antrea|kube-router|cni|coredns",
    re.IGNORECASE,
)


def keeps(kind: str, name: str) -> bool:
    if kind in {"Node", "Pod"}:
        return True
    if kind in {"ConfigMap", "DaemonSet"}:
        return bool(_NETWORKING_NAME.search(name))
    return False
