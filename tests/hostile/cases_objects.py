"""Objects and values: cluster objects of the wrong type, JSON nested too deep, things
listed twice, values no kernel holds. Each bad object is named in the JSON report's
`coverage.objects_invalid` (or a finding of its own) and the rest is analyzed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from corpus import case, edit_items, load, save

BACKEND_DATA = "flannel.alpha.coreos.com/backend-data"


def _named(items: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(item for item in items if item["metadata"]["name"] == name)


def _deep(levels: int) -> str:
    """JSON text nested `levels` deep (built as text: no encoder recurses on it)."""
    return '{"a":' * levels + '"x"' + "}" * levels


# -- nodes --------------------------------------------------------------------------------


@case("types-node-spec-string", "types", must_report=('"spec"', "is text, not an object"))
def node_spec_string(bundle: Path) -> None:
    edit_items(bundle, "nodes", lambda items: _named(items, "lab-node-2").update(spec="boom"))


@case("types-node-podcidr-number", "types", must_report=("spec.podCIDR", "a whole number"))
def node_podcidr_number(bundle: Path) -> None:
    edit_items(
        bundle, "nodes", lambda items: _named(items, "lab-node-2")["spec"].update(podCIDR=42)
    )


@case("types-node-name-list", "types", must_report=("metadata.name", "is a list, not text"))
def node_name_list(bundle: Path) -> None:
    edit_items(
        bundle, "nodes", lambda items: _named(items, "lab-node-3")["metadata"].update(name=["x"])
    )


@case("types-node-address-object", "types", must_report=("status.addresses[0].address",))
def node_address_object(bundle: Path) -> None:
    def change(items: list[dict[str, Any]]) -> None:
        _named(items, "lab-node-1")["status"]["addresses"][0]["address"] = {"ip": "10.0.0.1"}

    edit_items(bundle, "nodes", change)


@case("types-node-not-an-object", "types", must_report=("items[1]", "not an object"))
def node_not_an_object(bundle: Path) -> None:
    edit_items(bundle, "nodes", lambda items: items.insert(1, "lab-node-9"))


# -- pods ---------------------------------------------------------------------------------


def _first_pod(items: list[dict[str, Any]]) -> dict[str, Any]:
    return next(item for item in items if item["metadata"]["namespace"] == "default")


@case("types-pod-spec-string", "types", must_report=('"spec"', "is text, not an object"))
def pod_spec_string(bundle: Path) -> None:
    edit_items(bundle, "pods", lambda items: _first_pod(items).update(spec="boom"))


@case("types-pod-nodename-list", "types", must_report=("spec.nodeName", "is a list, not text"))
def pod_nodename_list(bundle: Path) -> None:
    edit_items(
        bundle, "pods", lambda items: _first_pod(items)["spec"].update(nodeName=["lab-node-1"])
    )


@case("types-pod-podip-object", "types", must_report=("status.podIP", "is an object, not text"))
def pod_podip_object(bundle: Path) -> None:
    edit_items(bundle, "pods", lambda items: _first_pod(items)["status"].update(podIP={"ip": "x"}))


@case("types-pod-hostnetwork-text", "types", must_report=("spec.hostNetwork",))
def pod_hostnetwork_text(bundle: Path) -> None:
    edit_items(bundle, "pods", lambda items: _first_pod(items)["spec"].update(hostNetwork="yes"))


# -- annotations ----------------------------------------------------------------------------


def _annotate(bundle: Path, node: str, key: str, value: Any) -> None:
    edit_items(
        bundle,
        "nodes",
        lambda items: _named(items, node)["metadata"]["annotations"].update({key: value}),
    )


@case("types-backend-data-vtepmac-list", "types", must_report=(f"{BACKEND_DATA}].VtepMAC",))
def backend_data_vtepmac_list(bundle: Path) -> None:
    _annotate(bundle, "lab-node-2", BACKEND_DATA, json.dumps({"VNI": 1, "VtepMAC": [1, 2]}))


@case("types-backend-data-not-an-object", "types", must_report=(f"{BACKEND_DATA}]",))
def backend_data_number(bundle: Path) -> None:
    _annotate(bundle, "lab-node-2", BACKEND_DATA, "42")


@case("types-annotation-number", "types", must_report=("flannel.alpha.coreos.com/public-ip]",))
def annotation_number(bundle: Path) -> None:
    _annotate(bundle, "lab-node-3", "flannel.alpha.coreos.com/public-ip", 1234)


@case("nesting-backend-data-deep", "nesting", must_report=("nested deeper than 100",))
def backend_data_deep(bundle: Path) -> None:
    _annotate(bundle, "lab-node-1", BACKEND_DATA, _deep(5000))


@case("nesting-node-object-deep", "nesting", must_report=("nested deeper than",))
def node_object_deep(bundle: Path) -> None:
    """Deeper than any JSON reader's own limit: the file is refused in words."""
    listing = load(bundle, "cluster/nodes.json")
    listing["items"][0]["status"]["extra"] = "DEEP"
    text = json.dumps(listing).replace('"DEEP"', _deep(5000))
    (bundle / "cluster/nodes.json").write_text(text)


