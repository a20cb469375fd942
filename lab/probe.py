"""Pings between lab pods, from inside lab namespaces only: how tests and users see a fault.

Every probe runs `ping` inside a lab namespace towards a lab address, so no packet leaves
the lab.
"""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from needle.lab.netns import NETNS_DIR
from needle.lab.state import LabState, PodState


@dataclass(frozen=True)
class Ping:
    """One ping's outcome."""

    source: str
    """Pod ref ("default/web-...") or namespace the ping ran in."""
    destination: str
    """Destination IP."""
    size: int
    dont_fragment: bool
    ok: bool
    output: str


def ping(
    netns: str,
    ip: str,
    size: int = 56,
    *,
    dont_fragment: bool = True,
    timeout: int = 1,
    source: str | None = None,
) -> Ping:
    """One echo request with `size` payload bytes from namespace `netns` to `ip`.
    `dont_fragment` sets DF (-M do); otherwise the sender may fragment (-M dont)."""
    argv = [
        "nsenter",
        f"--net={NETNS_DIR / netns}",
        "ping",
        "-n",
        "-c",
        "1",
        "-W",
        str(timeout),
        "-M",
        "do" if dont_fragment else "dont",
        "-s",
        str(size),
        ip,
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout + 10)
    return Ping(
        source=source or netns,
        destination=ip,
        size=size,
        dont_fragment=dont_fragment,
        ok=proc.returncode == 0,
        output=(proc.stdout + proc.stderr).strip(),
    )


def pairs(state: LabState, *, cross_node_only: bool = False) -> list[tuple[PodState, PodState]]:
    """Every ordered pair of distinct pods (optionally only pairs on different nodes)."""
    node_of = {pod.netns: node.name for node in state.nodes for pod in node.pods}
    return [
        (src, dst)
        for src in state.pods()
        for dst in state.pods()
        if src is not dst and not (cross_node_only and node_of[src.netns] == node_of[dst.netns])
    ]


def mesh(
    state: LabState,
    size: int = 56,
    *,
    dont_fragment: bool = True,
    cross_node_only: bool = False,
    workers: int = 32,
) -> dict[tuple[str, str], Ping]:
    """Ping every pod from every other pod in parallel; keyed by (source netns, dest IP)."""
    todo = pairs(state, cross_node_only=cross_node_only)
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(todo)))) as pool:
        results = list(
            pool.map(
                lambda pair: ping(
                    pair[0].netns, pair[1].ip, size, dont_fragment=dont_fragment, source=pair[0].ref
                ),
                todo,
            )
        )
    return {(src.netns, dst.ip): result for (src, dst), result in zip(todo, results, strict=True)}
