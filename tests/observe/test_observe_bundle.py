"""observe_captures: every capture the manifest records list, read through the bundle
reader, decoded and correlated; a capture that cannot be read is recorded with its
reason and the rest goes on."""

from __future__ import annotations

import json

import pytest
from minimal_bundle import MINIMAL_MANIFEST
from needle.analyzer.bundle import ReadLimits, open_bundle
from needle.analyzer.model.entities import HOST, Interface, Model, Namespace, Node, NodeApi
from needle.analyzer.observe import observe_captures
from needle.analyzer.parsers.ip_link import Link, Vxlan
from observe_craft import echo, ether, ip, pcap, vxlan

A, B = "192.168.1.1", "192.168.1.2"


def _node(name: str, underlay: str, records: list[dict]) -> Node:
    host = Namespace(node=name, id=HOST, dir=f"nodes/{name}/host")
    link = Link(
        ifindex=5, name="flannel.1", kind="vxlan", vxlan=Vxlan(id=1, port=8472, local=underlay)
    )
    host.add(Interface(name, HOST, link))
    host.present.add("links")
    node = Node(name=name, api=NodeApi(name=name, internal_ip=underlay), collected=True, host=host)
    node.captures = records
    return node


def _record(node: str, name: str, **fields) -> dict:
    return {
        "interface": "eth0",
        "filter": "udp port 8472",
        "file": f"nodes/{node}/captures/{name}",
        "role": "underlay",
        "netns": None,
        "skipped": None,
        "max_packets": 2000,
        "packets_dropped_by_kernel": 0,
        "error": None,
        **fields,
    }


def _pings(src: str, dst: str, times: list[float]) -> list[tuple[float, bytes]]:
    return [
        (ts, vxlan(src, dst, ether(ip("10.244.0.2", "10.244.1.2", echo(3, n))), ip_id=n))
        for n, ts in enumerate(times)
    ]


@pytest.fixture
def bundle_and_model(tmp_path):
    root = tmp_path / "bundle"
    (root / "nodes/n1/captures").mkdir(parents=True)
    (root / "nodes/n2/captures").mkdir(parents=True)
    (root / "manifest.json").write_text(json.dumps(MINIMAL_MANIFEST))
    sent = _pings(A, B, [1.0, 1.2, 1.4, 1.6])
    back = _pings(B, A, [1.1, 1.7])
    (root / "nodes/n1/captures/underlay.pcap").write_bytes(pcap(sorted(sent + back)))
    # n2 captured only the first and the last of n1's four
    (root / "nodes/n2/captures/underlay.pcap").write_bytes(pcap(sorted([sent[0], sent[3], *back])))
    (root / "nodes/n2/captures/cni0.pcap").write_bytes(b"\xd4\xc3\xb2\xa1 garbage")
    (root / "nodes/n2/captures/big.pcap").write_bytes(pcap(sent * 50))
    model = Model()
    model.nodes["n1"] = _node("n1", A, [_record("n1", "underlay.pcap")])
    model.nodes["n2"] = _node(
        "n2",
        B,
        [
            _record("n2", "underlay.pcap"),
            _record("n2", "cni0.pcap", interface="cni0", filter="", role="bridge"),
            _record("n2", "gone.pcap", error="tcpdump: no such device"),
            _record("n2", "big.pcap", interface="cni0", filter="", role="bridge"),
            _record("n2", "x", file=None, interface="", skipped="no pod bridge"),
        ],
    )
    with open_bundle(root, ReadLimits(max_member_bytes=8192)) as bundle:
        yield bundle, model


@pytest.mark.parametrize("workers", [1, 2])
def test_observe_captures_decodes_correlates_and_records_reasons(bundle_and_model, workers):
    bundle, model = bundle_and_model
    result = observe_captures(bundle, model, workers=workers)
    status = {(r.node, r.file.rsplit("/", 1)[-1] if r.file else None): r for r in result.captures}
    assert status[("n1", "underlay.pcap")].status == "decoded"
    assert status[("n1", "underlay.pcap")].summary.vxlan_packets == 6
    assert status[("n2", "cni0.pcap")].status == "unreadable"
    assert "shorter than a pcap header" in status[("n2", "cni0.pcap")].reason
    assert status[("n2", "gone.pcap")].status == "failed"
    assert status[("n2", "gone.pcap")].reason == "tcpdump: no such device"
    assert status[("n2", "big.pcap")].status == "unreadable"
    assert "larger than 8192 bytes" in status[("n2", "big.pcap")].reason
    assert status[("n2", None)].status == "skipped"
    assert [r.node for r in result.captures] == ["n1"] + ["n2"] * 5  # manifest order

    (loss,) = [o for o in result.observations if o.kind == "underlay-loss"]
    assert (loss.node, loss.peer_node) == ("n1", "n2")
    assert loss.counts == {"sent": 4, "seen": 2, "lost": 2}
    files = {item["file"] for item in loss.evidence}
    assert files == {"nodes/n1/captures/underlay.pcap", "nodes/n2/captures/underlay.pcap"}
    document = json.loads(json.dumps(result.to_json()))
    assert document["observations"][0]["source"] == "capture"
    assert {d["sender"] for d in document["deliveries"]} == {"n1", "n2"}
