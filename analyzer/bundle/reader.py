"""Opens a bundle safely: a .tar.gz, a .tar.zst, a plain .tar, or an unpacked directory.

Archives are unpacked member by member into a private temporary directory, and
only after each member passed every check: a hostile bundle (path traversal,
links, devices, decompression bombs) is refused with a one-line BundleError and
nothing is ever written outside that directory.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import zstandard

from analyzer.bundle.manifest import parse_manifest
from analyzer.errors import BundleError
from analyzer.gcpause import paused_gc
from analyzer.heap import give_back_free_memory

MANIFEST = "manifest.json"
MiB = 1024 * 1024
GiB = 1024 * MiB
_COPY_CHUNK = 1 * MiB


@dataclass(frozen=True)
class ReadLimits:
    """Caps that keep a hostile or broken bundle from exhausting disk or memory."""

    max_member_bytes: int = 1 * GiB
    max_total_bytes: int = 8 * GiB
    max_members: int = 2_000_000


class Bundle:
    """A readable bundle. Paths are bundle-relative, '/'-separated (docs/bundle-format.md).

    Every regular file is indexed once when the bundle opens (symlinks in a directory
    bundle are left out, so nothing is ever followed out of it); reads are then a
    dictionary hit, not a path resolution.
    """

    def __init__(
        self,
        origin: str,
        root: Path,
        manifest: dict[str, Any],
        limits: ReadLimits,
        cleanup: Path | None,
        files: set[str],
    ) -> None:
        self.origin = origin
        self.root = root
        self.manifest = manifest
        self.limits = limits
        self._cleanup = cleanup
        self._files = files
        self._root = str(root)
        self._closed = False
        self._summary: dict[str, Any] | None = None

    def exists(self, relpath: str) -> bool:
        return relpath in self._files

    def read_bytes(self, relpath: str) -> bytes | None:
        """The file's bytes, or None when the bundle does not hold it (absent data)."""
        if self._closed:
            # a read after close would find nothing, and absent data would pass for "none"
            raise BundleError(f"{self.origin}: read of {relpath} after the bundle was closed")
        if relpath not in self._files:
            return None
        cap = self.limits.max_member_bytes
        # os-level calls on a str path: a 1,000-node bundle is read 10^5-10^6 times
        try:
            descriptor = os.open(f"{self._root}/{relpath}", os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return None
        try:
            chunks = []
            size = 0
            while chunk := os.read(descriptor, min(cap + 1 - size, 1 << 20)):
                chunks.append(chunk)
                size += len(chunk)
                if size > cap:
                    raise BundleError(f"{self.origin}: {relpath} is larger than {cap} bytes")
        finally:
            os.close(descriptor)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def summary(self) -> dict[str, Any]:
        """What a report says about the bundle: where, when, how many nodes, how complete."""
        if self._summary is not None:
            return self._summary
        return {
            "path": self.origin,
            "created": self.manifest.get("created"),
            "nodes": len(self.manifest.get("nodes", [])),
            "status": self.manifest.get("status"),
        }

    def drop_manifest(self) -> None:
        """Free the parsed manifest once the model is built (files stay readable)."""
        self._summary = self.summary()
        self.manifest = {}
        give_back_free_memory()

    def read_text(self, relpath: str) -> str | None:
        data = self.read_bytes(relpath)
        return None if data is None else data.decode("utf-8", errors="replace")

    def files(self, prefix: str = "") -> list[str]:
        """Every regular file under `prefix`, sorted."""
        wanted = prefix.rstrip("/") + "/" if prefix else ""
        return sorted(name for name in self._files if name.startswith(wanted))

    def close(self) -> None:
        self._closed = True
        if self._cleanup is not None:
            shutil.rmtree(self._cleanup, ignore_errors=True)
            self._cleanup = None

    def __enter__(self) -> Bundle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _index_directory(root: Path) -> set[str]:
    """Regular files under `root`; symlinks are neither followed nor listed. (The file
    type comes from the directory entry: no stat per file, and a bundle has 10^5.)"""
    files: set[str] = set()
    pending = [(str(root), "")]
    while pending:
        directory, prefix = pending.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                name = f"{prefix}{entry.name}"
                if entry.is_dir(follow_symlinks=False):
                    pending.append((entry.path, f"{name}/"))
                elif entry.is_file(follow_symlinks=False):
                    files.add(name)
    return files


def open_bundle(path: str | os.PathLike[str], limits: ReadLimits | None = None) -> Bundle:
    """Open the bundle at `path`; raise BundleError with a one-line reason if it is unusable."""
    limits = limits or ReadLimits()
    source = Path(path)
    origin = str(source)
    if not source.exists():
        raise BundleError(f"{origin}: no such file or directory")
    if source.is_dir():
        root = _bundle_root(source, origin)
        return Bundle(
            origin,
            root,
            _read_manifest(root, origin),
            limits,
            cleanup=None,
            files=_index_directory(root),
        )
    workdir = Path(tempfile.mkdtemp(prefix="needle-bundle-"))
    try:
        _unpack(source, workdir, limits, origin)
        root = _bundle_root(workdir, origin)
        return Bundle(
            origin,
            root,
            _read_manifest(root, origin),
            limits,
            cleanup=workdir,
            files=_index_directory(root),
        )
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def _read_manifest(root: Path, origin: str) -> dict[str, Any]:
    path = root / MANIFEST
    if path.is_symlink() or not path.is_file():
        raise BundleError(f"{origin}: no manifest.json; this is not a needle bundle")
    with paused_gc():  # a 1,000-node manifest is ~10^7 JSON objects
        return parse_manifest(path.read_bytes(), origin)


def _bundle_root(directory: Path, origin: str) -> Path:
    """The directory holding manifest.json: the top, or a single folder someone re-tarred."""
    if (directory / MANIFEST).exists():
        return directory
    entries = list(directory.iterdir())
    only = entries[0] if len(entries) == 1 else None
    if only is not None and only.is_dir() and not only.is_symlink() and (only / MANIFEST).exists():
        return only
    raise BundleError(f"{origin}: no manifest.json; this is not a needle bundle")


def _is_safe_relpath(name: str) -> bool:
    parts = name.split("/")
    return (
        bool(name)
        and not name.startswith("/")
        and "\\" not in name
        and "\x00" not in name
        and all(part not in {"", ".", ".."} for part in parts)
    )


def _member_name(raw: str) -> str:
    # `tar -C dir -czf b.tgz .` writes "./x"; accept that one harmless prefix.
    name = raw[2:] if raw.startswith("./") else raw
    return name.rstrip("/") if name not in {"", "."} else ""


def _open_stream(source: Path, raw: IO[bytes], origin: str) -> tarfile.TarFile:
    magic = raw.read(4)
    raw.seek(0)
    if magic[:2] == b"\x1f\x8b":
        return tarfile.open(fileobj=raw, mode="r|gz")
    if magic == b"\x28\xb5\x2f\xfd":
        return tarfile.open(fileobj=zstandard.ZstdDecompressor().stream_reader(raw), mode="r|")
    raw.seek(257)
    is_tar = raw.read(5) == b"ustar"
    raw.seek(0)
    if is_tar:
        return tarfile.open(fileobj=raw, mode="r|")
    raise BundleError(
        f"{origin}: not a bundle (expected a .tar.gz, .tar.zst or a directory, "
        f"found a file starting with {magic!r})"
    )


def _unpack(source: Path, workdir: Path, limits: ReadLimits, origin: str) -> None:
    try:
        with source.open("rb") as raw, _open_stream(source, raw, origin) as tar:
            _unpack_members(tar, workdir, limits, origin)
    except BundleError:
        raise
    except (
        tarfile.TarError,
        EOFError,
        zlib.error,
        zstandard.ZstdError,
        OSError,
        ValueError,
    ) as exc:
        raise BundleError(f"{origin}: bundle is truncated or corrupt ({_reason(exc)})") from None


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0]


