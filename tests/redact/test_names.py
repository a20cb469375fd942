"""NameMap: which names become which tokens, which are kept, and how generated pod names
keep their shape; --keep-names; interface names; stability; the summary's counts."""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path

import pytest
from needle.redact import names as names_module
from needle.redact.addresses import AddressMapper
from needle.redact.archive import read_members
from needle.redact.keys import RedactionKeys
from needle.redact.kube import ObjectRedactor
from needle.redact.macs import MacMapper
from needle.redact.names import KEPT_NAMESPACES, NameMap
from needle.redact.run import redact_bundle
from needle.redact.scan import scan
from needle.redact.text import TextRewriter

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
HEALTHY = SAMPLES / "lab-healthy.tar.gz"
KEY = RedactionKeys.from_secret(bytes(range(32))).names
OTHER_KEY = RedactionKeys.from_secret(bytes(range(1, 33))).names
TOKEN = r"[0-9a-f]{10}"


def sample_names(key: bytes = KEY, keep: bool = False) -> NameMap:
    names = NameMap(key, keep=keep)
    scan(read_members(HEALTHY), names)
    return names


def pods_json() -> dict:
    with tarfile.open(HEALTHY) as tar:
        return json.load(tar.extractfile("cluster/pods.json"))  # type: ignore[arg-type]


# --- kinds and priority -----------------------------------------------------------------
@pytest.mark.parametrize("order", [("host", "node"), ("node", "host")])
def test_a_node_that_is_also_a_hostname_gets_the_node_token(order) -> None:
    names = NameMap(KEY)
    for kind in order:
        names.register(kind, "lab-node-1")
    token = names.lookup("lab-node-1")
    assert re.fullmatch(f"node-{TOKEN}", token)
    assert names.is_machine("lab-node-1")
    assert names.summary().get("host", 0) == 0 and names.summary()["node"] == 1


def test_each_kind_has_its_prefix_and_a_namespace_yields_to_a_node() -> None:
    names = NameMap(KEY)
    names.register("host", "build-box-7")
    names.register("ns", "shop")
    names.register("ns", "edge-1")
    names.register("node", "edge-1")  # the same word as a namespace: node wins
    assert re.fullmatch(f"host-{TOKEN}", names.lookup("build-box-7"))
    assert re.fullmatch(f"ns-{TOKEN}", names.lookup("shop"))
    assert re.fullmatch(f"node-{TOKEN}", names.lookup("edge-1"))
    assert names.lookup("unregistered-1") is None
    # nothing but strings of a sane length are names
    for junk in (None, 42, "", "x" * 254):
        names.register("node", junk)
    assert set(names.mapped) == {"build-box-7", "shop", "edge-1"}


def test_well_known_namespaces_are_kept() -> None:
    names = NameMap(KEY)
    for namespace in sorted(KEPT_NAMESPACES):
        names.register("ns", namespace)
    names.register("ns", "payments")
    assert {"default", "kube-system", "kube-flannel", "kube-node-lease"} <= KEPT_NAMESPACES
    assert all(names.lookup(namespace) is None for namespace in KEPT_NAMESPACES)
    assert list(names.mapped) == ["payments"]
    assert names.summary()["ns"] == 1


# --- pods -------------------------------------------------------------------------------
def test_system_pods_keep_their_names_but_for_the_node_names_inside() -> None:
    names = NameMap(KEY)
    names.register("node", "lab-node-1")
    names.register("node", "master")
    names.register_pod("kube-system", "etcd-lab-node-1", None, None)
    names.register_pod("kube-system", "kube-apiserver-master", None, None)
    names.register_pod("kube-system", "kube-proxy-x7k2p", "kube-proxy-", None)
    names.register_pod("kube-flannel", "kube-flannel-ds-5b9pm", "kube-flannel-ds-", None)
    node, master = names.lookup("lab-node-1"), names.lookup("master")
    assert names.lookup("etcd-lab-node-1") == f"etcd-{node}"
    assert names.lookup("kube-apiserver-master") == f"kube-apiserver-{master}"
    assert names.lookup("kube-proxy-x7k2p") is None
    assert names.lookup("kube-flannel-ds-5b9pm") is None
    assert names.lookup("kube-proxy") is None and names.lookup("kube-flannel-ds") is None


