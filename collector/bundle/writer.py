"""Assembles a bundle on disk and packs it into one deterministic tarball.

Parts are staged in a private directory beside the output (so a 1,000-node bundle
never sits in memory, and the final rename is atomic), then packed with
manifest.json first so a reader can stop early if the format is not its own.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from needle.collector.bundle.manifest import Manifest, NodeRecord, ResourceRecord, utc_timestamp
from needle.collector.bundle.paths import checked_relpath, node_dir
from needle.collector.errors import CollectorError

COMPRESSIONS = {".tar.gz": "gz", ".tgz": "gz", ".tar.zst": "zst", ".tar.zstd": "zst"}
MANIFEST = "manifest.json"


def compression_for(output: Path) -> str:
    name = output.name.lower()
    for suffix, kind in COMPRESSIONS.items():
        if name.endswith(suffix):
            return kind
    raise CollectorError(f"output {output} must end in .tar.gz or .tar.zst (e.g. -o bundle.tar.gz)")


class BundleWriter:
    """Stage bundle files, then pack them into `output` on `close()`.

    Use as a context manager: whatever happens inside the block, the bundle is
    written with what was collected (status `interrupted` on Ctrl-C, `partial`
    with the error recorded on any other exception), and the exception goes on.
    """

    def __init__(
        self,
        output: Path,
        manifest: Manifest,
        redactor: Callable[[Path, Path], None] | None = None,
    ) -> None:
        self.output = output
        # `collect --redact`: the staged bundle (a private directory) is redacted into
        # the output instead of packed, so no unredacted bundle is ever written there
        self.redactor = redactor
        self.compression = compression_for(output)
        parent = output.parent if str(output.parent) else Path()
        if not parent.is_dir():
            raise CollectorError(f"cannot write {output}: directory {parent} does not exist")
        if not os.access(parent, os.W_OK):
            raise CollectorError(f"cannot write {output}: directory {parent} is not writable")
        self.manifest = manifest
        if self.manifest.collector_host is None:
            self.manifest.collector_host = socket.gethostname()
        self._staging = Path(tempfile.mkdtemp(prefix=".needle-staging-", dir=parent))
        # Raw node streams land here before they are unpacked; never packed.
        self.scratch = Path(tempfile.mkdtemp(prefix=".needle-scratch-", dir=parent))
        self._closed = False

    # -- staging ---------------------------------------------------------------

    def path_of(self, relpath: str) -> Path:
        """Where `relpath` is staged; its parent directory exists afterwards."""
        target = self._staging / checked_relpath(relpath)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def write_bytes(self, relpath: str, data: bytes) -> None:
        self.path_of(relpath).write_bytes(data)

    def write_json(self, relpath: str, document: object) -> None:
        self.write_bytes(relpath, json.dumps(document, indent=1, sort_keys=False).encode())

    @contextmanager
    def open(self, relpath: str) -> Iterator[BinaryIO]:
        """Stream a large part (a node's output, a List of pods) to disk as it arrives."""
        with self.path_of(relpath).open("wb") as stream:
            yield stream

    def exists(self, relpath: str) -> bool:
        return (self._staging / checked_relpath(relpath)).exists()

    def add_node(self, name: str, transport: str, target: str | None = None) -> NodeRecord:
        if any(node.name == name for node in self.manifest.nodes):
            raise CollectorError(f"node {name!r} is collected twice; give each a distinct name")
        node = NodeRecord(
            name=name,
            transport=transport,
            dir=node_dir(name),
            target=target,  # type: ignore[arg-type]
            started=utc_timestamp(),
        )
        self.manifest.nodes.append(node)
        return node

    def add_resource(self, record: ResourceRecord) -> None:
        if record.file is not None:
            checked_relpath(record.file)
        self.manifest.resources.append(record)

    # -- packing ----------------------------------------------------------------

    def close(self, interrupted: bool = False) -> Path:
        """Write manifest.json, pack everything into the output, remove the staging dir."""
        if self._closed:
            return self.output
        self._closed = True
        try:
            self.manifest.finished = utc_timestamp()
            self.manifest.settle_status(interrupted)
            with (self._staging / MANIFEST).open("w", encoding="utf-8") as out:
                self.manifest.write_json(out)
            if self.redactor is not None:
                self.redactor(self._staging, self.output)
            else:
                partial = self.output.with_name(self.output.name + ".partial")
                with partial.open("wb") as raw:
                    self._pack(raw)
                partial.replace(self.output)
        finally:
            shutil.rmtree(self._staging, ignore_errors=True)
            shutil.rmtree(self.scratch, ignore_errors=True)
        return self.output

    def abandon(self) -> None:
        """Drop everything staged without writing a bundle."""
        self._closed = True
        shutil.rmtree(self._staging, ignore_errors=True)
        shutil.rmtree(self.scratch, ignore_errors=True)

    def _members(self) -> list[str]:
        names = []
        for path in self._staging.rglob("*"):
            if path.is_file() and not path.is_symlink():
                names.append(path.relative_to(self._staging).as_posix())
        names.remove(MANIFEST)
        return [MANIFEST, *sorted(names)]

    def _pack(self, raw: BinaryIO) -> None:
        mtime = _epoch(self.manifest.created)
        if self.compression == "zst":
            import zstandard

            compressor = zstandard.ZstdCompressor(level=6)
            with (
                compressor.stream_writer(raw, closefd=False) as compressed,
                tarfile.open(fileobj=compressed, mode="w|", format=tarfile.PAX_FORMAT) as tar,
            ):
                self._add_members(tar, mtime)
        else:
            with tarfile.open(fileobj=raw, mode="w|gz", format=tarfile.PAX_FORMAT) as tar:
                self._add_members(tar, mtime)

    def _add_members(self, tar: tarfile.TarFile, mtime: int) -> None:
        for name in self._members():
            path = self._staging / name
            info = tarfile.TarInfo(name)
            info.size = path.stat().st_size
            info.mtime = mtime
            info.mode = 0o644
            with path.open("rb") as stream:
                tar.addfile(info, stream)

    # -- context manager ----------------------------------------------------------

    def __enter__(self) -> BundleWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
            return
        interrupted = issubclass(exc_type, KeyboardInterrupt)
        if not interrupted:
            # a CollectorError says what went wrong; anything else is a bug, named by its type
            what = str(exc) if isinstance(exc, CollectorError) else f"{exc_type.__name__}: {exc}"
            self.manifest.errors.append(f"collection stopped early: {what}")
        self.close(interrupted=interrupted)


def _epoch(timestamp: str) -> int:
    moment = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return int(moment.timestamp())
