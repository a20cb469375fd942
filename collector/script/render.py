"""Renders the collection spec into one POSIX sh script.

The script is the same for every transport (local, netns, pod): what differs per node
travels as its arguments (see the usage line of prelude.sh), never as edits.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass
from functools import cache
from importlib import resources

from needle.collector.spec.loader import Capture, Command, ProbeSettings, Spec, default_spec

BLOCK = 512  # `ulimit -f` counts 512-byte blocks in POSIX sh


@dataclass(frozen=True)
class ScriptArgs:
    """What the script needs to know about the node it runs on."""

    capture_seconds: int = 0
    max_packets: int = 2000
    snaplen: int = 200
    node_netns: str | None = None
    window_seconds: int = 0
    """The window's length when there are no captures (probes still need one)."""
    probe_targets: tuple[str, ...] = ()
    """ProbeTarget.word() of each target; none: no probes."""
    probe_mtu: int | None = None
    """The MTU the cluster objects state; None: the node takes its own."""
    probe_mtu_source: str | None = None

    def argv(self) -> list[str]:
        args = [
            "-c",
            str(self.capture_seconds),
            "-p",
            str(self.max_packets),
            "-s",
            str(self.snaplen),
        ]
        if self.node_netns:
            args += ["-n", self.node_netns]
        if self.window_seconds:
            args += ["-w", str(self.window_seconds)]
        if self.probe_targets:
            args += ["-t", " ".join(self.probe_targets)]
        if self.probe_targets and self.probe_mtu is not None:
            args += ["-m", str(self.probe_mtu), "-M", self.probe_mtu_source or "cluster objects"]
        return args


def _word(text: str) -> str:
    """Quote one argument; {interface} becomes the loop variable."""
    if "{interface}" not in text:
        return shlex.quote(text)
    pieces = text.split("{interface}")
    return '"${IFACE}"'.join(shlex.quote(piece) if piece else "" for piece in pieces)


def _output_path(command: Command, counter: bool = False) -> str:
    prefix = {"host": "host/", "interface": "host/", "netns": "netns/${NS_ID}/"}[command.scope]
    if counter:
        prefix += "counters/${NEEDLE_PHASE}/"
    return f'"{prefix}"{_word(command.output)}'


def _scope_field(command: Command) -> str:
    return '"$NS_ID"' if command.scope == "netns" else "-"


def _iface_field(command: Command) -> str:
    return '"$IFACE"' if command.scope == "interface" else "-"


