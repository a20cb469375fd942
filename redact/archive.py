"""Reading a bundle's members one at a time, and writing the redacted bundle so that
nothing is half-written.

Input: a .tar.gz, .tar.zst or .tar (recognised by content) or an unpacked directory,
read as a stream: a 1,000-node bundle never sits in memory. A member that is not a
regular file, or whose name could climb out of the bundle, is refused: the redacted
bundle would carry it on.

Output: members are streamed into a body file beside OUT; the manifest, which must come
first and is only final once every member is written, goes in front at the end. For
.tar.gz the two are separate gzip members of one file (gzip readers read on across
members), so the body is compressed once and never copied uncompressed; .tar.zst keeps
the body as a plain tar until the one zstd frame is written. OUT appears by one rename.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import zstandard

MANIFEST = "manifest.json"
MiB = 1024 * 1024
MAX_MEMBER_BYTES = 256 * MiB
MAX_TOTAL_BYTES = 8 * 1024 * MiB
_GZIP_LEVEL = 6  # tarfile's default 9 takes twice as long for 3% less


class ArchiveError(Exception):
    """A bundle that cannot be read or written, in one sentence."""


@dataclass(frozen=True)
class Member:
    name: str
    data: bytes


def compression_for(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".tar.gz", ".tgz")):
        return "gz"
    if name.endswith((".tar.zst", ".tar.zstd")):
        return "zst"
    raise ArchiveError(f"output {path} must end in .tar.gz or .tar.zst (e.g. -o redacted.tar.gz)")


def read_members(path: Path) -> Iterator[Member]:
    """Every regular file of the bundle at `path`, in the order it is stored."""
    if path.is_dir():
        yield from _directory(path)
        return
    try:
        raw = path.open("rb")
    except OSError as exc:
        raise ArchiveError(f"cannot read {path}: {exc.strerror or exc}") from exc
    with raw:
        head = raw.read(512)
        raw.seek(0)
        if head[:2] == b"\x1f\x8b":
            stream: BinaryIO = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
        elif head[:4] == b"\x28\xb5\x2f\xfd":
            stream = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)  # type: ignore[assignment]
        elif head[257:262] == b"ustar":
            stream = raw
        else:
            raise ArchiveError(
                f"{path} is not a bundle: neither a directory nor a .tar.gz, .tar.zst or .tar"
            )
        try:
            yield from _tar(stream, path)
        except (tarfile.TarError, EOFError, OSError, zstandard.ZstdError, ValueError) as exc:
            raise ArchiveError(f"{path} is truncated or corrupt: {exc}") from exc


def _tar(stream: BinaryIO, path: Path) -> Iterator[Member]:
    total = 0
    prefix: str | None = None
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        while True:
            info = tar.next()
            if info is None:
                break
            tar.members.clear()  # a stream keeps every header it read: 558,000 of them
            name = info.name[2:] if info.name.startswith("./") else info.name
            if info.isdir():
                continue
            if not info.isreg():
                raise ArchiveError(f"{path} holds {_quoted(name)}, which is not a regular file")
            if prefix is None:
                # A bundle re-packed inside one folder (tar czf b.tgz bundle/) is read too.
                prefix = name[: -len(MANIFEST)] if name.endswith("/" + MANIFEST) else ""
            if prefix and name.startswith(prefix):
                name = name[len(prefix) :]
            _check_name(name, path)
            if info.size > MAX_MEMBER_BYTES:
                raise ArchiveError(f"{path}: {_quoted(name)} is over {MAX_MEMBER_BYTES // MiB} MiB")
            total += info.size
            if total > MAX_TOTAL_BYTES:
                raise ArchiveError(f"{path} is over {MAX_TOTAL_BYTES // MiB} MiB unpacked")
            member = tar.extractfile(info)
            data = member.read() if member is not None else b""
            if len(data) != info.size:
                raise ArchiveError(f"{path} is truncated in {_quoted(name)}")
            yield Member(name, data)


def _directory(root: Path) -> Iterator[Member]:
    def walk(directory: Path, relative: str) -> Iterator[Member]:
        with os.scandir(directory) as entries:
            listing = sorted(entries, key=lambda entry: entry.name)
        for entry in listing:
            name = f"{relative}{entry.name}"
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode):
                yield from walk(Path(entry.path), name + "/")
            elif stat.S_ISREG(info.st_mode):
                _check_name(name, root)
                if info.st_size > MAX_MEMBER_BYTES:
                    raise ArchiveError(
                        f"{root}: {_quoted(name)} is over {MAX_MEMBER_BYTES // MiB} MiB"
                    )
                fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW)
                with os.fdopen(fd, "rb") as handle:
                    yield Member(name, handle.read())
            else:
                raise ArchiveError(f"{root} holds {_quoted(name)}, which is not a regular file")

    try:
        yield from walk(root, "")
    except OSError as exc:
        raise ArchiveError(f"cannot read {root}: {exc.strerror or exc}") from exc


def _check_name(name: str, path: Path) -> None:
    parts = name.split("/")
    if (
        not name
        or name.startswith("/")
        or "\\" in name
        or any(part in ("", ".", "..") for part in parts)
        or any(ord(char) < 32 or ord(char) == 127 for char in name)
    ):
        raise ArchiveError(f"{path} holds an unsafe member name {_quoted(name)}")


def _quoted(name: str) -> str:
    """A member name fit for a one-line message: control characters shown escaped."""
    return repr(name[:200])


class BundleOutput:
    """The redacted bundle being written: `add` each member, then `finish` with the
    manifest. Until `finish` returns nothing exists at OUT; `abort` removes every trace."""

    def __init__(self, output: Path, mtime: int) -> None:
        self.output = output
        self.compression = compression_for(output)
        parent = output.parent if str(output.parent) else Path()
        if not parent.is_dir():
            raise ArchiveError(f"cannot write {output}: directory {parent} does not exist")
        self.mtime = mtime
        self._dir = Path(tempfile.mkdtemp(prefix=".needle-redact-", dir=parent))
        self._body_path = self._dir / "body"
        self._body_file = self._body_path.open("wb")
        self._body_stream: BinaryIO = (
            gzip.GzipFile(fileobj=self._body_file, mode="wb", compresslevel=_GZIP_LEVEL, mtime=0)  # type: ignore[assignment]
            if self.compression == "gz"
            else self._body_file
        )
        self._tar = tarfile.open(  # noqa: SIM115 - closed by finish() or abort()
            fileobj=self._body_stream, mode="w|", format=tarfile.PAX_FORMAT
        )
        self.members = 0

    def add(self, name: str, data: bytes) -> None:
        self._tar.addfile(self._info(name, len(data)), io.BytesIO(data))
        self.members += 1

    def _info(self, name: str, size: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.size = size
        info.mtime = self.mtime
        info.mode = 0o644
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    def finish(self, manifest: bytes) -> None:
        self._tar.close()
        if self._body_stream is not self._body_file:
            self._body_stream.close()
        self._body_file.close()
        head = self._info(MANIFEST, len(manifest)).tobuf(tarfile.PAX_FORMAT)
        padding = b"\0" * (-len(manifest) % tarfile.BLOCKSIZE)
        final = self._dir / "bundle"
        with final.open("wb") as out:
            if self.compression == "gz":
                with gzip.GzipFile(
                    fileobj=out, mode="wb", compresslevel=_GZIP_LEVEL, mtime=0
                ) as gz:
                    gz.write(head + manifest + padding)
                with self._body_path.open("rb") as body:
                    shutil.copyfileobj(body, out, 1024 * 1024)
            else:
                compressor = zstandard.ZstdCompressor(level=6)
                with compressor.stream_writer(out, closefd=False) as zst:
                    zst.write(head + manifest + padding)
                    with self._body_path.open("rb") as body:
                        shutil.copyfileobj(body, zst, 1024 * 1024)
        final.chmod(0o644)
        final.replace(self.output)
        shutil.rmtree(self._dir, ignore_errors=True)

    def abort(self) -> None:
        for handle in (self._tar, self._body_stream, self._body_file):
            # cleaning up after a failure that is already being reported
            with contextlib.suppress(Exception):
                handle.close()
        shutil.rmtree(self._dir, ignore_errors=True)
