"""Faults that break pod traffic where none of needle's rules looks: one (at least) per step
of `needle trace` (link, route, neigh, fdb, bridge, filter, nat, encap, underlay, decap,
mtu, sysctl, deliver).

Each mirrors a real incident (the message says which tool or mistake leaves it), changes
one node (or, for `underlay-port-mtu`, the node's port on the underlay switch) and says
exactly what it changed. They live with the backends because they name devices and the
VXLAN port; each declares the data planes it makes sense on.
"""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
import time
import uuid

from needle.lab import kube_objects, netns
from needle.lab.backends import bridge, flannel
from needle.lab.backends.base import UNDERLAY_DEVICE, Fault, Target
from needle.lab.batches import Batch
from needle.lab.errors import LabError
from needle.lab.state import FaultRecord, PodState, save
from needle.lab.topology import (
    CLUSTER_CIDR,
    UNDERLAY_BRIDGE,
    UNDERLAY_GATEWAY,
    UNDERLAY_PREFIX,
    UNDERLAY_PREFIX_LENGTH,
    deployment_name,
    gateway,
    pod_netns,
)

BRIDGED = ("vxlan", "vxlan-directrouting", "host-gw")
"""Backends whose pods hang off the CNI bridge."""
VXLAN = ("vxlan", "canal")
"""Backends whose pod traffic between the lab's nodes is VXLAN-encapsulated."""
ALL = ("vxlan", "vxlan-directrouting", "host-gw", "canal")

VPN_TABLE = 52
VPN_RULE_PRIORITY = 5270
"""Tailscale's routing table and the priority of its `ip rule`: ahead of table main
(32766), as every VPN agent's policy routing is."""
EGRESS_VIP = f"{UNDERLAY_PREFIX}.250"
"""An egress address no lab node holds (node IPs stop at .210)."""
RENUMBERED_IP = f"{UNDERLAY_PREFIX}.240"
"""The node's new uplink address after its DHCP lease changed (no lab node has it)."""
IANA_VXLAN_PORT = 4789
"""IANA's VXLAN port (Windows flannel's, and most guides'), not flannel's Linux default."""
ARP_LOCKTIME_S = 1.2
"""Past net.ipv4.neigh.*.locktime (1 s): until then an entry keeps its MAC against
another's ARP."""
SWITCH_MTU_DEFICIT = 100
"""How far below the nodes' MTU the switch port sits (1400 on a 1500 underlay)."""


def _ip(netns_name: str, what: str, *lines: str) -> None:
    netns.run_batch(Batch("ip", netns_name, lines, what))


def _bridge(netns_name: str, what: str, *lines: str) -> None:
    netns.run_batch(Batch("bridge", netns_name, lines, what))


def _mac(netns_name: str, device: str) -> str:
    """A device's MAC address as the kernel reports it."""
    return str(_link(netns_name, device)["address"])


def _link(netns_name: str, device: str) -> dict[str, object]:
    """A device as `ip -j link show` reports it."""
    found, complaint = bridge.shown_link(netns_name, device)
    if found is None:
        raise LabError(f"cannot read {device} in {netns_name}: {complaint}")
    return found


def pod_gateway_device(target: Target, pod: PodState) -> str:
    """The node's device that holds the pod's neighbour entry and receives what the pod
    sends: the CNI bridge, or (Canal) the pod's own host veth."""
    return pod.host_veth if target.state.backend == "canal" else bridge.BRIDGE


def mac_from_ip(ip: str) -> str:
    """0a:58 + the IPv4 address: the MAC older CNI bridge plugins gave every pod
    (ip.SetHWAddrByIP), so the pod that had this IP before had this MAC."""
    return "0a:58:" + ":".join(f"{int(octet):02x}" for octet in ip.split("."))


# --- link -------------------------------------------------------------------------------


def veth_down(target: Target) -> FaultRecord:
    node, pod = target.node, target.pod("veth-down")
    _ip(node.netns, f"fault veth-down on {node.name}", f"link set dev {pod.host_veth} down")
    return FaultRecord(
        fault="veth-down",
        message=(
            f"{node.name}: host veth {pod.host_veth} of pod {pod.ref} set administratively "
            f"down (its {bridge.BRIDGE} port goes disabled); the pod, its eth0 and the API are "
            "unchanged, as a CNI DEL that ran `ip link set down` and died before deleting the "
            "veth leaves it"
        ),
        node=node.name,
        netns=node.netns,
        pod=pod.ref,
        interface=pod.host_veth,
        before="up",
        after="down",
    )


