"""The one shape every transport has: a Target runs the node script and streams its
tar output to a file.

`collect` knows nothing else about a transport, so a new way to reach a node (a pod,
SSH, a serial console) is one new class, not a new branch in the orchestration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from threading import Event
from typing import Literal, Protocol

TransportName = Literal["local", "netns", "pod"]
# Short state changes for the progress display ("starting pod", "collecting", ...).
Report = Callable[[str], None]


@dataclass
class RunResult:
    """How one run of the node script went. `error` set means nothing usable came back."""

    exit_code: int | None
    stderr: bytes
    timed_out: bool
    interrupted: bool
    duration_s: float
    error: str | None = None
    warning: str | None = None
    """A problem that cost some data but not all (a connection lost mid-way)."""


def ignore_report(_state: str) -> None:
    """The default Report: progress is optional."""


class Target(Protocol):
    """A node and the way to reach it."""

    @property
    def node(self) -> str:
        """The Kubernetes node name; the bundle's nodes/<node>/ directory."""
        ...

    @property
    def transport(self) -> TransportName: ...

    @property
    def description(self) -> str:
        """How the node is reached, for people (progress lines)."""
        ...

    @property
    def target(self) -> str:
        """What the manifest records as the node's `target` (netns, pod or host name)."""
        ...

    @property
    def node_netns(self) -> str | None:
        """The named namespace the script must treat as the node's (its `-n`), if any."""
        ...

    def run(
        self,
        script: str,
        args: list[str],
        stream_to: Path,
        deadline_s: float,
        stop: Event,
        report: Report = ignore_report,
    ) -> RunResult:
        """Run `script` with `args`; its stdout goes byte for byte to `stream_to` as it
        arrives. After `deadline_s` or once `stop` is set, the script is asked to send
        what it has and stop. Never raises for a node-side failure: that is `error`."""
        ...
