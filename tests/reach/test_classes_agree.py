"""The classes stand for every pair: on every sample (healthy, and each fault on one
node), judging one walk per class finds exactly what walking every pair finds: the same
causes, the same pairs broken at each, the same pods."""

from __future__ import annotations

from pathlib import Path

import pytest
from needle.analyzer.bundle import open_bundle
from needle.analyzer.model import build_model
from needle.analyzer.reach.exhaustive import judge_every_pair
from needle.analyzer.reach.facts import collect_facts
from needle.analyzer.reach.judge import Reachability, judge

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def summary(result: Reachability) -> dict[str, object]:
    return {
        "pairs": result.pairs,
        "delivered": result.delivered,
        "causes": {key: (cause.pairs, sorted(cause.pods)) for key, cause in result.causes.items()},
        "unknown": {key: item.pairs for key, item in result.unknown.items()},
    }


@pytest.mark.parametrize("sample", sorted(p.name for p in SAMPLES.glob("*.tar.gz")))
def test_one_walk_a_class_finds_what_every_pair_finds(sample):
    with open_bundle(SAMPLES / sample) as bundle:
        model = build_model(bundle)
        by_class = judge(model, collect_facts(model))
    with open_bundle(SAMPLES / sample) as bundle:
        every = judge_every_pair(build_model(bundle))
    assert summary(by_class) == summary(every)
    assert by_class.walks < every.walks


def test_a_healthy_cluster_is_a_handful_of_classes():
    with open_bundle(SAMPLES / "lab-healthy.tar.gz") as bundle:
        model = build_model(bundle)
        result = judge(model, collect_facts(model))
    # pod to pod on another node, on the same node, node to pod: one class each
    assert result.classes == 3
    assert result.pairs == result.delivered == 42
