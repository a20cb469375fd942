"""Reading a bundle's members one at a time, and writing the redacted bundle so that
nothing is half-written.

Input: a .tar.gz, .tar.zst or .tar (recognised by content) or an unpacked directory,
read as a stream: a 1,000-node bundle never sits in memory, and neither does a member
the caller asks for as a stream (its 170 MB manifest). A member that is not a
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
import queue
import re
import shutil
import stat
import tarfile
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

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
    # in place of `data`, for a member asked for as a stream (the ones that grow with the
    # cluster): its bytes, to be read before the next member is asked for
    stream: BinaryIO | None = None

    def save(self, path: Path) -> None:
        """Write the member's data, or what is left of its stream, to the file `path`."""
        with path.open("wb") as sink:
            if self.stream is None:
                sink.write(self.data)
            else:
                shutil.copyfileobj(self.stream, sink, MiB)


def compression_for(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".tar.gz", ".tgz")):
        return "gz"
    if name.endswith((".tar.zst", ".tar.zstd")):
        return "zst"
    raise ArchiveError(f"output {path} must end in .tar.gz or .tar.zst (e.g. -o redacted.tar.gz)")


def read_members(
    path: Path,
    wanted: Callable[[str], bool] | None = None,
    streamed: Callable[[str], bool] | None = None,
) -> Iterator[Member]:
    """Every regular file of the bundle at `path`, in the order it is stored. A member
    whose name `wanted` turns down comes with no data, and its data is not read; one
    whose name `streamed` picks comes as a stream (what of it is not read is skipped)."""
    if path.is_dir():
        yield from _directory(path, wanted, streamed)
        return
    handed = 0
    with _opened(path) as stream, _ReadAhead(stream) as ahead:
        members = _tar_fast(_FastTar(ahead), path, wanted, streamed)
        while True:
            try:
                member = next(members, None)
            except _Unusual:
                break  # read it all again the general way, from the start
            if member is None:
                return
            yield member
            handed += 1
    with _opened(path) as stream:
        try:
            for index, member in enumerate(_tar(stream, path, streamed)):
                if index >= handed:
                    yield (
                        member
                        if wanted is None or wanted(member.name) or member.stream is not None
                        else Member(member.name, b"")
                    )
        except (tarfile.TarError, EOFError, OSError, zstandard.ZstdError, ValueError) as exc:
            raise ArchiveError(f"{path} is truncated or corrupt: {exc}") from exc


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[BinaryIO]:
    """The tar stream inside the file at `path`, decompressed."""
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
        yield stream


_TOP_LEVEL = frozenset({"cluster", "nodes"})  # the folders of a bundle's own layout


class _Limits:
    """The checks every member of a tar passes, in the order they are made."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.total = 0
        self.prefix: str | None = None

    def name(self, name: str, size: int) -> str:
        """The member's name in the bundle, once it is known to be safe and not too big."""
        path = self.path
        if self.prefix is None:
            # A bundle re-packed inside one folder (tar czf b.tgz bundle/) is read too,
            # whichever member comes first.
            top = name.split("/", 1)[0]
            self.prefix = "" if "/" not in name or top in _TOP_LEVEL else f"{top}/"
        if self.prefix and name.startswith(self.prefix):
            name = name[len(self.prefix) :]
        _check_name(name, path)
        if size > MAX_MEMBER_BYTES:
            raise ArchiveError(f"{path}: {_quoted(name)} is over {MAX_MEMBER_BYTES // MiB} MiB")
        self.total += size
        if self.total > MAX_TOTAL_BYTES:
            raise ArchiveError(f"{path} is over {MAX_TOTAL_BYTES // MiB} MiB unpacked")
        return name


def _tar(
    stream: BinaryIO, path: Path, streamed: Callable[[str], bool] | None = None
) -> Iterator[Member]:
    """The general reader (tarfile's): every member, every check, every error as tarfile
    reports it."""
    limits = _Limits(path)
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
            name = limits.name(name, info.size)
            member = tar.extractfile(info)
            if streamed is not None and streamed(name) and member is not None:
                yield Member(name, b"", _Data(member.read, info.size, path, name))
                continue
            data = member.read() if member is not None else b""
            if len(data) != info.size:
                raise ArchiveError(f"{path} is truncated in {_quoted(name)}")
            yield Member(name, data)


