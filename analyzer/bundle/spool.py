"""An archived bundle read into one spool file of its members' bytes and an index of
where each member is in it: never unpacked into files.

A 1,000-node bundle holds ~5·10^5 small files. Creating them took 2 minutes; parsing the
decompressed tar stream in memory and writing only its members' bytes to one file takes
seconds, and a member is then one pread() away. Headers are checked as the stream
arrives, so a hostile archive (traversal, links, devices, oversized or too many members)
is refused before the rest of it is decompressed. Formats: ustar, GNU (long names) and
pax, as Python's tarfile and GNU tar write them.
"""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Protocol

from needle.analyzer.bundle.manifest import is_relpath
from needle.analyzer.errors import BundleError

BLOCK = 512
MANIFEST = "manifest.json"
_REGULAR = {b"0", b"\0", b"7"}
_KINDS = {
    b"1": "hard link",
    b"2": "symbolic link",
    b"3": "device",
    b"4": "device",
    b"6": "FIFO",
    b"S": "sparse file",
}


class Limits(Protocol):
    max_member_bytes: int
    max_total_bytes: int
    max_members: int
    max_manifest_bytes: int


class Corrupt(Exception):
    """The stream is not a tar archive, or ends inside one (reported as corrupt)."""


_ZERO_BLOCK = bytes(BLOCK)
# control characters (C0, DEL, C1): no bundle member is named with one
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_ADLER = 65521
# the checksum field read as eight spaces, in Adler-32's terms: 8 * 32, plus its 1
_SPACES_SUM = 8 * 32 + 1


def _checksum(header: bytes) -> int:
    """tar's checksum (the header's byte sum, its own field read as spaces) modulo 65521,
    plus one: Adler-32's first half, computed in C (the Python sum was half the cost of
    walking 5·10^5 headers): the whole block's, less the field's own bytes, plus eight
    spaces. Equal sums give equal values; this only tells a tar stream from garbage, the
    hostile checks look at names, types and sizes."""
    whole = zlib.adler32(header) & 0xFFFF
    field = zlib.adler32(header[148:156]) & 0xFFFF
    return (whole - field + _SPACES_SUM) % _ADLER


def _octal(field_bytes: bytes) -> int:
    if field_bytes[0] & 0x80:  # GNU base-256 for large numbers
        value = field_bytes[0] & 0x3F
        for byte in field_bytes[1:]:
            value = value << 8 | byte
        return value
    end = field_bytes.find(0)  # the number ends at its NUL
    text = field_bytes if end < 0 else field_bytes[:end]
    try:
        return int(text, 8)
    except ValueError:
        if not text.strip():
            return 0
        raise Corrupt("a header holds a number that is not octal") from None


