"""A cluster past the drawing's size (130 synthetic nodes, a few routing peers out the
underlay): quiet nodes are drawn in groups and the page says so, every node with a
finding is drawn on its own, every node is in the table (closed until searched), and the
grid is runs of alike cells, not a rectangle per cell."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from browser import browser
from page_checks import assert_self_contained, render

from needle.cli import run

REPO = Path(__file__).resolve().parents[2]
NODES = 130


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    where = tmp_path_factory.mktemp("large")
    bundle = where / "n130"
    subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "synthetic_bundle.py"),
            *("--nodes", str(NODES), "--pods", "2", "--route-changes", "0.002"),
            *("-o", str(bundle)),
        ],
        check=True,
        capture_output=True,
    )
    page = where / "report.html"
    render(bundle, page)
    report = where / "report.json"
    assert run(["analyze", str(bundle), "--format", "json", "-o", str(report)], "n") in (0, 1)
    return bundle, page, json.loads(report.read_text())


def test_quiet_nodes_are_grouped_and_marked_ones_drawn(large):
    _, page_path, report = large
    page = assert_self_contained(page_path.read_text())
    marked = {f["subject"]["node"] for f in report["findings"] if f["severity"] == "error"}
    assert marked  # some peer routes go out the underlay
    boxes = page.all("g", "node")
    red = {e.attrs["data-node"] for e in boxes if e.attrs["data-severity"] == "error"}
    for group in boxes:  # alike nodes share a box, red when their findings are
        if group.attrs["data-severity"] == "error" and "data-members" in group.attrs:
            red.update(group.attrs["data-members"].split())
    assert marked <= red
    assert len(boxes) < NODES / 2
    assert "drawn in" in "".join(page.text) and "groups of up to 40" in "".join(page.text)
    rows = [e for e in page.all("tr") if e.attrs.get("id", "").startswith("n-")]
    assert len(rows) == NODES
    cells = page.all("rect", "cell")
    assert NODES <= len(cells) < NODES * NODES / 10


@pytest.mark.tools("chromium")
def test_a_search_opens_the_table_on_the_node(large):
    _, page_path, _ = large
    with browser() as chromium:
        visit = chromium.visit(page_path)
        assert visit.errors == [] and visit.requests == []
        found = chromium.evaluate(
            """(() => {
              const table = document.querySelector('#nodes details');
              const closed = !table.open;
              const box = document.getElementById('search');
              box.value = 'node-0077';
              box.dispatchEvent(new Event('input'));
              const shown = [...document.querySelectorAll('#nodes tbody tr')]
                .filter(r => !r.classList.contains('hidden')).map(r => r.id);
              return [closed, table.open, shown];
            })()"""
        )
    assert found == [True, True, ["n-node-0077"]]


def test_past_the_first_findings_the_rest_are_one_line_each():
    from needle.analyzer.model.entities import Model
    from needle.analyzer.report.html.page import render_page
    from needle.analyzer.report.html.scene import FULL_FINDINGS, build_scene

    finding = {
        "rule": "r",
        "severity": "warning",
        "title": "t",
        "message": "m",
        "subject": {"node": None},
        "evidence": [{"file": "nodes/x/host/ip-link.json", "detail": "eth0 mtu 1500"}],
        "remediation": "fix it",
        "references": [],
    }
    document = {
        "bundle": {"path": "b", "nodes": 0, "created": "c", "status": "complete"},
        "findings": [finding] * (FULL_FINDINGS + 5),
        "summary": {"error": 0, "warning": FULL_FINDINGS + 5, "info": 0},
        "coverage": {"rules_run": 1, "rules_skipped": []},
    }
    scene = build_scene(Model(), document, None, lambda _file: None)
    assert [view.compact for view in scene.findings].count(True) == 5
    page = assert_self_contained(render_page(scene))
    assert len(page.all("details", "finding")) == FULL_FINDINGS
    assert len(page.all("tr", "finding")) == 5
    assert "".join(page.text).count("Fix:") == FULL_FINDINGS