def _tar_fast(
    reader: _FastTar,
    path: Path,
    wanted: Callable[[str], bool] | None,
    streamed: Callable[[str], bool] | None,
) -> Iterator[Member]:
    """What `_tar` yields, for the tars the fast reader knows (raises _Unusual at anything
    else, and at any error: `_tar` then says what is wrong)."""
    limits = _Limits(path)
    while True:
        try:
            entry = reader.next()
        except _EndMissing:
            raise ArchiveError(f"{path} is truncated: it ends before its end-of-archive") from None
        if entry is None:
            return
        name, regular, size = entry
        name = name[2:] if name.startswith("./") else name
        if not regular:
            continue
        name = limits.name(name, size)
        if streamed is not None and streamed(name):
            yield Member(name, b"", _Data(reader.read, size, path, name))
        elif wanted is None or wanted(name):
            yield Member(name, reader.read(size))
        else:
            yield Member(name, b"")


class _Data(io.RawIOBase):
    """A member's data as a stream: `read` on the tar's reader, at most `size` bytes. A
    damaged or cut archive is an ArchiveError here, as it is where whole members are read."""

    def __init__(self, read: Callable[[int], bytes], size: int, path: Path, name: str) -> None:
        self._read = read
        self._left = size
        self._path = path
        self._name = name

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = min(len(buffer), self._left)
        if not size:
            return 0
        try:
            data = self._read(size)
        except _Unusual as exc:
            cause = exc.__cause__
            raise ArchiveError(
                f"{self._path} is truncated or corrupt: {cause}"
                if cause is not None
                else f"{self._path} is truncated in {_quoted(self._name)}"
            ) from exc
        except (tarfile.TarError, EOFError, OSError, zstandard.ZstdError, ValueError) as exc:
            raise ArchiveError(f"{self._path} is truncated or corrupt: {exc}") from exc
        if len(data) != size:
            raise ArchiveError(f"{self._path} is truncated in {_quoted(self._name)}")
        buffer[: len(data)] = data
        self._left -= len(data)
        return len(data)