def _unpack_members(tar: tarfile.TarFile, workdir: Path, limits: ReadLimits, origin: str) -> None:
    seen: set[str] = set()
    total = 0
    for count, member in enumerate(tar, start=1):
        if count > limits.max_members:
            raise BundleError(f"{origin}: more than {limits.max_members} members; refusing it")
        name = _member_name(member.name)
        if name == "" and member.isdir():
            continue
        if not _is_safe_relpath(name):
            raise BundleError(f"{origin}: unsafe member path {member.name!r}; refusing the bundle")
        if member.isdir():
            (workdir / name).mkdir(parents=True, exist_ok=True)
            continue
        if not member.isreg() or member.issparse():
            raise BundleError(
                f"{origin}: member {member.name!r} is a {_kind(member)}; "
                "bundles hold only regular files and directories"
            )
        if name in seen:
            raise BundleError(f"{origin}: member {member.name!r} appears twice; refusing it")
        seen.add(name)
        if member.size > limits.max_member_bytes:
            raise BundleError(
                f"{origin}: member {member.name!r} declares {member.size} bytes, over the "
                f"{limits.max_member_bytes}-byte cap for one file (a decompression bomb?)"
            )
        total += member.size
        if total > limits.max_total_bytes:
            raise BundleError(
                f"{origin}: bundle unpacks to more than {limits.max_total_bytes} bytes "
                "(a decompression bomb?)"
            )
        target = workdir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        stream = tar.extractfile(member)
        if stream is None:  # pragma: no cover - isreg() members always have data
            continue
        with target.open("xb") as out:
            shutil.copyfileobj(stream, out, _COPY_CHUNK)


def _kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return "symbolic link"
    if member.islnk():
        return "hard link"
    if member.ischr() or member.isblk():
        return "device"
    if member.isfifo():
        return "FIFO"
    if member.issparse():
        return "sparse file"
    return "special file"
