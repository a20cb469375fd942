"""`needle lab ...`: a Flannel VXLAN cluster built from network namespaces, with faults.

A thin shell over needle.lab.api; user errors are raised as LabError for the front door to print.
"""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from needle.lab import api, faults, topology
from needle.lab.errors import LabError
from needle.lab.state import STATUS_UP, LabState

app = typer.Typer(
    help=(
        "A Flannel VXLAN cluster built from network namespaces on this host: learn the "
        "topology, reproduce a fault, try needle without a cluster. Needs root."
    ),
    no_args_is_help=True,
)

NameOption = Annotated[
    str,
    typer.Option(
        "--name",
        envvar="NEEDLE_LAB_NAME",
        help="Lab name; prefixes its namespaces (<name>-underlay, <name>-n1, <name>-n1-p1).",
    ),
]


@app.command()
def up(
    name: NameOption = topology.DEFAULT_NAME,
    nodes: Annotated[int, typer.Option("--nodes", help="Number of nodes.")] = (
        topology.DEFAULT_NODES
    ),
    pods: Annotated[int, typer.Option("--pods", help="Pods per node.")] = topology.DEFAULT_PODS,
    underlay_mtu: Annotated[
        int,
        typer.Option("--underlay-mtu", help="MTU of the underlay (overlay MTU is 50 less)."),
    ] = topology.DEFAULT_UNDERLAY_MTU,
) -> None:
    """Build the lab: an underlay switch, nodes with cni0 and flannel.1, pods, kube objects."""
    started = time.monotonic()
    state = api.up(name=name, nodes=nodes, pods=pods, underlay_mtu=underlay_mtu)
    elapsed = time.monotonic() - started
    typer.echo(
        f"lab {state.name} is up: {len(state.nodes)} nodes, {len(state.pods())} pods, "
        f"underlay MTU {state.underlay_mtu}, overlay MTU {state.overlay_mtu} ({elapsed:.2f}s)"
    )
    typer.echo(f"kube objects: {state.kube_dir}")
    typer.echo(f"next: needle lab status --name {state.name}; needle lab fault --help")


def _format_text(state: LabState, missing: list[str]) -> str:
    lines = [
        f"lab:         {state.name} ({state.status}, created {state.created})",
        f"state dir:   {state.state_dir}",
        f"kube dir:    {state.kube_dir}",
        f"underlay:    netns {state.underlay_netns}, MTU {state.underlay_mtu}; "
        f"overlay MTU {state.overlay_mtu}",
        "",
        f"{'NODE':<12} {'NETNS':<24} {'UNDERLAY IP':<16} {'POD CIDR':<15} VTEP MAC",
    ]
    for node in state.nodes:
        lines.append(
            f"{node.name:<12} {node.netns:<24} {node.underlay_ip:<16} {node.pod_cidr:<15} "
            f"{node.vtep_mac}"
        )
    lines += ["", f"{'POD':<34} {'NODE':<12} {'NETNS':<24} {'IP':<15} HOST VETH"]
    for node in state.nodes:
        for pod in node.pods:
            lines.append(
                f"{pod.ref:<34} {node.name:<12} {pod.netns:<24} {pod.ip:<15} {pod.host_veth}"
            )
    lines.append("")
    if state.faults:
        lines.append("faults:")
        lines += [f"  {record.fault}: {record.message}" for record in state.faults]
    else:
        lines.append("faults: none")
    if missing:
        lines.append(f"warning: namespaces missing: {', '.join(missing)}")
    lines.append("")
    lines.append(
        "collect: needle collect -o lab.tar.gz --kube-dir "
        f"{state.kube_dir} " + " ".join(f"--netns {arg}" for arg in state.netns_args())
    )
    return "\n".join(lines)


@app.command()
def status(
    name: NameOption = topology.DEFAULT_NAME,
    output_format: Annotated[
        str, typer.Option("--format", help="text or json (the lab state, with faults).")
    ] = "text",
) -> None:
    """Show the lab's nodes, pods, namespaces, kube dir and injected faults."""
    if output_format not in ("text", "json"):
        raise LabError(f"--format must be text or json, not {output_format!r}")
    state = api.status(name)
    missing = api.missing_netns(state) if state.status == STATUS_UP else []
    if output_format == "json":
        typer.echo(json.dumps({**state.to_dict(), "missing_netns": missing}, indent=2))
    else:
        typer.echo(_format_text(state, missing))


@app.command(
    help=(
        "Inject FAULT into the lab (on the first node unless --node says otherwise).\n\n"
        "Faults:\n\n" + faults.help_text()
    )
)
def fault(
    fault_name: Annotated[
        str, typer.Argument(metavar="FAULT", help="Fault to inject (listed above).")
    ],
    name: NameOption = topology.DEFAULT_NAME,
    node: Annotated[
        str | None, typer.Option("--node", help="Node to break, e.g. lab-node-2.")
    ] = None,
) -> None:
    record = api.fault(name, fault_name, node=node)
    typer.echo(f"{record.fault}: {record.message}")


@app.command()
def down(name: NameOption = topology.DEFAULT_NAME) -> None:
    """Remove the lab: its namespaces, keep-alive processes and state. Safe to repeat."""
    teardown = api.down(name)
    if teardown.netns or teardown.pids:
        typer.echo(
            f"lab {name} is down: removed {len(teardown.netns)} namespaces"
            + (f", stopped {len(teardown.pids)} processes" if teardown.pids else "")
        )
    else:
        typer.echo(f"lab {name} was not up; nothing to remove")
