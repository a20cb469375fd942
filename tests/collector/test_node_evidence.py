"""k3s/RKE2 evidence on a node: config files and process command lines are copied with
their secrets replaced on the node, and their absence (most nodes) is quiet."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from needle.collector.bundle import BundleWriter, Manifest
from needle.collector.errors import CollectorError
from needle.collector.node_part import apply_records, read_node_stream
from needle.collector.script.render import ScriptArgs, render
from needle.collector.spec.loader import default_spec, parse_spec
from test_node_script import SHELLS, command, members, records, run

pytestmark = [pytest.mark.root, pytest.mark.tools("dash", "busybox", "awk", "tr")]

SECRETS = [
    "K10-ndl-token-value::server:abc",
    "ndl-agent-secret",
    "ndl-s3-secret",
    "ndl-s3-access",
    "ndl-db-password",
    "ndl-psk-value",
    "ndl-block-secret-1",
    "ndl-flag-token",
    "ndl-env-token",
    "ndl-flow-token",
]

CONFIG = f"""\
token: {SECRETS[0]}
server: https://10.0.0.1:6443
flannel-backend: host-gw
agent-token: "{SECRETS[1]}"
etcd-s3-secret-key: '{SECRETS[2]}'
etcd-s3-access-key: {SECRETS[3]}
datastore-endpoint: postgres://k3s:{SECRETS[4]}@db.invalid:5432/k3s
node-label:
  - "topology.kubernetes.io/zone=a"
kube-apiserver-arg:
  - --enable-admission-plugins=NodeRestriction
secret: |
  {SECRETS[6]}
cni: canal
"""
DROP_IN = f"""\
kubelet-arg:
  - --token={SECRETS[7]}
flannel-iface: eth1
kube-proxy-arg: ["--token", "{SECRETS[9]}", "--v=2"]
"""
NET_CONF = (
    '{"Network": "10.42.0.0/16", "Backend": {"Type": "ipsec", "PSK": "'
    + SECRETS[5]
    + '", "UDPEncap": false}}\n'
)
ENV = f"K3S_TOKEN={SECRETS[8]}\nK3S_URL=https://10.0.0.1:6443\n"
CONFLIST = {
    "name": "k8s-pod-network",
    "cniVersion": "0.3.1",
    "plugins": [
        {
            "type": "calico",
            "mtu": 1450,
            "etcd_key_file": "/etc/ndl/etcd.key",
            "kubernetes": {"kubeconfig": "/etc/cni/net.d/calico-kubeconfig"},
        },
        {"type": "portmap", "snat": True, "capabilities": {"portMappings": True}},
    ],
}
KUBECONFIG = """\
apiVersion: v1
kind: Config
users:
- name: calico
  user:
    token: eyJndl-service-account-token
clusters:
- name: local
  cluster:
    server: https://10.43.0.1:443
