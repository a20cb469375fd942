"""`needle analyze --format html` on every sample bundle: the page is self-contained,
draws every node, marks the node or path of every error (the lab fault's own node where
tests/path_faults.py knows it), and a healthy cluster shows no red or amber at all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from page_checks import Page, assert_self_contained, render
from path_faults import PATH_FAULTS

from needle.cli import run

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
ALL = sorted(p.name for p in SAMPLES.glob("*.tar.gz"))
HEALTHY = [name for name in ALL if name.endswith("-healthy.tar.gz")]
# A switch port's MTU is in no node's configuration: only probes show it, and this sample
# was collected without them (tests/observe/ covers the probes' finding), so its report
# is clean and so is its page (test_a_clean_report_draws_no_red).
SEEN_ONLY_BY_PROBES = ["lab-underlay-port-mtu.tar.gz"]
FAULTY = [name for name in ALL if name not in HEALTHY + SEEN_ONLY_BY_PROBES]


def report(sample: str, tmp_path: Path) -> tuple[Page, dict]:
    page = assert_self_contained(render(SAMPLES / sample, tmp_path / "report.html"))
    out = tmp_path / "report.json"
    assert run(["analyze", str(SAMPLES / sample), "--format", "json", "-o", str(out)], "n") in (
        0,
        1,
    )
    return page, json.loads(out.read_text())


def marked_nodes(page: Page, severity: str) -> set[str]:
    """Nodes drawn with `severity`: their box, one of their pods, or a path to them."""
    nodes = {e.attrs["data-node"] for e in page.all("g", "node") if severity in e.classes}
    for path in page.all("path", "overlay"):
        if severity in path.classes:
            nodes.update(path.attrs.get("data-nodes", "").split())
    return nodes


@pytest.mark.parametrize("sample", FAULTY)
def test_a_fault_sample_marks_the_node_of_every_error(sample, tmp_path):
    page, document = report(sample, tmp_path)
    faults = [f for f in document["findings"] if f["severity"] in ("error", "warning")]
    assert faults, "every fault sample has an error or a warning to mark"
    red, amber = marked_nodes(page, "error"), marked_nodes(page, "warning")
    for finding in faults:
        node = finding["subject"]["node"]
        if node:
            # a node's worst finding decides its colour
            shown = red if finding["severity"] == "error" else red | amber
            assert node in shown, (finding["rule"], node, red, amber)
    known = PATH_FAULTS.get(sample.removesuffix(".tar.gz"))
    if known is not None:
        assert known[0] in red
    # each error has its section, and a mark links to it
    anchors = {e.attrs["id"] for e in page.all("details", "finding")}
    links = {e.attrs["href"][1:] for e in page.all("a", "mark")}
    assert len(anchors) == len(document["findings"])
    assert any(link in anchors for link in links)


@pytest.mark.parametrize("sample", HEALTHY + SEEN_ONLY_BY_PROBES)
def test_a_clean_report_draws_no_red(sample, tmp_path):
    page, document = report(sample, tmp_path)
    assert not [f for f in document["findings"] if f["severity"] in ("error", "warning")]
    for severity in ("error", "warning"):
        assert not marked_nodes(page, severity)
        assert not [e for e in page.elements if severity in e.classes and e.tag != "span"]
    cells = {e.attrs["data-verdict"] for e in page.all("rect", "cell")}
    assert cells == {"delivered"}
    # a delivered cell says the trace that shows its hops
    assert "delivered; its hops: needle trace " in "".join(page.text)


@pytest.mark.parametrize("sample", ["lab-healthy.tar.gz", "lab-mtu-underlay.tar.gz"])
def test_every_node_and_pod_is_drawn(sample, tmp_path):
    page, document = report(sample, tmp_path)
    drawn = {e.attrs["data-node"] for e in page.all("g", "node")}
    assert len(drawn) == document["bundle"]["nodes"] == 3
    assert len(page.all("g", "pod")) == 6  # two pods a node; host-network pods are not
    # one overlay path per pair of nodes in a small cluster
    assert len(page.all("path", "overlay")) == 3


def test_the_mtu_sample_marks_the_bottleneck_and_the_paths(tmp_path):
    page, _ = report("lab-mtu-underlay.tar.gz", tmp_path)
    misfits = page.all("figure", "misfit")
    assert misfits  # the chain of lab-node-1's pods does not fit
    text = "".join(page.text)
    assert "Does not fit" in text
    broken = [p.attrs["data-nodes"] for p in page.all("path", "overlay") if "error" in p.classes]
    assert sorted(broken) == ["lab-node-1 lab-node-2", "lab-node-1 lab-node-3"]
    # the grid: lab-node-1 to the others dead, the others among themselves delivered
    verdicts = [e.attrs["data-verdict"] for e in page.all("rect", "cell")]
    assert verdicts.count("dropped") == 4 and verdicts.count("delivered") == 5
    # each node's row links to the chains its pods have; lab-node-1's is the misfit
    (misfit,) = misfits
    row = [e for e in page.elements if e.attrs.get("id") == "n-lab-node-1"]
    assert row
    links = [e.attrs["href"] for e in page.all("a") if e.attrs.get("href", "").startswith("#mtu-")]
    assert f"#{misfit.attrs['id']}" in links


def test_evidence_lines_are_embedded(tmp_path):
    page, _ = report("lab-mtu-underlay.tar.gz", tmp_path)
    text = "".join(page.text)
    assert '"mtu": 1450' in text  # ens3's entry of lab-node-1's ip-link.json
    assert page.all("span", "hit")