def test_the_sample_flannel_pods_are_kept_and_the_workload_pods_mapped() -> None:
    names = sample_names()
    for item in pods_json()["items"]:
        meta = item["metadata"]
        mapped = names.lookup(meta["name"])
        if meta["namespace"] == "kube-flannel":
            assert mapped is None
        else:
            assert mapped is not None and mapped != meta["name"]


def test_a_generated_pod_name_keeps_its_shape_and_shares_its_owner_stem() -> None:
    names = NameMap(KEY)
    names.register_pod("shop", "web-7d4b9c8f6d-x2x7q", "web-7d4b9c8f6d-", "7d4b9c8f6d")
    names.register_pod("shop", "web-7d4b9c8f6d-q9zfd", "web-7d4b9c8f6d-", "7d4b9c8f6d")
    names.register_pod("shop", "api-5f6c8d9b7-h28l5", "api-5f6c8d9b7-", "5f6c8d9b7")
    names.register_pod("shop", "agent-5b9pm", "agent-", None)  # a DaemonSet's pod
    names.register_pod("shop", "one-off", None, None)
    first = names.lookup("web-7d4b9c8f6d-x2x7q")
    match = re.fullmatch(f"pod-({TOKEN})-7d4b9c8f6d-x2x7q", first)
    assert match is not None
    stem = match.group(1)
    assert names.lookup("web-7d4b9c8f6d-q9zfd") == f"pod-{stem}-7d4b9c8f6d-q9zfd"
    assert names.lookup("web-7d4b9c8f6d") == f"pod-{stem}-7d4b9c8f6d"  # the ReplicaSet
    assert names.lookup("web") == f"pod-{stem}"  # the Deployment
    api = names.lookup("api-5f6c8d9b7-h28l5")
    assert re.fullmatch(f"pod-{TOKEN}-5f6c8d9b7-h28l5", api) and stem not in api
    assert re.fullmatch(f"pod-({TOKEN})-5b9pm", names.lookup("agent-5b9pm"))
    assert names.lookup("agent") == names.lookup("agent-5b9pm")[: -len("-5b9pm")]
    assert re.fullmatch(f"pod-{TOKEN}", names.lookup("one-off"))


def redacted_pods() -> tuple[NameMap, dict, dict]:
    """lab-healthy's pods.json before and after the object pass, as `needle redact` runs it."""
    keys = RedactionKeys.from_secret(bytes(range(32)))
    names = NameMap(keys.names)
    inventory = scan(read_members(HEALTHY), names)
    macs = MacMapper(keys.macs)
    rewriter = TextRewriter(AddressMapper(keys.addresses, macs, inventory.regions), macs, names)
    before = pods_json()
    return names, before, ObjectRedactor(rewriter, names).document(before)


def workload_pods() -> tuple[NameMap, list[tuple[dict, dict]]]:
    names, before, after = redacted_pods()
    pairs = [
        (old, new)
        for old, new in zip(before["items"], after["items"], strict=True)
        if old["metadata"]["namespace"] == "default"
    ]
    assert len(pairs) == 6
    return names, pairs


def test_a_pod_object_keeps_its_owner_and_template_hash_consistent() -> None:
    names, pairs = workload_pods()
    for old, new in pairs:
        meta = new["metadata"]
        owner = meta["ownerReferences"][0]["name"]
        assert meta["name"] == names.lookup(old["metadata"]["name"]) != old["metadata"]["name"]
        assert meta["name"].startswith(owner + "-")
        assert owner == names.lookup(old["metadata"]["ownerReferences"][0]["name"])
        template_hash = old["metadata"]["labels"]["pod-template-hash"]
        assert meta["labels"]["pod-template-hash"] == template_hash
        assert owner.endswith("-" + template_hash)
        assert new["spec"]["nodeName"] == names.lookup(old["spec"]["nodeName"])


