"""The `local` transport: this host is the node."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from threading import Event

from needle.collector.transports.base import Report, RunResult, TransportName, ignore_report
from needle.collector.transports.process import run_script


@dataclass(frozen=True)
class LocalTarget:
    node: str
    shell: str = "sh"

    @property
    def transport(self) -> TransportName:
        return "local"

    @property
    def description(self) -> str:
        return "this host"

    @property
    def target(self) -> str:
        return socket.gethostname()

    @property
    def node_netns(self) -> str | None:
        return None

    def argv(self, script_args: list[str]) -> list[str]:
        return [self.shell, "-s", "--", *script_args]

    def run(
        self,
        script: str,
        args: list[str],
        stream_to: Path,
        deadline_s: float,
        stop: Event,
        report: Report = ignore_report,
    ) -> RunResult:
        report("collecting")
        return run_script(self.argv(args), script, stream_to, deadline_s, stop)
