"""The `pod` transport: a short-lived privileged pod on the node, reached through exec.

One run: create the pod (pinned to the node), wait until it runs, exec the node script
in it with the script on stdin and the tar stream back on stdout, delete the pod. The
pod is deleted whatever happens; what the run could not delete, the session deletes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from threading import Event

from needle.collector.kube import debug_pod
from needle.collector.kube.exec_stream import ExecOpenError, open_exec, run_exec, run_short
from needle.collector.kube.pods import Interrupted, PodApi, PodStartError
from needle.collector.transports.base import Report, RunResult, TransportName, ignore_report

# The exec command. The script itself travels on stdin (a runtime refuses an argument
# over 128 KiB); this wrapper only starts it in a session of its own and notes its pid,
# so a later stop request can signal the script's whole process group (the command it
# is running included) and get what was collected so far, as the other transports do.
# `<&3`: an asynchronous command would otherwise get /dev/null as its stdin.
_WRAPPER = (
    "exec 3<&0; "
    'if command -v setsid >/dev/null 2>&1; then setsid sh -s -- "$@" <&3 3<&- & '
    'else sh -s -- "$@" <&3 3<&- & fi; '
    f"echo $! >{debug_pod.PID_FILE}; wait $!"
)
# Signals the group when the wrapper could make one, else the script alone. (`kill
# -TERM -PGID` without `--`: dash and busybox read `--` as a pid.)
_STOP = (
    f'read -r p <{debug_pod.PID_FILE} || exit 1; kill -TERM "-$p" 2>/dev/null || kill -TERM "$p"'
)
STOP_REQUEST_TIMEOUT_S = 10.0


def node_command(script_args: list[str]) -> list[str]:
    return ["sh", "-c", _WRAPPER, "needle-node", *script_args]


def stop_command() -> list[str]:
    return ["sh", "-c", _STOP]


@dataclass(frozen=True)
class PodTiming:
    start_timeout_s: float = 120.0
    """How long a pod may take to run (image pull included)."""
    pull_grace_s: float = 20.0
    """How long an image pull error may last before the node is given up."""
    stop_grace_s: float = 5.0
    """After a stop request, how long the script has to send what it has."""


@dataclass(frozen=True)
class PodTarget:
    node: str
    pod: str
    pods: PodApi
    settings: debug_pod.PodSettings
    timing: PodTiming = PodTiming()
    problem: str | None = None
    """Known before any pod is made (no such node, namespace unusable): fails the node."""

    @property
    def transport(self) -> TransportName:
        return "pod"

    @property
    def description(self) -> str:
        return f"pod {self.pod}"

    @property
    def target(self) -> str:
        return f"{self.settings.namespace}/{self.pod}"

    @property
    def node_netns(self) -> str | None:
        return None  # the pod is in the node's host namespace: every other one is a pod's

    def run(
        self,
        script: str,
        args: list[str],
        stream_to: Path,
        deadline_s: float,
        stop: Event,
        report: Report = ignore_report,
    ) -> RunResult:
        started = time.monotonic()

        def failed(error: str, interrupted: bool = False) -> RunResult:
            took = round(time.monotonic() - started, 3)
            return RunResult(None, b"", False, interrupted, took, error)

        if self.problem is not None:
            return failed(self.problem)
        if stop.is_set():
            return failed("not collected: interrupted before its pod was made", True)
        try:
            report("creating pod")
            self.pods.create(debug_pod.pod_manifest(self.settings, self.pod, self.node), stop)
            report("starting pod")
            self.pods.wait_running(
                self.pod, self.node, self.timing.start_timeout_s, self.timing.pull_grace_s, stop
            )
            report("collecting")
            try:
                wsclient = open_exec(
                    self.pods.cluster, self.settings.namespace, self.pod, node_command(args)
                )
            except ExecOpenError as exc:
                return failed(f"cannot exec in pod {self.pod} on {self.node}: {exc}")
            outcome = run_exec(
                wsclient,
                script.encode(),
                stream_to,
                deadline_s,
                stop,
                self.timing.stop_grace_s,
                self._request_stop,
            )
        except PodStartError as exc:
            return failed(str(exc))
        except Interrupted as exc:
            return failed(f"not collected: {exc}", True)
        finally:
            report("deleting pod")
            # a failure stays in the ledger; the session retries and records it
            self.pods.delete(self.pod)
        took = round(time.monotonic() - started, 3)
        error = warning = None
        if outcome.error is not None:
            where = f"pod {self.pod} on {self.node}"
            if outcome.stdout_bytes:
                warning = f"{where}: {outcome.error}; kept what arrived before"
            else:
                error = f"{where}: {outcome.error}"
        return RunResult(
            outcome.exit_code,
            outcome.stderr,
            outcome.timed_out,
            outcome.interrupted,
            took,
            error,
            warning,
        )

    def _request_stop(self) -> None:
        """Ask the script to send what it has: SIGTERM through a second exec."""
        try:
            wsclient = open_exec(
                self.pods.cluster, self.settings.namespace, self.pod, stop_command()
            )
        except ExecOpenError:
            return  # the grace period runs out and the pod is deleted anyway
        run_short(wsclient, STOP_REQUEST_TIMEOUT_S)
