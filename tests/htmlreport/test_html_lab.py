"""The page of a real lab bundle collected with probes: the probes are drawn on the grid
(every pair passing on a healthy lab, the one-byte-over-MTU probes the senders refuse as
planned counting as passed); a switch port MTU no configuration shows is drawn where the
probes met it, between the faulty node and the others. Probes go only between the lab's
namespaces."""

from __future__ import annotations

from pathlib import Path

import pytest
from lab_bundles import collect_with_probes
from needle.lab import api as lab_api
from needle.lab.state import LabState
from page_checks import Page, assert_self_contained, render

pytestmark = [pytest.mark.root, pytest.mark.tools("tcpdump", "nsenter", "ping")]


@pytest.fixture
def lab(lab_factory) -> LabState:
    return lab_factory(nodes=3, pods=2)


def page_of(state: LabState, tmp_path: Path) -> Page:
    bundle = collect_with_probes(state, tmp_path / "lab.tar.gz")
    return assert_self_contained(render(bundle, tmp_path / "lab.html"))


def probes_by_pair(page: Page) -> dict[str, str]:
    return {e.attrs["data-pair"]: e.attrs["data-verdict"] for e in page.all("circle", "probe")}


def test_a_healthy_lab_shows_every_probed_pair_passing(lab, tmp_path):
    page = page_of(lab, tmp_path)
    probed = probes_by_pair(page)
    assert probed  # each node probes the others
    assert set(probed.values()) == {"passed"}
    assert not [e for e in page.all("g", "node") if e.attrs["data-severity"]]


def test_a_switch_port_mtu_is_drawn_where_the_probes_met_it(lab, tmp_path):
    record = lab_api.fault(lab.name, "underlay-port-mtu")
    page = page_of(lab, tmp_path)
    failed = {pair for pair, verdict in probes_by_pair(page).items() if verdict == "failed"}
    assert failed
    assert all(record.node in pair.split() for pair in failed), failed
    nodes = {e.attrs["data-node"]: e.attrs["data-severity"] for e in page.all("g", "node")}
    assert nodes[record.node] == "error"