def _invocation(command: Command, counter: bool = False) -> str:
    """One spec entry as a call of the prelude's helpers. A counter runs once per phase
    of the window: its id gets .start or .end, its output goes under counters/<phase>/."""
    blocks = max(1, command.max_bytes // BLOCK)
    out = _output_path(command, counter)
    cid = f'{command.id}."$NEEDLE_PHASE"' if counter else command.id
    paths = command.path if isinstance(command.path, tuple) else (command.path or "",)
    redact = "1" if command.redact else "0"
    if command.kind == "file":
        words = " ".join(_word(path) for path in paths)
        return f"needle_file {cid} {_scope_field(command)} {out} {redact} {words}"
    if command.kind == "glob":
        # quoted here, expanded by the node's shell inside needle_glob
        patterns = " ".join(f"'{path}'" for path in paths)
        return f"needle_glob {cid} {_scope_field(command)} {out} {redact} {patterns}"
    if command.kind == "cmdline":
        names = " ".join(shlex.quote(name) for name in command.names)
        return f"needle_cmdlines {cid} {_scope_field(command)} {out} {names}"
    if command.kind == "sysctl":
        keys = " ".join(shlex.quote(key) for key in command.keys)
        return f"needle_sysctl {cid} {_scope_field(command)} {out} {keys}"
    argv = " ".join(_word(arg) for arg in command.argv)
    if command.scope == "netns":
        argv = f"needle_in_ns {argv}"
    return (
        f"needle_run {cid} {_scope_field(command)} {_iface_field(command)} {out} "
        f"{command.timeout} {blocks} {argv}"
    )


def _step(command: Command, counter: bool = False) -> str:
    line = _invocation(command, counter)
    if command.fallback is not None:
        line += f" ||\n        {_invocation(command.fallback, counter)}"
    return f"    {line}"


def _function(name: str, commands: list[Command], counter: bool = False) -> str:
    steps = "\n".join(_step(command, counter) for command in commands) or "    :"
    return f"{name}() {{\n{steps}\n}}\n"


def _probe_settings(settings: ProbeSettings) -> str:
    values = {
        "NEEDLE_PROBE_SOURCES": " ".join(settings.sources),
        "NEEDLE_PROBE_COUNT": str(settings.count),
        "NEEDLE_PROBE_INTERVAL": f"{settings.interval_s:g}",
        # ping -w and nc -w take whole seconds
        "NEEDLE_PROBE_DEADLINE": str(math.ceil(settings.deadline_s)),
        "NEEDLE_PROBE_SMALL": str(settings.small_size),
        "NEEDLE_PROBE_PARALLEL": str(settings.parallel),
        "NEEDLE_PROBE_PAYLOAD": settings.udp_payload,
    }
    return "".join(f"{name}={shlex.quote(value)}\n" for name, value in values.items())


def _capture_start(capture: Capture) -> str:
    out_pre, _, out_suf = capture.output.partition("{interface}")
    placeholder = capture.placeholder
    filter_pre, filter_suf = capture.filter, ""
    if placeholder:
        filter_pre, _, filter_suf = capture.filter.partition(placeholder)
    words = [
        capture.devices,
        str(capture.max_devices),
        out_pre,
        out_suf,
        "1" if capture.per_device else "0",
        filter_pre,
        filter_suf,
        placeholder.strip("{}") if placeholder else "-",
    ]
    return "        needle_capture " + " ".join(shlex.quote(word) for word in words)


# The window: captures start, counters are read, probes go out in the background while
# the commands run; after the window (and the probes) end, counters are read again and
# the captures stop. Without captures or probes there is no window, only the counters.
MAIN = """\
needle_main() {
    needle_now; NEEDLE_STARTED=${NEEDLE_NOW%%.*}
    needle_discover_devices
    needle_pick_namespaces
    if [ "$NEEDLE_CAPTURE_SECONDS" -gt 0 ]; then
        mkdir -p "$W/cap"
__CAPTURES__
    fi
    needle_cs; NEEDLE_WINDOW_START_CS=$NEEDLE_CS
    needle_counters start
    needle_probes_start
    needle_host_commands
    needle_emit
    needle_interface_commands
    needle_emit
    needle_collect_namespaces
    if [ "$NEEDLE_WINDOW_SECONDS" -gt 0 ]; then
        needle_cs
        _left=$(((NEEDLE_WINDOW_START_CS + NEEDLE_WINDOW_SECONDS * 100 - NEEDLE_CS + 99) / 100))
        if [ "$_left" -gt 0 ]; then sleep "$_left"; fi
    fi
    needle_probes_finish
    needle_counters end
    needle_emit
    if [ "$NEEDLE_CAPTURE_SECONDS" -gt 0 ]; then
        needle_stop_captures
        needle_emit
    fi
    needle_emit
}

needle_main
exit 0
"""


@cache
def prelude() -> str:
    return (resources.files("needle.collector") / "script" / "prelude.sh").read_text()


def render(spec: Spec | None = None) -> str:
    """The whole script for `spec` (the built-in node.yaml by default)."""
    spec = spec or default_spec()
    default_blocks = max(1, int(spec.defaults.get("max_bytes", 64 * 1024 * 1024)) // BLOCK)
    interface_loop_head = (
        "    for _ifpath in /sys/class/net/*; do\n"
        '        [ -e "$_ifpath" ] || continue\n'
        "        IFACE=${_ifpath##*/}\n"
    )
    interface_steps = (
        "\n".join("    " + _step(command) for command in spec.in_scope("interface")) or "        :"
    )
    parts = [
        "#!/bin/sh\n",
        prelude(),
        f"\nNEEDLE_DEFAULT_BLOCKS={default_blocks}\n",
        f"NEEDLE_OVERLAY_KINDS={shlex.quote(' '.join(spec.devices.overlay))}\n",
        f"NEEDLE_POD_PORT_KINDS={shlex.quote(' '.join(spec.devices.pod_ports))}\n\n",
        _function("needle_host_commands", spec.in_scope("host")),
        "\nneedle_interface_commands() {\n"
        + interface_loop_head
        + interface_steps
        + "\n    done\n}\n\n",
        _function("needle_netns_commands", spec.in_scope("netns")),
        "\n",
        _function("needle_counters_host", [c for c in spec.counters if c.scope == "host"], True),
        "\n",
        _function("needle_counters_netns", [c for c in spec.counters if c.scope == "netns"], True),
        "\n",
        _probe_settings(spec.probes),
        "\n",
        MAIN.replace(
            "__CAPTURES__",
            "\n".join(_capture_start(capture) for capture in spec.captures) or "        :",
        ),
    ]
    return "".join(parts)