# --- route ------------------------------------------------------------------------------


def policy_route_unreachable(target: Target) -> FaultRecord:
    node, peer = target.node, target.peer("policy-route-unreachable")
    rule = f"pref {VPN_RULE_PRIORITY} lookup {VPN_TABLE}"
    route = f"unreachable {peer.pod_cidr} table {VPN_TABLE}"
    _ip(
        node.netns,
        f"fault policy-route-unreachable on {node.name}",
        f"route add {route}",
        f"rule add {rule}",
    )
    return FaultRecord(
        fault="policy-route-unreachable",
        message=(
            f"{node.name}: `ip rule {rule}` and `{route}` added; table main still routes "
            f"{peer.name}'s pod CIDR {peer.pod_cidr} as flannel does, but the rule is "
            f"consulted first (priority {VPN_RULE_PRIORITY} < main's 32766), as a VPN agent's "
            f"policy routing (Tailscale's table {VPN_TABLE}) that claimed an overlapping "
            "subnet leaves it"
        ),
        node=node.name,
        peer_node=peer.name,
        netns=node.netns,
        cidr=peer.pod_cidr,
        before=None,
        after=f"rule {rule}; {route}",
    )


# --- neigh ------------------------------------------------------------------------------


def neigh_stale_pod(target: Target) -> FaultRecord:
    node, pod = target.node, target.pod("neigh-stale-pod")
    device = pod_gateway_device(target, pod)
    real = _mac(pod.netns, "eth0")
    stale = mac_from_ip(pod.ip)
    if stale == real:  # never with the lab's random MACs, but then the fault would be none
        stale = "0a:58:00:00:00:01"
    _ip(
        node.netns,
        f"fault neigh-stale-pod on {node.name}",
        f"neigh replace {pod.ip} lladdr {stale} dev {device} nud permanent",
    )
    return FaultRecord(
        fault="neigh-stale-pod",
        message=(
            f"{node.name}: permanent neighbour entry `{pod.ip} lladdr {stale} dev {device}` "
            f"for pod {pod.ref}, whose eth0 has {real}: the MAC an older CNI bridge plugin "
            "gave the pod that had this IP before, pinned by hand (`ip neigh replace ... nud "
            "permanent`) and outliving it when host-local IPAM handed the IP to a new pod"
        ),
        node=node.name,
        netns=node.netns,
        pod=pod.ref,
        interface=device,
        cidr=f"{pod.ip}/32",
        before=real,
        after=stale,
    )


# --- fdb --------------------------------------------------------------------------------


def fdb_static_wrong_port(target: Target) -> FaultRecord:
    node, pod = target.node, target.pod("fdb-static-wrong-port")
    if len(node.pods) < 2:
        raise LabError(f"fault fdb-static-wrong-port needs 2 pods on {node.name}")
    other = node.pods[1]
    mac = _mac(pod.netns, "eth0")
    _bridge(
        node.netns,
        f"fault fdb-static-wrong-port on {node.name}",
        f"fdb replace {mac} dev {other.host_veth} master static sticky",
    )
    return FaultRecord(
        fault="fdb-static-wrong-port",
        message=(
            f"{node.name}: static, sticky FDB entry on {bridge.BRIDGE} sends pod {pod.ref}'s "
            f"MAC {mac} to port {other.host_veth} (pod {other.ref}'s) instead of "
            f"{pod.host_veth}, as a port-security script pinning MACs to ports (`bridge fdb "
            "replace ... master static sticky`) leaves it after pods move; learning cannot "
            "correct a sticky entry"
        ),
        node=node.name,
        netns=node.netns,
        pod=pod.ref,
        interface=other.host_veth,
        before=pod.host_veth,
        after=other.host_veth,
    )


# --- bridge -----------------------------------------------------------------------------


