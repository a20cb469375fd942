"""`needle collect`: one bundle from a live cluster (objects through the API, nodes
through debug pods), kubectl dumps, this host, or network namespaces (the lab).

Sources produce Kubernetes objects and node targets; every target has the same shape
(needle.collector.transports.base.Target), so running the nodes knows no transport.
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from threading import Event

from needle.collector.bundle.manifest import CaptureSettings, Manifest, NodeRecord, ResourceRecord
from needle.collector.bundle.writer import BundleWriter
from needle.collector.errors import CollectorError
from needle.collector.kube.dump_dir import as_list, read_dump_dir
from needle.collector.kube.session import ClusterOptions, ClusterSession
from needle.collector.node_part import CaptureLimits, apply_records, read_node_stream
from needle.collector.probe_setup import NodeProbeArgs, ProbeRequest, prepare_probes
from needle.collector.progress import Progress
from needle.collector.script.render import ScriptArgs, render
from needle.collector.spec.loader import Spec, default_spec
from needle.collector.transports.base import Target
from needle.redact.run import RedactError, redact_bundle


@dataclass
class CollectOptions:
    output: Path
    kube_dir: Path | None = None
    targets: list[Target] = field(default_factory=list)
    cluster: ClusterOptions | None = None
    """Collect from a live cluster: its objects, and every selected node through a pod."""
    capture_seconds: int = 3
    max_packets: int = 2000
    snaplen: int = 200
    concurrency: int = 10
    node_deadline_s: float = 120.0
    command: list[str] = field(default_factory=list)
    probes: bool = False
    """Probe peers in the window (the CLI turns this on unless --no-probe)."""
    probe_peers: int | None = None
    """Peers each node probes; None: the spec's default."""
    probe_window_s: int = 3
    """The window's length when there are no captures."""
    redact: bool = False
    """Redact the bundle before it is written (needle.redact)."""
    redact_secret: bytes | None = None
    """The redaction's key (--key-file); None: a random one, forgotten."""


def tool_version() -> str:
    try:
        return metadata.version("kube-needle")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def _collect_kube_dir(writer: BundleWriter, directory: Path) -> None:
    writer.manifest.cluster_source = "kube-dir"
    writer.manifest.cluster_origin = str(directory.resolve())
    writer.manifest.sources.append("kube-dir")
    contents = read_dump_dir(directory)
    writer.manifest.errors.extend(contents.problems)
    for resource, items in contents.items.items():
        if not items:
            writer.add_resource(
                ResourceRecord(
                    resource, "not-found", None, 0, f"no {resource} objects in {directory}"
                )
            )
            continue
        relpath = f"cluster/{resource}.json"
        writer.write_json(relpath, as_list(items))
        writer.add_resource(ResourceRecord(resource, "ok", relpath, len(items)))


def _check_unique(targets: list[Target]) -> None:
    names = [target.node for target in targets]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise CollectorError(f"node {duplicates[0]} is named twice; give each node its own name")


def _collect_node(
    writer: BundleWriter,
    node: NodeRecord,
    target: Target,
    script: str,
    args: ScriptArgs,
    spec: Spec,
    limits: CaptureLimits | None,
    deadline_s: float,
    stop: Event,
    progress: Progress,
) -> NodeRecord:
    stream_file = writer.scratch / f"{node.name}.tar"

    def report(state: str) -> None:
        progress.state(node.name, target.description, state)

    result = target.run(script, args.argv(), stream_file, deadline_s, stop, report)
    node.duration_s = result.duration_s
    if result.error is not None:
        stream_file.unlink(missing_ok=True)
        node.fail(result.error)
        return node
    stream = read_node_stream(stream_file, writer, node)
    stream_file.unlink(missing_ok=True)
    apply_records(stream, writer, node, spec, limits)
    if result.stderr.strip():
        writer.write_bytes(f"{node.dir}/script.stderr", result.stderr)
    if result.warning is not None:
        node.degrade(result.warning)
    if result.timed_out:
        node.degrade(
            f"collection passed its {deadline_s:g} s deadline and was stopped; "
            "the bundle holds what was sent until then"
        )
    elif result.interrupted:
        node.degrade("collection was interrupted; the bundle holds what was sent until then")
    elif result.exit_code != 0 and result.warning is None:
        last = result.stderr.decode(errors="replace").strip().splitlines()
        node.degrade(
            f"the node script exited {result.exit_code}" + (f": {last[-1]}" if last else "")
        )
    if not stream.sizes:
        node.fail("the node sent no data")
    return node


def _manifest(options: CollectOptions, limits: CaptureLimits | None) -> Manifest:
    return Manifest(
        tool_version=tool_version(),
        command=options.command,
        collector_host=socket.gethostname(),
        capture=CaptureSettings(
            enabled=limits is not None,
            seconds=options.capture_seconds if limits else 0,
            max_packets=options.max_packets if limits else 0,
            max_bytes=limits.max_bytes if limits else 0,
            snaplen=options.snaplen if limits else 0,
        ),
    )


