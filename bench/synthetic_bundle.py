"""Generate a synthetic bundle of a healthy Flannel VXLAN cluster: N nodes x P pods.

The files look like what the node script collects (`ip -j` JSON, sysctls, ethtool), the
manifest like the collector's, so the analyzer reads it through its normal path. Used by
the model, analyze and diff benchmarks. Options let one node route a peer wrongly or a
fraction of routes change, to give rules and diff something to find.

    python bench/synthetic_bundle.py --nodes 1000 --pods 110 -o /tmp/big   # a directory
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tarfile
import time
from pathlib import Path
from typing import Any

CREATED = "2026-11-26T08:00:00Z"


def mac(seed: int) -> str:
    return "0a:" + ":".join(f"{(seed >> shift) & 0xFF:02x}" for shift in (32, 24, 16, 8, 0))


def node_name(i: int) -> str:
    return f"node-{i:04d}"


def pod_cidr(i: int) -> str:
    return f"10.{i // 256}.{i % 256}.0/24"


def underlay_ip(i: int) -> str:
    return f"172.{16 + (i + 1) // 65536}.{((i + 1) // 256) % 256}.{(i + 1) % 256}"


class Writer:
    """Writes files under a directory and records manifest commands for them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.commands: dict[str, list[dict[str, Any]]] = {}

    def put(
        self,
        node: str,
        relpath: str,
        data: str,
        command: str,
        netns: str | None = None,
        interface: str | None = None,
    ) -> None:
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        encoded = data.encode()
        path.write_bytes(encoded)
        self.commands.setdefault(node, []).append(
            {
                "id": command,
                "netns": netns,
                "interface": interface,
                "argv": [command],
                "exit_code": 0,
                "duration_s": 0.01,
                "timed_out": False,
                "truncated": False,
                "missing_tool": False,
                "bytes": len(encoded),
                "output": relpath,
                "stderr": None,
            }
        )


def host_files(w: Writer, i: int, nodes: int, pods: int, route_changes: set[int]) -> None:
    name = node_name(i)
    base = f"nodes/{name}/host"
    vtep = mac(i)
    links: list[dict[str, Any]] = [
        {
            "ifindex": 1,
            "ifname": "lo",
            "flags": ["LOOPBACK", "UP"],
            "mtu": 65536,
            "operstate": "UNKNOWN",
            "link_type": "loopback",
            "address": "00:00:00:00:00:00",
        },
        {
            "ifindex": 2,
            "ifname": "ens3",
            "flags": ["UP"],
            "mtu": 1500,
            "operstate": "UP",
            "link_type": "ether",
            "address": mac(10**7 + i),
        },
        {
            "ifindex": 3,
            "ifname": "flannel.1",
            "flags": ["UP"],
            "mtu": 1450,
            "operstate": "UNKNOWN",
            "link_type": "ether",
            "address": vtep,
            "linkinfo": {
                "info_kind": "vxlan",
                "info_data": {
                    "id": 1,
                    "local": underlay_ip(i),
                    "link": "ens3",
                    "port": 8472,
                    "learning": False,
                },
            },
        },
        {
            "ifindex": 4,
            "ifname": "cni0",
            "flags": ["UP"],
            "mtu": 1450,
            "operstate": "UP",
            "link_type": "ether",
            "address": mac(2 * 10**7 + i),
            "linkinfo": {"info_kind": "bridge"},
        },
    ]
    addrs = [
        {
            "ifindex": 2,
            "ifname": "ens3",
            "mtu": 1500,
            "addr_info": [{"family": "inet", "local": underlay_ip(i), "prefixlen": 16}],
        },
        {
            "ifindex": 3,
            "ifname": "flannel.1",
            "mtu": 1450,
            "addr_info": [{"family": "inet", "local": pod_cidr(i).split("/")[0], "prefixlen": 32}],
        },
        {
            "ifindex": 4,
            "ifname": "cni0",
            "mtu": 1450,
            "addr_info": [
                {"family": "inet", "local": pod_cidr(i).replace(".0/24", ".1"), "prefixlen": 24}
            ],
        },
    ]
    for p in range(pods):
        links.append(
            {
                "ifindex": 10 + p,
                "link_index": 2,
                "link_netnsid": p,
                "ifname": f"veth{i:04x}{p:04x}",
                "flags": ["UP"],
                "mtu": 1450,
                "master": "cni0",
                "operstate": "UP",
                "link_type": "ether",
                "address": mac(3 * 10**7 + i * 1000 + p),
                "linkinfo": {"info_kind": "veth", "info_slave_kind": "bridge"},
            }
        )
    routes = [
        {
            "type": "unicast",
            "dst": "default",
            "gateway": "172.16.0.1",
            "dev": "ens3",
            "table": "main",
            "protocol": "boot",
            "scope": "global",
            "flags": [],
        },
        {
            "type": "unicast",
            "dst": pod_cidr(i),
            "dev": "cni0",
            "table": "main",
            "protocol": "kernel",
            "scope": "link",
            "prefsrc": pod_cidr(i).replace(".0/24", ".1"),
            "flags": [],
        },
    ]
    neigh, fdb = [], []
    for j in range(nodes):
        if j == i:
            continue
        gateway = pod_cidr(j).split("/")[0]
        changed = (i * nodes + j) in route_changes
        routes.append(
            {
                "type": "unicast",
                "dst": pod_cidr(j),
                "gateway": gateway,
                "dev": "ens3" if changed else "flannel.1",
                "table": "main",
                "protocol": "boot",
                "scope": "global",
                "flags": ["onlink"],
            }
        )
        neigh.append({"dst": gateway, "dev": "flannel.1", "lladdr": mac(j), "state": ["PERMANENT"]})
        fdb.append(
            {
                "mac": mac(j),
                "ifname": "flannel.1",
                "dst": underlay_ip(j),
                "flags": ["self"],
                "state": "permanent",
            }
        )
    w.put(name, f"{base}/ip-link.json", json.dumps(links), "ip-link")
    w.put(name, f"{base}/ip-addr.json", json.dumps(addrs), "ip-addr")
    w.put(name, f"{base}/ip-route.json", json.dumps(routes), "ip-route")
    w.put(name, f"{base}/ip-neigh.json", json.dumps(neigh), "ip-neigh")
    w.put(name, f"{base}/bridge-fdb.json", json.dumps(fdb), "bridge-fdb")
    w.put(
        name,
        f"{base}/sysctl-net.txt",
        "net/ipv4/ip_forward = 1\nnet/bridge/bridge-nf-call-iptables = 1\n",
        "sysctl-net",
    )
    w.put(
        name,
        f"{base}/ethtool/flannel.1/features.txt",
        "Features for flannel.1:\ntx-checksumming: off\n",
        "ethtool-k",
        interface="flannel.1",
    )
    w.put(
        name,
        f"{base}/uname.txt",
        f"Linux {name} 6.1.0-18-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 x86_64 GNU/Linux\n",
        "uname",
    )


