"""Shared test plumbing: prerequisites that skip by hand but fail under CI."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _missing_root_prerequisites() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces); run the tests as root, e.g. in CI"
    if shutil.which("ip") is None:
        return "needs iproute2's `ip` on PATH"
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True, check=False)
    if probe.returncode != 0:
        return f"`ip netns` does not work here: {probe.stderr.decode(errors='replace').strip()}"
    return None


def require(reason: str | None) -> None:
    """Skip with `reason` when run by hand; fail when CI=true, where a skip would hide a gap."""
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"CI=true but a prerequisite is missing: {reason}", pytrace=False)
    pytest.skip(reason)


def require_tools(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    require(f"needs {', '.join(missing)} on PATH" if missing else None)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("root") is not None:
        require(_missing_root_prerequisites())
    tools_marker = item.get_closest_marker("tools")
    if tools_marker is not None:
        require_tools(*tools_marker.args)


@pytest.fixture
def lab_factory():
    """Build real labs (network namespaces) on demand; every one is torn down afterwards,
    also when the test fails. Names are unique to this test process."""
    from needle.lab import api

    made: list[str] = []

    def build(**kwargs):
        name = f"ndlc-{os.getpid()}-{len(made) + 1}"
        made.append(name)
        return api.up(name=name, **kwargs)

    try:
        yield build
    finally:
        for name in made:
            api.down(name)
