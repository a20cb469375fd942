"""The networking selection keeps what tells Flannel-family data planes apart: Canal's
and RKE2's config maps and daemonsets, flannel's (also as k3s and RKE2 deploy it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from needle.collector.kube.dump_dir import read_dump_dir
from needle.collector.kube.selection import keeps

FLANNEL_FAMILY = [
    ("ConfigMap", "canal-config"),  # Canal (Calico CNI + flannel VXLAN)
    ("ConfigMap", "rke2-canal-config"),  # RKE2's default CNI
    ("DaemonSet", "canal"),
    ("DaemonSet", "rke2-canal"),
    ("ConfigMap", "kube-flannel-cfg"),  # flannel's manifest, and RKE2's `cni: flannel`
    ("DaemonSet", "kube-flannel-ds"),
    ("DaemonSet", "rke2-flannel"),
    ("ConfigMap", "calico-config"),
    ("DaemonSet", "calico-node"),
]


@pytest.mark.parametrize(("kind", "name"), FLANNEL_FAMILY)
def test_flannel_family_objects_are_kept(kind, name):
    assert keeps(kind, name)


@pytest.mark.parametrize(
    ("kind", "name"),
    [("ConfigMap", "billing-settings"), ("DaemonSet", "log-shipper"), ("Secret", "canal")],
)
def test_other_objects_are_not(kind, name):
    assert not keeps(kind, name)


def test_a_kube_system_dump_keeps_the_canal_objects_only(tmp_path: Path):
    items = [
        {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": "kube-system"}}
        for kind, name in [
            *FLANNEL_FAMILY,
            ("ConfigMap", "billing-settings"),
            ("DaemonSet", "log-shipper"),
            ("Secret", "rke2-canal-token"),
        ]
    ]
    (tmp_path / "kube-system.json").write_text(json.dumps({"kind": "List", "items": items}))
    contents = read_dump_dir(tmp_path)
    kept = {
        (obj["kind"], obj["metadata"]["name"])
        for resource in ("configmaps", "daemonsets")
        for obj in contents.items[resource]
    }
    assert kept == set(FLANNEL_FAMILY)
    assert contents.secrets_skipped == 1
