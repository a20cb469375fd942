"""Canal (RKE2's default CNI): Calico's CNI plugin attaches pods, flannel VXLAN carries
them between nodes.

Calico attaches a pod by a routed veth, no bridge: the host end is `cali` + 11 hex
characters, holds no address and answers ARP for the pod's gateway 169.254.1.1 by proxy
ARP (`net.ipv4.conf.<cali...>.proxy_arp = 1`); the node routes each pod's /32 to its
veth (`<pod IP> dev cali... scope link`). Between nodes flanneld programs VXLAN exactly
as its vxlan backend does (routes via the peer's VTEP, neighbour and FDB entries).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from needle.analyzer.backends.base import ExpectedRoute, PodAttach
from needle.analyzer.backends.flannel import DEFAULT_PORT, DEFAULT_VNI, FlannelVxlan

if TYPE_CHECKING:  # the model imports the backends (build.py): types only here
    from needle.analyzer.model.entities import Pod

VETH_PREFIX = "cali"
# what `calico` writes in a conflist, and the config maps upstream Canal and RKE2 use
CNI_PLUGIN = "calico"
CONFIG_MAPS = ("canal-config", "rke2-canal-config")


@dataclass(frozen=True)
class Canal(FlannelVxlan):
    def pod_attach(self) -> PodAttach:
        return PodAttach(bridge=None, routed=True, veth_prefix=VETH_PREFIX, proxy_arp=True)

    def pod_route(self, pod: Pod) -> ExpectedRoute | None:
        """The host route Calico adds for the pod: its /32 to its host-side veth."""
        if not pod.ip or pod.host_veth is None:
            return None
        return ExpectedRoute(dst=f"{pod.ip}/32", dev=pod.host_veth.name, via=None)


def canal(vni: int | None, port: int | None, direct_routing: bool) -> Canal:
    return Canal(
        name="canal",
        label="Canal (Calico CNI, flannel vxlan"
        + (" with DirectRouting)" if direct_routing else ")"),
        analysed=True,
        vni=vni if vni is not None and vni > 0 else DEFAULT_VNI,
        port=port if port else DEFAULT_PORT,
        direct_routing=direct_routing,
    )