def bridge_ports_isolated(target: Target) -> FaultRecord:
    node = target.node
    if len(node.pods) < 2:
        raise LabError(f"fault bridge-ports-isolated needs 2 pods on {node.name}")
    veths = [pod.host_veth for pod in node.pods]
    _bridge(
        node.netns,
        f"fault bridge-ports-isolated on {node.name}",
        *(f"link set dev {veth} isolated on" for veth in veths),
    )
    return FaultRecord(
        fault="bridge-ports-isolated",
        message=(
            f"{node.name}: {bridge.BRIDGE} ports {', '.join(veths)} (all its pods') set "
            "`isolated on`: the bridge forwards nothing from one isolated port to another, so "
            "the node's pods cannot reach each other, while through the node (other nodes, "
            "the node itself) they still can; as a tenant-isolation hook for a VM host's "
            f"bridges, applied to every veth by a glob, leaves {bridge.BRIDGE}"
        ),
        node=node.name,
        netns=node.netns,
        interface=bridge.BRIDGE,
        before="isolated off",
        after="isolated on",
    )


# --- filter -----------------------------------------------------------------------------

# What dockerd (iptables: true) writes in the filter table: FORWARD policy DROP, and
# accept rules for its own bridge only.
DOCKER_FILTER = """*filter
:FORWARD DROP [0:0]
:DOCKER - [0:0]
:DOCKER-ISOLATION-STAGE-1 - [0:0]
:DOCKER-ISOLATION-STAGE-2 - [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-ISOLATION-STAGE-1
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o docker0 -j DOCKER
-A FORWARD -i docker0 ! -o docker0 -j ACCEPT
-A FORWARD -i docker0 -o docker0 -j ACCEPT
-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2
-A DOCKER-ISOLATION-STAGE-1 -j RETURN
-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP
-A DOCKER-ISOLATION-STAGE-2 -j RETURN
-A DOCKER-USER -j RETURN
COMMIT
"""


def forward_policy_drop(target: Target) -> FaultRecord:
    node = target.node
    netns.iptables_restore(node.netns, DOCKER_FILTER, f"fault forward-policy-drop on {node.name}")
    return FaultRecord(
        fault="forward-policy-drop",
        message=(
            f"{node.name}: iptables filter FORWARD policy set from ACCEPT to DROP, with "
            "Docker's chains (DOCKER, DOCKER-USER, DOCKER-ISOLATION-STAGE-1/2) and FORWARD "
            "rules that accept only docker0's traffic (no docker0 device is made): what "
            "installing Docker on a node does, where nothing accepts the pod network's "
            "forwarded traffic (flanneld with --iptables-forward-rules=false, as Canal runs it)"
        ),
        node=node.name,
        netns=node.netns,
        interface=None,
        before="FORWARD ACCEPT",
        after="FORWARD DROP",
    )


# --- nat --------------------------------------------------------------------------------


def snat_pod_traffic(target: Target) -> FaultRecord:
    node = target.node
    rule = (
        f"-A POSTROUTING -s {node.pod_cidr} ! -d {node.pod_cidr} -j SNAT --to-source {EGRESS_VIP}"
    )
    netns.iptables_restore(
        node.netns, f"*nat\n{rule}\nCOMMIT\n", f"fault snat-pod-traffic on {node.name}"
    )
    return FaultRecord(
        fault="snat-pod-traffic",
        message=(
            f"{node.name}: iptables nat rule `{rule}` added: an egress-IP rule that exempts "
            "only the node's own pod CIDR, not the cluster's, so pod traffic to other nodes' "
            f"pods leaves with source {EGRESS_VIP} and their replies go to that address "
            "(held by no node here; on a real cluster the egress node, which has no "
            "conntrack entry for them), never back to this node"
        ),
        node=node.name,
        netns=node.netns,
        cidr=node.pod_cidr,
        before=None,
        after=rule,
    )


# --- encap ------------------------------------------------------------------------------


