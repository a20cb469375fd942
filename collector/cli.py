"""`needle collect`, `needle cleanup` and `needle rbac`."""

from __future__ import annotations

import typer

from collector.errors import NotBuiltYet

app = typer.Typer()


@app.command(rich_help_panel="Collect")
def collect() -> None:
    """Collect an offline snapshot of a cluster's pod networking into one bundle."""
    raise NotBuiltYet("collect", 4)


@app.command(rich_help_panel="Collect")
def cleanup() -> None:
    """Delete debug pods that earlier collection runs left behind."""
    raise NotBuiltYet("cleanup", 5)


@app.command(rich_help_panel="Collect")
def rbac() -> None:
    """Print the ClusterRole and binding that cluster collection needs."""
    raise NotBuiltYet("rbac", 5)
