"""The lab's record of itself: dataclasses, their JSON form, the state directory and its lock.

The state file is the single source of truth for `down` and for other code (collector
tests) that needs to know which namespace is which node or pod. It describes the data plane
as built; the Kubernetes objects in the kube dir describe the API's view, and API-only
faults (podcidr-mismatch, duplicate-public-ip) deliberately make the two disagree.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from needle.lab.errors import LabError

STATE_FORMAT = "needle.lab-state/v1"
STATE_ROOT = Path("/run/needle-lab")
STATE_FILE = "state.json"
LOCK_FILE = "lock"
KUBE_DIR = "kube"

STATUS_BUILDING = "building"
STATUS_UP = "up"


@dataclass
class PodState:
    """One lab pod: a network namespace whose eth0 is a veth whose other end is on its node."""

    namespace: str
    """Kubernetes namespace of the pod object (lab pods live in "default")."""
    name: str
    """Kubernetes pod name, e.g. "web-6d4cf56db6-x2k9p"."""
    netns: str
    """Named network namespace (`ip netns`), e.g. "needle-lab-n1-p1"."""
    ip: str
    """Pod IP on eth0, e.g. "10.244.1.2"."""
    host_veth: str
    """Node-side veth peer, named as the backend's CNI plugin names it (the bridge plugin:
    "veth" + 8 hex digits; Calico: its own prefix + 11)."""

    @property
    def ref(self) -> str:
        """ "namespace/name", as kubectl and needle's findings name a pod."""
        return f"{self.namespace}/{self.name}"


@dataclass
class NodeState:
    """One lab node: a network namespace playing the node's host network namespace."""

    name: str
    """Kubernetes node name, e.g. "lab-node-1"."""
    netns: str
    """Named network namespace, e.g. "needle-lab-n1"."""
    underlay_ip: str
    """Address of ens3 on the underlay (the node's InternalIP and flannel public-ip)."""
    pod_cidr: str
    """Pod CIDR the data plane uses (pod addresses, peers' routes), e.g. "10.244.1.0/24"."""
    vtep_mac: str
    """MAC address of the node's VXLAN device (the VtepMAC flannel publishes); "" on a
    backend without one."""
    underlay_port: str
    """Name of the node's port on the underlay switch, inside the underlay namespace."""
    pods: list[PodState] = field(default_factory=list)


@dataclass
class FaultRecord:
    """What one injected fault changed.

    The subject keys (node, peer_node, netns, pod, interface, cidr) are the ones needle's
    findings use (DESIGN.md section 5), so a test can compare a finding with the fault.
    """

    fault: str
    """Catalogue name, e.g. "route-missing"."""
    message: str
    """One sentence saying exactly what changed."""
    node: str | None = None
    peer_node: str | None = None
    netns: str | None = None
    pod: str | None = None
    interface: str | None = None
    cidr: str | None = None
    before: str | None = None
    after: str | None = None


@dataclass
class ProcessRecord:
    """A process the lab started and `down` must stop (identified by pid and start time)."""

    pid: int
    start_time: int
    """Field 22 of /proc/PID/stat, so a reused pid is never mistaken for ours."""
    purpose: str


