"""The typed layer over cluster objects: each invalid field gives one problem naming the
object, the field and what was wrong, and the rest of the object is still read."""

from __future__ import annotations

import json

import pytest
from needle.analyzer.model.kube import node_api, pod_of
from needle.analyzer.model.kube_objects import (
    MAX_DEPTH,
    NodeObject,
    ObjectProblem,
    load_json,
    nesting_exceeds,
    validate,
)

FILE = "cluster/nodes.json"
BACKEND = "flannel.alpha.coreos.com/backend-data"


def node(**parts):
    item = {
        "metadata": {"name": "n1", "annotations": {BACKEND: '{"VtepMAC":"AA:BB:CC:DD:EE:FF"}'}},
        "spec": {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"]},
        "status": {"addresses": [{"type": "InternalIP", "address": "192.168.1.1"}]},
    }
    for path, value in parts.items():
        *parents, last = path.split("__")
        target = item
        for parent in parents:
            target = target[parent]
        target[last] = value
    return item


def test_a_valid_node_has_no_problem():
    problems: list[ObjectProblem] = []
    api = node_api(node(), 0, FILE, problems)
    assert problems == []
    assert api is not None and api.pod_cidr == "10.244.1.0/24"
    assert api.vtep_mac == "aa:bb:cc:dd:ee:ff" and api.internal_ip == "192.168.1.1"


@pytest.mark.parametrize(
    ("parts", "field", "problem"),
    [
        ({"spec": "boom"}, "spec", "is text, not an object"),
        ({"spec__podCIDR": 42}, "spec.podCIDR", "is a whole number, not text"),
        ({"spec__podCIDRs": "10.244.1.0/24"}, "spec.podCIDRs", "is text, not a list"),
        ({"status": [1]}, "status", "is a list, not an object"),
        (
            {"status__addresses": [{"type": "InternalIP", "address": {"ip": 1}}]},
            "status.addresses[0].address",
            "is an object, not text",
        ),
        (
            {"metadata__annotations": {BACKEND: '{"VtepMAC": [1]}'}},
            f"metadata.annotations[{BACKEND}].VtepMAC",
            "is a list, not text",
        ),
        (
            {"metadata__annotations": {BACKEND: "42"}},
            f"metadata.annotations[{BACKEND}]",
            "is a whole number, not an object",
        ),
        (
            {"metadata__annotations": {BACKEND: "{not json"}},
            f"metadata.annotations[{BACKEND}]",
            "is not JSON",
        ),
        (
            {"metadata__annotations": {"flannel.alpha.coreos.com/public-ip": 7}},
            "metadata.annotations[flannel.alpha.coreos.com/public-ip]",
            "is a whole number, not text",
        ),
    ],
)
def test_each_invalid_node_field_is_one_problem_naming_the_node(parts, field, problem):
    problems: list[ObjectProblem] = []
    api = node_api(node(**parts), 3, FILE, problems)
    assert len(problems) == 1, problems
    (found,) = problems
    assert (found.kind, found.name, found.field, found.file) == ("Node", "n1", field, FILE)
    assert found.problem.startswith(problem)
    assert api is not None and api.name == "n1"  # the rest of the node is read


def test_the_rest_of_a_node_survives_a_bad_field():
    problems: list[ObjectProblem] = []
    api = node_api(node(spec__podCIDR=42), 0, FILE, problems)
    assert api is not None
    assert api.pod_cidr is None and api.internal_ip == "192.168.1.1"
    assert api.vtep_mac == "aa:bb:cc:dd:ee:ff"


@pytest.mark.parametrize(
    ("spec", "status", "field", "problem"),
    [
        ({"nodeName": ["n1"]}, {}, "spec.nodeName", "is a list, not text"),
        ({}, {"podIP": {"ip": 1}}, "status.podIP", "is an object, not text"),
        ({"hostNetwork": "true"}, {}, "spec.hostNetwork", "is text, not true or false"),
        ("boom", {}, "spec", "is text, not an object"),
    ],
)
def test_each_invalid_pod_field_is_one_problem_naming_the_pod(spec, status, field, problem):
    problems: list[ObjectProblem] = []
    item = {"metadata": {"name": "web", "namespace": "prod"}, "spec": spec, "status": status}
    pod = pod_of(item, 0, "cluster/pods.json", problems)
    assert [(p.kind, p.name, p.field, p.problem) for p in problems] == [
        ("Pod", "prod/web", field, problem)
    ]
    assert pod is not None and pod.ref == "prod/web"


def test_an_object_without_a_usable_name_is_named_by_its_index():
    problems: list[ObjectProblem] = []
    assert pod_of({"metadata": {"name": ["x"]}}, 4, "cluster/pods.json", problems) is None
    assert [(p.name, p.field) for p in problems] == [("items[4]", "metadata.name")]
    problems.clear()
    assert node_api("lab-node-9", 2, FILE, problems) is None
    assert [(p.name, p.problem) for p in problems] == [("items[2]", "is text, not an object")]


def deep(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


def test_nesting_is_refused_past_the_limit_without_recursion():
    assert load_json(deep(MAX_DEPTH - 1))[1] is None
    assert "nested deeper than" in load_json(deep(MAX_DEPTH + 1))[1]
    assert "nested deeper than" in load_json(deep(50_000))[1]
    value, why = load_json(deep(50_000), whole_file=True)
    assert value is None and "nested deeper than" in why


def test_nesting_exceeds_is_iterative():
    value: object = 1
    for _ in range(100_000):
        value = [value]
    assert nesting_exceeds(value)
    assert not nesting_exceeds({"a": [1, {"b": 2}]}, limit=3)


def test_a_deep_backend_data_annotation_is_one_problem():
    problems: list[ObjectProblem] = []
    api = node_api(node(metadata__annotations={BACKEND: deep(500)}), 0, FILE, problems)
    assert api is not None and api.vtep_mac is None and api.backend_data == {}
    assert [p.problem for p in problems] == [f"is JSON nested deeper than {MAX_DEPTH} levels"]


def test_validate_reports_a_wrong_top_level_type():
    typed, problems = validate(NodeObject, json.loads("[1]"), "Node", "items[0]", FILE)
    assert typed is None and problems[0].field == "(the object)"
