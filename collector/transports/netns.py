"""The `netns` transport: a named network namespace is a node's host namespace (the lab)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from threading import Event

from needle.collector.transports.base import Report, RunResult, TransportName, ignore_report
from needle.collector.transports.process import run_script

NETNS_DIR = Path("/run/netns")


@dataclass(frozen=True)
class NetnsTarget:
    netns: str
    node: str
    shell: str = "sh"

    @property
    def transport(self) -> TransportName:
        return "netns"

    @property
    def description(self) -> str:
        return f"netns {self.netns}"

    @property
    def target(self) -> str:
        return self.netns

    @property
    def node_netns(self) -> str | None:
        return self.netns

    def argv(self, script_args: list[str]) -> list[str]:
        # `ip netns exec` also remounts /sys for the namespace, so the script's view of
        # /sys/class/net is the node's
        return ["ip", "netns", "exec", self.netns, self.shell, "-s", "--", *script_args]

    def problem(self) -> str | None:
        if "/" in self.netns or self.netns in {"", ".", ".."}:
            return f"{self.netns!r} is not a network namespace name"
        if not (NETNS_DIR / self.netns).exists():
            return f"network namespace {self.netns} does not exist (see `ip netns list`)"
        return None

    def run(
        self,
        script: str,
        args: list[str],
        stream_to: Path,
        deadline_s: float,
        stop: Event,
        report: Report = ignore_report,
    ) -> RunResult:
        problem = self.problem()
        if problem is not None:
            return RunResult(None, b"", False, False, 0.0, problem)
        report("collecting")
        return run_script(self.argv(args), script, stream_to, deadline_s, stop)