class _ReadAhead:
    """A stream read ahead by a thread of its own, so that decompressing (zlib lets go of
    the GIL) goes on while the caller rewrites what was read. An error of the stream
    comes out where its data would have."""

    def __init__(self, stream: BinaryIO) -> None:
        self._chunks: queue.Queue[bytes | Exception] = queue.Queue(8)
        self._stop = threading.Event()
        self._chunk = b""
        self._position = 0
        self._end = False
        self._error: Exception | None = None
        self._thread = threading.Thread(target=self._fill, args=(stream,), daemon=True)
        self._thread.start()

    def _fill(self, stream: BinaryIO) -> None:
        try:
            while not self._stop.is_set():
                chunk = stream.read(MiB)
                self._put(chunk)
                if not chunk:
                    return
        except Exception as exc:  # noqa: BLE001 - handed to the reader, raised there
            self._put(exc)

    def _put(self, item: bytes | Exception) -> None:
        while not self._stop.is_set():
            try:
                self._chunks.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def read(self, size: int) -> bytes:
        position = self._position
        if size <= len(self._chunk) - position:  # the usual case
            self._position = position + size
            return self._chunk[position : position + size]
        pieces = []
        while size > 0:
            if self._position == len(self._chunk):
                if self._error is not None:
                    raise self._error
                if self._end:
                    break
                item = self._chunks.get()
                if isinstance(item, Exception):
                    self._error = item
                elif not item:
                    self._end = True
                else:
                    self._chunk, self._position = item, 0
                continue
            piece = self._chunk[self._position : self._position + size]
            self._position += len(piece)
            size -= len(piece)
            pieces.append(piece)
        return b"".join(pieces)

    def __enter__(self) -> _ReadAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class _WriteBehind:
    """A stream written by a thread of its own, so that compressing (zlib lets go of the
    GIL) goes on while the caller rewrites the next members. An error of the stream is
    raised by the next `write` or by `close`."""

    def __init__(self, stream: BinaryIO) -> None:
        self._chunks: queue.Queue[bytes | None] = queue.Queue(8)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, args=(stream,), daemon=True)
        self._thread.start()

    def _drain(self, stream: BinaryIO) -> None:
        while (chunk := self._chunks.get()) is not None:
            if self._error is None:
                try:
                    stream.write(chunk)
                except BaseException as exc:  # noqa: BLE001 - raised by write() or close()
                    self._error = exc

    def write(self, chunk: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._chunks.put(chunk)

    def close(self) -> None:
        """Wait until everything is written; raise what went wrong, if anything did."""
        if self._thread.is_alive():
            self._chunks.put(None)
            self._thread.join()
        if self._error is not None:
            raise self._error


class _Unusual(Exception):
    """Something in a tar that the fast reader leaves to tarfile."""


_ZERO_BLOCK = bytes(tarfile.BLOCKSIZE)
# Where a header keeps its numbers, and the numbers the fast reader reads (octal digits,
# spaces around them, then NULs and anything); tarfile reads those the same way.
_NUMBER_FIELDS = (
    (100, 108),
    (108, 116),
    (116, 124),
    (124, 136),
    (136, 148),
    (148, 156),
    (329, 337),
    (337, 345),
)
_OCTAL = re.compile(rb" *([0-7]*) *(?:\0[\x00-\xff]*)?")
# mode, uid, gid, size, mtime and checksum as tarfile and GNU tar write them; the device
# numbers of a file, none or zero
_USUAL_NUMBERS = re.compile(rb"[0-7]{7}\0[0-7]{7}\0[0-7]{7}\0[0-7]{11}\0[0-7]{11}\0[0-7]{6}\0 ")
_USUAL_DEVICE = re.compile(rb"(?:\0{8}|[0-7]{7}\0){2}")
_PAX_RECORD = re.compile(rb"(\d+) ([^=]+)=")
# pax keywords that change nothing the redaction reads (but `path`, read below)
_PAX_IGNORED = frozenset({"mtime", "atime", "ctime", "uid", "gid", "uname", "gname", "linkpath"})


class _EndMissing(Exception):
    """The tar stream ended where a header should be, without the end-of-archive blocks."""


class _FastTar:
    """A tar read header by header with a few slices, for the plain tars bundles are:
    regular files and directories in ustar, GNU or pax headers, with pax `path` and GNU
    long names. tarfile takes 20 us a member, twice over 558,000 members; this takes 3."""

    def __init__(self, stream: BinaryIO) -> None:
        self._read = stream.read
        self._left = 0  # bytes of the current member (data and padding) not yet read

    def next(self) -> tuple[str, bool, int] | None:
        """(name, whether a regular file, size) of the next member; None at the end."""
        if self._left:
            self._skip(self._left)
        try:
            first = self._read(tarfile.BLOCKSIZE)
        except Exception as exc:  # the stream's own error: tarfile's path reports it
            raise _Unusual from exc
        if not first:
            # tarfile's stream ends here quietly: half a bundle would pass for all of it
            raise _EndMissing
        head = (
            first
            if len(first) == tarfile.BLOCKSIZE
            else first + self._exact(tarfile.BLOCKSIZE - len(first))
        )
        if head == _ZERO_BLOCK:
            return None
        name, kind, size = self._header(head)
        if kind in (b"x", b"L"):  # the name, for the header that follows
            extra = self._exact(_padded(size))
            following = self._exact(tarfile.BLOCKSIZE)
            if following == _ZERO_BLOCK:
                raise _Unusual
            own_name, kind, size = self._header(following)
            if kind not in (b"0", b"5"):
                raise _Unusual
            name = (_pax_path(extra) or own_name) if head[156:157] == b"x" else _nts(extra)
        if kind == b"5":
            if size:
                raise _Unusual  # tarfile would read its data as the next header
            return name, False, 0
        if kind != b"0":
            raise _Unusual
        self._left = _padded(size)
        return name, True, size

    def read(self, size: int) -> bytes:
        data = self._exact(size)
        self._left -= size
        return data

    def _header(self, block: bytes) -> tuple[str, bytes, int]:
        """(name, type: 0 regular, 5 directory, x pax or L long name, size) of a header."""
        if (
            _USUAL_NUMBERS.fullmatch(block, 100, 156) is not None
            and _USUAL_DEVICE.fullmatch(block, 329, 345) is not None
        ):
            size, checksum = int(block[124:135], 8), int(block[148:154], 8)
        else:
            numbers = []
            for start, end in _NUMBER_FIELDS:
                number = _OCTAL.fullmatch(block, start, end)
                if number is None:
                    raise _Unusual
                numbers.append(int(number.group(1) or b"0", 8))
            size, checksum = numbers[3], numbers[5]
        if checksum != _checksum(block):
            raise _Unusual  # a signed checksum, or a damaged header
        kind = block[156:157]
        name = _nts(block[0:100])
        if kind in (b"0", b"\0"):
            if kind == b"\0" and name.endswith("/"):
                kind = b"5"  # a V7 directory
            else:
                kind = b"0"
                prefix = _nts(block[345:500])
                if prefix:
                    name = prefix + "/" + name
        elif kind not in (b"5", b"x", b"L"):
            raise _Unusual
        return name, kind, size

    def _exact(self, size: int) -> bytes:
        chunks = []
        while size > 0:
            try:
                chunk = self._read(size)
            except Exception as exc:  # the stream's own error: tarfile's path reports it
                raise _Unusual from exc
            if not chunk:
                raise _Unusual  # truncated
            chunks.append(chunk)
            size -= len(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _skip(self, size: int) -> None:
        while size > 0:
            step = min(size, MiB)
            self._exact(step)
            size -= step
        self._left = 0


def _padded(size: int) -> int:
    return size + (-size % tarfile.BLOCKSIZE)


def _checksum(block: bytes) -> int:
    """The header's unsigned checksum as tarfile computes it (the checksum field counted
    as spaces): each half of the block sums to at most 65,280, so adler32's low word is
    one more than that sum."""
    total = (zlib.adler32(block[:256]) & 0xFFFF) + (zlib.adler32(block[256:]) & 0xFFFF) - 2
    return total - sum(block[148:156]) + 8 * 32


def _nts(field: bytes) -> str:
    end = field.find(b"\0")
    return (field if end == -1 else field[:end]).decode(tarfile.ENCODING, "surrogateescape")


def _pax_path(records: bytes) -> str | None:
    """The `path` of a pax extended header, read as tarfile reads it."""
    if b"hdrcharset" in records:
        raise _Unusual
    path = None
    position = 0
    while (match := _PAX_RECORD.match(records, position)) is not None:
        length = int(match.group(1))
        if length == 0:
            raise _Unusual
        value = records[match.end(2) + 1 : match.start(1) + length - 1]
        keyword = _pax_decode(match.group(2), "utf-8")
        if keyword == "path":
            path = _pax_decode(value, tarfile.ENCODING).rstrip("/")
        elif keyword not in _PAX_IGNORED:
            raise _Unusual
        position += length
    return path


def _pax_decode(value: bytes, fallback: str) -> str:
    try:
        return value.decode("utf-8", "strict")
    except UnicodeDecodeError:
        return value.decode(fallback, "surrogateescape")


def _directory(
    root: Path,
    wanted: Callable[[str], bool] | None = None,
    streamed: Callable[[str], bool] | None = None,
) -> Iterator[Member]:
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
                stream = streamed is not None and streamed(name)
                if not stream and wanted is not None and not wanted(name):
                    yield Member(name, b"")
                    continue
                fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW)
                with os.fdopen(fd, "rb") as handle:
                    yield Member(name, b"", handle) if stream else Member(name, handle.read())
            else:
                raise ArchiveError(f"{root} holds {_quoted(name)}, which is not a regular file")

    try:
        yield from walk(root, "")
    except OSError as exc:
        raise ArchiveError(f"cannot read {root}: {exc.strerror or exc}") from exc


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _check_name(name: str, path: Path) -> None:
    # an empty, "." or ".." part (an empty name, a leading or trailing "/" too) found with
    # three searches, not a split: this runs twice for each of 558,000 members
    wrapped = f"/{name}/"
    if (
        "//" in wrapped
        or "/./" in wrapped
        or "/../" in wrapped
        or "\\" in name
        or _CONTROL.search(name) is not None
    ):
        raise ArchiveError(f"{path} holds an unsafe member name {_quoted(name)}")


def _quoted(name: str) -> str:
    """A member name fit for a one-line message: control characters shown escaped."""
    return repr(name[:200])


# A ustar header after its checksum: a regular file with no link, owner or prefix.
_USTAR_TAIL = tarfile.REGTYPE + bytes(100) + tarfile.POSIX_MAGIC + bytes(32 + 32 + 8 + 8 + 155 + 12)
_USTAR_TAIL_SUM = sum(_USTAR_TAIL)


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
        # The tar stream as tarfile's "w|" writes it, headers made here: tarfile's own
        # addfile costs 30 us a member. Handed over in 1 MiB pieces to be compressed.
        self._behind = _WriteBehind(self._body_stream)
        self._pending = bytearray()
        self._offset = 0
        self._fixed = b"0000644\x000000000\x000000000\x00"  # mode, uid, gid
        self._mtime = b"%011o\x00" % mtime if 0 <= mtime < 8**11 else None
        self.members = 0

    def add(self, name: str, data: bytes) -> None:
        size = len(data)
        pending = self._pending
        before = len(pending)
        pending += self._header(name, size)
        pending += data
        pending += bytes(-size % tarfile.BLOCKSIZE)
        self._offset += len(pending) - before
        if len(pending) >= MiB:
            self._behind.write(pending)  # type: ignore[arg-type]
            self._pending = bytearray()
        self.members += 1

    def add_file(self, name: str, source: Path) -> None:
        """As `add`, with the data read from the file `source` a piece at a time."""
        size = source.stat().st_size
        header = self._header(name, size)
        self._pending += header
        copied = 0
        with source.open("rb") as handle:
            while chunk := handle.read(MiB):
                copied += len(chunk)
                self._pending += chunk
                if len(self._pending) >= MiB:
                    self._behind.write(self._pending)  # type: ignore[arg-type]
                    self._pending = bytearray()
        if copied != size:
            raise ArchiveError(f"{source} changed while it was written into the bundle")
        padding = -size % tarfile.BLOCKSIZE
        self._pending += bytes(padding)
        self._offset += len(header) + size + padding
        self.members += 1

    def _header(self, name: str, size: int) -> bytes:
        """tarfile's PAX_FORMAT header for this member: for a short ASCII name a plain
        ustar header, made here byte for byte the same; else tarfile's own."""
        if not name.isascii() or len(name) > 100 or size >= 8**11 or self._mtime is None:
            return self._info(name, size).tobuf(tarfile.PAX_FORMAT)
        encoded = name.encode("ascii")
        head = b"".join(
            (encoded, bytes(100 - len(encoded)), self._fixed, b"%011o\x00" % size, self._mtime)
        )
        # the checksum field counts as spaces; 148 bytes sum to under adler32's modulus
        checksum = (zlib.adler32(head) & 0xFFFF) - 1 + 8 * 32 + _USTAR_TAIL_SUM
        return head + b"%06o\x00 " % checksum + _USTAR_TAIL

    def _info(self, name: str, size: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.size = size
        info.mtime = self.mtime
        info.mode = 0o644
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    def scratch(self, name: str) -> Path:
        """A file of that name beside the body, gone with it."""
        return self._dir / f"scratch-{name}"

    def finish(self, manifest: bytes | Path) -> None:
        """Write OUT: the manifest (or the file holding it) first, then the body."""
        # the end of the archive, as tarfile's close() writes it
        end = 2 * tarfile.BLOCKSIZE
        end += -(self._offset + end) % tarfile.RECORDSIZE
        self._pending += bytes(end)
        self._behind.write(self._pending)  # type: ignore[arg-type]
        self._pending = bytearray()
        self._behind.close()
        if self._body_stream is not self._body_file:
            self._body_stream.close()
        self._body_file.close()
        final = self._dir / "bundle"
        with final.open("wb") as out:
            if self.compression == "gz":
                with gzip.GzipFile(
                    fileobj=out, mode="wb", compresslevel=_GZIP_LEVEL, mtime=0
                ) as gz:
                    self._manifest(gz, manifest)  # type: ignore[arg-type]
                with self._body_path.open("rb") as body:
                    shutil.copyfileobj(body, out, 1024 * 1024)
            else:
                compressor = zstandard.ZstdCompressor(level=6)
                with compressor.stream_writer(out, closefd=False) as zst:
                    self._manifest(zst, manifest)  # type: ignore[arg-type]
                    with self._body_path.open("rb") as body:
                        shutil.copyfileobj(body, zst, 1024 * 1024)
        final.chmod(0o644)
        final.replace(self.output)
        shutil.rmtree(self._dir, ignore_errors=True)

    def _manifest(self, stream: BinaryIO, manifest: bytes | Path) -> None:
        size = manifest.stat().st_size if isinstance(manifest, Path) else len(manifest)
        stream.write(self._info(MANIFEST, size).tobuf(tarfile.PAX_FORMAT))
        if isinstance(manifest, Path):
            with manifest.open("rb") as source:
                shutil.copyfileobj(source, stream, 1024 * 1024)
        else:
            stream.write(manifest)
        stream.write(bytes(-size % tarfile.BLOCKSIZE))

    def abort(self) -> None:
        for handle in (self._behind, self._body_stream, self._body_file):
            # cleaning up after a failure that is already being reported
            with contextlib.suppress(Exception):
                handle.close()
        shutil.rmtree(self._dir, ignore_errors=True)
