"""One table links every collected command to its parser and the model field it fills
(analyzer/model/sources.py): a command nobody parses, a parser nobody feeds and a field
nothing fills each fail here, instead of a rule silently skipping."""

from __future__ import annotations

import ast
import dataclasses
import json
import shutil
import tarfile
from pathlib import Path

import pytest
import yaml
from needle.analyzer.bundle import open_bundle
from needle.analyzer.model import build_model, entities
from needle.analyzer.model.sources import RAW, TABLE

REPO = Path(__file__).resolve().parents[1]
PARSERS = REPO / "analyzer" / "parsers"


def collected_command_ids() -> set[str]:
    spec = yaml.safe_load((REPO / "collector" / "spec" / "node.yaml").read_text())
    ids = set()
    for command in spec["commands"]:
        ids.add(command["id"])
        if command.get("fallback"):
            ids.add(command["fallback"]["id"])
    return ids


def test_every_collected_command_is_parsed_or_kept_raw_for_a_reason():
    tabled = {command for source in TABLE for command in source.commands}
    assert sorted(collected_command_ids() - tabled - set(RAW)) == []
    assert tabled & set(RAW) == set()
    assert all(reason.strip() for reason in RAW.values())


def test_the_table_names_only_commands_the_collector_runs():
    tabled = {command for source in TABLE for command in source.commands}
    assert sorted((tabled | set(RAW)) - collected_command_ids()) == []


def _imports(module: str) -> set[str]:
    tree = ast.parse((PARSERS / f"{module}.py").read_text())
    return {
        node.module.rsplit(".", 1)[-1]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and ".parsers." in node.module
    }


def _observed_parsers() -> set[str]:
    """The parser modules the observations (probes, counters) read their outputs with."""
    found = set()
    for path in (REPO / "analyzer" / "observe").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("needle.analyzer.parsers.")
            ):
                found.add(node.module.rsplit(".", 1)[-1])
    return found


def test_every_parser_feeds_the_model():
    """A module with a parse_* function is a table parser's, or a part one of them
    imports (ip_route's text and JSON readers), or what the observations read (the
    probes' and the counters' outputs, analyzer/observe/)."""
    fed = {
        source.parser.__module__.rsplit(".", 1)[-1]
        for source in TABLE
        if source.parser.__module__.startswith("needle.analyzer.parsers.")
    } | _observed_parsers()
    reached, pending = set(fed), list(fed)
    while pending:
        for imported in _imports(pending.pop()) - reached:
            reached.add(imported)
            pending.append(imported)
    with_parsers = {
        path.stem
        for path in PARSERS.glob("*.py")
        if any(
            isinstance(node, ast.FunctionDef) and node.name.startswith("parse_")
            for node in ast.parse(path.read_text()).body
        )
    }
    assert sorted(with_parsers - reached) == []


@pytest.mark.parametrize("source", TABLE, ids=lambda source: source.kind)
def test_each_source_names_a_model_field(source):
    owner, attribute = source.fills.split(".")
    cls = getattr(entities, owner)
    fields = {field.name for field in dataclasses.fields(cls)}
    # a field, or a property that reads its data on first use (Node.netfilter)
    assert attribute in fields or isinstance(getattr(cls, attribute, None), property)


def _record(node: str, command_id: str, output: str) -> dict[str, object]:
    return {
        "id": command_id,
        "argv": ["cat", output],
        "exit_code": 0,
        "timed_out": False,
        "output": output,
        "netns": None,
        "interface": None,
        "duration_s": 0.0,
        "truncated": False,
        "missing_tool": False,
        "bytes": 0,
        "stderr": None,
    }


@pytest.fixture(scope="module")
def k3s_bundle(tmp_path_factory) -> Path:
    """The host-gw lab's bundle as a k3s node would leave it: flannel's net-conf.json as
    a node file (no config map), k3s's config and command line, its own CNI dir."""
    root = tmp_path_factory.mktemp("k3s") / "bundle"
    with tarfile.open(REPO / "samples" / "lab-host-gw-healthy.tar.gz") as tar:
        tar.extractall(root, filter="data")
    configmaps = json.loads((root / "cluster" / "configmaps.json").read_text())
    configmaps["items"] = []
    (root / "cluster" / "configmaps.json").write_text(json.dumps(configmaps))
    manifest = json.loads((root / "manifest.json").read_text())
    files = {
        "k3s-flannel-net-conf": (
            "k3s/flannel-net-conf.json",
            '{"Network": "10.244.0.0/16", "Backend": {"Type": "host-gw"}}',
        ),
        "k3s-config": ("k3s/config.yaml", "flannel-backend: host-gw\ntoken: <redacted>\n"),
        "rancher-cmdline": ("rancher-cmdline/812.txt", "k3s\nagent\n--flannel-iface\nens3\n"),
        "k3s-cni-config": (
            "k3s/cni-net.d/10-flannel.conflist",
            (root / "nodes/lab-node-1/host/cni-net.d/10-flannel.conflist").read_text(),
        ),
    }
    for node in manifest["nodes"]:
        for command_id, (relative, text) in files.items():
            output = f"nodes/{node['name']}/host/{relative}"
            (root / output).parent.mkdir(parents=True, exist_ok=True)
            (root / output).write_text(text)
            node["commands"].append(_record(node["name"], command_id, output))
        shutil.rmtree(root / f"nodes/{node['name']}/host/cni-net.d")
        # the lab's namespaces have no iptables tables loaded: a node's usual filter table
        (root / f"nodes/{node['name']}/host/iptables-save.txt").write_text(
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
        )
        node["commands"] = [c for c in node["commands"] if c["id"] != "cni-config"]
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def test_every_model_field_is_filled_from_a_real_bundle(k3s_bundle):
    with open_bundle(k3s_bundle) as bundle:
        model = build_model(bundle)
        node = model.nodes["lab-node-1"]
        host = node.host
        assert host is not None
        filled = {
            "Namespace.interfaces": host.interfaces,
            "Interface.addresses": host.interfaces["ens3"].addresses,
            "Namespace.loaded_routes": host.routes,
            "Namespace.loaded_neighbours": host.neighbours,
            "Namespace.rules": host.rules,
            "Node.loaded_fdb": node.fdb,
            "Node.bridge_ports": node.bridge_ports,
            "Node.sysctls": node.sysctls,
            "Node.subnet_env": node.subnet_env,
            "Node.net_conf": node.net_conf,
            "Node.kernel": node.kernel,
            "Node.cni_configs": node.cni_configs,
            "Node.rancher": node.rancher,
            "Node.netfilter": node.netfilter,
            "Interface.driver": host.interfaces["ens3"].driver,
            "Interface.features": host.interfaces["ens3"].features,
            "Interface.settings": host.interfaces["ens3"].settings,
        }
        assert {source.fills for source in TABLE} == set(filled)
        assert [field for field, value in filled.items() if not value] == []
        assert node.rancher == {"flannel-backend": "host-gw", "flannel-iface": "ens3"}
        assert model.dataplane is not None and model.dataplane.backend.name == "host-gw"
        details = [item.detail for item in model.dataplane.evidence]
        assert any(detail.startswith("k3s flannel net-conf.json") for detail in details)
