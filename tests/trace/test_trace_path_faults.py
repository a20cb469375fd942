"""Faults no rule names, each made by the lab as the real incident looks (docs/lab.md):
`needle trace` finds every one at the node and step where the packet dies, and
no rule of `needle analyze` names them (that is why they are here: analyze finds them by
walking every pair, tests/reach/)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from needle.analyzer.bundle import open_bundle
from needle.analyzer.model import build_model
from needle.analyzer.trace.endpoints import resolve
from needle.analyzer.trace.walk import Packet, Walker
from path_faults import PATH_FAULTS

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
FULL = 1450

# sample -> (node, step) where the packet dies
EXPECTED = PATH_FAULTS


def failing_hops(sample: str) -> set[tuple[str, str]]:
    """Every (node, step) where a packet between the first two nodes' pods, either way,
    or from the third node to a pod of the first, dies, small or full-size."""
    with open_bundle(SAMPLES / f"{sample}.tar.gz") as bundle:
        model = build_model(bundle)
        pods = {
            node: sorted(p.ref for p in model.pods if p.node == node and p.namespace == "default")
            for node in ("lab-node-1", "lab-node-2")
        }
        here, there = pods["lab-node-1"], pods["lab-node-2"]
        pairs = [(a, b) for a in here for b in there] + [(here[0], here[1])]
        pairs += [("lab-node-3", pod) for pod in here]
        # ping's default size, and a full-size pod packet (the lab's pod MTU)
        walkers = [Walker(model, Packet()), Walker(model, Packet(size=FULL))]
        found = set()
        for a, b in pairs:
            start, end = resolve(model, a), resolve(model, b)
            paths = [w.walk(x, y) for w in walkers for x, y in ((start, end), (end, start))]
            for path in paths:
                hop = path.failing
                if hop is not None and hop.verdict == "unknown":
                    # a pod that never talked to the address two pods hold: its ARP
                    # decides, which no bundle shows
                    assert "answers ARP" in hop.detail, (a, b, hop)
                    continue
                if hop is not None:
                    assert hop.verdict == "drop", (a, b, hop)
                    assert hop.evidence, (a, b, hop)
                    found.add((hop.node, hop.step))
        return found


@pytest.mark.parametrize("sample", sorted(EXPECTED))
def test_trace_finds_the_fault_at_its_hop(sample):
    if not (SAMPLES / f"{sample}.tar.gz").exists():
        pytest.fail(f"{sample}.tar.gz is missing from samples/")
    assert EXPECTED[sample] in failing_hops(sample)


@pytest.mark.parametrize("sample", sorted(EXPECTED))
def test_no_rule_names_these_faults(sample):
    bundle = str(SAMPLES / f"{sample}.tar.gz")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "needle",
            "analyze",
            bundle,
            "--format",
            "json",
            "--fail-on",
            "never",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    findings = json.loads(result.stdout)["findings"]
    serious = [
        f for f in findings if f["severity"] != "info" and not f["rule"].startswith("reachability.")
    ]
    assert serious == []
