"""Files a real node of the lab's backend would have (CNI config, flannel's subnet.env), and
the shell through which `needle collect` sees them where a real node keeps them.

A network namespace has no files of its own, so the lab keeps each node's files under
its state dir (<state dir>/nodes/<node>/root/etc/..., .../root/run/...), never in this
host's /etc or /run. `ip netns exec` runs its command in a mount namespace of its own;
the shell written here (pass it as the netns transport's `shell`) overlays the node's
files on /etc and /run inside that private mount namespace only, keeping /run/netns's
namespace mounts, then runs `sh` as the collector asked.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from needle.lab.errors import LabError
from needle.lab.state import LabState, NodeState

NODES_DIR = "nodes"
HOLD_DIR = ".needle-lab-netns"
"""An empty directory in the node's /etc layer, where /run/netns's mounts wait while /run
is overlaid."""
RUN_LAYER = ".needle-lab-run"
"""An empty directory in the node's /etc layer where a tmpfs copy of the node's /run files
goes: overlayfs refuses a layer inside the directory it covers (/run/needle-lab is in /run)."""
_SHELL = """#!/bin/sh
# needle lab {lab}: the shell `needle collect` runs for {node} (netns transport, shell=).
# `ip netns exec` gave this process a private mount namespace: nothing else sees these mounts.
# Without overlayfs (or mount) the collection goes on, only without the node's files.
root={root}
if mount -t overlay needle-lab -o "lowerdir=$root/etc:/etc" /etc; then
    if mount -t tmpfs -o mode=0755 needle-lab "/etc/{run_layer}" &&
        cp -R "$root/run/." "/etc/{run_layer}/" &&
        mount --rbind /run/netns "/etc/{hold}"; then
        if mount -t overlay needle-lab -o "lowerdir=/etc/{run_layer}:/run" /run; then
            # The pods' namespaces are mounts under /run/netns: put them back, or undo.
            mount --rbind "/etc/{hold}" /run/netns || umount -l /run ||
                {{ echo "needle lab: cannot restore /run/netns" >&2; exit 71; }}
        else
            echo "needle lab: {node}'s /run files are not shown" >&2
        fi
        umount -l "/etc/{hold}" 2>/dev/null
    else
        echo "needle lab: {node}'s /run files are not shown" >&2
    fi
else
    echo "needle lab: {node}'s /etc and /run files are not shown (no overlayfs?)" >&2
fi
exec sh "$@"
"""


def node_dir(state: LabState, node: NodeState) -> Path:
    return Path(state.state_dir) / NODES_DIR / node.name


def write(state: LabState, files: dict[str, dict[str, str]]) -> None:
    """Write `files` (node name -> absolute path on the node -> text) and each node's shell."""
    for node in state.nodes:
        directory = node_dir(state, node)
        root = directory / "root"
        for sub in ("etc", "run"):
            (root / sub).mkdir(mode=0o755, parents=True, exist_ok=True)
        (root / "etc" / HOLD_DIR).mkdir(mode=0o755, exist_ok=True)
        (root / "etc" / RUN_LAYER).mkdir(mode=0o755, exist_ok=True)
        for path, text in files.get(node.name, {}).items():
            if not path.startswith(("/etc/", "/run/")):
                raise LabError(f"node file {path} is outside /etc and /run")
            target = root / path.lstrip("/")
            target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        shell = directory / "collect-shell"
        shell.write_text(
            _SHELL.format(
                lab=state.name,
                node=node.name,
                root=shlex.quote(str(root)),
                hold=HOLD_DIR,
                run_layer=RUN_LAYER,
            ),
            encoding="utf-8",
        )
        shell.chmod(0o700)


def shell(state: LabState, node: NodeState) -> str:
    """The shell to give `needle collect`'s netns transport for `node`."""
    return str(node_dir(state, node) / "collect-shell")


def read(state: LabState, node: NodeState, path: str) -> str:
    """A node file's text, by its path on the node."""
    return (node_dir(state, node) / "root" / path.lstrip("/")).read_text(encoding="utf-8")
