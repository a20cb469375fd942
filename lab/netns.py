"""Running iproute2 against lab namespaces: batches, sysctls, namespace create/delete.

One `ip`/`bridge` process per namespace, fed its whole batch on stdin: process start-up,
not the kernel, is what costs time when a lab has hundreds of namespaces.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from needle.lab.batches import Batch
from needle.lab.errors import LabError

NETNS_DIR = Path("/run/netns")
TIMEOUT_SECONDS = 60
_FAILED_LINE = re.compile(r"Command failed -:(\d+)")


class CommandError(LabError):
    """An iproute2 command inside the lab failed; the message names the command and why."""


def _describe_failure(what: str, lines: Sequence[str], stderr: str) -> str:
    messages = [
        line.strip()
        for line in stderr.splitlines()
        if line.strip() and not _FAILED_LINE.search(line)
    ]
    reason = "; ".join(messages) or "no error message"
    match = _FAILED_LINE.search(stderr)
    if match and 0 < int(match.group(1)) <= len(lines):
        return f"{what}: `{lines[int(match.group(1)) - 1]}` failed: {reason}"
    return f"{what}: {reason}"


def run_batch(batch: Batch) -> None:
    """Run one batch; raise CommandError naming the failing line."""
    argv = [batch.tool, "-n", batch.netns, "-batch", "-"]
    _run(argv, batch.lines, batch.what)


def _run(argv: list[str], lines: Sequence[str], what: str) -> None:
    try:
        proc = subprocess.run(
            argv,
            input="".join(f"{line}\n" for line in lines),
            capture_output=True,
            text=True,
            check=False,
            timeout=TIMEOUT_SECONDS,
        )
    except FileNotFoundError as exc:
        raise CommandError(f"{what}: `{argv[0]}` is not installed (install iproute2)") from exc
    except subprocess.TimeoutExpired as exc:
        raise CommandError(f"{what}: `{' '.join(argv)}` took over {TIMEOUT_SECONDS}s") from exc
    if proc.returncode != 0:
        raise CommandError(_describe_failure(what, lines, proc.stderr))


def run_parallel(jobs: Sequence[Callable[[], None]], workers: int | None = None) -> None:
    """Run independent jobs on a thread pool (they mostly wait on child processes); re-raise
    the first failure after all have finished, so none is left running."""
    if not jobs:
        return
    workers = workers or min(len(jobs), 4 * (os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(job) for job in jobs]
        errors = [future.exception() for future in futures]
    for error in errors:
        if error is not None:
            raise error


def run_batches(batches: Iterable[Batch]) -> None:
    run_parallel([lambda batch=batch: run_batch(batch) for batch in batches])


def existing() -> set[str]:
    """Names of all named network namespaces on this host."""
    try:
        return {entry.name for entry in NETNS_DIR.iterdir()}
    except FileNotFoundError:
        return set()


def create(names: Sequence[str]) -> None:
    """Create named namespaces with one `ip -batch` in which each `netns add` returns to the
    caller's namespace afterwards."""
    if names:
        _run(["ip", "-batch", "-"], [f"netns add {name}" for name in names], "create namespaces")


def delete(names: Sequence[str]) -> None:
    """Delete named namespaces; `-force` goes on past one that fails, the caller re-checks."""
    if names:
        _run(
            ["ip", "-force", "-batch", "-"],
            [f"netns delete {name}" for name in names],
            "delete namespaces",
        )


def set_sysctls(netns: str, required: dict[str, str], optional: dict[str, str]) -> None:
    """Write sysctls inside `netns`. /proc/sys/net shows the writer's own network namespace,
    so entering only the network namespace (nsenter --net) is enough. `optional` keys are
    skipped when absent (the bridge-nf ones exist only with br_netfilter)."""
    script = (
        'for kv; do key="${kv%%=*}"; value="${kv#*=}"; path="/proc/sys/${key#\\?}"; '
        'case "$key" in "?"*) [ -e "$path" ] || continue;; esac; '
        'echo "$value" > "$path" || exit 1; done'
    )
    args = [f"{key.replace('.', '/')}={value}" for key, value in required.items()]
    args += [f"?{key.replace('.', '/')}={value}" for key, value in optional.items()]
    argv = ["nsenter", f"--net={NETNS_DIR / netns}", "sh", "-c", script, "sh", *args]
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, check=False, timeout=TIMEOUT_SECONDS
        )
    except FileNotFoundError as exc:
        raise CommandError("`nsenter` is not installed (install util-linux)") from exc
    if proc.returncode != 0:
        raise CommandError(
            f"setting sysctls {', '.join(required)} in {netns} failed: "
            f"{proc.stderr.strip() or 'no error message'}"
        )


def iptables_restore(netns: str, rules: str, what: str) -> None:
    """Add `rules` (iptables-save syntax) inside `netns` with `iptables-restore --noflush`:
    entering only the network namespace (nsenter --net) is enough, since netfilter's
    tables belong to it; the root namespace's firewall is never touched."""
    argv = ["nsenter", f"--net={NETNS_DIR / netns}", "iptables-restore", "--noflush", "-w"]
    try:
        proc = subprocess.run(
            argv, input=rules, capture_output=True, text=True, check=False, timeout=TIMEOUT_SECONDS
        )
    except FileNotFoundError as exc:
        missing = f"{what}: `iptables-restore` is not installed (install iptables)"
        raise CommandError(missing) from exc
    if proc.returncode != 0:
        reason = proc.stderr.strip() or "no error message"
        raise CommandError(f"{what}: iptables-restore failed: {reason}")


def read_sysctl(netns: str, key: str) -> str:
    """One sysctl's value inside `netns`."""
    proc = subprocess.run(
        ["nsenter", f"--net={NETNS_DIR / netns}", "cat", f"/proc/sys/{key.replace('.', '/')}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=TIMEOUT_SECONDS,
    )
    if proc.returncode != 0:
        raise CommandError(f"reading {key} in {netns} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()
