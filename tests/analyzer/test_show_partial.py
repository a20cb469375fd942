"""`needle show` on partial and hostile bundles: absent data is shown as absent, bad
bundles are one-line errors."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

from needle.analyzer.bundle import open_bundle
from needle.analyzer.model import build_model
from needle.collector.bundle import BundleWriter, CommandRecord, Manifest, ResourceRecord

LINK = json.dumps(
    [
        {
            "ifindex": 1,
            "ifname": "lo",
            "mtu": 65536,
            "operstate": "UNKNOWN",
            "link_type": "loopback",
            "address": "00:00:00:00:00:00",
        },
        {
            "ifindex": 5,
            "ifname": "veth0abc",
            "mtu": 1450,
            "operstate": "UP",
            "link_type": "ether",
            "address": "aa:bb:cc:00:00:01",
            "master": "cni0",
            "link_index": 2,
            "link_netnsid": 7,
            "linkinfo": {"info_kind": "veth", "info_slave_kind": "bridge"},
        },
    ]
).encode()


def partial_bundle(tmp_path):
    output = tmp_path / "partial.tar.gz"
    with BundleWriter(output, Manifest("0.1.0", sources=["local"])) as writer:
        writer.add_resource(ResourceRecord("nodes", "forbidden", None, error="nodes is forbidden"))
        node = writer.add_node("node-a", "local")
        path = f"{node.dir}/host/ip-link.json"
        writer.write_bytes(path, LINK)
        node.commands.append(
            CommandRecord(
                id="ip-link",
                argv=["ip"],
                exit_code=0,
                timed_out=False,
                output=path,
                bytes=len(LINK),
            )
        )
        node.commands.append(
            CommandRecord(id="ip-route", argv=["ip"], exit_code=None, timed_out=True, output=None)
        )
        writer.add_node("node-b", "local").fail("never answered")
    return output


def test_absent_data_is_marked_not_invented(tmp_path):
    with open_bundle(partial_bundle(tmp_path)) as bundle:
        model = build_model(bundle)
    assert model.missing["cluster.nodes"].startswith("forbidden")
    assert "cluster.pods" in model.missing
    node = model.nodes["node-a"]
    assert node.host is not None and "links" in node.host.present
    assert "routes" not in node.host.present, "a timed-out command is absent data"
    assert node.host.interfaces["veth0abc"].peer_state == "missing"
    assert model.nodes["node-b"].collected is False


def test_show_on_a_partial_bundle(tmp_path):
    bundle = partial_bundle(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "needle", "show", str(bundle), "veths", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    (row,) = json.loads(result.stdout)
    assert (row["host_veth"], row["state"], row["pod"]) == ("veth0abc", "missing", None)
    nodes = subprocess.run(
        [sys.executable, "-m", "needle", "show", str(bundle), "nodes"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "node-b" in nodes.stdout and "failed" in nodes.stdout


def test_show_refuses_a_hostile_bundle_in_one_line(tmp_path):
    bundle = tmp_path / "evil.tar.gz"
    with tarfile.open(bundle, "w:gz") as tar:
        info = tarfile.TarInfo("../../evil")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    result = subprocess.run(
        [sys.executable, "-m", "needle", "show", str(bundle), "nodes"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "unsafe member path" in result.stderr
    assert not (tmp_path.parent / "evil").exists()


def test_pod_routes_are_read_on_first_use_and_never_silently_empty():
    import pytest
    from needle.analyzer.errors import BundleError

    sample = Path(__file__).resolve().parents[2] / "samples" / "lab-healthy.tar.gz"
    with open_bundle(sample) as bundle:
        model = build_model(bundle)
        first, second = [ns for node in model.nodes.values() for ns in node.pods_netns.values()][:2]
        assert "routes" in first.present
        assert any(route.dst == "default" for route in first.routes)
    with pytest.raises(BundleError, match="after the bundle was closed"):
        _ = second.routes
