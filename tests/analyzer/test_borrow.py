"""A diff's second model borrows a node's pod side only where it is the same bytes, and
then holds exactly what building it would have given."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from needle.analyzer.backends import backend_of
from needle.analyzer.bundle import open_bundle
from needle.analyzer.diff.snapshot import namespace_labels, node_snapshot, pod_facts
from needle.analyzer.model import Model, build_model
from needle.analyzer.model.borrow import borrow_pod_side
from needle.analyzer.model.build import ParseCache
from needle.analyzer.rules.facts import pod_facts as pod_items
from needle.analyzer.rules.facts import veth_facts

REPO = Path(__file__).resolve().parents[2]
SYNTHETIC = [sys.executable, str(REPO / "bench" / "synthetic_bundle.py")]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("borrow")
    old = base / "old"
    subprocess.run(
        [*SYNTHETIC, "--nodes", "4", "--pods", "3", "-o", str(old)],
        check=True,
        capture_output=True,
    )
    new = base / "new"
    shutil.copytree(old, new)
    manifest = json.loads((new / "manifest.json").read_text())
    # node-0001: one pod's eth0 MTU; node-0002: one pod's routes (not part of borrowing)
    for index, command_id, change in (
        (1, "ip-link", lambda items: items[-1].update(mtu=1400)),
        (2, "ip-route", lambda items: items[0].update(gateway="10.0.0.254")),
    ):
        record = next(
            c for c in manifest["nodes"][index]["commands"] if c["id"] == command_id and c["netns"]
        )
        items = json.loads((new / record["output"]).read_text())
        change(items)
        (new / record["output"]).write_text(json.dumps(items))
    # node-0003: one pod gone from the API
    pods_file = new / "cluster" / "pods.json"
    pods = json.loads(pods_file.read_text())
    pods["items"] = [p for p in pods["items"] if p["metadata"]["name"] != "app-0003-0000"]
    pods_file.write_text(json.dumps(pods))
    return old, new


def _everything(model, names):
    snapshot = node_snapshot(model, names)
    return (
        pod_items(model, names).items,
        veth_facts(model, names).items,
        pod_facts(model, names),
        namespace_labels(model, names),
        dict(snapshot.kinds),
        [
            (
                n,
                model.nodes[n].mtu_chains(
                    backend_of(model).overlay_interface(model.nodes[n]),
                    backend_of(model).underlay_interface(model.nodes[n]),
                ),
            )
            for n in sorted(names)
        ],
    )


@contextmanager
def two_models(old_path: Path, new_path: Path) -> Iterator[tuple[Model, Model]]:
    """Both models as a diff builds them: one ParseCache, pod sides left for later."""
    cache = ParseCache()
    with open_bundle(old_path) as a, open_bundle(new_path) as b:
        yield (
            build_model(a, lazy_nodes=True, cache=cache),
            build_model(b, lazy_nodes=True, cache=cache),
        )


def test_only_nodes_whose_pod_side_is_the_same_bytes_are_borrowed(pair):
    old_path, new_path = pair
    with two_models(old_path, new_path) as (old, new):
        old.load_nodes()
        borrowed = {name: borrow_pod_side(old, new, name) for name in sorted(new.nodes)}
        assert borrowed == {
            "node-0000": True,
            "node-0001": False,  # a pod's links differ
            "node-0002": True,  # routes are read from its own bundle, later
            "node-0003": False,  # its pods differ
        }
        new.load_nodes()
        with open_bundle(new_path) as c:
            alone = build_model(c)  # no cache, nothing borrowed
            names = set(alone.nodes)
            assert _everything(new, names) == _everything(alone, names)
        routes = new.nodes["node-0002"].pods_netns
        assert any(r.gateway == "10.0.0.254" for ns in routes.values() for r in ns.routes)


def test_nothing_is_borrowed_from_a_node_not_loaded_yet(pair):
    with two_models(pair[0], pair[0]) as (old, new):
        assert not borrow_pod_side(old, new, "node-0000")
        old.load_nodes(["node-0000"])
        assert borrow_pod_side(old, new, "node-0000")
        assert not borrow_pod_side(old, new, "node-0000")  # already has its pod side
        assert not borrow_pod_side(old, new, "no-such-node")