def test_a_pod_objects_generate_name_is_mapped_with_its_name() -> None:
    # generateName (`web-mgcn8tkxjm-`) is the Deployment's name and the ReplicaSet's
    # hash: it must become the mapped owner's name plus `-`, as the pod's name has it.
    for old, new in workload_pods()[1]:
        meta = new["metadata"]
        assert meta["generateName"] != old["metadata"]["generateName"]
        assert meta["name"].startswith(meta["generateName"])
        assert meta["generateName"] == meta["ownerReferences"][0]["name"] + "-"


def test_a_label_repeating_the_pod_stem_is_mapped_with_it() -> None:
    # names.py registers the stem (`web`) so that "the stem a label may repeat" is mapped;
    # the pods' `app: web` label still names the Deployment after redaction.
    names, pairs = workload_pods()
    for old, new in pairs:
        stem = old["metadata"]["labels"]["app"]
        assert new["metadata"]["labels"]["app"] == names.lookup(stem) != stem


def test_a_pod_named_like_a_node_keeps_the_node_token() -> None:
    names = NameMap(KEY)
    names.register("node", "lab-node-1")
    names.register_pod("default", "lab-node-1", None, None)
    assert re.fullmatch(f"node-{TOKEN}", names.lookup("lab-node-1"))


def test_a_pod_whose_name_an_earlier_pod_claimed_adds_no_names() -> None:
    # `web-7d4b9c8f6d` is the first pod's owner; a pod of that very name is the owner's
    # name, mapped so, and its own stem ("web-7d4b9c8f6d" less "-x") is not claimed
    names = NameMap(KEY)
    names.register_pod("shop", "web-7d4b9c8f6d-x2x7q", "web-7d4b9c8f6d-", "7d4b9c8f6d")
    owner = names.lookup("web-7d4b9c8f6d")
    names.register_pod("shop", "web-7d4b9c8f6d", "web-7d4b9c8f6", None)
    assert names.lookup("web-7d4b9c8f6d") == owner
    assert names.lookup("web-7d4b9c8f6") is None
    assert names.summary()["pod"] == 2


def test_names_are_found_when_every_hash_collides(monkeypatch) -> None:
    # names are found by hash among hundreds of thousands, and told apart by the name
    expected = sample_names().mapped
    monkeypatch.setattr(names_module, "hash", lambda value: 7, raising=False)
    colliding = sample_names()
    assert colliding.mapped == expected
    assert all(colliding.lookup(name) == mapped for name, mapped in expected.items())
    assert colliding.lookup("lab-node-9") is None


def test_a_name_registered_after_lookups_is_found() -> None:
    names = NameMap(KEY)
    names.register_pod("shop", "web-7d4b9c8f6d-x2x7q", "web-7d4b9c8f6d-", "7d4b9c8f6d")
    assert names.lookup("edge-1") is None
    names.register("node", "edge-1")
    assert re.fullmatch(f"node-{TOKEN}", names.lookup("edge-1"))
    assert names.lookup("web") is not None


# --- --keep-names -----------------------------------------------------------------------
def test_keep_names_maps_nothing() -> None:
    names = sample_names(keep=True)
    names.register("node", "extra-node-1")
    names.register_pod("shop", "web-7d4b9c8f6d-x2x7q", "web-7d4b9c8f6d-", "7d4b9c8f6d")
    assert dict(names.mapped) == {}
    assert names.lookup("lab-node-1") is None
    assert names.interface("veth4d2cdbc3") is None
    assert not any(names.summary().values())


