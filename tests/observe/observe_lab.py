"""Two VXLAN "nodes" and a router between them, in network namespaces of their own.

    ndltobs-<pid>-<n>-a           ndltobs-...-r            ndltobs-...-b
    a0 10.99.1.1/24  ---veth---  ra 10.99.1.254          rb 10.99.2.254 ---veth--- b0 10.99.2.1/24
    flannel.1 10.244.0.1/24        (forwards; loss, MTU)                    flannel.1 10.244.0.2/24

flannel.1 is set up as flanneld does it: VNI 1, dstport 8472, `local` the underlay
address, no learning, a permanent neighbour for the peer's VTEP address and an FDB entry
sending its MAC to the peer's underlay address. Every command runs inside these
namespaces (`ip -n`, `ip netns exec`): the root namespace is never touched.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from pathlib import Path

A_UNDERLAY, B_UNDERLAY = "10.99.1.1", "10.99.2.1"
ROUTER_A_SIDE = "10.99.1.254"
A_OVERLAY, B_OVERLAY = "10.244.0.1", "10.244.0.2"
A_MAC, B_MAC = "0a:58:0a:f4:00:01", "0a:58:0a:f4:00:02"

_labs = itertools.count(1)  # several labs in one test process get distinct names


def run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


class UnderlayLab:
    def __init__(self, workdir: Path) -> None:
        prefix = f"ndltobs-{os.getpid()}-{next(_labs)}"
        self.a, self.r, self.b = f"{prefix}-a", f"{prefix}-r", f"{prefix}-b"
        self.workdir = workdir
        self.made: list[str] = []
        self.captures: list[tuple[subprocess.Popen[bytes], Path]] = []

    # -- building and tearing down -------------------------------------------------

    def up(self) -> None:
        for name in (self.a, self.r, self.b):
            run("ip", "netns", "add", name)
            self.made.append(name)
            run("ip", "-n", name, "link", "set", "lo", "up")
        run("ip", "-n", self.a, "link", "add", "a0", "type", "veth", "peer", "ra", "netns", self.r)
        run("ip", "-n", self.b, "link", "add", "b0", "type", "veth", "peer", "rb", "netns", self.r)
        for ns, dev, address in (
            (self.a, "a0", f"{A_UNDERLAY}/24"),
            (self.r, "ra", f"{ROUTER_A_SIDE}/24"),
            (self.r, "rb", "10.99.2.254/24"),
            (self.b, "b0", f"{B_UNDERLAY}/24"),
        ):
            run("ip", "-n", ns, "addr", "add", address, "dev", dev)
            run("ip", "-n", ns, "link", "set", dev, "up")
        run("ip", "-n", self.a, "route", "add", "default", "via", ROUTER_A_SIDE)
        run("ip", "-n", self.b, "route", "add", "default", "via", "10.99.2.254")
        run("ip", "netns", "exec", self.r, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        self._vxlan(
            self.a, A_UNDERLAY, "a0", A_MAC, f"{A_OVERLAY}/24", B_OVERLAY, B_MAC, B_UNDERLAY
        )
        self._vxlan(
            self.b, B_UNDERLAY, "b0", B_MAC, f"{B_OVERLAY}/24", A_OVERLAY, A_MAC, A_UNDERLAY
        )

    def _vxlan(
        self,
        ns: str,
        local: str,
        dev: str,
        mac: str,
        address: str,
        peer_overlay: str,
        peer_mac: str,
        peer_underlay: str,
    ) -> None:
        run(
            "ip",
            "-n",
            ns,
            "link",
            "add",
            "flannel.1",
            "address",
            mac,
            "type",
            "vxlan",
            "id",
            "1",
            "dstport",
            "8472",
            "local",
            local,
            "dev",
            dev,
            "nolearning",
        )
        run("ip", "-n", ns, "link", "set", "flannel.1", "mtu", "1450", "up")
        run("ip", "-n", ns, "addr", "add", address, "dev", "flannel.1")
        run(
            "ip",
            "-n",
            ns,
            "neigh",
            "replace",
            peer_overlay,
            "lladdr",
            peer_mac,
            "dev",
            "flannel.1",
            "nud",
            "permanent",
        )
        run(
            "bridge",
            "-n",
            ns,
            "fdb",
            "append",
            peer_mac,
            "dev",
            "flannel.1",
            "dst",
            peer_underlay,
        )

    def down(self) -> None:
        for process, _ in self.captures:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=5)
        for name in reversed(self.made):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        self.made.clear()

    # -- traffic and captures ------------------------------------------------------

    def start_capture(self, ns: str, dev: str, name: str, bpf: str, count: int = 2000) -> Path:
        """tcpdump as the collector runs it (-n -U -s 200 -c N -w FILE FILTER), returned
        once it is listening."""
        path = self.workdir / name
        stderr = self.workdir / f"{name}.stderr"
        # --immediate-mode: without it, packets still in libpcap's ring buffer when
        # SIGINT comes (up to its 1 s block timeout) are counted but never written
        tcpdump = ["tcpdump", "-n", "-U", "--immediate-mode", "-Z", "root", "-i", dev]
        process = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                ns,
                *tcpdump,
                "-s",
                "200",
                "-c",
                str(count),
                "-w",
                str(path),
                *bpf.split(),
            ],
            stdout=subprocess.DEVNULL,
            stderr=stderr.open("wb"),
        )
        self.captures.append((process, path))
        deadline = time.monotonic() + 5
        while b"listening on" not in stderr.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"tcpdump did not start: {stderr.read_text()}")
            time.sleep(0.02)
        return path

    def stop_captures(self) -> dict[str, bytes]:
        time.sleep(0.2)  # the last packets' way through the kernel to tcpdump
        for process, _ in self.captures:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        found = {}
        for process, path in self.captures:
            process.wait(timeout=10)
            found[path.name] = path.read_bytes()
        self.captures.clear()
        return found

    def ping(self, ns: str, target: str, *options: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            ["ip", "netns", "exec", ns, "ping", "-n", "-q", *options, target],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def in_ns(self, ns: str, *argv: str) -> str:
        return run("ip", "netns", "exec", ns, *argv)
