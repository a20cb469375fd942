"""The rendered node script under dash and busybox sh: outputs, records, timeouts,
missing tools, output caps and interruption, in a real network namespace."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
from needle.collector.script.render import ScriptArgs, render
from needle.collector.spec.loader import parse_spec

SHELLS = [["dash"], ["busybox", "sh"]]
pytestmark = [pytest.mark.root, pytest.mark.tools("dash", "busybox", "tcpdump", "nsenter")]


def run(shell: list[str], script: str, netns: str, args: ScriptArgs, env=None, timeout=60):
    argv = ["ip", "netns", "exec", netns, *shell, "-s", "--", *args.argv()]
    return subprocess.run(
        argv, input=script.encode(), capture_output=True, timeout=timeout, env=env, check=False
    )


def run_in_session(shell: list[str], script: str, netns: str, args: ScriptArgs, timeout=60):
    """As `run`, in a session of its own: returns the result and the session id, which
    every process the script starts inherits (the script never calls setsid)."""
    argv = ["ip", "netns", "exec", netns, *shell, "-s", "--", *args.argv()]
    with subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    ) as process:
        stdout, stderr = process.communicate(script.encode(), timeout=timeout)
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr), process.pid


def session_commands(session: int) -> list[str]:
    """The command lines of the processes still alive in `session` (this test's own)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            argv = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # ended while we looked
        fields = text.rpartition(")")[2].split()
        if len(fields) > 3 and fields[3] == str(session) and fields[0] != "Z":
            alive.append(b" ".join(argv).decode(errors="replace").strip())
    return alive


def members(stream: bytes) -> dict[str, bytes]:
    found = {}
    with tarfile.open(fileobj=io.BytesIO(stream), mode="r|", ignore_zeros=True) as tar:
        for member in tar:
            if member.isreg():
                name = member.name.removeprefix("./")
                found[name] = tar.extractfile(member).read()
    return found


def records(found: dict[str, bytes]) -> list[list[str]]:
    lines = []
    for name, data in sorted(found.items()):
        if name.startswith("_needle/records."):
            lines += [line.split("\t") for line in data.decode().splitlines()]
    return lines


def command(recs, cid, scope="-", iface="-"):
    matches = [r for r in recs if r[0] == "C" and r[1] == cid and r[2] == scope and r[3] == iface]
    assert len(matches) == 1, (cid, scope, iface, matches)
    return matches[0]


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    """A node namespace with a bridge, a VXLAN device, one pod and an unrelated namespace."""
    tag = f"ndls{os.getpid()}"
    names = {"node": f"{tag}-n", "pod": f"{tag}-p", "other": f"{tag}-o"}
    script = [
        f"netns add {names['node']}",
        f"netns add {names['pod']}",
        f"netns add {names['other']}",
    ]
    for line in script:
        subprocess.run(["ip", *line.split()], check=True)
    n, p = names["node"], names["pod"]
    cmds = [
        f"-n {n} link add cni0 type bridge",
        f"-n {n} link add vethaaaa0001 type veth peer name eth0 netns {p}",
        f"-n {n} link set vethaaaa0001 master cni0",
        f"-n {n} link add ens3 type veth peer name up0 netns {names['other']}",
        f"-n {n} addr add 192.168.122.11/24 dev ens3",
        f"-n {n} link add flannel.1 type vxlan id 1 dstport 8472 dev ens3 "
        "local 192.168.122.11 nolearning",
        f"-n {n} link set cni0 up",
        f"-n {n} link set vethaaaa0001 up",
        f"-n {n} link set ens3 up",
        f"-n {n} link set flannel.1 up",
        f"-n {p} link set eth0 up",
    ]
    try:
        for line in cmds:
            subprocess.run(["ip", *line.split()], check=True)
        yield names
    finally:
        for name in names.values():
            subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.mark.parametrize("shell", SHELLS, ids=["dash", "busybox"])
def test_full_script_collects_host_and_attached_namespace_only(node, shell):
    result = run(shell, render(), node["node"], ScriptArgs(node_netns=node["node"]))
    assert result.returncode == 0, result.stderr
    found = members(result.stdout)
    recs = records(found)
    for output in (
        "host/ip-link.json",
        "host/ip-addr.json",
        "host/ip-route.json",
        "host/ip-neigh.json",
        "host/bridge-fdb.json",
        "host/sysctl-net.txt",
        "host/ethtool/flannel.1/features.txt",
        "host/uname.txt",
    ):
        assert found.get(output), output
    assert b"net/ipv4/ip_forward = " in found["host/sysctl-net.txt"]
    namespaces = [r for r in recs if r[0] == "N"]
    # the pod is attached through cni0's veth; the "other" namespace only through the uplink
    assert [r[3] for r in namespaces] == [node["pod"]]
    ns_id = namespaces[0][1]
    assert b'"ifname":"eth0"' in found[f"netns/{ns_id}/ip-link.json"]
    assert command(recs, "ip-link", ns_id)[6] == "0"
    ethtool = command(recs, "ethtool-k", "-", "cni0")
    assert ethtool[4] == "host/ethtool/cni0/features.txt" and ethtool[6] == "0"


HANG_SPEC = """
commands:
  - {id: quick-before, scope: host, argv: [echo, before], output: before.txt}
  - {id: hangs, scope: host, argv: [sleep, "30"], output: hang.txt, timeout: 1}
  - {id: no-such-tool, scope: host, argv: [needle-no-such-tool], output: x.txt}
  - {id: optional-file, scope: host, kind: file, path: /nonexistent/file, output: f.txt,
     optional: true}
  - {id: first-found, scope: host, kind: file, path: [/nonexistent/a, /proc/version],
     output: version.txt}
  - {id: floods, scope: host, argv: [cat, /dev/zero], output: zero.bin, max_bytes: 8192}
  - {id: fails, scope: host, argv: [ip, link, show, dev, no-such-dev], output: fail.txt}
  - {id: quick-after, scope: host, argv: [echo, after], output: after.txt}
"""


@pytest.mark.parametrize("shell", SHELLS, ids=["dash", "busybox"])
def test_hang_missing_tool_flood_and_failure_are_recorded_and_collection_goes_on(node, shell):
    started = time.monotonic()
    result, session = run_in_session(
        shell, render(parse_spec(HANG_SPEC)), node["node"], ScriptArgs()
    )
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert took < 10, "the hung command was killed at its 1 s timeout"
    found = members(result.stdout)
    recs = records(found)
    assert found["host/before.txt"] == b"before\n" and found["host/after.txt"] == b"after\n"
    hang = command(recs, "hangs")
    assert hang[9] == "1", "marked timed out"
    assert float(hang[8]) - float(hang[7]) < 5
    assert command(recs, "no-such-tool")[10] == "1", "missing tool recorded"
    assert command(recs, "optional-file")[10] == "1", "missing file recorded"
    with open("/proc/version", "rb") as version:
        assert found["host/version.txt"] == version.read(), "the first path that exists"
    flood = command(recs, "floods")
    assert len(found["host/zero.bin"]) == 8192, "output cut at its cap"
    assert flood[6] != "0"
    fails = command(recs, "fails")
    assert fails[6] != "0" and found["host/fail.txt.stderr"]
    # only this run's processes: an unrelated `sleep 30` elsewhere on the machine is not ours
    hung = [line for line in session_commands(session) if line == "sleep 30"]
    assert hung == [], "the hung command does not outlive the script"


@pytest.mark.parametrize("shell", SHELLS, ids=["dash", "busybox"])
def test_an_interrupted_run_still_yields_what_was_collected(node, shell):
    spec = parse_spec("""
commands:
  - {id: first, scope: host, argv: [echo, first], output: first.txt}
  - {id: slow, scope: host, argv: [sleep, "20"], output: slow.txt, timeout: 30}
""")
    argv = ["ip", "netns", "exec", node["node"], *shell, "-s", "--", *ScriptArgs().argv()]
    process = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    process.stdin.write(render(spec).encode())
    process.stdin.close()
    time.sleep(1.0)
    started = time.monotonic()
    os.killpg(process.pid, signal.SIGTERM)
    out = process.stdout.read()
    process.wait(timeout=40)
    found = members(out)
    assert found["host/first.txt"] == b"first\n"
    assert any(r[0] == "E" and "interrupted" in r[1] for r in records(found))
    assert time.monotonic() - started < 5, "the running command was stopped, not awaited"


@pytest.mark.parametrize("shell", SHELLS, ids=["dash", "busybox"])
def test_missing_tools_on_path_are_recorded_not_fatal(node, shell, tmp_path):
    # A node image with only the shell's basics: no ethtool, brctl, tcpdump, route, arp.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in (
        "ip",
        "cat",
        "ls",
        "mkdir",
        "rm",
        "sleep",
        "tar",
        "mktemp",
        "mv",
        "nsenter",
        "uname",
        "busybox",
        "dash",
    ):
        path = subprocess.run(
            ["sh", "-c", f"command -v {tool}"], capture_output=True, text=True, check=True
        ).stdout.strip()
        (bin_dir / tool).symlink_to(path)
    env = {"PATH": str(bin_dir)}
    shell_path = [str(bin_dir / shell[0]), *shell[1:]]
    result = run(
        shell_path,
        render(),
        node["node"],
        ScriptArgs(capture_seconds=1, node_netns=node["node"]),
        env=env,
    )
    assert result.returncode == 0, result.stderr
    recs = records(members(result.stdout))
    assert command(recs, "brctl-show")[10] == "1"
    assert command(recs, "ethtool-i", "-", "cni0")[10] == "1"
    captures = [r for r in recs if r[0] == "P" and r[7] == "-"]  # not skipped by design
    assert captures and all("tcpdump is not installed" in r[5] for r in captures)
    assert command(recs, "ip-link")[6] == "0"
