"""The `netns` transport: a named network namespace is a node's host namespace (the lab)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

NETNS_DIR = Path("/run/netns")


@dataclass(frozen=True)
class NetnsTarget:
    netns: str
    node: str
    shell: str = "sh"

    transport = "netns"

    @property
    def description(self) -> str:
        return f"netns {self.netns}"

    def argv(self, script_args: list[str]) -> list[str]:
        # `ip netns exec` also remounts /sys for the namespace, so the script's view of
        # /sys/class/net is the node's
        return ["ip", "netns", "exec", self.netns, self.shell, "-s", "--", *script_args]

    def script_args(self) -> list[str]:
        return ["-n", self.netns]

    def problem(self) -> str | None:
        if "/" in self.netns or self.netns in {"", ".", ".."}:
            return f"{self.netns!r} is not a network namespace name"
        if not (NETNS_DIR / self.netns).exists():
            return f"network namespace {self.netns} does not exist (see `ip netns list`)"
        return None
