"""The lab's path faults no rule names, and where each kills packets: (node, step).
`needle trace` finds each there (tests/trace/), and `needle analyze` reports each as one
error at that hop (tests/reach/)."""

from __future__ import annotations

PATH_FAULTS = {
    "lab-veth-down": ("lab-node-1", "link"),
    "lab-policy-route-unreachable": ("lab-node-1", "route"),
    "lab-neigh-stale-pod": ("lab-node-1", "neigh"),
    "lab-fdb-static-wrong-port": ("lab-node-1", "fdb"),
    "lab-bridge-ports-isolated": ("lab-node-1", "bridge"),
    "lab-forward-policy-drop": ("lab-node-1", "filter"),
    "lab-vxlan-local-gone": ("lab-node-1", "encap"),
    "lab-vxlan-port-blocked": ("lab-node-1", "filter"),
    "lab-peer-ip-unreachable": ("lab-node-1", "underlay"),
    "lab-vxlan-fdb-wrong-port": ("lab-node-2", "decap"),
    "lab-bridge-mtu-stale": ("lab-node-1", "mtu"),
    "lab-pod-device-forwarding-off": ("lab-node-1", "sysctl"),
    "lab-pod-eth0-down": ("lab-node-1", "link"),
    "lab-pod-ip-duplicate": ("lab-node-1", "deliver"),
    "lab-snat-pod-traffic": ("lab-node-1", "nat"),
}
