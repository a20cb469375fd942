"""`needle collect`, `needle cleanup` and `needle rbac`."""

from __future__ import annotations

import contextlib
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from needle.collector import rbac as rbac_manifests
from needle.collector.collect import CollectOptions, collect
from needle.collector.errors import CollectorError
from needle.collector.kube import access, debug_pod
from needle.collector.kube.client import connect
from needle.collector.kube.pods import PodApi
from needle.collector.kube.session import ClusterOptions
from needle.collector.progress import Progress
from needle.collector.terminal import plural, safe_text
from needle.collector.transports.base import Target
from needle.collector.transports.local import LocalTarget
from needle.collector.transports.netns import NetnsTarget
from needle.collector.transports.pod import PodTiming
from needle.redact.keys import KeyFileError, read_key_file

app = typer.Typer()

PANEL_NODES = "Nodes"
PANEL_CLUSTER = "Cluster objects"
PANEL_CAPTURE = "Packet captures"
PANEL_PODS = "Debug pods (live cluster)"
PANEL_PROBES = "Probes"
PANEL_REDACT = "Redaction"
MAX_PROBE_PEERS = 64
"""Bounds the node script's arguments (a runtime refuses one over 128 KiB)."""

KubeconfigOption = Annotated[
    Path | None,
    typer.Option(
        "--kubeconfig",
        metavar="FILE",
        help="Kubeconfig to use (default: KUBECONFIG, ~/.kube/config, in-cluster).",
        rich_help_panel=PANEL_CLUSTER,
    ),
]
ContextOption = Annotated[
    str | None,
    typer.Option(
        "--context",
        metavar="NAME",
        help="Kubeconfig context (default: its current one).",
        rich_help_panel=PANEL_CLUSTER,
    ),
]
NamespaceOption = Annotated[
    str,
    typer.Option(
        "--namespace",
        metavar="NAMESPACE",
        help="Namespace of the debug pods (made, labelled privileged, if missing).",
        rich_help_panel=PANEL_PODS,
    ),
]


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """A `kill` (or a CI timeout) stops a collection the way Ctrl-C does: the nodes send
    what they have, the debug pods are deleted and the bundle is written."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _node_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise CollectorError("--nodes takes node names separated by commas, e.g. --nodes a,b")
    return names


def _netns_targets(pairs: list[str], shell: str) -> list[Target]:
    targets: list[Target] = []
    for pair in pairs:
        netns, sep, node = pair.partition("=")
        if not sep or not netns or not node:
            raise CollectorError(f"--netns takes NS=NODENAME, not {pair!r}")
        targets.append(NetnsTarget(netns=netns, node=node, shell=shell))
    return targets


@app.command("collect", rich_help_panel="Collect")
def collect_command(
    ctx: typer.Context,
    output: Annotated[
        Path,
        typer.Option(
            "-o",
            "--output",
            metavar="FILE",
            help="The bundle to write: NAME.tar.gz or NAME.tar.zst.",
        ),
    ],
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Replace the output file if it exists (when the new one is written)."
        ),
    ] = False,
    local: Annotated[
        bool,
        typer.Option("--local", help="Collect this host as one node.", rich_help_panel=PANEL_NODES),
    ] = False,
    node_name: Annotated[
        str | None,
        typer.Option(
            "--node-name",
            metavar="NAME",
            help="The node name for --local (default: this host's name).",
            rich_help_panel=PANEL_NODES,
        ),
    ] = None,
    netns: Annotated[
        list[str] | None,
        typer.Option(
            "--netns",
            metavar="NS=NODENAME",
            help="Collect network namespace NS as the host namespace of node NODENAME "
            "(repeatable; the lab).",
            rich_help_panel=PANEL_NODES,
        ),
    ] = None,
    kube_dir: Annotated[
        Path | None,
        typer.Option(
            "--kube-dir",
            metavar="DIR",
            help="Read cluster objects from kubectl dumps (*.json, *.yaml).",
            rich_help_panel=PANEL_CLUSTER,
        ),
    ] = None,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    nodes: Annotated[
        str | None,
        typer.Option(
            "--nodes",
            metavar="NAMES",
            help="Only these nodes of the live cluster (comma-separated).",
            rich_help_panel=PANEL_NODES,
        ),
    ] = None,
    selector: Annotated[
        str | None,
        typer.Option(
            "-l",
            "--selector",
            metavar="SELECTOR",
            help="Only the live cluster's nodes matching this label selector.",
            rich_help_panel=PANEL_NODES,
        ),
    ] = None,
    image: Annotated[
        str | None,
        typer.Option(
            "--image",
            metavar="IMAGE",
            help=f"Debug pod image (default {debug_pod.DEFAULT_IMAGE}; needs sh, iproute2, "
            "tcpdump, ethtool, nsenter).",
            rich_help_panel=PANEL_PODS,
        ),
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace",
            metavar="NAMESPACE",
            help=f"Namespace of the debug pods (default {debug_pod.DEFAULT_NAMESPACE}; "
            "made and labelled privileged if missing).",
            rich_help_panel=PANEL_PODS,
        ),
    ] = None,
    start_timeout: Annotated[
        float,
        typer.Option(
            "--start-timeout",
            min=1,
            help="Seconds a debug pod may take to start (image pull included).",
            rich_help_panel=PANEL_PODS,
        ),
    ] = 120.0,
    capture_seconds: Annotated[
        int,
        typer.Option(
            "--capture-seconds",
            metavar="SECONDS",
            min=1,
            max=300,
            help="Length of the shared capture window.",
            rich_help_panel=PANEL_CAPTURE,
        ),
    ] = 3,
    no_capture: Annotated[
        bool,
        typer.Option(
            "--no-capture", help="Take no packet captures.", rich_help_panel=PANEL_CAPTURE
        ),
    ] = False,
    max_packets: Annotated[
        int,
        typer.Option(
            "--max-packets",
            min=1,
            max=1_000_000,
            help="Packets per capture at most.",
            rich_help_panel=PANEL_CAPTURE,
        ),
    ] = 2000,
    no_probe: Annotated[
        bool,
        typer.Option(
            "--no-probe",
            help="Send no probes (ICMP echoes with DF, a UDP datagram to the VXLAN port) "
            "to peer nodes in the window.",
            rich_help_panel=PANEL_PROBES,
        ),
    ] = False,
    probe_peers: Annotated[
        int | None,
        typer.Option(
            "--probe-peers",
            metavar="K",
            min=0,
            max=MAX_PROBE_PEERS,
            help="Peer nodes each node probes, spread so each is probed by about K others "
            "(default 6).",
            rich_help_panel=PANEL_PROBES,
        ),
    ] = None,
    redact: Annotated[
        bool,
        typer.Option(
            "--redact",
            help="Redact the bundle before it is written, as `needle redact` does: "
            "addresses, MACs and names mapped, secrets removed, captures cut to their headers.",
            rich_help_panel=PANEL_REDACT,
        ),
    ] = False,
    key_file: Annotated[
        Path | None,
        typer.Option(
            "--key-file",
            metavar="FILE",
            help="With --redact: the redaction's key (32 bytes or more), so bundles "
            "redacted with it map alike. Default: a random key, forgotten.",
            rich_help_panel=PANEL_REDACT,
        ),
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=200, help="Nodes collected at once.")
    ] = 10,
    node_timeout: Annotated[
        float,
        typer.Option(
            "--node-timeout",
            min=1,
            help="Seconds one node may take before it is stopped "
            "(what it sent until then is kept).",
        ),
    ] = 120.0,
    shell: Annotated[
        str,
        typer.Option(
            "--shell",
            help="The POSIX shell that runs the node script (sh, dash, busybox sh via 'busybox').",
            hidden=True,
        ),
    ] = "sh",
) -> None:
    """Collect an offline snapshot of a cluster's pod networking into one bundle.

    Without --local, --netns or --kube-dir it collects the live cluster of the current
    kubeconfig context: its objects, and every node through a short-lived debug pod.
    An existing output file is kept unless --force is given.

    Exit status: 0 when everything asked for was collected, 1 when the bundle was
    written but is partial or interrupted (the summary says what is missing), 2 when
    nothing could be collected.

    \b
    Examples:
    $ needle collect -o cluster.tar.gz
    $ needle collect -o cluster.tar.gz --context prod --nodes node-a,node-b
    $ needle collect -o site.tar.gz --kube-dir dump/ --local
    $ sudo needle collect -o lab.tar.gz --netns needle-lab-n1=lab-node-1
    """
    _check_output(output, force)
    live_cluster = kubeconfig is not None or context is not None or not (local or netns or kube_dir)
    if not live_cluster:
        for value, flag in (
            (nodes, "--nodes"),
            (selector, "-l"),
            (image, "--image"),
            (namespace, "--namespace"),
        ):
            if value is not None:
                raise CollectorError(
                    f"{flag} goes with collecting from a live cluster "
                    "(--kubeconfig/--context, or no --local/--netns/--kube-dir)"
                )
    if live_cluster and kube_dir is not None:
        raise CollectorError(
            "--kube-dir and --kubeconfig/--context both give the cluster objects; pick one"
        )
    if node_name is not None and not local:
        raise CollectorError("--node-name goes with --local")
    if no_probe and probe_peers is not None:
        raise CollectorError("--probe-peers goes with probing; drop --no-probe or --probe-peers")
    if key_file is not None and not redact:
        raise CollectorError("--key-file goes with --redact")
    secret = None
    if key_file is not None:
        try:
            secret = read_key_file(key_file)
        except KeyFileError as exc:
            raise CollectorError(str(exc)) from exc
    cluster = None
    if live_cluster:
        cluster = ClusterOptions(
            kubeconfig=kubeconfig,
            context=context,
            nodes=_node_list(nodes),
            selector=selector,
            image=image or debug_pod.DEFAULT_IMAGE,
            namespace=namespace or debug_pod.DEFAULT_NAMESPACE,
            timing=PodTiming(start_timeout_s=start_timeout),
        )
    targets: list[Target] = []
    if local:
        targets.append(
            LocalTarget(node=node_name or socket.gethostname().split(".")[0], shell=shell)
        )
    targets += _netns_targets(netns or [], shell)
    options = CollectOptions(
        output=output,
        kube_dir=kube_dir,
        targets=targets,
        cluster=cluster,
        capture_seconds=0 if no_capture else capture_seconds,
        max_packets=max_packets,
        concurrency=concurrency,
        node_deadline_s=node_timeout,
        command=["needle", *sys.argv[1:]],
        probes=not no_probe,
        probe_peers=probe_peers,
        # without captures the probes still get a window of --capture-seconds
        probe_window_s=capture_seconds,
        redact=redact,
        redact_secret=secret,
    )
    with sigterm_as_interrupt(), Progress(color=ctx.color) as progress:
        writer = collect(options, progress)
    manifest = writer.manifest
    size = output.stat().st_size
    counts = {
        status: sum(1 for n in manifest.nodes if n.status == status)
        for status in ("ok", "partial", "failed")
    }
    typer.echo(
        f"wrote {safe_text(output)} ({size / 1024:.0f} KiB, {manifest.status}"
        f"{', redacted' if redact else ''}): "
        f"{plural(counts['ok'], 'node')} ok, {counts['partial']} partial, "
        f"{counts['failed']} failed",
        err=True,
    )
    for node in manifest.nodes:
        for error in node.errors:
            typer.echo(safe_text(f"  {node.name}: {error}"), err=True)
    for resource in manifest.resources:
        if resource.status != "ok":
            line = f"  {resource.resource}: {resource.status}: {resource.error}"
            typer.echo(safe_text(line), err=True)
    for error in manifest.errors:
        typer.echo(safe_text(f"  {error}"), err=True)
    if manifest.nodes and counts["failed"] == len(manifest.nodes) and not manifest.resources:
        raise typer.Exit(2)
    if manifest.status != "complete":
        raise typer.Exit(1)


def _check_output(output: Path, force: bool) -> None:
    """Refuse to replace an existing file without --force: before any other work, so a
    mistyped name costs nothing. With --force the old file stays until the new bundle
    replaces it in one rename (BundleWriter.close)."""
    if output.is_dir():
        raise CollectorError(f"{output} is a directory; give -o a file name such as x.tar.gz")
    if output.exists() and not force:
        raise CollectorError(
            f"{output} already exists; pass --force to replace it, or pick another name"
        )


@app.command(rich_help_panel="Collect")
def cleanup(
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    namespace: NamespaceOption = debug_pod.DEFAULT_NAMESPACE,
) -> None:
    """Delete debug pods that earlier collection runs left behind (by their label).

    \b
    Examples:
    $ needle cleanup
    $ needle cleanup --context prod --namespace needle
    """
    debug_pod.check_namespace(namespace)
    cluster = connect(kubeconfig, context)
    try:
        pods = PodApi(cluster, namespace)
        deleted, errors = pods.delete_matching(debug_pod.ALL_RUNS_SELECTOR)
    finally:
        cluster.close()
    for name in deleted:
        typer.echo(safe_text(f"deleted pod {namespace}/{name}"))
    if errors:
        raise CollectorError(errors[0] + (f" (and {len(errors) - 1} more)" if errors[1:] else ""))
    if not deleted:
        typer.echo(f"no needle debug pods in namespace {namespace}")


@app.command(rich_help_panel="Collect")
def rbac(
    namespace: NamespaceOption = debug_pod.DEFAULT_NAMESPACE,
    user: Annotated[
        list[str] | None,
        typer.Option("--user", metavar="USER", help="Bind this user (repeatable)."),
    ] = None,
    group: Annotated[
        list[str] | None,
        typer.Option(
            "--group",
            metavar="GROUP",
            help=f"Bind this group (repeatable; default {rbac_manifests.DEFAULT_GROUP}).",
        ),
    ] = None,
    service_account: Annotated[
        list[str] | None,
        typer.Option(
            "--service-account",
            metavar="NAMESPACE:NAME",
            help="Bind this service account (repeatable).",
        ),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Instead of printing the manifests, ask the cluster whether the current "
            "credentials have every permission collection needs (exit 1 if not).",
        ),
    ] = False,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
) -> None:
    """Print the namespace, ClusterRole, Role and bindings cluster collection needs,
    for `needle rbac | kubectl apply -f -`; or check them with --check.

    \b
    Examples:
    $ needle rbac | kubectl apply -f -
    $ needle rbac --group sre --service-account ci:needle
    $ needle rbac --check --context prod
    """
    if check:
        _check_access(kubeconfig, context, debug_pod.check_namespace(namespace))
        return
    if kubeconfig is not None or context is not None:
        raise CollectorError("--kubeconfig and --context go with --check")
    subjects = rbac_manifests.parse_subjects(user or [], group or [], service_account or [])
    typer.echo(rbac_manifests.render(namespace, subjects), nl=False)


def _check_access(kubeconfig: Path | None, context: str | None, namespace: str) -> None:
    cluster = connect(kubeconfig, context)
    try:
        verdicts = access.check(cluster, namespace)
    finally:
        cluster.close()
    for verdict in verdicts:
        mark = {True: "allowed", False: "DENIED", None: "unknown"}[verdict.allowed]
        line = f"{mark:8} {verdict.permission.text}"
        typer.echo(safe_text(line + (f": {verdict.reason}" if verdict.reason else "")))
    missing = [v for v in verdicts if v.allowed is not True]
    if missing:
        typer.echo(
            f"{len(missing)} of {len(verdicts)} permissions missing or unknown: "
            f"apply `needle rbac --namespace {namespace}` (as a cluster admin)",
            err=True,
        )
        raise typer.Exit(1)
    typer.echo(f"all {len(verdicts)} permissions collection needs are granted", err=True)
