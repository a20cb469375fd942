"""The lab as a Python API: `up`, `status`, `fault`, `down`. The CLI is a thin shell over it.

Stable for tests of other parts (collector fixtures), e.g.::

    from needle.lab import api
    state = api.up(name="ndltest-1234", nodes=3, pods=2)
    try:
        ...  # state.nodes[0].netns, state.kube_dir, state.netns_args(), ...
        record = api.fault(state.name, "route-missing")
    finally:
        api.down(state.name)

Every function raises needle.lab.errors.LabError with a one-line, actionable message on bad input
or a host that cannot run the lab. All state lives in /run/needle-lab/<name>/ (mode 0700):
state.json (LabState), kube/ (nodes.json, pods.json, configmaps.json, daemonsets.json),
nodes/<node>/ (the files the backend's CNI leaves on a node, and the shell that shows them
to a collection: `collect_shell`) and a lock file. `up(..., backend="canal")` picks the
data plane (needle.lab.backends.NAMES). Namespaces are <name>-underlay, <name>-n<I>
(node I), <name>-n<I>-p<K> (pod K of node I); nothing is created in the root namespace.
"""

from __future__ import annotations

import os
import platform
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from needle.lab import (
    backends,
    batches,
    faults,
    keepalive,
    kube_objects,
    netns,
    nodefiles,
    preflight,
    topology,
)
from needle.lab.backends import bridge
from needle.lab.errors import LabError
from needle.lab.state import (
    KUBE_DIR,
    STATE_ROOT,
    STATUS_BUILDING,
    STATUS_UP,
    FaultRecord,
    LabState,
    NodeState,
    ProcessRecord,
    load,
    locked,
    save,
)
from needle.lab.terminal import plural

DEFAULT_NAME = topology.DEFAULT_NAME

_UNDERLAY_SYSCTLS = {
    # A real switch drops an oversized frame; bridge netfilter could instead defragment and
    # re-fragment it and hide an MTU fault.
    "net.bridge.bridge-nf-call-iptables": "0",
    "net.bridge.bridge-nf-call-ip6tables": "0",
    "net.bridge.bridge-nf-call-arptables": "0",
}
Action = Callable[[], None]
_ARCHITECTURES = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "armv7l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
}


@dataclass
class Teardown:
    """What `down` removed."""

    name: str
    netns: list[str] = field(default_factory=list)
    """Namespaces deleted."""
    pids: list[int] = field(default_factory=list)
    """Keep-alive processes stopped."""
    state_dir_removed: bool = False


def up(
    name: str = DEFAULT_NAME,
    nodes: int = topology.DEFAULT_NODES,
    pods: int = topology.DEFAULT_PODS,
    underlay_mtu: int = topology.DEFAULT_UNDERLAY_MTU,
    *,
    rng: random.Random | None = None,
    backend: str = backends.DEFAULT,
) -> LabState:
    """Build lab `name`: an underlay switch, `nodes` nodes with the `backend` data plane
    (see needle.lab.backends; default flannel VXLAN), `pods` pods on each, the matching
    Kubernetes objects and node files. Returns the LabState (status "up").

    `rng` seeds MACs, veth names, pod names and uids (a seeded one gives a repeatable lab).
    Raises LabError if the lab is already up or busy, the host lacks something, or a step
    fails; a failed `up` removes what it made before raising and names the failing step.
    """
    backends.get(backend)
    settings = topology.validate(name, nodes, pods, underlay_mtu, backend)
    preflight.check_tools()
    rng = rng or random.SystemRandom()
    with locked(settings.name) as directory:
        _refuse_if_present(settings.name)
        state = _plan(settings, directory, rng)
        save(state)
        step = "start"
        try:
            for name_of_step, action in _build_steps(state, rng):
                step = name_of_step
                action()
        except BaseException as exc:
            cleanup = _cleanup_after_failure(state)
            if not isinstance(exc, Exception):
                raise
            reason = (
                preflight.explain_kernel_failure(str(exc))
                if isinstance(exc, LabError)
                else f"{type(exc).__name__}: {exc}"
            )
            raise LabError(f"lab up failed at step '{step}': {reason}; {cleanup}") from exc
        state.status = STATUS_UP
        save(state)
        return state


