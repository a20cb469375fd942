"""Where a bundle holds each node's `nft list ruleset`, for the trace's netfilter hooks
(the model keeps only iptables-save's rules; the bundle's manifest names the rest)."""

from __future__ import annotations

from typing import Any

from needle.analyzer.model.entities import Node
from needle.analyzer.trace.hops import NftSource

COMMAND = "nft-ruleset"


def nft_source(bundle: Any) -> NftSource:
    """A reader of each node's nft ruleset from an open bundle (its manifest says which
    file, and whether the command succeeded)."""
    outputs: dict[str, str] = {}
    manifest = getattr(bundle, "manifest", None)
    nodes = manifest.get("nodes") if isinstance(manifest, dict) else None
    for entry in nodes if isinstance(nodes, list) else ():
        commands = entry.get("commands") if isinstance(entry, dict) else None
        for command in commands if isinstance(commands, list) else ():
            if (
                isinstance(command, dict)
                and command.get("id") == COMMAND
                and command.get("exit_code") == 0
                and isinstance(command.get("output"), str)
            ):
                outputs[str(entry.get("name"))] = command["output"]

    def read(node: Node) -> tuple[str, bytes] | None:
        path = outputs.get(node.name)
        data = bundle.read_bytes(path) if path else None
        return (path, data) if path and data else None

    return read
