"""`needle diff --format html`: what changed drawn on the new snapshot's nodes, the
findings that came and went, every change by node; self-contained, and clean in a
real browser."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser import browser
from page_checks import assert_self_contained

from needle.cli import run

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
ARTEFACTS = Path(__file__).resolve().parents[2] / ".artefacts" / "html"


def diff_page(old: str, new: str, out: Path) -> str:
    code = run(
        ["diff", str(SAMPLES / old), str(SAMPLES / new), "--format", "html", "-o", str(out)],
        "needle",
    )
    assert code == 0
    return out.read_text()


def test_a_change_that_breaks_a_node_is_drawn_on_it(tmp_path):
    page = assert_self_contained(
        diff_page("lab-healthy.tar.gz", "lab-mtu-underlay.tar.gz", tmp_path / "d.html")
    )
    nodes = {e.attrs["data-node"]: e for e in page.all("g", "node")}
    assert set(nodes) == {"lab-node-1", "lab-node-2", "lab-node-3"}
    assert nodes["lab-node-1"].attrs["data-severity"] == "error"
    assert nodes["lab-node-1"].attrs["data-changes"] == "1"
    assert all(nodes[n].attrs["data-changes"] == "0" for n in ("lab-node-2", "lab-node-3"))
    # the one new error (lab-node-1's ens3 too small for its overlay and its peers')
    (finding,) = page.all("details", "finding")
    assert finding.attrs["class"] == "finding error"
    text = "".join(page.text)
    assert '{"mtu": 1500}' in text and '{"mtu": 1450}' in text  # ens3's MTU, before/after
    assert "ens3 mtu 1500 → 1450" in text  # said on lab-node-1's box too


def test_a_fix_shows_its_findings_resolved_and_no_red(tmp_path):
    page = assert_self_contained(
        diff_page("lab-mtu-underlay.tar.gz", "lab-healthy.tar.gz", tmp_path / "d.html")
    )
    assert not [e for e in page.all("g", "node") if e.attrs["data-severity"]]
    assert len(page.all("li", None)) >= 1
    assert "Resolved (1)" in "".join(page.text)


def test_an_unchanged_cluster_says_so(tmp_path):
    page = assert_self_contained(
        diff_page("lab-healthy.tar.gz", "lab-healthy.tar.gz", tmp_path / "d.html")
    )
    text = "".join(page.text)
    assert "Nothing changed." in text and "No new findings." in text


@pytest.mark.tools("chromium")
def test_the_diff_page_opens_clean_in_a_browser(tmp_path):
    page = tmp_path / "d.html"
    diff_page("lab-healthy.tar.gz", "lab-vxlan-local-gone.tar.gz", page)
    with browser() as chromium:
        visit = chromium.visit(page)
        assert visit.errors == [] and visit.requests == []
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        chromium.screenshot(ARTEFACTS / "diff.png")
        marked = chromium.evaluate(
            "[...document.querySelectorAll('g.node.changed')].map(n => n.dataset.node)"
        )
    assert marked == ["lab-node-1"]


def test_a_huge_diff_keeps_the_page_bounded_and_every_node_linked():
    from needle.analyzer.model.entities import Model, Node
    from needle.analyzer.report.html.diff_scene import MAX_ROWS, build_diff_scene

    model = Model()
    for name in ("a", "b"):
        model.nodes[name] = Node(name)
    change = {"kind": "route", "op": "changed", "before": {"dev": "x"}, "after": {"dev": "y"}}
    changes = [{**change, "node": "a", "key": ["a", str(n)]} for n in range(MAX_ROWS + 50)]
    changes.append({**change, "node": "b", "key": ["b", "0"]})
    summary = {"changes": len(changes), "new_findings": 0, "resolved_findings": 0}
    document = {
        "old": {"path": "old", "nodes": 2, "created": "x"},
        "new": {"path": "new", "nodes": 2, "created": "y"},
        "findings": {"new": [], "resolved": [], "unchanged": []},
        "changes": changes,
        "not_compared": [],
        "summary": {**summary, "unchanged_findings": 0, "left_out": {}},
    }
    scene = build_diff_scene(model, model, document)
    assert sum(len(entry.changes) for entry in scene.by_node) == MAX_ROWS + 1
    assert scene.rows_left_out == 50
    assert {box.name: box.changes for box in scene.nodes} == {"a": MAX_ROWS + 50, "b": 1}