def status(name: str = DEFAULT_NAME) -> LabState:
    """The saved state of lab `name` (status "up", or "building" while/if `up` is
    unfinished). Raises LabError if no such lab exists."""
    topology.validate_name(name)
    preflight.check_root()
    state = load(name)
    if state is None:
        raise LabError(f"lab {name!r} is not up; start it with `needle lab up --name {name}`")
    return state


def collect_shell(state: LabState, node: str) -> str:
    """The shell to give the collector's netns transport for `node` (a node name), so the
    collection also finds the node's CNI config and flannel subnet.env where a real node
    keeps them (see needle.lab.nodefiles)."""
    return nodefiles.shell(state, state.node(node))


def missing_netns(state: LabState) -> list[str]:
    """Namespaces the state names for its nodes and pods that no longer exist."""
    present = netns.existing()
    wanted = [state.underlay_netns] + [node.netns for node in state.nodes]
    wanted += [pod.netns for pod in state.pods()]
    return [name for name in wanted if name not in present]


def fault(name: str, fault_name: str, node: str | None = None) -> FaultRecord:
    """Inject fault `fault_name` (see needle.lab.faults.CATALOGUE) into lab `name`, on `node`
    (a node name such as "lab-node-2"; default the first node). Returns the FaultRecord that
    says what changed; it is also appended to the state's `faults`."""
    topology.validate_name(name)
    spec = faults.lookup(fault_name)
    preflight.check_tools()
    with locked(name, create=False):
        state = status(name)
        if state.status != STATUS_UP:
            raise LabError(f"lab {name!r} is not fully up; run `needle lab down --name {name}`")
        faults.check_backend(spec, state.backend, name)
        target = state.node(node) if node else state.nodes[0]
        if any(f.fault == fault_name and f.node == target.name for f in state.faults):
            raise LabError(f"fault {fault_name} is already applied to {target.name}")
        try:
            record = spec.apply(faults.Target(state, target))
        finally:
            # A fault may have recorded a process before failing; keep that on disk.
            save(state)
        state.faults.append(record)
        save(state)
        return record


def down(name: str = DEFAULT_NAME) -> Teardown:
    """Remove lab `name`: stop its keep-alive processes, delete its namespaces (those its
    state lists and any matching its prefix, so a half-built lab goes too) and its state
    dir. Idempotent: a lab that is not there is not an error."""
    topology.validate_name(name)
    preflight.check_tools()
    with locked(name) as directory:
        try:
            state = load(name)
        except LabError:
            state = None  # unreadable state: the namespace prefix still finds everything
        return _remove(name, state, directory)


def _refuse_if_present(name: str) -> None:
    existing = load(name)
    if existing is not None:
        if existing.status == STATUS_UP:
            raise LabError(
                f"lab {name!r} is already up ({plural(len(existing.nodes), 'node')}); use it, "
                f"or run `needle lab down --name {name}` first"
            )
        raise LabError(
            f"lab {name!r} is half-built (an earlier `up` stopped); "
            f"run `needle lab down --name {name}` first"
        )
    pattern = topology.netns_pattern(name)
    leftovers = sorted(ns for ns in netns.existing() if pattern.match(ns))
    if leftovers:
        shown = ", ".join(leftovers[:3]) + (" ..." if len(leftovers) > 3 else "")
        raise LabError(
            f"namespaces of an earlier lab {name!r} still exist ({shown}); "
            f"run `needle lab down --name {name}` first"
        )


def _plan(settings: topology.Settings, directory: Path, rng: random.Random) -> LabState:
    backend = backends.get(settings.backend)
    node_states = topology.plan_nodes(settings, rng)
    backend.adjust_plan(node_states)
    underlay = topology.underlay_netns(settings.name)
    all_netns = [underlay] + [node.netns for node in node_states]
    all_netns += [pod.netns for node in node_states for pod in node.pods]
    return LabState(
        name=settings.name,
        state_dir=str(directory),
        kube_dir=str(directory / KUBE_DIR),
        underlay_netns=underlay,
        status=STATUS_BUILDING,
        underlay_mtu=settings.underlay_mtu,
        overlay_mtu=backend.overlay_mtu(settings.underlay_mtu),
        created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        nodes=node_states,
        netns=all_netns,
        backend=settings.backend,
    )


