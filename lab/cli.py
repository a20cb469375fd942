"""`needle lab ...`: a Flannel-family cluster built from network namespaces, with faults.

A thin shell over needle.lab.api; user errors are raised as LabError for the front door to print.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from needle.lab import api, backends, faults, nodefiles, topology
from needle.lab.errors import LabError
from needle.lab.state import STATUS_UP, LabState
from needle.lab.terminal import did_you_mean, make_console, plural, safe_text
from needle.lab.terminal import safe_markup as shown

app = typer.Typer(
    help="""A Flannel cluster (VXLAN, DirectRouting, host-gw or Canal) built from network
    namespaces on this host: learn the topology, reproduce a fault, try needle without a
    cluster. Needs root.

    \b
    Examples:
    $ sudo needle lab up --nodes 3 --pods 2
    $ sudo needle lab fault mtu-underlay
    $ sudo needle lab status
    $ sudo needle lab down
    """,
    no_args_is_help=True,
)

NameOption = Annotated[
    str,
    typer.Option(
        "--name",
        envvar="NEEDLE_LAB_NAME",
        metavar="NAME",
        help="Lab name; prefixes its namespaces (NAME-underlay, NAME-n1, NAME-n1-p1).",
    ),
]


@app.command()
def up(
    name: NameOption = topology.DEFAULT_NAME,
    nodes: Annotated[int, typer.Option("--nodes", metavar="N", help="Number of nodes.")] = (
        topology.DEFAULT_NODES
    ),
    pods: Annotated[int, typer.Option("--pods", metavar="K", help="Pods per node.")] = (
        topology.DEFAULT_PODS
    ),
    underlay_mtu: Annotated[
        int,
        typer.Option(
            "--underlay-mtu",
            metavar="MTU",
            help="MTU of the underlay (the overlay MTU is less by the backend's encapsulation).",
        ),
    ] = topology.DEFAULT_UNDERLAY_MTU,
    backend: Annotated[
        str,
        typer.Option(
            "--backend",
            metavar="|".join(backends.NAMES),
            help="Data plane to build: flannel VXLAN (default), VXLAN with DirectRouting, "
            "host-gw, or Canal (Calico CNI with flannel VXLAN, as RKE2 ships it).",
        ),
    ] = backends.DEFAULT,
) -> None:
    """Build the lab: an underlay switch, nodes with the backend's devices and routes, pods,
    kube objects.

    \b
    Examples:
    $ sudo needle lab up
    $ sudo needle lab up --nodes 3 --pods 2 --underlay-mtu 9000
    $ sudo needle lab up --name lab2 --backend canal
    """
    if backend not in backends.BACKENDS:
        choices = ", ".join(backends.NAMES)
        hint = did_you_mean(backend, backends.NAMES) or f"choose one of: {choices}"
        raise LabError(f"unknown backend {backend!r}; {hint}")
    started = time.monotonic()
    state = api.up(name=name, nodes=nodes, pods=pods, underlay_mtu=underlay_mtu, backend=backend)
    elapsed = time.monotonic() - started
    typer.echo(
        f"lab {safe_text(state.name)} is up: {plural(len(state.nodes), 'node')}, "
        f"{plural(len(state.pods()), 'pod')}, underlay MTU {state.underlay_mtu}, "
        f"overlay MTU {state.overlay_mtu} ({elapsed:.2f}s)"
        + ("" if state.backend == backends.DEFAULT else f"; backend {state.backend}")
    )
    typer.echo(safe_text(f"kube objects: {state.kube_dir}"))
    typer.echo(safe_text(f"next: needle lab status --name {state.name}; needle lab fault --help"))


_STATUS_STYLE = {STATUS_UP: "green"}


def _format_text(state: LabState, missing: list[str]) -> str:
    """The status as rich markup (every value through terminal.safe_markup(): shown as
    typed, control characters escaped): plain text once printed without colour."""
    style = _STATUS_STYLE.get(state.status, "yellow")
    lines = [
        f"lab:         {shown(state.name)} ([{style}]{shown(state.status)}[/], "
        f"created {shown(state.created)})",
        f"state dir:   {shown(str(state.state_dir))}",
        f"kube dir:    {shown(str(state.kube_dir))}",
        f"node files:  {shown(str(Path(state.state_dir) / nodefiles.NODES_DIR))}/<node>/root "
        "(CNI config, subnet.env)",
        f"backend:     {shown(state.backend)}",
        f"underlay:    netns {shown(state.underlay_netns)}, MTU {state.underlay_mtu}; "
        f"overlay MTU {state.overlay_mtu}",
        "",
        f"[bold]{'NODE':<12} {'NETNS':<24} {'UNDERLAY IP':<16} {'POD CIDR':<15} VTEP MAC[/]",
    ]
    for node in state.nodes:
        lines.append(
            shown(
                f"{node.name:<12} {node.netns:<24} {node.underlay_ip:<16} {node.pod_cidr:<15} "
                f"{node.vtep_mac or '-'}"
            )
        )
    lines += ["", f"[bold]{'POD':<34} {'NODE':<12} {'NETNS':<24} {'IP':<15} HOST VETH[/]"]
    for node in state.nodes:
        for pod in node.pods:
            lines.append(
                shown(f"{pod.ref:<34} {node.name:<12} {pod.netns:<24} {pod.ip:<15} {pod.host_veth}")
            )
    lines.append("")
    if state.faults:
        lines.append("faults:")
        lines += [
            f"  [yellow]{shown(record.fault)}[/]: {shown(record.message)}"
            for record in state.faults
        ]
    else:
        lines.append("faults: none")
    if missing:
        lines.append(f"[red]warning[/]: namespaces missing: {shown(', '.join(missing))}")
    lines.append("")
    lines.append(
        shown(
            "collect: needle collect -o lab.tar.gz --kube-dir "
            f"{state.kube_dir} " + " ".join(f"--netns {arg}" for arg in state.netns_args())
        )
    )
    return "\n".join(lines)


@app.command()
def status(
    ctx: typer.Context,
    name: NameOption = topology.DEFAULT_NAME,
    output_format: Annotated[
        str,
        typer.Option(
            "--format",
            metavar="text|json",
            help="text (to read) or json (the lab state, with faults, for scripts).",
        ),
    ] = "text",
) -> None:
    """Show the lab's nodes, pods, namespaces, kube dir and injected faults.

    \b
    Examples:
    $ sudo needle lab status
    $ sudo needle lab status --format json
    """
    if output_format not in ("text", "json"):
        raise LabError(f"--format must be text or json, not {output_format!r}")
    state = api.status(name)
    missing = api.missing_netns(state) if state.status == STATUS_UP else []
    if output_format == "json":
        typer.echo(json.dumps({**state.to_dict(), "missing_netns": missing}, indent=2))
    else:
        console = make_console(sys.stdout, ctx.color, soft_wrap=True)
        console.print(_format_text(state, missing))


def _fault_help() -> str:
    listed = "\n".join(f"  {line}" for line in faults.help_text().splitlines())
    return (
        "Inject FAULT into the lab (on the first node unless --node says otherwise).\n\n"
        f"\b\nFaults:\n{listed}\n\n"
        "\b\nExamples:\n"
        "$ sudo needle lab fault mtu-underlay\n"
        "$ sudo needle lab fault route-missing --node lab-node-2"
    )


@app.command(help=_fault_help())
def fault(
    fault_name: Annotated[
        str, typer.Argument(metavar="FAULT", help="Fault to inject (listed above).")
    ],
    name: NameOption = topology.DEFAULT_NAME,
    node: Annotated[
        str | None,
        typer.Option("--node", metavar="NODE", help="Node to break, e.g. lab-node-2."),
    ] = None,
) -> None:
    record = api.fault(name, fault_name, node=node)
    typer.echo(safe_text(f"{record.fault}: {record.message}"))


@app.command()
def down(name: NameOption = topology.DEFAULT_NAME) -> None:
    """Remove the lab: its namespaces, keep-alive processes and state. Safe to repeat.

    \b
    Examples:
    $ sudo needle lab down
    $ sudo needle lab down --name lab2
    """
    teardown = api.down(name)
    if teardown.netns or teardown.pids:
        typer.echo(
            f"lab {safe_text(name)} is down: removed {plural(len(teardown.netns), 'namespace')}"
            + (
                f", stopped {plural(len(teardown.pids), 'process', 'processes')}"
                if teardown.pids
                else ""
            )
        )
    else:
        typer.echo(safe_text(f"lab {name} was not up; nothing to remove"))
