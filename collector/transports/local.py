"""The `local` transport: this host is the node."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LocalTarget:
    node: str
    shell: str = "sh"

    transport = "local"

    @property
    def description(self) -> str:
        return "this host"

    def argv(self, script_args: list[str]) -> list[str]:
        return [self.shell, "-s", "--", *script_args]

    def script_args(self) -> list[str]:
        return []

    def problem(self) -> str | None:
        return None