def _pax(data: bytes) -> dict[str, str]:
    """Records of a pax extended header: "LEN key=value\\n"."""
    found: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            break
        try:
            length = int(data[pos:space])
        except ValueError:
            raise Corrupt("a pax header record has no length") from None
        if length <= 0:
            raise Corrupt("a pax header record has no length")
        key, _, value = data[space + 1 : pos + length - 1].partition(b"=")
        found[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
        pos += length
    return found


_IN_A_FOLDER = "/" + MANIFEST


def _member_name(raw: str) -> str:
    # `tar -C dir -czf b.tgz .` writes "./x"; accept that one harmless prefix.
    name = raw[2:] if raw.startswith("./") else raw
    return name.rstrip("/") if name not in {"", "."} else ""


@dataclass
class HeaderWalk:
    """Parses a tar stream chunk by chunk: checks each header as it arrives and sends
    only member data on to the spool (headers and padding are ~40% of a bundle's tar
    stream, and never read again)."""

    limits: Limits
    origin: str
    members: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (offset, size)
    ended: bool = False
    count: int = 0
    extensions: int = 0
    total: int = 0
    # what a pax 'x' or GNU 'L' header says about the member after it
    next_name: str | None = None
    next_size: int | None = None
    # (offset, size) of manifest.json, at the top or in a single folder, once seen
    manifest_at: tuple[int, int] | None = None
    pending: bytes = b""  # stream bytes not yet parsed
    data_left: int = 0  # of the current member's data, still to come
    skip_left: int = 0  # padding (or a directory's data) still to come
    extension: tuple[bytes, int] | None = None  # an extended header waiting for its data
    spooled: int = 0  # member data bytes handed to the spool so far
    # members indexed since the spool last told its reader of them (bundle/growing.py);
    # None: no reader waits on them
    fresh: dict[str, tuple[int, int]] | None = None

    def refuse(self, why: str) -> BundleError:
        return BundleError(f"{self.origin}: {why}")

    @property
    def between_members(self) -> bool:
        return not (self.pending or self.data_left or self.skip_left or self.extension)

    def feed(self, chunk: bytes, out: bytearray) -> None:
        """Parse `chunk`, appending member data to `out` (the spool's next bytes)."""
        buf = self.pending + chunk if self.pending else chunk
        # member data goes to `out` through the view: one copy, not two
        view, i, end = memoryview(buf), 0, len(buf)
        while i < end and not self.ended:
            if self.data_left:
                n = min(self.data_left, end - i)
                out += view[i : i + n]
                self.spooled += n
                i += n
                self.data_left -= n
                continue
            if self.skip_left:
                n = min(self.skip_left, end - i)
                i += n
                self.skip_left -= n
                continue
            if self.extension is not None:
                kind, size = self.extension
                if end - i < size:
                    break  # its records have not all arrived
                self._extension(kind, buf[i : i + size])
                self.extension = None
                i += size
                self.skip_left = -size % BLOCK
                continue
            if end - i < BLOCK:
                break
            header = buf[i : i + BLOCK]
            i += BLOCK
            self._header(header)
            data, skip = self.data_left, self.skip_left
            if data + skip <= end - i:  # the whole member is here: one step, not three
                if data:
                    out += view[i : i + data]
                    self.spooled += data
                i += data + skip
                self.data_left = self.skip_left = 0
        view.release()
        self.pending = buf[i:]

    def _header(self, header: bytes) -> None:
        if header == _ZERO_BLOCK:
            self.ended = True
            return
        if _checksum(header) != (1 + _octal(header[148:156])) % _ADLER:
            raise Corrupt("a header's checksum does not match: not a tar stream")
        size = _octal(header[124:136])
        if size < 0:  # "-1" is octal to int(): a negative size would walk backwards
            raise self.refuse("a tar header declares a negative size; refusing it")
        kind = header[156:157]
        if kind in (b"x", b"g", b"L", b"K"):
            self.extensions += 1
            if self.extensions > self.limits.max_members:
                raise self.refuse(f"more than {self.limits.max_members} tar extended headers")
            if size > 1024 * 1024:
                raise self.refuse("a tar extended header is over 1 MiB; refusing it")
            self.extension = (kind, size)
            return
        name = self._name(header)
        if self.next_size is not None:
            size = self.next_size
        self.next_name = self.next_size = None
        if self._check(name, kind, size, self.spooled):
            self.data_left = size
            self.skip_left = -size % BLOCK
        else:  # a directory: whatever it carries is skipped
            self.skip_left = size + (-size % BLOCK)

    def _extension(self, kind: bytes, data: bytes) -> None:
        if kind == b"L":
            self.next_name = data.split(b"\0", 1)[0].decode("utf-8", "replace")
        elif kind == b"x":
            records = _pax(data)
            if "path" in records:
                self.next_name = records["path"]
            if "size" in records:
                try:
                    self.next_size = int(records["size"])
                except ValueError:
                    raise Corrupt("a pax size is not a number") from None
                if self.next_size < 0:
                    raise self.refuse("a pax header declares a negative size; refusing it")

    def _name(self, header: bytes) -> str:
        if self.next_name is not None:
            return self.next_name
        end = header.find(0, 0, 100)
        name = header[: end if end >= 0 else 100]
        # POSIX: a prefix may hold the leading dirs
        if header[345] and header[257:263] == b"ustar\x00":
            prefix = header[345:500].split(b"\0", 1)[0]
            name = prefix + b"/" + name
        return name.decode("utf-8", "replace")

    def _check(self, raw_name: str, kind: bytes, size: int, offset: int) -> bool:
        """Refuse a hostile member, or index it; False for a directory (no data kept)."""
        self.count += 1
        if self.count > self.limits.max_members:
            raise self.refuse(
                f"more than {self.limits.max_members} members; refusing it "
                "(NEEDLE_MAX_MEMBERS raises the cap for a trusted bundle)"
            )
        name = _member_name(raw_name)
        if name == "" and kind == b"5":
            return False
        # (a printable ASCII name holds no control character: the search is for the rest)
        printable = name.isascii() and name.isprintable()
        if not is_relpath(name) or (not printable and _CONTROL.search(name)):
            # a newline or escape in a name would forge lines or sequences wherever the
            # name is shown (and "..\n" is no ".." to is_relpath)
            raise self.refuse(f"unsafe member path {raw_name!r}; refusing the bundle")
        if kind == b"5":
            return False
        if kind not in _REGULAR:
            what = _KINDS.get(kind, "special file")
            raise self.refuse(
                f"member {raw_name!r} is a {what}; bundles hold only regular files and directories"
            )
        if name in self.members:
            raise self.refuse(f"member {raw_name!r} appears twice; refusing it")
        top_or_one_down = name == MANIFEST or (name.endswith(_IN_A_FOLDER) and name.count("/") == 1)
        cap = self.limits.max_manifest_bytes if top_or_one_down else self.limits.max_member_bytes
        if size > cap:
            raise self.refuse(
                f"member {raw_name!r} declares {size} bytes, over the "
                f"{cap}-byte cap for one file (a decompression bomb?); "
                f"{'NEEDLE_MAX_MANIFEST_BYTES' if top_or_one_down else 'NEEDLE_MAX_FILE_BYTES'}"
                " raises it for a trusted bundle"
            )
        self.total += size
        if self.total > self.limits.max_total_bytes:
            raise self.refuse(
                f"bundle unpacks to more than {self.limits.max_total_bytes} bytes "
                "(a decompression bomb?); NEEDLE_MAX_UNPACKED_BYTES raises it for a trusted bundle"
            )
        self.members[name] = (offset, size)
        if self.fresh is not None:
            self.fresh[name] = (offset, size)
        if self.manifest_at is None and top_or_one_down:
            self.manifest_at = (offset, size)
        return True


class Spooler:
    """Reads a decompressed tar stream a chunk at a time into the spool, so the caller
    can start on the manifest (the first member a needle bundle holds) before the rest
    is in."""

    def __init__(self, read: Callable[[int], bytes], fd: int, limits: Limits, origin: str) -> None:
        self.read, self.fd = read, fd
        self.walk = HeaderWalk(limits, origin)
        self.out = bytearray()  # member data parsed but not yet written
        self.on_disk = 0
        self.seen = 0  # stream bytes read
        # called with the members whose bytes are all in the spool since the last call
        self.on_flush: Callable[[dict[str, tuple[int, int]]], None] | None = None

    def _flush(self) -> None:
        _write_all(self.fd, self.out)
        self.on_disk += len(self.out)
        del self.out[:]
        fresh = self.walk.fresh
        if self.on_flush is not None and fresh:
            # only the member still arriving can be short of its bytes: it is the last
            name, (offset, size) = next(reversed(fresh.items()))
            arriving = fresh.pop(name) if offset + size > self.on_disk else None
            self.walk.fresh = {name: arriving} if arriving is not None else {}
            self.on_flush(fresh)

    def tell_members(self, on_flush: Callable[[dict[str, tuple[int, int]]], None]) -> None:
        """From now on, pass every member to `on_flush` once its bytes are in the spool
        (those indexed so far at the next flush)."""
        self.walk.fresh = dict(self.walk.members)
        self.on_flush = on_flush

    def _step(self) -> bool:
        chunk = b"" if self.walk.ended else self.read(1 << 20)
        if not chunk:
            self._flush()
            return False
        self.seen += len(chunk)
        self.walk.feed(chunk, self.out)
        if len(self.out) >= 1 << 22:
            self._flush()
        return True

    def manifest(self) -> tuple[int, int] | None:
        """Spool until the manifest's bytes are in (or the stream ends): its (offset, size)."""
        while True:
            found = self.walk.manifest_at
            if found is not None and found[0] + found[1] <= self.walk.spooled:
                self._flush()
                return found
            if not self._step():
                return None

    def finish(self) -> dict[str, tuple[int, int]]:
        """Spool the rest; every member by name. Raises BundleError or Corrupt."""
        while self._step():
            pass
        walk = self.walk
        # without its end-of-archive blocks, a stream is whole only if it stops exactly
        # after a member (as tarfile reads it)
        if not walk.ended and (not walk.between_members or walk.count == 0):
            raise Corrupt("the archive ends inside a member" if self.seen else "it is empty")
        return walk.members


def spool(
    stream: IO[bytes] | Callable[[int], bytes], fd: int, limits: Limits, origin: str
) -> dict[str, tuple[int, int]]:
    """Write the decompressed tar `stream` to `fd` and index its members, checking each
    header as it arrives. Raises BundleError (hostile) or Corrupt (not tar, truncated)."""
    return Spooler(stream if callable(stream) else stream.read, fd, limits, origin).finish()


def _write_all(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
