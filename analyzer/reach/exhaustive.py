"""Every pair walked, one by one: the reference the classes are tested against
(tests/reach/), too slow for more than a lab's few pods."""

from __future__ import annotations

from needle.analyzer.model.entities import Model
from needle.analyzer.reach.grid import Grid
from needle.analyzer.reach.judge import Judge, Reachability
from needle.analyzer.reach.plan import NODE_TO_POD, POD_TO_POD, SAME_NODE


def judge_every_pair(model: Model, grid: Grid | None = None) -> Reachability:
    judge = Judge(model, grid=grid)
    model.load_nodes()
    pods = sorted(
        (pod for pod in model.pods if pod.ip and pod.node and not pod.host_network),
        key=lambda pod: pod.ref,
    )
    for source in pods:
        for target in pods:
            if source is target:
                continue
            kind = SAME_NODE if source.node == target.node else POD_TO_POD
            assert source.node is not None and target.node is not None
            start = judge._endpoint(source.node, source.ref)
            end = judge._endpoint(target.node, target.ref)
            path, size = judge.walk(start, end)
            judge.result.pairs += 1
            judge.record(
                path,
                size,
                kind,
                1,
                start,
                end,
                ([source.ref], [target.ref]),
                cells=[(source.node, target.node)],
            )
    for name in sorted(model.nodes):
        if model.nodes[name].host is None:
            continue
        for target in pods:
            if target.node == name:
                continue
            assert target.node is not None
            start = judge._endpoint(name, None)
            end = judge._endpoint(target.node, target.ref)
            path, size = judge.walk(start, end)
            judge.result.pairs += 1
            judge.record(
                path,
                size,
                NODE_TO_POD,
                1,
                start,
                end,
                ([], [target.ref]),
                cells=[(name, target.node)],
            )
    return judge.result