"""


@pytest.fixture(scope="module")
def node() -> Iterator[str]:
    name = f"ndle{os.getpid()}-n"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "etc" / "config.yaml.d").mkdir(parents=True)
    (tmp_path / "etc" / "config.yaml").write_text(CONFIG)
    (tmp_path / "etc" / "config.yaml.d" / "10-net.yaml").write_text(DROP_IN)
    (tmp_path / "etc" / "net-conf.json").write_text(NET_CONF)
    (tmp_path / "etc" / "k3s.env").write_text(ENV)
    (tmp_path / "cni").mkdir()
    (tmp_path / "cni" / "10-canal.conflist").write_text(json.dumps(CONFLIST, indent=2))
    (tmp_path / "cni" / "calico-kubeconfig").write_text(KUBECONFIG)
    return tmp_path


@pytest.fixture
def fake_k3s(tmp_path: Path) -> Iterator[int]:
    """A process named k3s (a script's name is its comm) with secret flags."""
    program = tmp_path / "bin" / "k3s"
    program.parent.mkdir()
    program.write_text("#!/bin/sh\nsleep 60\n")
    program.chmod(0o755)
    argv = [str(program), "server", "--token", "ndl-flag-token", "--flannel-backend=vxlan"]
    argv += ["--etcd-s3-secret-key=ndl-s3-secret", "--agent-token", "ndl-agent-secret"]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(50):  # until the kernel shows the script's name
            comm = Path(f"/proc/{process.pid}/comm")
            if comm.exists() and comm.read_text().strip() == "k3s":
                break
            time.sleep(0.05)
        yield process.pid
    finally:
        process.kill()
        process.wait()


def evidence_spec(root: Path) -> str:
    return f"""
commands:
  - {{id: cfg, scope: host, kind: file, path: [/nonexistent/a.yaml, {root}/etc/config.yaml],
     output: k3s/config.yaml, redact: true}}
  - {{id: cfg-d, scope: host, kind: glob, path: ["/nonexistent/*", "{root}/etc/config.yaml.d/*"],
     output: k3s/config.yaml.d, redact: true}}
  - {{id: net-conf, scope: host, kind: file, path: {root}/etc/net-conf.json,
     output: net-conf.json, redact: true}}
  - {{id: env, scope: host, kind: file, path: {root}/etc/k3s.env, output: k3s.env, redact: true}}
  - {{id: plain, scope: host, kind: file, path: {root}/etc/k3s.env, output: plain.env}}
  - {{id: cni, scope: host, kind: glob, path: "{root}/cni/*", output: cni, redact: true}}
"""


@pytest.mark.parametrize("shell", SHELLS, ids=["dash", "busybox"])
def test_config_secrets_are_replaced_on_the_node(node, files, shell):
    result = run(shell, render(parse_spec(evidence_spec(files))), node, ScriptArgs())
    assert result.returncode == 0, result.stderr
    found = members(result.stdout)
    config = found["host/k3s/config.yaml"].decode()
    for kept in (
        "server: https://10.0.0.1:6443",
        "flannel-backend: host-gw",
        "cni: canal",
        '  - "topology.kubernetes.io/zone=a"',
        "--enable-admission-plugins=NodeRestriction",
    ):
        assert kept in config, kept
    assert "token: <redacted>" in config and 'agent-token: "<redacted>"' in config
    assert "etcd-s3-secret-key: '<redacted>'" in config
    assert "postgres://<redacted>@db.invalid:5432/k3s" in config
    assert "secret: |\n  <redacted>\n" in config
    drop_in = found["host/k3s/config.yaml.d/10-net.yaml"].decode()
    assert "--token=<redacted>" in drop_in and "flannel-iface: eth1" in drop_in
    assert 'kube-proxy-arg: ["--token", "<redacted>", "--v=2"]' in drop_in
    net_conf = found["host/net-conf.json"].decode()
    assert '"PSK": "<redacted>"' in net_conf and '"Type": "ipsec"' in net_conf
    assert found["host/k3s.env"] == b"K3S_TOKEN=<redacted>\nK3S_URL=https://10.0.0.1:6443\n"
    # what is not marked redact is copied as it is (the spec decides, not the file name)
    assert found["host/plain.env"] == ENV.encode()
    redacted_stream = result.stdout.replace(ENV.encode(), b"")
    for secret in SECRETS:
        assert secret.encode() not in redacted_stream, secret
    recs = records(found)
    assert command(recs, "cfg")[6] == "0" and command(recs, "env")[6] == "0"
    # a CNI config stays JSON; only the secret-named value changed
    conflist = json.loads(found["host/cni/10-canal.conflist"])
    assert conflist["plugins"][0]["etcd_key_file"] == "<redacted>"
    conflist["plugins"][0]["etcd_key_file"] = CONFLIST["plugins"][0]["etcd_key_file"]
    assert conflist == CONFLIST
    kubeconfig = found["host/cni/calico-kubeconfig"].decode()
    assert "    token: <redacted>\n" in kubeconfig and b"eyJndl" not in result.stdout
    assert "server: https://10.43.0.1:443" in kubeconfig


def test_without_awk_a_file_to_redact_is_not_copied_at_all(node, files, tmp_path):
    bin_dir = tmp_path / "nobin"
    bin_dir.mkdir()
    for tool in ("ip", "cat", "ls", "mkdir", "rm", "sleep", "tar", "mktemp", "mv", "dash"):
        (bin_dir / tool).symlink_to(shutil.which(tool) or f"/bin/{tool}")
    result = run(
        [str(bin_dir / "dash")],
        render(parse_spec(evidence_spec(files))),
        node,
        ScriptArgs(),
        env={"PATH": str(bin_dir)},
    )
    assert result.returncode == 0, result.stderr
    found = members(result.stdout)
    assert command(records(found), "cfg")[10] == "1", "recorded as a missing tool"
    assert "host/k3s/config.yaml" not in found
    assert SECRETS[0].encode() not in result.stdout


@pytest.mark.parametrize("shell", SHELLS, ids=["dash", "busybox"])
def test_k3s_command_line_is_collected_one_argument_a_line_redacted(node, fake_k3s, shell):
    result = run(shell, render(), node, ScriptArgs())
    assert result.returncode == 0, result.stderr
    found = members(result.stdout)
    lines = found[f"host/rancher-cmdline/{fake_k3s}.txt"].decode().splitlines()
    assert lines[-7:] == [
        "server",
        "--token",
        "<redacted>",
        "--flannel-backend=vxlan",
        "--etcd-s3-secret-key=<redacted>",
        "--agent-token",
        "<redacted>",
    ]
    assert b"ndl-flag-token" not in result.stdout and b"ndl-agent-secret" not in result.stdout
    rec = next(
        r
        for r in records(found)
        if r[:2] == ["C", "rancher-cmdline"] and r[4].endswith(f"/{fake_k3s}.txt")
    )
    assert rec[6] == "0"


def test_absent_k3s_and_rke2_evidence_is_quiet(node, tmp_path):
    result = run(["dash"], render(), node, ScriptArgs())
    assert result.returncode == 0, result.stderr
    stream = tmp_path / "node.tar"
    stream.write_bytes(result.stdout)
    found = members(result.stdout)
    recs = records(found)
    ids = (
        "k3s-config",
        "k3s-config-d",
        "rke2-config",
        "rke2-config-d",
        "k3s-flannel-net-conf",
        "k3s-cni-config",
    )
    for cid in ids:
        assert command(recs, cid)[10] == "1", cid
    if not any(r[:2] == ["C", "rancher-cmdline"] and r[10] == "0" for r in recs):
        assert command(recs, "rancher-cmdline")[10] == "1"
    assert not any(word in result.stderr for word in (b"rancher", b"k3s", b"rke2"))
    writer = BundleWriter(tmp_path / "b.tar.gz", Manifest("0.1.0"))
    try:
        record = writer.add_node("n", "netns")
        sent = read_node_stream(stream, writer, record)
        apply_records(sent, writer, record, default_spec(), None)
        assert not [e for e in record.errors if any(w in e for w in ("k3s", "rke2", "rancher"))]
        by_id = {c.id: c for c in record.commands}
        assert by_id["k3s-config"].missing_tool and by_id["k3s-config"].output is None
        assert by_id["k3s-config"].argv[0] == "redact"
    finally:
        writer.abandon()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "commands: [{id: a, scope: host, argv: [a], output: o}]\n"
            "captures: [{interface: eth0, output: x.pcap}]",
            "by role",
        ),
        (
            "commands: [{id: a, scope: host, argv: [a], output: o}]\n"
            "captures: [{devices: tunnel, output: x.pcap}]",
            "devices must be one of",
        ),
        (
            "commands: [{id: a, scope: host, argv: [a], output: o}]\n"
            "captures: [{devices: underlay, filter: 'udp port {port}', output: x.pcap}]",
            "placeholder",
        ),
        ("commands: [{id: a, scope: host, kind: cmdline, output: o}]", "needs names"),
        (
            "commands: [{id: a, scope: host, kind: cmdline, names: [k3s], output: o, "
            "redact: false}]",
            "always redacted",
        ),
        ("commands: [{id: a, scope: host, argv: [a], output: o, redact: true}]", "redact"),
        (
            "commands: [{id: a, scope: host, argv: [a], output: o}]\ndevices: {overlay: []}",
            "devices.overlay",
        ),
    ],
)
def test_evidence_and_capture_spec_mistakes_are_named(text, message):
    with pytest.raises(CollectorError, match="collection spec") as caught:
        parse_spec(text)
    assert message in str(caught.value)