@case(
    "nesting-pod-object-deep",
    "nesting",
    must_report=("cluster/pods.json is JSON nested deeper than 1024 levels",),
)
def pod_object_deep(bundle: Path) -> None:
    """One pod nested 3,000 deep in a field needle does not read (deeper than Python's
    recursion limit): the file is refused in words, never a RecursionError."""
    listing = load(bundle, "cluster/pods.json")
    listing["items"][0]["extra"] = "DEEP"
    text = json.dumps(listing).replace('"DEEP"', _deep(3000))
    (bundle / "cluster/pods.json").write_text(text)


# -- the config map -------------------------------------------------------------------------


def _net_conf(bundle: Path, text: str) -> None:
    edit_items(
        bundle,
        "configmaps",
        lambda items: _named(items, "kube-flannel-cfg")["data"].update({"net-conf.json": text}),
    )


@case("types-netconf-backend-string", "types", must_report=("net-conf.json].Backend",))
def netconf_backend_string(bundle: Path) -> None:
    _net_conf(bundle, json.dumps({"Network": "10.244.0.0/16", "Backend": "vxlan"}))


@case("types-netconf-vni-text", "types", must_report=("net-conf.json].Backend.VNI",))
def netconf_vni_text(bundle: Path) -> None:
    _net_conf(bundle, json.dumps({"Network": "10.244.0.0/16", "Backend": {"VNI": "one"}}))


@case("types-configmap-data-list", "types", must_report=('"data"', "is a list, not an object"))
def configmap_data_list(bundle: Path) -> None:
    edit_items(
        bundle, "configmaps", lambda items: _named(items, "kube-flannel-cfg").update(data=[1])
    )


@case("nesting-netconf-deep", "nesting", must_report=("nested deeper than 100",))
def netconf_deep(bundle: Path) -> None:
    _net_conf(bundle, _deep(300))


# -- duplicates -----------------------------------------------------------------------------


@case("duplicates-default-routes", "duplicates")
def duplicate_default_routes(bundle: Path) -> None:
    """Two default routes, the second a backup at a higher metric: valid, and diff's text
    and markdown must show them both."""
    path = "nodes/lab-node-1/host/ip-route.json"
    routes = load(bundle, path)
    default = next(route for route in routes if route.get("dst") == "default")
    routes.append({**default, "gateway": "192.168.122.254", "metric": 200})
    save(bundle, path, routes)


@case("duplicates-nodes", "duplicates", must_report=("names a node listed before",))
def duplicate_nodes(bundle: Path) -> None:
    def change(items: list[dict[str, Any]]) -> None:
        twin = json.loads(json.dumps(_named(items, "lab-node-2")))
        twin["spec"]["podCIDR"] = "10.244.9.0/24"
        items.append(twin)

    edit_items(bundle, "nodes", change)


@case("duplicates-pods", "duplicates", must_report=("names a pod listed before",))
def duplicate_pods(bundle: Path) -> None:
    edit_items(
        bundle, "pods", lambda items: items.append(json.loads(json.dumps(_first_pod(items))))
    )


@case("duplicates-links-same-name", "duplicates", must_report=("kernel.link.duplicate-name",))
def duplicate_links(bundle: Path) -> None:
    path = "nodes/lab-node-1/host/ip-link.json"
    links = load(bundle, path)
    cni0 = next(link for link in links if link["ifname"] == "cni0")
    links.append({**cni0, "ifindex": 999, "mtu": 9000})
    save(bundle, path, links)


