"""`needle collect`, `needle cleanup` and `needle rbac`."""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Annotated

import typer

from collector.collect import CollectOptions, Target, collect
from collector.errors import CollectorError, NotBuiltYet
from collector.progress import Progress
from collector.transports.local import LocalTarget
from collector.transports.netns import NetnsTarget

app = typer.Typer()

PANEL_NODES = "Nodes"
PANEL_CLUSTER = "Cluster objects"
PANEL_CAPTURE = "Packet captures"


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
    output: Annotated[
        Path,
        typer.Option("-o", "--output", help="The bundle to write: NAME.tar.gz or NAME.tar.zst."),
    ],
    local: Annotated[
        bool,
        typer.Option("--local", help="Collect this host as one node.", rich_help_panel=PANEL_NODES),
    ] = False,
    node_name: Annotated[
        str | None,
        typer.Option(
            "--node-name",
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
            help="Read cluster objects from kubectl dumps (*.json, *.yaml).",
            rich_help_panel=PANEL_CLUSTER,
        ),
    ] = None,
    kubeconfig: Annotated[
        Path | None,
        typer.Option(
            "--kubeconfig",
            help="Collect from a live cluster through the Kubernetes API.",
            rich_help_panel=PANEL_CLUSTER,
        ),
    ] = None,
    context: Annotated[str | None, typer.Option("--context", rich_help_panel=PANEL_CLUSTER)] = None,
    nodes: Annotated[
        str | None,
        typer.Option(
            "--nodes", help="Only these nodes (comma-separated).", rich_help_panel=PANEL_CLUSTER
        ),
    ] = None,
    selector: Annotated[
        str | None,
        typer.Option(
            "-l",
            "--selector",
            help="Only nodes matching this label selector.",
            rich_help_panel=PANEL_CLUSTER,
        ),
    ] = None,
    image: Annotated[str | None, typer.Option("--image", rich_help_panel=PANEL_CLUSTER)] = None,
    namespace: Annotated[
        str | None, typer.Option("--namespace", rich_help_panel=PANEL_CLUSTER)
    ] = None,
    capture_seconds: Annotated[
        int,
        typer.Option(
            "--capture-seconds",
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

    Exit status: 0 when everything asked for was collected, 1 when the bundle was
    written but is partial or interrupted (the summary says what is missing), 2 when
    nothing could be collected.
    """
    live_cluster = any(
        v is not None for v in (kubeconfig, context, nodes, selector, image, namespace)
    )
    if live_cluster or not (local or netns or kube_dir):
        raise NotBuiltYet("collect from a live cluster (--kubeconfig)", 5)
    if node_name is not None and not local:
        raise CollectorError("--node-name goes with --local")
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
        capture_seconds=0 if no_capture else capture_seconds,
        max_packets=max_packets,
        concurrency=concurrency,
        node_deadline_s=node_timeout,
        command=["needle", *sys.argv[1:]],
    )
    with Progress() as progress:
        writer = collect(options, progress)
    manifest = writer.manifest
    size = output.stat().st_size
    counts = {
        status: sum(1 for n in manifest.nodes if n.status == status)
        for status in ("ok", "partial", "failed")
    }
    typer.echo(
        f"wrote {output} ({size / 1024:.0f} KiB, {manifest.status}): "
        f"{counts['ok']} nodes ok, {counts['partial']} partial, {counts['failed']} failed",
        err=True,
    )
    for node in manifest.nodes:
        for error in node.errors:
            typer.echo(f"  {node.name}: {error}", err=True)
    for resource in manifest.resources:
        if resource.status != "ok":
            typer.echo(f"  {resource.resource}: {resource.status}: {resource.error}", err=True)
    for error in manifest.errors:
        typer.echo(f"  {error}", err=True)
    if manifest.nodes and counts["failed"] == len(manifest.nodes) and kube_dir is None:
        raise typer.Exit(2)
    if manifest.status != "complete":
        raise typer.Exit(1)


@app.command(rich_help_panel="Collect")
def cleanup() -> None:
    """Delete debug pods that earlier collection runs left behind."""
    raise NotBuiltYet("cleanup", 5)


@app.command(rich_help_panel="Collect")
def rbac() -> None:
    """Print the ClusterRole and binding that cluster collection needs."""
    raise NotBuiltYet("rbac", 5)