def pod_files(w: Writer, i: int, p: int) -> dict[str, Any]:
    name = node_name(i)
    ns_id = f"ns-{4026530000 + i * 1000 + p}"
    base = f"nodes/{name}/netns/{ns_id}"
    ip = pod_cidr(i).replace(".0/24", f".{p + 2}")
    links = [
        {
            "ifindex": 1,
            "ifname": "lo",
            "flags": ["LOOPBACK", "UP"],
            "mtu": 65536,
            "operstate": "UNKNOWN",
            "link_type": "loopback",
            "address": "00:00:00:00:00:00",
        },
        {
            "ifindex": 2,
            "link_index": 10 + p,
            "link_netnsid": 0,
            "ifname": "eth0",
            "flags": ["UP"],
            "mtu": 1450,
            "operstate": "UP",
            "link_type": "ether",
            "address": mac(4 * 10**7 + i * 1000 + p),
            "linkinfo": {"info_kind": "veth"},
        },
    ]
    addrs = [
        {
            "ifindex": 2,
            "ifname": "eth0",
            "mtu": 1450,
            "addr_info": [{"family": "inet", "local": ip, "prefixlen": 24}],
        }
    ]
    gateway = pod_cidr(i).replace(".0/24", ".1")
    routes = [
        {
            "type": "unicast",
            "dst": "default",
            "gateway": gateway,
            "dev": "eth0",
            "table": "main",
            "protocol": "boot",
            "scope": "global",
            "flags": [],
        },
        {
            "type": "unicast",
            "dst": pod_cidr(i),
            "dev": "eth0",
            "table": "main",
            "protocol": "kernel",
            "scope": "link",
            "prefsrc": ip,
            "flags": [],
        },
    ]
    w.put(name, f"{base}/ip-link.json", json.dumps(links), "ip-link", netns=ns_id)
    w.put(name, f"{base}/ip-addr.json", json.dumps(addrs), "ip-addr", netns=ns_id)
    w.put(name, f"{base}/ip-route.json", json.dumps(routes), "ip-route", netns=ns_id)
    w.put(name, f"{base}/ip-route6.json", "[]", "ip-route6", netns=ns_id)
    w.put(
        name,
        f"{base}/ip-neigh.json",
        json.dumps(
            [{"dst": gateway, "dev": "eth0", "lladdr": mac(2 * 10**7 + i), "state": ["REACHABLE"]}]
        ),
        "ip-neigh",
        netns=ns_id,
    )
    return {
        "id": ns_id,
        "dir": base,
        "inode": 4026530000 + i * 1000 + p,
        "nsid": p,
        "name": f"cni-{i:04d}-{p:04d}",
        "pids": [100000 + p],
    }


