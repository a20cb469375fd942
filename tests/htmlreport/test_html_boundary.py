"""The page's one boundary: whatever a bundle names a node, a pod, a file or a finding,
the page shows it as text (visibly escaped where a terminal would act on it), never as
markup, an attribute, a request or a script; and it makes exactly its own elements."""

from __future__ import annotations

import re
import tarfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from needle.analyzer.model.entities import Model, Node, NodeApi, Pod
from needle.analyzer.report.html.page import render_page
from needle.analyzer.report.html.scene import build_scene
from needle.analyzer.terminal import safe_text
from page_checks import assert_self_contained, render
from test_output_boundary import HOSTILE, reports

RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
SAMPLES = Path(__file__).resolve().parents[2] / "samples"
TAG = "<img src=x onerror=alert(1)>"


def _model(document: dict[str, Any], pod_names: list[str]) -> Model:
    model = Model()
    for finding in document["findings"]:
        name = finding["subject"]["node"]
        model.nodes[name] = Node(name, NodeApi(name=name, pod_cidr=name, internal_ip=name))
    for number, name in enumerate(pod_names):
        node = next(iter(model.nodes), None)
        pod = Pod(name, name, node, f"10.0.0.{number}")
        model.pods.append(pod)
        model.pods_by_node.setdefault(node or "", []).append(pod)
    return model


@settings(max_examples=60, deadline=None)
@given(reports(), st.lists(HOSTILE, max_size=3), HOSTILE)
def test_whatever_the_bundle_names_the_page_shows_it_as_text(document, pods, file_text):
    model = _model(document, pods)
    page_text = render_page(build_scene(model, document, None, lambda _file: file_text))
    page = assert_self_contained(page_text)
    shown = "".join(page.text)
    assert not RAW_CONTROL.search(shown)
    for finding in document["findings"]:
        assert safe_text(finding["title"]) in shown
        assert safe_text(finding["subject"]["node"]) in shown
    for name in pods if model.nodes else ():  # pods are drawn on their node
        assert safe_text(f"{name}/{name}") in shown


def test_a_hostile_pod_name_in_a_real_bundle_is_text(tmp_path):
    root = tmp_path / "bundle"
    with tarfile.open(SAMPLES / "lab-mtu-pod.tar.gz") as archive:
        archive.extractall(root, filter="data")
    pods = root / "cluster" / "pods.json"
    pods.write_text(pods.read_text().replace('"web-', f'"{TAG}\\u202e\\u001b[2J-web-'))
    text = render(root, tmp_path / "report.html")
    page = assert_self_contained(text)
    shown = "".join(page.text)
    assert TAG in shown  # as text, after the parser decoded its entities
    assert "\\u202e\\x1b[2J-web-" in shown
    assert "<img" not in text