def vxlan_local_gone(target: Target) -> FaultRecord:
    node = target.node
    old = node.underlay_ip
    prefix = f"/{UNDERLAY_PREFIX_LENGTH}"
    _ip(
        node.netns,
        f"fault vxlan-local-gone on {node.name}",
        f"addr del {old}{prefix} dev {UNDERLAY_DEVICE}",
        f"addr add {RENUMBERED_IP}{prefix} brd {UNDERLAY_PREFIX}.255 dev {UNDERLAY_DEVICE}",
        # Removing the subnet's only address takes the default route with it; the DHCP
        # client puts it back with the new lease.
        f"route replace default via {UNDERLAY_GATEWAY} dev {UNDERLAY_DEVICE}",
    )
    return FaultRecord(
        fault="vxlan-local-gone",
        message=(
            f"{node.name}: {UNDERLAY_DEVICE} address changed from {old}{prefix} to "
            f"{RENUMBERED_IP}{prefix} (a DHCP lease renewed with a new address) and flanneld "
            f"not restarted: {flannel.VTEP_DEVICE} keeps `local {old}`, an address the node no "
            "longer has, so it cannot encapsulate; the Node's InternalIP and public-ip "
            f"annotation and every peer's FDB entry still say {old}"
        ),
        node=node.name,
        netns=node.netns,
        interface=UNDERLAY_DEVICE,
        before=old,
        after=RENUMBERED_IP,
    )


# --- underlay ---------------------------------------------------------------------------


def vxlan_port_blocked(target: Target) -> FaultRecord:
    node, peer = target.node, target.peer("vxlan-port-blocked")
    allowed = [other for other in target.state.nodes if other is not node and other is not peer]
    port = flannel.VXLAN_PORT
    lines = [
        f"-A INPUT -s {other.underlay_ip}/32 -p udp --dport {port} -j ACCEPT" for other in allowed
    ]
    lines.append(f"-A INPUT -p udp --dport {port} -j DROP")
    netns.iptables_restore(
        node.netns,
        "*filter\n" + "\n".join(lines) + "\nCOMMIT\n",
        f"fault vxlan-port-blocked on {node.name}",
    )
    listed = ", ".join(other.underlay_ip for other in allowed) or "none"
    return FaultRecord(
        fault="vxlan-port-blocked",
        message=(
            f"{node.name}: iptables INPUT accepts UDP {port} (flannel's VXLAN) only from "
            f"the nodes a host firewall's allow-list names ({listed}) and drops it from the "
            f"rest, so {peer.name}'s ({peer.underlay_ip}) encapsulated packets die on "
            f"arrival: an allow-list written before {peer.name} joined"
        ),
        node=node.name,
        peer_node=peer.name,
        netns=node.netns,
        interface=UNDERLAY_DEVICE,
        before=None,
        after="; ".join(lines),
    )


def peer_ip_unreachable(target: Target) -> FaultRecord:
    node, peer = target.node, target.peer("peer-ip-unreachable")
    route = f"unreachable {peer.underlay_ip}"
    _ip(node.netns, f"fault peer-ip-unreachable on {node.name}", f"route add {route}")
    return FaultRecord(
        fault="peer-ip-unreachable",
        message=(
            f"{node.name}: `ip route add {route}` (fail2ban's `route` ban action, after "
            f"{peer.name}'s VXLAN traffic tripped a port-scan filter): {node.name} can send "
            f"nothing to {peer.name}'s node IP, so the VXLAN packets it encapsulates for "
            f"{peer.name} die before they leave; every other route and the peer's entries "
            "are intact"
        ),
        node=node.name,
        peer_node=peer.name,
        netns=node.netns,
        interface=UNDERLAY_DEVICE,
        before=None,
        after=route,
    )


# --- decap ------------------------------------------------------------------------------


def vxlan_fdb_wrong_port(target: Target) -> FaultRecord:
    node, peer = target.node, target.peer("vxlan-fdb-wrong-port")
    before = flannel.fdb_line(peer).removeprefix("fdb replace ")
    after = (
        f"{peer.vtep_mac} dev {flannel.VTEP_DEVICE} dst {peer.underlay_ip} "
        f"port {IANA_VXLAN_PORT} self permanent"
    )
    _bridge(node.netns, f"fault vxlan-fdb-wrong-port on {node.name}", f"fdb replace {after}")
    return FaultRecord(
        fault="vxlan-fdb-wrong-port",
        message=(
            f"{node.name}: FDB entry for {peer.name}'s VTEP MAC changed from `{before}` to "
            f"`{after}`: same MAC, same dst, but packets to {peer.name} now go to UDP "
            f"{IANA_VXLAN_PORT}, where {peer.name} has no VXLAN device to decapsulate them "
            f"(its {flannel.VTEP_DEVICE} listens on {flannel.VXLAN_PORT}), as a hand repair "
            "of the entry copied from a guide using IANA's port (Windows flannel's) leaves it"
        ),
        node=node.name,
        peer_node=peer.name,
        netns=node.netns,
        interface=flannel.VTEP_DEVICE,
        before=before,
        after=after,
    )


