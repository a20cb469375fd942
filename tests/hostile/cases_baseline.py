"""The baseline: the healthy sample as it is, which every command must take calmly."""

from __future__ import annotations

from pathlib import Path

from corpus import case


@case("baseline-healthy", "baseline", expect_exit={0})
def healthy(bundle: Path) -> None:
    """Unchanged: proves the runner itself passes a good bundle."""
