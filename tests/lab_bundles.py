"""What the lab-bundle tests share: a real lab collected as a user would (every node,
probes between the lab's namespaces, a short capture window), and `needle analyze` of
a bundle as JSON through the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from needle.collector.collect import CollectOptions, collect
from needle.collector.progress import Progress
from needle.collector.transports.netns import NetnsTarget
from needle.lab.state import LabState

CAPTURE_SECONDS = 2


def collect_with_probes(
    state: LabState,
    output: Path,
    *,
    capture_seconds: int = CAPTURE_SECONDS,
    redact_secret: bytes | None = None,
) -> Path:
    """`needle collect` of every lab node with probes and captures (redacted with
    `redact_secret` when given, as `collect --redact --key-file` would)."""
    options = CollectOptions(
        output=output,
        kube_dir=Path(state.kube_dir),
        targets=[NetnsTarget(netns=node.netns, node=node.name) for node in state.nodes],
        capture_seconds=capture_seconds,
        probes=True,
        redact=redact_secret is not None,
        redact_secret=redact_secret,
    )
    with Progress(live=False) as progress:
        collect(options, progress)
    return output


def analyze_json(bundle: Path) -> dict[str, Any]:
    """The report of `needle analyze BUNDLE --format json` (exit 0 or 1: findings or
    none; anything else fails the test with its stderr)."""
    result = subprocess.run(
        [sys.executable, "-m", "needle", "analyze", str(bundle), "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)
