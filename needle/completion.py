"""`needle completion bash|zsh|fish`: the shell script that completes needle's commands.

The script calls back into needle (with `_NEEDLE_COMPLETE=complete_<shell>` in the
environment) for every TAB, so completions always match the installed version: command
and option names, choices such as `needle show BUNDLE <TAB>`'s views, and file names.
Scripts and callbacks come from typer; docs/cli.md says how to install them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from typer._completion_classes import completion_init
from typer._completion_shared import get_completion_script


class Shell(StrEnum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


def complete_var(prog: str) -> str:
    """The environment variable the script calls needle back through."""
    return "_" + prog.replace(" ", "_").replace("-", "_").upper() + "_COMPLETE"


def enable() -> None:
    """Teach the command-line parser to answer a script's calls (typer's own shells)."""
    completion_init()


def completion(
    ctx: typer.Context,
    shell: Annotated[Shell, typer.Argument(metavar="SHELL", help="bash, zsh or fish.")],
) -> None:
    """Print the script that makes TAB complete needle's commands, options and values.

    Load it in your shell's start-up file, or save it where your shell looks for
    completions (docs/cli.md has the details).

    \b
    Examples:
    $ eval "$(needle completion bash)"
    $ needle completion bash > /etc/bash_completion.d/needle
    $ needle completion zsh > "${fpath[1]}/_needle"
    $ needle completion fish > ~/.config/fish/completions/needle.fish
    """
    prog = ctx.find_root().info_name or "needle"
    script = get_completion_script(prog_name=prog, complete_var=complete_var(prog), shell=shell)
    typer.echo(script)