def _build_steps(state: LabState, rng: random.Random) -> list[tuple[str, Action]]:
    """The build, as named steps: a failure reports the step's name."""
    backend = backends.get(state.backend)

    def underlay() -> None:
        netns.run_parallel(
            [
                lambda: netns.run_batch(
                    batches.underlay(state.underlay_netns, state.nodes, state.underlay_mtu)
                ),
                lambda: netns.set_sysctls(state.underlay_netns, {}, _UNDERLAY_SYSCTLS),
            ]
        )

    def peers(node: NodeState) -> list[NodeState]:
        return [other for other in state.nodes if other is not node]

    def nodes() -> None:
        netns.run_batches(
            batches.node(node, peers(node), state.overlay_mtu, state.backend)
            for node in state.nodes
        )

    def finish_nodes_and_pods() -> None:
        jobs: list[Action] = []
        for node in state.nodes:
            fdb = batches.node_fdb(node, peers(node), state.backend)
            if fdb is not None and len(state.nodes) > 1:
                jobs.append(lambda b=fdb: netns.run_batch(b))
            jobs.append(lambda n=node: netns.set_sysctls(n.netns, backend.node_sysctls(n), {}))
            jobs.append(lambda n=node: bridge.pin_bridge_mac(n.netns))
            jobs += [
                lambda b=batch: netns.run_batch(b) for batch in batches.pods(node, state.backend)
            ]
        netns.run_parallel(jobs)

    def kube() -> None:
        facts = kube_objects.HostFacts(
            created=state.created,
            kernel=os.uname().release,
            architecture=_ARCHITECTURES.get(platform.machine(), platform.machine()),
        )
        kube_objects.write(Path(state.kube_dir), kube_objects.build(state, facts, rng))
        nodefiles.write(state, {node.name: backend.node_files(state, node) for node in state.nodes})

    return [
        ("create namespaces", lambda: netns.create(state.netns)),
        ("build underlay switch", underlay),
        (backend.build_step, nodes),
        (backend.finish_step, finish_nodes_and_pods),
        ("write Kubernetes objects", kube),
    ]


def _cleanup_after_failure(state: LabState) -> str:
    try:
        removed = _remove(state.name, state, Path(state.state_dir))
    except Exception as exc:  # noqa: BLE001 - the original failure matters more; say both
        return f"cleanup also failed ({exc}); run `needle lab down --name {state.name}`"
    return f"removed the {plural(len(removed.netns), 'namespace')} it had made"


def _remove(name: str, state: LabState | None, directory: Path) -> Teardown:
    teardown = Teardown(name=name)
    records: dict[int, ProcessRecord] = {}
    for record in (state.processes if state else []) + keepalive.marked(name):
        records.setdefault(record.pid, record)
    teardown.pids = keepalive.stop(list(records.values()))

    # Whatever the state file lists, every lab namespace matches the prefix pattern, and
    # nothing else does: this also finds the namespaces of an `up` that died before saving.
    pattern = topology.netns_pattern(name)
    teardown.netns = sorted(ns for ns in netns.existing() if pattern.match(ns))
    why = ""
    try:
        netns.delete(teardown.netns)
    except netns.CommandError as exc:
        why = f" ({exc})"  # e.g. one vanished meanwhile; only what is still there matters
    left = sorted(ns for ns in netns.existing() if pattern.match(ns))
    if left:
        raise LabError(
            f"could not delete namespaces {', '.join(left)}{why}; "
            f"check `ip netns list` and try `needle lab down --name {name}` again"
        )
    if directory.parent == STATE_ROOT and directory.name == name and directory.exists():
        shutil.rmtree(directory)
        teardown.state_dir_removed = True
    return teardown
