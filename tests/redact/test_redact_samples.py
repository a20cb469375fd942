"""The redaction's guarantees on every sample bundle: the redacted bundle gives the same
findings (rules, severities, count, subjects through the mapping), and no original
address, MAC, node, pod or namespace name remains anywhere in it."""

from __future__ import annotations

import ipaddress
import json
import random
from pathlib import Path

import pytest
from lab_bundles import analyze_json as analyze
from needle.redact.addresses import (
    IDENTITY_V4,
    IDENTITY_V6,
    LINK_LOCAL_V6,
    MAPPED_V6,
    AddressMapper,
)
from needle.redact.keys import RedactionKeys
from needle.redact.macs import MacMapper
from needle.redact.run import redact_bundle
from redact_checks import finding_shape, members, remaining

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
ALL = sorted(path.name for path in SAMPLES.glob("*.tar.gz"))
KEY = bytes(range(32))


@pytest.fixture(scope="module")
def redacted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict[str, str]]]:
    """Every sample redacted with one key, with its name mapping."""
    out = tmp_path_factory.mktemp("redacted")
    done = {}
    for name in ALL:
        target = out / name
        mapping = out / f"{name}.map.json"
        redact_bundle(SAMPLES / name, target, secret=KEY, map_out=mapping)
        done[name] = (target, json.loads(mapping.read_text())["names"])
    return done


@pytest.mark.parametrize("sample", ALL)
def test_no_original_value_remains(sample: str, redacted) -> None:
    target, _ = redacted[sample]
    assert remaining(SAMPLES / sample, target) == []


@pytest.mark.parametrize("sample", ALL)
def test_the_redacted_bundle_gives_the_same_findings(sample: str, redacted) -> None:
    target, names = redacted[sample]
    before, after = analyze(SAMPLES / sample), analyze(target)
    assert finding_shape(after) == finding_shape(before)
    assert after["summary"] == before["summary"]
    # each finding's node is the original's node, mapped
    nodes_before = sorted(
        (f["rule"], names.get(f["subject"].get("node") or "", f["subject"].get("node")))
        for f in before["findings"]
    )
    nodes_after = sorted((f["rule"], f["subject"].get("node")) for f in after["findings"])
    assert nodes_after == nodes_before


def test_the_manifest_says_how_and_never_the_key(redacted) -> None:
    target, _ = redacted["lab-healthy.tar.gz"]
    files = dict(members(target))
    manifest = json.loads(files["manifest.json"])
    record = manifest["redaction"]
    assert record["format"] == "needle.redaction/v1"
    assert record["key"] == "from a key file"
    assert record["addresses"]["algorithm"].startswith("Crypto-PAn")
    assert all(
        command["bytes"] is None for node in manifest["nodes"] for command in node["commands"]
    )
    for data in files.values():
        assert KEY not in data and KEY.hex().encode() not in data
    assert next(iter(files)) == "manifest.json"


def test_the_record_lists_exactly_the_ranges_the_mapper_keeps(redacted) -> None:
    target, _ = redacted["lab-healthy.tar.gz"]
    record = json.loads(dict(members(target))["manifest.json"])["redaction"]
    kept = record["addresses"]["kept"]
    listed = {
        ipaddress.ip_network(entry.split(" ")[0]): "(prefix" in entry
        for entry in kept["ipv4"] + kept["ipv6"]
    }
    assert {net for net, prefix in listed.items() if not prefix} == {*IDENTITY_V4, *IDENTITY_V6}
    assert {net for net, prefix in listed.items() if prefix} == {LINK_LOCAL_V6, MAPPED_V6}
    assert {"128.0.0.0/32", "192.0.0.0/32"} <= set(kept["ipv4"])  # the /1 and /2 netmasks
    mapper = AddressMapper(RedactionKeys.from_secret(KEY).addresses, MacMapper(KEY))
    rnd = random.Random(3)
    for network, prefix_only in listed.items():
        for _ in range(50):
            address = network.network_address + rnd.randrange(network.num_addresses)
            mapped = ipaddress.ip_address(mapper.map_address(str(address)))
            assert mapped in network if prefix_only else mapped == address