def test_keep_names_end_to_end_keeps_node_and_veth_names(tmp_path: Path) -> None:
    out = tmp_path / "kept.tar.gz"
    redact_bundle(HEALTHY, out, secret=bytes(range(32)), keep_names=True)
    with tarfile.open(out) as tar:
        files = {info.name: tar.extractfile(info).read() for info in tar if info.isreg()}  # type: ignore[union-attr]
    assert "nodes/lab-node-1/host/ethtool/veth4d2cdbc3/link.txt" in files
    assert b"lab-node-2" in files["cluster/pods.json"]
    assert b"web-mgcn8tkxjm-hrg7v" in files["cluster/pods.json"]
    # addresses are still mapped
    assert b"10.244.1.0" not in files["nodes/lab-node-1/host/route-n.txt"]
    record = json.loads(files["manifest.json"])["redaction"]
    assert record["names"]["mapped"] is False


# --- interfaces -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("veth4d2cdbc3", r"veth[0-9a-f]{8}"),
        ("cali1234567890a", r"cali[0-9a-f]{11}"),
        ("lxc12ab34cd", r"lxc[0-9a-f]{8}"),
    ],
)
def test_interfaces_with_a_random_suffix_are_mapped_prefix_kept(name, shape) -> None:
    noted: list[tuple[str, str]] = []
    names = NameMap(KEY, on_interface=lambda *pair: noted.append(pair))
    mapped = names.interface(name)
    assert mapped != name and re.fullmatch(shape, mapped)
    assert names.interface(name) == mapped
    assert NameMap(KEY).interface(name) == mapped
    assert NameMap(OTHER_KEY).interface(name) != mapped
    assert noted == [(name, mapped)]  # what the map file is made of


@pytest.mark.parametrize(
    "name",
    ["cni0", "flannel.1", "eth0", "ens3", "lo", "docker0", "tunl0", "vxlan.calico", "veth0"],
)
def test_interfaces_whose_names_mean_something_are_kept(name) -> None:
    assert NameMap(KEY).interface(name) is None


def test_the_sample_veths_map_to_distinct_names() -> None:
    names = NameMap(KEY)
    veths = {
        part
        for member in read_members(HEALTHY)
        for part in member.name.split("/")
        if part.startswith("veth")
    }
    assert len(veths) == 6
    mapped = {names.interface(veth) for veth in veths}
    assert len(mapped) == 6 and not mapped & veths


# --- stability --------------------------------------------------------------------------
def test_tokens_are_stable_across_name_maps_with_one_key() -> None:
    first = sample_names()
    second = NameMap(KEY)
    second.register("node", "lab-node-3")  # another order, another bundle
    second.register_pod("default", "web-mgcn8tkxjm-zzzzz", "web-mgcn8tkxjm-", "mgcn8tkxjm")
    second.register("node", "lab-node-1")
    assert second.lookup("lab-node-1") == first.lookup("lab-node-1")
    assert second.lookup("lab-node-3") == first.lookup("lab-node-3")
    assert second.lookup("web-mgcn8tkxjm") == first.lookup("web-mgcn8tkxjm")
    assert dict(sample_names().mapped) == dict(first.mapped)
    other = sample_names(OTHER_KEY)
    assert set(other.mapped) == set(first.mapped)
    assert all(other.lookup(name) != first.lookup(name) for name in first.mapped)


# --- summary ----------------------------------------------------------------------------
def test_summary_counts_the_kinds() -> None:
    names = NameMap(KEY)
    names.register("node", "a-1")
    names.register("node", "b-1")
    names.register("host", "b-1")
    names.register("host", "jump-1")
    names.register("ns", "shop")
    names.register("ns", "kube-system")
    names.register_pod("shop", "web-7d4b9c8f6d-x2x7q", "web-7d4b9c8f6d-", "7d4b9c8f6d")
    assert names.summary() == {"node": 2, "host": 1, "ns": 1, "pod": 1}


def test_summary_counts_only_the_pod_names_that_were_mapped() -> None:
    # The redaction record says how many names of each kind were mapped; lab-healthy's
    # three kube-flannel pods keep their names, so 6 of its 9 pods are mapped.
    names = sample_names()
    pods = {item["metadata"]["name"] for item in pods_json()["items"]}
    mapped = {pod for pod in pods if names.lookup(pod) not in (None, pod)}
    assert len(pods) == 9 and len(mapped) == 6
    assert names.summary()["pod"] == len(mapped)
