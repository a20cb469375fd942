"""What the lab needs from this host, checked up front so errors say what is missing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from needle.lab.errors import LabError

MIN_IPROUTE2 = (5, 0)
_MODERN = re.compile(r"iproute2-(?:v)?(\d+)\.(\d+)")
_DATED = re.compile(r"iproute2-ss(\d{6})")


def parse_iproute2_version(text: str) -> tuple[int, int] | None:
    """`ip -V` prints "ip utility, iproute2-6.1.0, libbpf 1.1.2" (or, before 5.x,
    "ip utility, iproute2-ss190107"); dated releases are all older than 5.0."""
    modern = _MODERN.search(text)
    if modern:
        return int(modern.group(1)), int(modern.group(2))
    if _DATED.search(text):
        return (4, 0)
    return None


def check_root() -> None:
    if os.geteuid() != 0:
        raise LabError(
            "needle lab needs root to create network namespaces; run it as root (e.g. sudo)"
        )


def check_tools() -> None:
    """root, iproute2 (`ip`, `bridge`) new enough, util-linux (`nsenter`, `setsid`), netns."""
    check_root()
    missing = [tool for tool in ("ip", "bridge", "nsenter", "setsid") if not shutil.which(tool)]
    if missing:
        raise LabError(
            f"needle lab needs {', '.join(missing)} on PATH; install iproute2 and util-linux"
        )
    probe = subprocess.run(["ip", "-V"], capture_output=True, text=True, check=False)
    version = parse_iproute2_version(probe.stdout + probe.stderr)
    if version is None or version < MIN_IPROUTE2:
        found = (probe.stdout + probe.stderr).strip() or "unknown"
        raise LabError(
            f"needle lab needs iproute2 {MIN_IPROUTE2[0]}.{MIN_IPROUTE2[1]} or newer "
            f"(found {found!r}); upgrade iproute2"
        )
    if not Path("/proc/self/ns/net").exists():
        raise LabError(
            "this kernel has no network namespaces (CONFIG_NET_NS); needle lab needs them"
        )


def explain_kernel_failure(message: str) -> str:
    """If a build step failed because the kernel cannot make a device kind, say which
    kernel feature is missing; other failures pass through unchanged.

    The lab probes nothing up front: creating and deleting a probe device costs the kernel
    tens of milliseconds, while the failing `link add ... type KIND` line names the kind.
    """
    if "Unknown device type" not in message and "not supported" not in message:
        return message
    options = (("vxlan", "CONFIG_VXLAN"), ("veth", "CONFIG_VETH"), ("bridge", "CONFIG_BRIDGE"))
    for kind, option in options:
        if f"type {kind}" in message:
            return (
                f"this kernel cannot create {kind} devices ({option}; try `modprobe {kind}`): "
                f"{message}"
            )
    return message