@case("duplicates-addresses", "duplicates", must_report=("[10.244.1.1/24; 10.244.1.1/24]",))
def duplicate_addresses(bundle: Path) -> None:
    """cni0's address listed twice (an edited file): diff keys addresses by value and
    must neither crash nor lose the device's other addresses."""
    path = "nodes/lab-node-1/host/ip-addr.json"
    links = load(bundle, path)
    cni0 = next(link for link in links if link["ifname"] == "cni0")
    cni0["addr_info"].append(dict(cni0["addr_info"][0]))
    save(bundle, path, links)


@case(
    "duplicates-fdb-and-neighbours",
    "duplicates",
    must_report=(
        "flannel.fdb.vtep-dst-mismatch",
        "flannel.neigh.vtep-mac-mismatch",
        "[192.168.122.13; 192.168.122.250]",
    ),
)
def duplicate_fdb_and_neighbours(bundle: Path) -> None:
    """flannel.1's FDB entry for a peer and its neighbour entry each listed twice, the
    second copy pointing elsewhere (a MAC at two VTEPs, an IP at two MACs)."""
    fdb_path = "nodes/lab-node-1/host/bridge-fdb.json"
    fdb = load(bundle, fdb_path)
    vtep = next(entry for entry in fdb if entry.get("ifname") == "flannel.1" and "dst" in entry)
    fdb.append({**vtep, "dst": "192.168.122.250"})
    save(bundle, fdb_path, fdb)
    neigh_path = "nodes/lab-node-1/host/ip-neigh.json"
    neighbours = load(bundle, neigh_path)
    peer = next(entry for entry in neighbours if entry.get("dev") == "flannel.1")
    neighbours.append({**peer, "lladdr": "02:00:00:00:00:99"})
    save(bundle, neigh_path, neighbours)


@case(
    "duplicates-pod-links-same-name",
    "duplicates",
    must_report=("kernel.link.pod-duplicate-name",),
)
def duplicate_pod_links(bundle: Path) -> None:
    path = _first_pod_links(bundle)
    links = load(bundle, path)
    eth0 = next(link for link in links if link["ifname"] == "eth0")
    links.append({**eth0, "ifindex": 999, "mtu": 9000})
    save(bundle, path, links)


def _first_pod_links(bundle: Path) -> str:
    """The ip-link output of lab-node-1's first pod namespace, bundle-relative."""
    found = sorted((bundle / "nodes" / "lab-node-1" / "netns").glob("*/ip-link.json"))
    return str(found[0].relative_to(bundle))


# -- values no kernel holds -----------------------------------------------------------------


def _mtu(bundle: Path, node: str, device: str, mtu: int) -> None:
    path = f"nodes/{node}/host/ip-link.json"
    links = load(bundle, path)
    next(link for link in links if link["ifname"] == device)["mtu"] = mtu
    save(bundle, path, links)


@case(
    "nonsense-mtu-minus-one", "nonsense", must_report=("kernel.link.mtu-impossible", "cni0 mtu -1")
)
def mtu_minus_one(bundle: Path) -> None:
    _mtu(bundle, "lab-node-1", "cni0", -1)


@case(
    "nonsense-mtu-zero", "nonsense", must_report=("kernel.link.mtu-impossible", "flannel.1 mtu 0")
)
def mtu_zero(bundle: Path) -> None:
    _mtu(bundle, "lab-node-2", "flannel.1", 0)


@case(
    "nonsense-mtu-70000", "nonsense", must_report=("kernel.link.mtu-impossible", "ens3 mtu 70000")
)
def mtu_huge(bundle: Path) -> None:
    _mtu(bundle, "lab-node-3", "ens3", 70000)


@case(
    "nonsense-pod-mtu-zero",
    "nonsense",
    must_report=("kernel.link.pod-mtu-impossible", "eth0 mtu 0"),
)
def pod_mtu_zero(bundle: Path) -> None:
    """A pod's eth0 at MTU 0: the pod MTU rules passed it as "not above the overlay"."""
    path = _first_pod_links(bundle)
    links = load(bundle, path)
    next(link for link in links if link["ifname"] == "eth0")["mtu"] = 0
    save(bundle, path, links)