def collect(options: CollectOptions, progress: Progress) -> BundleWriter:
    """Collect everything `options` asks for into one bundle; return the closed writer.

    A live cluster is connected to before anything is written: no credentials or no
    API means a one-line error and no bundle. Every debug pod the run made is deleted
    before the bundle is packed, also on Ctrl-C and on any crash.
    """
    if options.kube_dir is None and not options.targets and options.cluster is None:
        raise CollectorError(
            "nothing to collect: give --kubeconfig, --kube-dir, --local or --netns"
        )
    _check_unique(options.targets)
    if options.kube_dir is not None and not options.kube_dir.is_dir():
        raise CollectorError(f"--kube-dir {options.kube_dir} is not a directory")
    limits = None
    if options.capture_seconds > 0:
        limits = CaptureLimits(options.capture_seconds, options.max_packets, options.snaplen)
    session = None
    if options.cluster is not None:
        session = ClusterSession.open(options.cluster, progress, options.concurrency + 4)
    try:
        writer = BundleWriter(options.output, _manifest(options, limits), _redactor(options))
        with writer:
            try:
                if options.kube_dir is not None:
                    _collect_kube_dir(writer, options.kube_dir)
                targets: list[Target] = list(options.targets)
                if session is not None:
                    objects = session.collect_objects(writer)
                    targets += session.targets(writer, objects, options.node_deadline_s)
                    _check_unique(targets)
                _run_nodes(writer, targets, options, limits, progress)
            finally:
                if session is not None:
                    session.close(writer)
    finally:
        if session is not None:
            session.close(None)
    return writer


def _redactor(options: CollectOptions) -> Callable[[Path, Path], None] | None:
    if not options.redact:
        return None

    def redact(staged: Path, output: Path) -> None:
        try:
            redact_bundle(staged, output, secret=options.redact_secret)
        except RedactError as exc:
            raise CollectorError(f"redaction failed, nothing was written: {exc}") from exc

    return redact


def _script_args(
    options: CollectOptions, target: Target, probes: NodeProbeArgs | None
) -> ScriptArgs:
    args = ScriptArgs(
        options.capture_seconds, options.max_packets, options.snaplen, target.node_netns
    )
    if probes is None:
        return args
    return dataclasses.replace(
        args,
        window_seconds=probes.window_s,
        probe_targets=probes.targets,
        probe_mtu=probes.mtu,
        probe_mtu_source=probes.mtu_source,
    )


def _run_nodes(
    writer: BundleWriter,
    targets: list[Target],
    options: CollectOptions,
    limits: CaptureLimits | None,
    progress: Progress,
) -> None:
    """Every target at once, at most `concurrency` at a time; one failing stops no other."""
    spec = default_spec()
    manifest = writer.manifest
    for transport in dict.fromkeys(target.transport for target in targets):
        manifest.sources.append(transport)
    script = render(spec)
    records = {t.node: writer.add_node(t.node, t.transport, target=t.target) for t in targets}
    window_s = options.capture_seconds or options.probe_window_s
    request = ProbeRequest(options.probes, options.probe_peers, window_s)
    manifest.probes, probe_args, problems = prepare_probes(
        request, spec.probes, writer.path_of("cluster/nodes.json").parent, list(records.values())
    )
    manifest.errors.extend(problems)
    for target in targets:
        progress.queued(target.node, target.description)
    stop = Event()
    pool = ThreadPoolExecutor(
        max_workers=max(1, options.concurrency), thread_name_prefix="needle-node"
    )
    pending: dict[Future[NodeRecord], Target] = {}
    try:
        for target in targets:
            args = _script_args(options, target, probe_args.get(target.node))

            def job(target: Target = target, args: ScriptArgs = args) -> NodeRecord:
                progress.running(target.node, target.description)
                return _collect_node(
                    writer,
                    records[target.node],
                    target,
                    script,
                    args,
                    spec,
                    limits,
                    options.node_deadline_s,
                    stop,
                    progress,
                )

            pending[pool.submit(job)] = target
        # Waiting in short slices keeps the main thread responsive to Ctrl-C.
        while pending:
            done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in done:
                target = pending.pop(future)
                record = records[target.node]
                error = future.exception()
                if error is not None:
                    record.fail(f"collection crashed: {type(error).__name__}: {error}")
                progress.finished(record, target.description)
    except BaseException:
        # Ctrl-C, or a crash here: every node is asked to send what it has (and its
        # pod is deleted) before the exception goes on.
        stop.set()
        progress.note("stopping: asking every node to send what it has, then writing the bundle")
        for future, target in pending.items():
            record = records[target.node]
            if future.cancel():
                record.fail("not collected: interrupted before it started")
                continue
            try:
                future.result()
            except Exception as exc:  # noqa: BLE001 - recorded, the others go on
                record.fail(f"collection crashed: {type(exc).__name__}: {exc}")
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