# --- mtu --------------------------------------------------------------------------------


def underlay_port_mtu(target: Target) -> FaultRecord:
    state, node = target.state, target.node
    before = state.underlay_mtu
    after = before - SWITCH_MTU_DEFICIT
    _ip(
        state.underlay_netns,
        f"fault underlay-port-mtu on {node.underlay_port}",
        f"link set dev {node.underlay_port} mtu {after}",
    )
    return FaultRecord(
        fault="underlay-port-mtu",
        message=(
            f"{node.underlay_port}, {node.name}'s port on the underlay switch (the far side "
            f"of its {UNDERLAY_DEVICE}, in {state.underlay_netns}): MTU lowered from {before} "
            f"to {after} (and {UNDERLAY_BRIDGE} with it: a Linux bridge follows its smallest "
            f"port); every MTU on the nodes is unchanged, so full-size frames to and from "
            f"{node.name} die in the switch while small ones pass, as a hypervisor's virtual "
            "switch port (or a tunnel between racks) with a smaller MTU does"
        ),
        node=node.name,
        netns=state.underlay_netns,
        interface=node.underlay_port,
        before=str(before),
        after=str(after),
    )


def bridge_mtu_stale(target: Target) -> FaultRecord:
    node = target.node
    before = int(str(_link(node.netns, bridge.BRIDGE)["mtu"]))
    after = before - SWITCH_MTU_DEFICIT
    _ip(
        node.netns,
        f"fault bridge-mtu-stale on {node.name}",
        f"link set dev {bridge.BRIDGE} mtu {after}",
    )
    return FaultRecord(
        fault="bridge-mtu-stale",
        message=(
            f"{node.name}: {bridge.BRIDGE} MTU {after}, {SWITCH_MTU_DEFICIT} below its pods' "
            f"{before}: the bridge kept the MTU of an earlier network configuration (the "
            "CNI bridge plugin never changes the MTU of a bridge that exists), while pods "
            "created since get the new one. Full-size packets routed to the node's pods "
            f"die at {bridge.BRIDGE}; pods on the node still reach each other (bridged, "
            "not routed)"
        ),
        node=node.name,
        netns=node.netns,
        interface=bridge.BRIDGE,
        before=str(before),
        after=str(after),
    )


