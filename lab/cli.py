"""`needle lab ...` commands (placeholder until the lab issue lands)."""

from __future__ import annotations

import typer

from lab.errors import LabError

app = typer.Typer(help="A Flannel VXLAN cluster built from network namespaces, with faults.")


@app.command()
def up() -> None:
    """Build the lab."""
    raise LabError("`needle lab up` is not built yet (issue #3)")