@dataclass
class LabState:
    """Everything known about one lab; `to_dict()` is what `needle lab status --format json`
    prints and what state.json holds."""

    name: str
    state_dir: str
    kube_dir: str
    underlay_netns: str
    status: str
    """"building" while `up` runs (or after it died), "up" once complete."""
    underlay_mtu: int
    overlay_mtu: int
    created: str
    nodes: list[NodeState] = field(default_factory=list)
    netns: list[str] = field(default_factory=list)
    """Every namespace the lab made or will make; `down` removes these."""
    faults: list[FaultRecord] = field(default_factory=list)
    processes: list[ProcessRecord] = field(default_factory=list)
    backend: str = "vxlan"
    """The data plane (`needle lab up --backend`): a name from needle.lab.backends."""

    def node(self, name: str) -> NodeState:
        """The node called `name` (a Kubernetes node name such as "lab-node-2")."""
        for node in self.nodes:
            if node.name == name:
                return node
        known = ", ".join(node.name for node in self.nodes)
        raise LabError(f"lab {self.name!r} has no node {name!r} (nodes: {known})")

    def pods(self) -> list[PodState]:
        """All pods, node by node."""
        return [pod for node in self.nodes for pod in node.pods]

    def node_of(self, pod: PodState) -> NodeState:
        """The node a pod runs on."""
        for node in self.nodes:
            if pod in node.pods:
                return node
        raise LabError(f"pod {pod.ref} is on no node of lab {self.name!r}")

    def netns_args(self) -> list[str]:
        """`NS=NODENAME` pairs for `needle collect --netns` (one per node)."""
        return [f"{node.netns}={node.name}" for node in self.nodes]

    def to_dict(self) -> dict[str, Any]:
        return {"format": STATE_FORMAT, **asdict(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabState:
        if data.get("format") != STATE_FORMAT:
            raise ValueError(f"not a {STATE_FORMAT} document")
        fields = {key: value for key, value in data.items() if key != "format"}
        fields["nodes"] = [
            NodeState(
                **{key: value for key, value in node.items() if key != "pods"},
                pods=[PodState(**pod) for pod in node.get("pods", [])],
            )
            for node in data.get("nodes", [])
        ]
        fields["faults"] = [FaultRecord(**fault) for fault in data.get("faults", [])]
        fields["processes"] = [ProcessRecord(**proc) for proc in data.get("processes", [])]
        return cls(**fields)


def state_dir(name: str, root: Path = STATE_ROOT) -> Path:
    """Directory holding one lab's state file, kube dir and lock."""
    return root / name


def ensure_state_dir(name: str, root: Path = STATE_ROOT) -> Path:
    """Create root and the lab's directory, both mode 0700 whatever the umask says."""
    directory = state_dir(name, root)
    for path in (root, directory):
        path.mkdir(mode=0o700, exist_ok=True)
        path.chmod(0o700)
    return directory


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so readers never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def save(state: LabState) -> None:
    write_atomic(Path(state.state_dir) / STATE_FILE, state.to_json())


def load(name: str, root: Path = STATE_ROOT) -> LabState | None:
    """The saved state of lab `name`, or None when it has none."""
    path = state_dir(name, root) / STATE_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        return LabState.from_dict(json.loads(text))
    except (ValueError, TypeError, KeyError) as exc:
        raise LabError(
            f"state file {path} is unreadable ({exc}); "
            f"run `needle lab down --name {name}` to remove the lab by its namespace prefix"
        ) from exc


@contextlib.contextmanager
def locked(name: str, root: Path = STATE_ROOT, *, create: bool = True) -> Iterator[Path]:
    """Hold the lab's lock (fcntl.flock) for one changing command; yields the state dir.

    Never waits: a second command on the same lab is told who holds it. `down` unlinks the
    lock file while holding it, so after locking we check the file is still the one on disk
    and start over if it is not. With create=False a lab without a state dir is "not up".
    """
    for _ in range(20):
        if not create and not state_dir(name, root).is_dir():
            raise LabError(f"lab {name!r} is not up; start it with `needle lab up --name {name}`")
        directory = ensure_state_dir(name, root)
        path = directory / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise LabError(
                f"lab {name!r} is busy: another needle lab command (pid {holder}) is changing "
                "it; wait for it to finish and try again"
            ) from None
        try:
            current = path.stat().st_ino
        except FileNotFoundError:
            current = -1
        if current != os.fstat(fd).st_ino:
            os.close(fd)
            continue
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            yield directory
        finally:
            os.close(fd)
        return
    raise LabError(f"could not lock lab {name!r}: its lock file keeps disappearing")