def pod_ip_duplicate(target: Target) -> FaultRecord:
    """What host-local IPAM does after its allocation store is lost (/var/lib/cni on a
    tmpfs, or wiped by a cleanup script) while pods keep running: the next pod gets an
    address a running pod holds. The CNI bridge plugin gives it a new MAC, and its first
    packet (an ARP request for its gateway) moves the node's neighbour entry for the
    address to it."""
    state, node, pod = target.state, target.node, target.pod("pod-ip-duplicate")
    index = int(node.netns.rsplit("-n", 1)[1])
    taken = {p.netns for p in node.pods} | netns.existing()
    slot = next(
        k for k in range(len(node.pods) + 1, 256) if pod_netns(state.name, index, k) not in taken
    )
    taken_veths = {p.host_veth for p in node.pods}
    serial = int(hashlib.sha256(f"{state.name}/{node.name}/{slot}".encode()).hexdigest()[:8], 16)
    veth = next(
        f"veth{(serial + k) & 0xFFFFFFFF:08x}"
        for k in range(256)
        if f"veth{(serial + k) & 0xFFFFFFFF:08x}" not in taken_veths
    )
    newcomer = PodState(
        namespace=pod.namespace,
        name=f"{deployment_name(slot - 1)}-{serial:08x}"[:63],
        netns=pod_netns(state.name, index, slot),
        ip=pod.ip,
        host_veth=veth,
    )
    # recorded before anything is made, so `down` finds and removes it whatever fails
    node.pods.append(newcomer)
    save(state)
    mtu = int(str(_link(pod.netns, "eth0")["mtu"]))
    gw = gateway(node.pod_cidr)
    # the node has talked to the pod (kubelet's probes): its entry holds the pod's MAC
    _ping(node.netns, pod.ip)
    netns.create([newcomer.netns])
    _ip(
        node.netns,
        f"fault pod-ip-duplicate on {node.name}",
        f"link add {veth} mtu {mtu} type veth peer name eth0 mtu {mtu} netns {newcomer.netns}",
        f"link set {veth} master {bridge.BRIDGE}",
        f"link set {veth} type bridge_slave hairpin on",
        f"link set {veth} up",
    )
    _ip(
        newcomer.netns,
        f"fault pod-ip-duplicate: pod {newcomer.ref}",
        "link set lo up",
        f"addr add {pod.ip}/24 dev eth0",
        "link set eth0 up",
        f"route add default via {gw} dev eth0",
        f"route add {CLUSTER_CIDR} via {gw} dev eth0",
    )
    time.sleep(ARP_LOCKTIME_S)  # an entry younger than locktime keeps its MAC
    _ping(newcomer.netns, gw)
    mac = _mac(newcomer.netns, "eth0")
    held = _neighbour_mac(node.netns, pod.ip, bridge.BRIDGE)
    if held != mac:
        raise LabError(
            f"fault pod-ip-duplicate: {node.name}'s neighbour entry for {pod.ip} is "
            f"{held or 'absent'}, not the new pod's {mac}"
        )
    _add_pod_object(target, pod, newcomer)
    return FaultRecord(
        fault="pod-ip-duplicate",
        message=(
            f"{node.name}: new pod {newcomer.ref} got {pod.ip}, the address of running pod "
            f"{pod.ref} (host-local IPAM lost its allocations); its first packet moved the "
            f"node's neighbour entry for {pod.ip} to its MAC {mac}, so packets for {pod.ref} "
            f"are delivered to {newcomer.ref}. The API lists both pods Running with {pod.ip}"
        ),
        node=node.name,
        netns=newcomer.netns,
        pod=pod.ref,
        interface="eth0",
        cidr=f"{pod.ip}/32",
        before=pod.ref,
        after=newcomer.ref,
    )


def _ping(netns_name: str, address: str) -> None:
    subprocess.run(
        ["ip", "netns", "exec", netns_name, "ping", "-c", "1", "-W", "1", address],
        capture_output=True,
        check=False,
        timeout=10,
    )


def _neighbour_mac(netns_name: str, address: str, device: str) -> str | None:
    proc = subprocess.run(
        ["ip", "-j", "-n", netns_name, "neigh", "show", address, "dev", device],
        capture_output=True,
        text=True,
        check=False,
        timeout=10,
    )
    rows = json.loads(proc.stdout or "[]") if proc.returncode == 0 else []
    return str(rows[0].get("lladdr", "")).lower() or None if rows else None


def _add_pod_object(target: Target, model: PodState, newcomer: PodState) -> None:
    """The new pod as the API lists it: a copy of the running pod's object (same node,
    same podIP, its own name and uid)."""
    path = target.kube_dir / kube_objects.PODS_FILE
    document = kube_objects.read_list(path)
    original = next(
        item
        for item in document["items"]
        if (item["metadata"]["namespace"], item["metadata"]["name"])
        == (model.namespace, model.name)
    )
    item = copy.deepcopy(original)
    item["metadata"]["name"] = newcomer.name
    item["metadata"]["uid"] = str(
        uuid.UUID(int=int(hashlib.sha256(newcomer.name.encode()).hexdigest()[:32], 16), version=4)
    )
    document["items"].append(item)
    kube_objects.write_list(path, document)


# --- sysctl -----------------------------------------------------------------------------


def pod_device_forwarding_off(target: Target) -> FaultRecord:
    node, pod = target.node, target.pod("pod-device-forwarding-off")
    device = pod_gateway_device(target, pod)
    key = f"net.ipv4.conf.{device}.forwarding"
    netns.set_sysctls(node.netns, {key: "0"}, {})
    whose = f"pod {pod.ref}'s host veth" if device == pod.host_veth else "the pods' bridge"
    return FaultRecord(
        fault="pod-device-forwarding-off",
        message=(
            f"{node.name}: {key} set from 1 to 0 ({whose}); net.ipv4.ip_forward stays 1, "
            f"so nothing arriving on {device} is routed on, as systemd-networkd with a "
            f"catch-all .network file (IPForward=no) that manages {device} leaves it"
        ),
        node=node.name,
        netns=node.netns,
        pod=pod.ref if device == pod.host_veth else None,
        interface=device,
        before="1",
        after="0",
    )


