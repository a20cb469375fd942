"""The page in a real browser (Debian's headless Chromium, over the DevTools protocol):
it loads with no console error and no request, draws every node, marks the broken one,
a click on the mark opens its finding, the search box finds a node, and a hostile pod
name stays text. Screenshots go to .artefacts/html/ for a person to look at."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from browser import Browser, browser
from page_checks import render

pytestmark = pytest.mark.tools("chromium")

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"
ARTEFACTS = REPO / ".artefacts" / "html"
TAG = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def chromium():
    with browser() as started:
        yield started


def open_report(chromium: Browser, bundle: Path, tmp_path: Path, shot: str | None = None):
    page = tmp_path / "report.html"
    render(bundle, page)
    visit = chromium.visit(page)
    assert visit.errors == []
    assert visit.requests == []
    assert visit.load_seconds < 5
    if shot is not None:
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        chromium.screenshot(ARTEFACTS / shot)
    return visit


def nodes_by_severity(chromium: Browser) -> dict[str, str]:
    return chromium.evaluate(
        "Object.fromEntries([...document.querySelectorAll('g.node')]"
        ".map(n => [n.dataset.node, n.dataset.severity]))"
    )


def test_a_healthy_cluster_opens_clean_with_no_red(chromium, tmp_path):
    open_report(chromium, SAMPLES / "lab-healthy.tar.gz", tmp_path, "healthy.png")
    assert nodes_by_severity(chromium) == dict.fromkeys(
        ("lab-node-1", "lab-node-2", "lab-node-3"), ""
    )
    # nothing drawn in the error colour: every box, path and cell is computed healthy
    red = chromium.evaluate(
        "[...document.querySelectorAll('svg *')].filter(e => "
        "getComputedStyle(e).stroke === 'rgb(198, 40, 40)' || "
        "getComputedStyle(e).fill === 'rgb(198, 40, 40)').length"
    )
    assert red == 0
    cells = chromium.evaluate(
        "[...new Set([...document.querySelectorAll('rect.cell')].map(c => c.dataset.verdict))]"
    )
    assert cells == ["delivered"]


@pytest.mark.parametrize(
    ("sample", "faulty"),
    [
        ("lab-mtu-underlay.tar.gz", "lab-node-1"),
        ("lab-vxlan-local-gone.tar.gz", "lab-node-1"),
        ("lab-vxlan-fdb-wrong-port.tar.gz", "lab-node-2"),
    ],
)
def test_a_fault_is_drawn_red_on_its_node(chromium, tmp_path, sample, faulty):
    open_report(chromium, SAMPLES / sample, tmp_path, sample.replace(".tar.gz", ".png"))
    severities = nodes_by_severity(chromium)
    assert len(severities) == 3
    assert severities[faulty] == "error"
    box = chromium.evaluate(
        f"getComputedStyle(document.querySelector('g.node[data-node=\"{faulty}\"] rect.box'))"
        ".stroke"
    )
    assert box == "rgb(198, 40, 40)"


def test_a_click_on_the_red_node_opens_its_finding(chromium, tmp_path):
    open_report(chromium, SAMPLES / "lab-vxlan-local-gone.tar.gz", tmp_path)
    opened = chromium.evaluate(
        """(async () => {
          document.querySelectorAll('details.finding').forEach(d => d.open = false);
          const link = document.querySelector('g.node.error a.mark');
          link.dispatchEvent(new MouseEvent('click', {bubbles: true, cancelable: true}));
          await new Promise(done => setTimeout(done, 100));  // hashchange is a task
          const target = document.getElementById(location.hash.slice(1));
          return [location.hash, target.tagName, target.open];
        })()"""
    )
    assert opened[0].startswith("#f-")
    assert opened[1:] == ["DETAILS", True]


def test_the_search_box_finds_a_node(chromium, tmp_path):
    open_report(chromium, SAMPLES / "lab-healthy.tar.gz", tmp_path)
    shown = chromium.evaluate(
        """(() => {
          const box = document.getElementById('search');
          box.value = 'lab-node-2';
          box.dispatchEvent(new Event('input'));
          const rows = [...document.querySelectorAll('table.searchable tbody tr')];
          return [rows.filter(r => !r.classList.contains('hidden')).map(r => r.id),
                  [...document.querySelectorAll('g.node.found')].map(n => n.dataset.node)];
        })()"""
    )
    assert shown == [["n-lab-node-2"], ["lab-node-2"]]


def test_a_hostile_pod_name_stays_text_in_the_browser(chromium, tmp_path):
    root = tmp_path / "bundle"
    with tarfile.open(SAMPLES / "lab-mtu-pod.tar.gz") as archive:
        archive.extractall(root, filter="data")
    pods = root / "cluster" / "pods.json"
    pods.write_text(pods.read_text().replace('"web-', f'"{TAG}-web-'))
    open_report(chromium, root, tmp_path)
    assert chromium.evaluate("document.querySelectorAll('img').length") == 0
    assert TAG in chromium.evaluate("document.body.innerText")
