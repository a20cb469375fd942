"""Every corpus case (corpus.py, cases_*.py) through analyze, every show view, diff and
trace,
each case in a resource-limited child process: what a user sees is held to needle's
promises about untrusted bundles (docs/untrusted-bundles.md)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from corpus import BASE, build_case, load_all
from page_checks import assert_self_contained

HERE = Path(__file__).parent
VIEWS = ("nodes", "pods", "links", "routes", "neigh", "fdb", "veths", "mtu", "captures")
# Per case: address space of the child running every command, and its CPU time.
MEMORY_MIB = 3072
CPU_S = 120
# Per command, wall clock: the largest valid case (10^5 routes on one node) streams in
# ~6 s; before streaming, `show routes` on it printed nothing for 213 s.
COMMAND_S = 45.0
# Characters no human-readable output may carry raw from a bundle: C0 controls but tab
# and newline, DEL, C1 controls, and the bidirectional overrides and isolates that
# reorder what a terminal shows.
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
RAW_HTML = re.compile(r"<(img|script|svg|iframe)\b", re.I)

CASES = load_all()


def commands(bundle: Path) -> list[list[str]]:
    path = str(bundle)
    runs = [
        ["analyze", path, "--fail-on", "never"],
        ["analyze", path, "--format", "json", "--fail-on", "never"],
        ["analyze", path, "--format", "markdown", "--fail-on", "never"],
        ["analyze", path, "--format", "html", "--fail-on", "never"],
    ]
    runs += [["show", path, view] for view in VIEWS]
    runs += [["show", path, "nodes", "--format", "json"]]
    runs += [
        ["diff", str(BASE), path],
        ["diff", str(BASE), path, "--format", "json"],
        ["diff", path, str(BASE), "--format", "markdown"],
        ["diff", str(BASE), path, "--format", "html"],
    ]
    # a pod of the base sample's first node, to the second node (and its JSON twin)
    runs += [
        ["trace", path, "10.244.1.2", "lab-node-2"],
        ["trace", path, "lab-node-2", "10.244.1.2", "--format", "json"],
    ]
    return runs


def drive(bundle: Path) -> dict:
    result = subprocess.run(
        [
            sys.executable,
            str(HERE / "drive.py"),
            str(MEMORY_MIB),
            str(CPU_S),
            *(json.dumps(argv) for argv in commands(bundle)),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=CPU_S * 2,
    )
    assert result.returncode == 0, f"the driver died: {result.stderr[-2000:]}"
    return json.loads(result.stdout)


def human_readable(run: dict) -> list[tuple[str, str]]:
    """(what, text) of the outputs meant for people: stderr always, stdout unless JSON."""
    shown = [("stderr", run["stderr"])]
    if "json" not in run["argv"]:
        shown.append(("stdout", run["stdout"]))
    return shown


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_hostile_bundle_gets_what_needle_promises(name, tmp_path):
    item = CASES[name]
    bundle = build_case(item, tmp_path)
    outcome = drive(bundle)
    problems = []
    for run in outcome["results"]:
        where = " ".join(run["argv"][:1] + run["argv"][2:]) or run["argv"][0]
        if run["escaped"]:
            problems.append(f"{where}: raised\n{run['escaped']}")
            continue
        if run["seconds"] > COMMAND_S:
            problems.append(f"{where}: took {run['seconds']:.0f} s (at most {COMMAND_S:.0f})")
        if run["exit"] not in item.expect_exit:
            problems.append(f"{where}: exit {run['exit']}: {run['stderr'][-500:]}")
        if "Traceback" in run["stderr"] or "internal error" in run["stderr"]:
            problems.append(f"{where}: {run['stderr'][-800:]}")
        if "json" in run["argv"] and run["exit"] in (0, 1):
            try:
                json.loads(run["stdout"])
            except ValueError as exc:
                problems.append(f"{where}: stdout is not JSON ({exc})")
        for stream, text in human_readable(run):
            raw = RAW_CONTROL.search(text)
            if raw:
                problems.append(f"{where}: raw {raw.group()!r} on {stream}")
            if "markdown" in run["argv"] and stream == "stdout" and RAW_HTML.search(text):
                problems.append(f"{where}: raw HTML in markdown")
            if "html" in run["argv"] and stream == "stdout" and run["exit"] in (0, 1):
                try:
                    assert_self_contained(text)
                except AssertionError as exc:
                    problems.append(f"{where}: the page holds what it did not make: {exc}")
        if run["stderr"].count("\n") > 1 and run["exit"] == 2:
            problems.append(f"{where}: an error of more than one line: {run['stderr'][:300]!r}")
    reported = "".join(r["stdout"] + r["stderr"] for r in outcome["results"])
    problems += [f"never says {text!r}" for text in item.must_report if text not in reported]
    assert problems == [], "\n".join(problems)