# --- deliver ----------------------------------------------------------------------------


def pod_eth0_down(target: Target) -> FaultRecord:
    node, pod = target.node, target.pod("pod-eth0-down")
    _ip(pod.netns, f"fault pod-eth0-down on {pod.ref}", "link set dev eth0 down")
    carrier = f"{pod.host_veth} loses carrier"
    if pod_gateway_device(target, pod) != pod.host_veth:
        carrier += f" and its {bridge.BRIDGE} port goes disabled"
    return FaultRecord(
        fault="pod-eth0-down",
        message=(
            f"pod {pod.ref} on {node.name}: eth0 set administratively down inside the pod "
            f"(it keeps {pod.ip}; the kernel drops its routes, and {carrier}); the API still "
            "lists the pod Running with that IP, as a privileged sidecar or a debugging "
            "`ip link set eth0 down` leaves it"
        ),
        node=node.name,
        netns=pod.netns,
        pod=pod.ref,
        interface="eth0",
        before="up",
        after="down",
    )


FAULTS = (
    Fault(
        "veth-down",
        "a pod's host veth is administratively down (a CNI DEL that half-ran)",
        veth_down,
        BRIDGED,
        "link",
    ),
    Fault(
        "policy-route-unreachable",
        "a VPN agent's ip rule sends a peer's pod CIDR to an unreachable route (main intact)",
        policy_route_unreachable,
        ALL,
        "route",
    ),
    Fault(
        "neigh-stale-pod",
        "a permanent neighbour entry gives a pod's IP a previous pod's MAC",
        neigh_stale_pod,
        ALL,
        "neigh",
    ),
    Fault(
        "fdb-static-wrong-port",
        "a static FDB entry sends a pod's MAC to another pod's bridge port",
        fdb_static_wrong_port,
        BRIDGED,
        "fdb",
    ),
    Fault(
        "bridge-ports-isolated",
        "a node's pod bridge ports are isolated from each other",
        bridge_ports_isolated,
        BRIDGED,
        "bridge",
    ),
    Fault(
        "forward-policy-drop",
        "Docker's iptables: FORWARD policy DROP, accepting only docker0",
        forward_policy_drop,
        ALL,
        "filter",
    ),
    Fault(
        "snat-pod-traffic",
        "an egress SNAT rule rewrites pod-to-pod traffic so replies go astray",
        snat_pod_traffic,
        ALL,
        "nat",
    ),
    Fault(
        "vxlan-local-gone",
        "the node's uplink address changed; the VXLAN device keeps the old one as local",
        vxlan_local_gone,
        VXLAN,
        "encap",
    ),
    Fault(
        "vxlan-port-blocked",
        "a host firewall drops VXLAN packets from one peer node",
        vxlan_port_blocked,
        VXLAN,
        "underlay",
    ),
    Fault(
        "peer-ip-unreachable",
        "a ban tool's unreachable route to a peer node's IP",
        peer_ip_unreachable,
        VXLAN,
        "underlay",
    ),
    Fault(
        "vxlan-fdb-wrong-port",
        "an FDB entry sends a peer's VXLAN packets to a UDP port nobody decapsulates",
        vxlan_fdb_wrong_port,
        VXLAN,
        "decap",
    ),
    Fault(
        "bridge-mtu-stale",
        "the pod bridge keeps a smaller MTU than the pods made since",
        bridge_mtu_stale,
        BRIDGED,
        "mtu",
    ),
    Fault(
        "underlay-port-mtu",
        "the underlay switch port of a node has a smaller MTU than the nodes",
        underlay_port_mtu,
        ALL,
        "mtu",
    ),
    Fault(
        "pod-device-forwarding-off",
        "forwarding is off on the pods' bridge (Canal: a pod's veth); ip_forward stays on",
        pod_device_forwarding_off,
        ALL,
        "sysctl",
    ),
    Fault(
        "pod-eth0-down",
        "a pod's eth0 is down inside the pod while the API lists it Running",
        pod_eth0_down,
        ALL,
        "link",
    ),
    Fault(
        "pod-ip-duplicate",
        "a new pod gets a running pod's IP and takes its traffic",
        pod_ip_duplicate,
        BRIDGED,
        "deliver",
    ),
)
