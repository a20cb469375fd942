"""Fixtures of the capture-decoding tests: a real two-node VXLAN lab in namespaces."""

from __future__ import annotations

import pytest
from observe_lab import UnderlayLab


@pytest.fixture
def underlay_lab(tmp_path):
    """Built for one test and torn down after it, whatever happens in between."""
    lab = UnderlayLab(tmp_path)
    try:
        lab.up()
        yield lab
    finally:
        lab.down()
