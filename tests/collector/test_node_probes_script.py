"""The node script's window under dash and busybox sh, in a real lab node: counters read
twice, probes run and recorded, a missing ping or UDP tool recorded while the rest goes
on, busybox's ping (no DF) recorded as such, and probes that no longer fit the window
recorded as cut. Traffic stays between the lab's namespaces."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from needle.analyzer.parsers.probes import parse_ping
from needle.collector.script.render import ScriptArgs, render
from needle.lab import api as lab_api
from needle.lab.state import LabState

SHELLS = [["dash"], ["busybox", "sh"]]
pytestmark = [pytest.mark.root, pytest.mark.tools("dash", "busybox", "nsenter", "ping")]


@pytest.fixture(scope="module")
def lab(module_lab: Callable[..., LabState]) -> LabState:
    return module_lab(nodes=2, pods=1)


def tool_dir(root: Path, leave_out: set[str], replace: dict[str, str] | None = None) -> str:
    """A PATH of one directory linking every tool of this host but `leave_out`, with
    `replace` naming a tool by another (ping -> busybox)."""
    root.mkdir(parents=True, exist_ok=True)
    for directory in (
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ):
        if not os.path.isdir(directory):
            continue
        for name in os.listdir(directory):
            link = root / name
            if name in leave_out or link.exists() or link.is_symlink():
                continue
            link.symlink_to(Path(directory) / name)
    for name, tool in (replace or {}).items():
        (root / name).unlink(missing_ok=True)
        (root / name).symlink_to(shutil.which(tool) or tool)
    return str(root)


def targets(lab: LabState) -> tuple[str, ...]:
    peer = lab.nodes[1]
    return (
        f"node-gateway,{peer.pod_cidr.rsplit('.', 1)[0]}.1,-,{peer.name}",
        f"pod,{peer.pods[0].ip},-,{peer.name}",
        f"vxlan-port,{peer.underlay_ip},8472,{peer.name}",
    )


def run_node(
    shell: list[str], lab: LabState, args: ScriptArgs, path: str | None = None
) -> tuple[dict[str, bytes], list[list[str]]]:
    env = {**os.environ, "PATH": path} if path else None
    argv = ["ip", "netns", "exec", lab.nodes[0].netns, *shell, "-s", "--", *args.argv()]
    result = subprocess.run(
        argv, input=render().encode(), capture_output=True, timeout=60, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(result.stdout), mode="r|", ignore_zeros=True) as tar:
        for member in tar:
            if member.isreg():
                files[member.name.removeprefix("./")] = tar.extractfile(member).read()
    lines = [
        line.split("\t")
        for name, data in sorted(files.items())
        if name.startswith("_needle/records.")
        for line in data.decode().splitlines()
    ]
    return files, lines


def args_for(lab: LabState, **changes: object) -> ScriptArgs:
    settings: dict[str, object] = {
        "node_netns": lab.nodes[0].netns,
        "window_seconds": 2,
        "probe_targets": targets(lab),
        "probe_mtu": 1450,
        "probe_mtu_source": "vxlan default",
        **changes,
    }
    return ScriptArgs(**settings)  # type: ignore[arg-type]


@pytest.mark.parametrize("shell", SHELLS, ids=["dash", "busybox"])
def test_window_reads_counters_twice_and_runs_every_probe(shell, lab):
    files, records = run_node(shell, lab, args_for(lab))
    settings = [r for r in records if r[0] == "Q"]
    assert len(settings) == 1 and settings[0][1:4] == [
        "1450",
        "vxlan default",
        "small:56 under-mtu:1422 over-mtu:1423",
    ]
    results = [r for r in records if r[0] == "R"]
    assert len(results) == 2 * 2 * 3 + 1  # 2 targets x 2 sources x 3 sizes + a datagram
    for result in results:
        assert result[17] == "-" and result[16] == "0", result  # not cut, tool present
        assert result[11] in files, result
        if result[3] != "vxlan-port":
            stderr = files.get(result[12], b"")
            run = parse_ping(files[result[11]] + stderr).records[0]
            assert run.outcome == ("failed" if result[7] == "over-mtu" else "passed"), result
    counters = {r[1] for r in records if r[0] == "C" and r[1].endswith((".start", ".end"))}
    assert {"link-stats.start", "link-stats.end", "proc-snmp.start", "softnet-stat.end"} <= counters
    netns_counters = [
        r for r in records if r[0] == "C" and r[1] == "link-stats.end" and r[2] != "-"
    ]
    assert len(netns_counters) == 1  # the node's one pod
    assert any(name.startswith("host/counters/start/") for name in files)


@pytest.mark.parametrize("shell", SHELLS, ids=["dash", "busybox"])
def test_missing_ping_and_udp_tools_are_recorded_and_the_rest_goes_on(shell, lab, tmp_path):
    path = tool_dir(tmp_path / "bin", {"ping", "nc", "socat", "bash", "ncat"})
    files, records = run_node(shell, lab, args_for(lab), path)
    results = [r for r in records if r[0] == "R"]
    assert len(results) == 13
    assert all(r[16] == "1" and r[11] == "-" for r in results), results
    udp = next(r for r in results if r[3] == "vxlan-port")
    assert udp[10] == "nc socat bash"
    assert "host/ip-link.json" in files and "host/counters/end/link-stats.json" in files


@pytest.mark.parametrize("shell", SHELLS, ids=["dash", "busybox"])
def test_busybox_ping_cannot_set_df_and_says_so(shell, lab, tmp_path):
    path = tool_dir(tmp_path / "bin", {"ping"}, {"ping": "busybox"})
    files, records = run_node(shell, lab, args_for(lab), path)
    settings = next(r for r in records if r[0] == "Q")
    assert settings[5] == "0"  # no DF
    small = next(r for r in records if r[0] == "R" and r[7] == "small" and r[1] == "host")
    assert small[9] == "0"
    run = parse_ping(files[small[11]]).records[0]
    assert run.flavour == "busybox" and run.outcome == "passed"


def test_probes_that_cannot_end_inside_the_window_are_cut(lab):
    # a 1 s window with 1 s probes: no wave can start and still end inside it
    _files, records = run_node(["dash"], lab, args_for(lab, window_seconds=1))
    results = [r for r in records if r[0] == "R"]
    assert len(results) == 13
    assert all(r[17].startswith("no time left in the 1 s window") for r in results), results


def test_without_an_mtu_or_port_from_the_objects_the_node_takes_its_devices(lab):
    words = tuple(t.replace(",8472,", ",-,") for t in targets(lab))
    _files, records = run_node(["dash"], lab, args_for(lab, probe_mtu=None, probe_targets=words))
    settings = next(r for r in records if r[0] == "Q")
    assert settings[1:3] == ["1450", "mtu of flannel.1 (overlay device)"]
    udp = next(r for r in records if r[0] == "R" and r[3] == "vxlan-port")
    assert udp[5] == "8472" and udp[17] == "-", udp


def test_subnet_env_mtu_wins_over_the_collectors(lab):
    # the lab's node shell shows the node's /run/flannel/subnet.env (FLANNEL_MTU=1450)
    shell = lab_api.collect_shell(lab, lab.nodes[0].name)
    _files, records = run_node([shell], lab, args_for(lab, probe_mtu=1300))
    settings = next(r for r in records if r[0] == "Q")
    assert settings[1] == "1450" and settings[2].endswith("subnet.env FLANNEL_MTU")
