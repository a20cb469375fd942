"""Regenerate the sample bundles from the lab (run as root: `python samples/regenerate.py`).

Each sample is a real collection of a 3-node, 2-pods-per-node lab: for the default flannel
VXLAN backend one healthy and one per fault (lab-healthy, lab-<fault>); for each other
backend one healthy and one per fault made for it (lab-<backend>-healthy,
lab-<backend>-<fault>); each with a short capture while pods ping across nodes.

Name the samples to make (`python samples/regenerate.py lab-canal-healthy ...`, or
`--list` to see them all); with no names it remakes every sample.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from needle.collector.collect import CollectOptions, collect
from needle.collector.progress import Progress
from needle.collector.transports.netns import NetnsTarget
from needle.lab import api, backends
from needle.lab.faults import CATALOGUE

HERE = Path(__file__).resolve().parent


def traffic(state: api.LabState, size: int = 1200) -> list[subprocess.Popen[bytes]]:
    """Pod-to-pod pings across nodes (lab addresses only) during the capture window,
    `size` bytes of ICMP payload each."""
    pingers = []
    for index, node in enumerate(state.nodes):
        target = state.nodes[(index + 1) % len(state.nodes)].pods[0]
        pingers.append(
            subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    node.pods[0].netns,
                    "ping",
                    "-q",
                    "-c",
                    "15",
                    "-i",
                    "0.1",
                    "-s",
                    str(size),
                    target.ip,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    return pingers


# The faults each non-default backend's samples show (those made for that data plane).
BACKEND_FAULTS = {
    "vxlan-directrouting": ("vxlan-route-no-fdb",),
    "host-gw": ("route-missing", "route-wrong-nexthop", "peer-off-link"),
    "canal": (
        "pod-route-missing",
        "proxy-arp-off",
        "veth-orphan",
        # Faults no rule finds, where Canal puts them on another device (the pod's cali veth).
        "neigh-stale-pod",
        "pod-device-forwarding-off",
    ),
}


def scenarios() -> dict[str, tuple[str, str | None]]:
    """Sample name -> (backend, fault or None), in the order they are made."""
    found: dict[str, tuple[str, str | None]] = {"healthy": (backends.DEFAULT, None)}
    found.update(
        (fault, (backends.DEFAULT, fault))
        for fault, spec in CATALOGUE.items()
        if backends.DEFAULT in spec.backends
    )
    for backend, faults in BACKEND_FAULTS.items():
        found[f"{backend}-healthy"] = (backend, None)
        found.update((f"{backend}-{fault}", (backend, fault)) for fault in faults)
    return {f"lab-{name}": scenario for name, scenario in found.items()}


def sample(name: str, backend: str, fault: str | None, output: Path) -> None:
    lab_name = f"ndlsample-{os.getpid()}"
    state = api.up(name=lab_name, nodes=3, pods=2, backend=backend)
    try:
        if fault is not None:
            api.fault(lab_name, fault)
            state = api.status(lab_name)
        # A fault in the path's MTU shows in the captures only with full-size packets
        # (ICMP payload = pod MTU - 20 IP - 8 ICMP), which die where 1200 bytes pass.
        full_size = fault is not None and CATALOGUE[fault].step == "mtu"
        pingers = traffic(state, state.overlay_mtu - 28) if full_size else traffic(state)
        options = CollectOptions(
            output=output,
            kube_dir=Path(state.kube_dir),
            targets=[target(state, n.name, n.netns) for n in state.nodes],
            capture_seconds=1,
            max_packets=200,
            command=[
                "needle",
                "collect",
                "-o",
                output.name,
                "--kube-dir",
                "KUBE_DIR",
                *[arg for pair in state.netns_args() for arg in ("--netns", pair)],
            ],
        )
        with Progress(live=False) as progress:
            collect(options, progress)
        for pinger in pingers:
            pinger.kill()
            pinger.wait()
        print(f"{name}: {output.stat().st_size / 1024:.0f} KiB")
    finally:
        api.down(lab_name)


def target(state: api.LabState, node: str, netns: str) -> NetnsTarget:
    """The default backend's samples are collected as they always were; the others through
    the lab's collect shell, so their bundles hold the node's CNI config and subnet.env."""
    if state.backend == backends.DEFAULT:
        return NetnsTarget(netns=netns, node=node)
    return NetnsTarget(netns=netns, node=node, shell=api.collect_shell(state, node))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "names", nargs="*", metavar="SAMPLE", help="samples to make, e.g. lab-canal-healthy"
    )
    parser.add_argument("--only", help="make only this sample (healthy, a fault, lab-NAME)")
    parser.add_argument("--list", action="store_true", help="list the sample names and exit")
    args = parser.parse_args()
    known = scenarios()
    if args.list:
        print("\n".join(known))
        return 0
    wanted = list(args.names)
    if args.only:
        wanted.append(args.only if args.only.startswith("lab-") else f"lab-{args.only}")
    unknown = [name.removesuffix(".tar.gz") for name in wanted]
    unknown = [name for name in unknown if name not in known]
    if unknown:
        parser.error(f"unknown sample {', '.join(unknown)}; see --list")
    selected = [name.removesuffix(".tar.gz") for name in wanted] or list(known)
    for name in selected:
        backend, fault = known[name]
        sample(name, backend, fault, HERE / f"{name}.tar.gz")
    return 0


if __name__ == "__main__":
    sys.exit(main())
