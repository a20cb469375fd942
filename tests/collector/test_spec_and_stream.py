"""The collection spec is checked before anything runs; a node's stream is untrusted."""

from __future__ import annotations

import io
import tarfile

import pytest
from needle.collector.bundle import BundleWriter, Manifest
from needle.collector.errors import CollectorError
from needle.collector.node_part import apply_records, read_node_stream
from needle.collector.script.render import render
from needle.collector.spec.loader import default_spec, parse_spec


def test_builtin_spec_covers_what_a_node_snapshot_holds():
    spec = default_spec()
    host = {c.id for c in spec.in_scope("host")}
    assert {
        "ip-link",
        "ip-addr",
        "ip-route",
        "ip-route6",
        "ip-rule",
        "ip-neigh",
        "bridge-fdb",
        "bridge-link",
        "brctl-show",
        "route-n",
        "arp-n",
        "sysctl-net",
        "iptables-save",
        "nft-ruleset",
        "uname",
        "os-release",
        "flannel-subnet-env",
        "cni-config",
    } <= host
    assert {c.id for c in spec.in_scope("interface")} == {"ethtool-i", "ethtool-k", "ethtool"}
    netns_ids = {c.id for c in spec.in_scope("netns")}
    assert netns_ids == {"ip-link", "ip-addr", "ip-route", "ip-route6", "ip-neigh"}
    assert all(c.fallback is not None for c in spec.in_scope("netns"))
    assert [(c.devices, c.output) for c in spec.captures] == [
        ("underlay", "underlay-vxlan.pcap"),
        ("overlay", "{interface}.pcap"),
        ("bridge", "{interface}.pcap"),
        ("underlay", "underlay-pods.pcap"),
    ]
    filters = [c.filter for c in spec.captures]
    assert filters == ["udp port {vxlan_dstport}", "", "", "net {pod_net}"]
    assert spec.devices.overlay == ("vxlan", "wireguard")
    evidence = {c.id: c for c in spec.in_scope("host")}
    for cid in (
        "k3s-config",
        "k3s-config-d",
        "rke2-config",
        "rke2-config-d",
        "k3s-flannel-net-conf",
        "k3s-cni-config",
        "rancher-cmdline",
        "cni-config",
    ):
        assert evidence[cid].optional and evidence[cid].redact, cid


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("commands: 3", "commands: list"),
        ("commands: [{id: X, scope: host, argv: [a], output: o}]", "id 'X'"),
        ("commands: [{id: a, scope: moon, argv: [a], output: o}]", "scope must be one of"),
        ("commands: [{id: a, scope: host, argv: [], output: o}]", "argv must be"),
        ("commands: [{id: a, scope: host, argv: [a], output: ../o}]", "relative path"),
        ("commands: [{id: a, scope: host, argv: [a], output: o, timeout: 0}]", "timeout"),
        ("commands: [{id: a, scope: host, argv: [a], output: '{interface}'}]", "{interface}"),
        ("commands: [{id: a, scope: host, kind: file, path: rel, output: o}]", "absolute path"),
        (
            "commands: [{id: a, scope: host, argv: [a], output: o}, "
            "{id: a, scope: host, argv: [b], output: p}]",
            "appears twice",
        ),
        ("commands: [\n  - id: [", "not valid YAML"),
    ],
)
def test_spec_mistakes_are_named(text, message):
    with pytest.raises(CollectorError, match="collection spec") as caught:
        parse_spec(text)
    assert message in str(caught.value)


def test_rendered_script_quotes_arguments():
    spec = parse_spec(
        'commands: [{id: a, scope: host, argv: [echo, "it\'s $HOME; rm"], output: a.txt}]'
    )
    assert "'it'\"'\"'s $HOME; rm'" in render(spec)


def tar_stream(*members: tuple[str, bytes, bytes]) -> bytes:
    """Concatenated archives, like the node script sends."""
    out = io.BytesIO()
    for name, data, kind in members:
        with tarfile.open(fileobj=out, mode="w") as tar:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            if kind == tarfile.SYMTYPE:
                info.linkname = "/etc/shadow"
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    return out.getvalue()


@pytest.fixture
def writer(tmp_path):
    writer = BundleWriter(tmp_path / "b.tar.gz", Manifest("0.1.0"))
    yield writer
    writer.abandon()


def ingest(writer, tmp_path, stream: bytes):
    path = tmp_path / "node.tar"
    path.write_bytes(stream)
    node = writer.add_node("node-a", "local")
    result = read_node_stream(path, writer, node)
    apply_records(result, writer, node, default_spec(), None)
    return node, result


def test_records_become_manifest_entries(writer, tmp_path):
    records = (
        b"C\tip-link\t-\t-\thost/ip-link.json\t-\t0\t1.00\t1.25\t0\t0\n"
        b"C\tbrctl-show\t-\t-\t-\t-\t-\t-\t-\t0\t1\n"
        b"C\tip-route\t-\t-\thost/ip-route.json\t-\t-\t1.00\t11.0\t1\t0\n"
        b"N\tns-42\t42\tpod-a\t/run/netns/pod-a\t7 8\n"
    )
    node, _ = ingest(
        writer,
        tmp_path,
        tar_stream(
            ("./host/ip-link.json", b"[]", tarfile.REGTYPE),
            ("./host/ip-route.json", b"[", tarfile.REGTYPE),
            ("./_needle/records.1", records, tarfile.REGTYPE),
        ),
    )
    commands = {c.id: c for c in node.commands}
    assert commands["ip-link"].duration_s == 0.25 and commands["ip-link"].bytes == 2
    assert commands["ip-link"].argv == ["ip", "-d", "-j", "link", "show"]
    assert commands["brctl-show"].missing_tool and node.status == "partial"
    assert commands["ip-route"].timed_out and commands["ip-route"].exit_code is None
    assert any("ip-route timed out" in error for error in node.errors)
    assert [(ns.id, ns.inode, ns.name, ns.pids) for ns in node.netns] == [
        ("ns-42", 42, "pod-a", [7, 8])
    ]
    assert writer.exists("nodes/node-a/host/ip-link.json")


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("../../escape", tarfile.REGTYPE),
        ("/etc/passwd", tarfile.REGTYPE),
        ("host/link", tarfile.SYMTYPE),
        ("elsewhere/file", tarfile.REGTYPE),
    ],
)
def test_a_hostile_node_cannot_write_outside_its_directory(writer, tmp_path, name, kind):
    node, result = ingest(
        writer, tmp_path, tar_stream(("./host/ok.json", b"1", tarfile.REGTYPE), (name, b"x", kind))
    )
    assert result.cut_short is not None and node.status == "partial"
    assert writer.exists("nodes/node-a/host/ok.json"), "what came before is kept"
    assert not (tmp_path / "escape").exists()


def test_a_cut_stream_keeps_every_complete_member(writer, tmp_path):
    whole = tar_stream(
        ("./host/a.json", b"a" * 600, tarfile.REGTYPE),
        ("./host/b.json", b"b" * 5000, tarfile.REGTYPE),
    )
    cut_inside_b = tarfile.RECORDSIZE + 512 + 1000  # archives are padded to RECORDSIZE
    node, result = ingest(writer, tmp_path, whole[:cut_inside_b])
    assert writer.exists("nodes/node-a/host/a.json")
    assert not writer.exists("nodes/node-a/host/b.json"), "a half member is not kept"
    assert result.cut_short and "ended early" in result.cut_short
    assert node.status == "partial"