def generate(out: Path, nodes: int, pods: int, route_change_fraction: float, seed: int) -> None:
    rng = random.Random(seed)
    total_routes = nodes * (nodes - 1)
    changes = set(rng.sample(range(nodes * nodes), int(total_routes * route_change_fraction)))
    if out.exists():
        shutil.rmtree(out)
    w = Writer(out)
    node_items, pod_items, manifest_nodes = [], [], []
    for i in range(nodes):
        name = node_name(i)
        host_files(w, i, nodes, pods, changes)
        netns = [pod_files(w, i, p) for p in range(pods)]
        manifest_nodes.append(
            {
                "name": name,
                "transport": "pod",
                "target": f"needle-{i}",
                "status": "ok",
                "errors": [],
                "dir": f"nodes/{name}",
                "started": CREATED,
                "duration_s": 3.0,
                "netns": netns,
                "commands": w.commands.pop(name),
                "captures": [],
            }
        )
        node_items.append(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": {
                        "flannel.alpha.coreos.com/backend-data": json.dumps(
                            {"VNI": 1, "VtepMAC": mac(i)}
                        ),
                        "flannel.alpha.coreos.com/backend-type": "vxlan",
                        "flannel.alpha.coreos.com/public-ip": underlay_ip(i),
                    },
                },
                "spec": {"podCIDR": pod_cidr(i), "podCIDRs": [pod_cidr(i)]},
                "status": {"addresses": [{"type": "InternalIP", "address": underlay_ip(i)}]},
            }
        )
        for p in range(pods):
            pod_items.append(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": f"app-{i:04d}-{p:04d}", "namespace": "default"},
                    "spec": {"nodeName": name},
                    "status": {
                        "phase": "Running",
                        "podIP": pod_cidr(i).replace(".0/24", f".{p + 2}"),
                    },
                }
            )
    cluster = {
        "nodes": node_items,
        "pods": pod_items,
        "configmaps": [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "kube-flannel-cfg", "namespace": "kube-flannel"},
                "data": {
                    "net-conf.json": json.dumps(
                        {"Network": "10.0.0.0/8", "Backend": {"Type": "vxlan"}}
                    )
                },
            }
        ],
    }
    resources = []
    for resource, items in cluster.items():
        relpath = f"cluster/{resource}.json"
        (out / "cluster").mkdir(parents=True, exist_ok=True)
        (out / relpath).write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
        resources.append(
            {
                "resource": resource,
                "status": "ok",
                "file": relpath,
                "items": len(items),
                "error": None,
            }
        )
    manifest = {
        "format": "needle.bundle/v1",
        "tool": {"name": "needle", "version": "bench"},
        "created": CREATED,
        "finished": CREATED,
        "status": "complete",
        "collection": {
            "sources": ["kube-api", "pod"],
            "command": ["synthetic"],
            "collector_host": "bench",
            "capture": {"enabled": False},
        },
        "cluster": {"source": "kube-api", "origin": "synthetic", "resources": resources},
        "nodes": manifest_nodes,
        "errors": [],
    }
    (out / "manifest.json").write_text(json.dumps(manifest))


def pack(directory: Path, archive: Path) -> None:
    """The directory as the collector writes a bundle (collector/bundle/writer.py): the
    manifest first, then regular files only, each with one whole-second mtime (so one
    header per member: a float mtime would add a pax header to every one)."""
    paths = [directory / "manifest.json"]
    paths += [p for p in sorted(directory.rglob("*")) if p.is_file() and p != paths[0]]
    with tarfile.open(archive, "w:gz", compresslevel=1, format=tarfile.PAX_FORMAT) as tar:
        for path in paths:
            info = tarfile.TarInfo(str(path.relative_to(directory)))
            info.size = path.stat().st_size
            info.mtime = 1_795_000_000
            info.mode = 0o644
            with path.open("rb") as stream:
                tar.addfile(info, stream)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--pods", type=int, default=110)
    parser.add_argument(
        "--route-changes",
        type=float,
        default=0.0,
        help="fraction of peer routes sent via ens3 instead of flannel.1",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="a directory, or NAME.tar.gz to pack it too",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    archive = args.output if args.output.name.endswith(".tar.gz") else None
    directory = args.output.with_name(args.output.name + ".d") if archive else args.output
    generate(directory, args.nodes, args.pods, args.route_changes, args.seed)
    if archive is not None:
        pack(directory, archive)
        shutil.rmtree(directory)
    print(
        f"{args.nodes} nodes x {args.pods} pods -> {args.output} "
        f"in {time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    main()
