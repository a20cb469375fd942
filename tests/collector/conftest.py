"""Fixtures shared by the collector's probe tests."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator

import pytest
from needle.lab import api as lab_api
from needle.lab.state import LabState

_labs = itertools.count(1)


@pytest.fixture(scope="module")
def module_lab() -> Iterator[Callable[..., LabState]]:
    """Build real labs (ndltprb-*) shared by a module's tests; every one is torn down
    afterwards, also when a test fails."""
    made: list[str] = []

    def build(nodes: int, pods: int) -> LabState:
        name = f"ndltprb-{os.getpid()}-{next(_labs)}"
        made.append(name)
        return lab_api.up(name=name, nodes=nodes, pods=pods)

    try:
        yield build
    finally:
        for name in made:
            lab_api.down(name)
