"""The regular files of an unpacked (directory) bundle, found as reads reach them.

A 1,000-node bundle is ~10^5 directories and ~5·10^5 files. Listing them all when the
bundle opened cost ~1.2 s per bundle, in the one process that opens it. Now a read
checks its file's directory through the listings of the directories above it (each
listed once, when first reached), opens the file with O_NOFOLLOW and takes it only if
fstat says it is a regular file. The 10^5 leaf directories (one per pod namespace) are
never listed, and a forked shard of `analyze` or `diff` reads only its own nodes'.

Safety is the same as a full index: every directory on the way must be listed by its
parent as a real directory (not a symlink), and the file itself must be a regular
file, not a link, FIFO or device. Nothing is ever followed out of the bundle; `..`,
`.` and empty parts never match (no listing holds them).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

Listing = tuple[frozenset[str], frozenset[str]]  # (regular files, real subdirectories)


class OverCap(Exception):
    """A file holds more bytes than a read may take."""


class DirectoryFiles:
    """Membership and iteration over a directory bundle's regular files (as a set of
    '/'-separated relative paths would answer them)."""

    def __init__(self, root: str) -> None:
        self._root = root
        self._listings: dict[str, Listing | None] = {}  # by relative dir ("" the root)
        self._directories: dict[str, bool] = {}  # whether a relative dir is a real one

    def __contains__(self, relpath: object) -> bool:
        if not isinstance(relpath, str):
            return False
        directory, slash, name = relpath.rpartition("/")
        if slash and not directory:  # "/x": not relative
            return False
        listing = self._listing(directory)
        return listing is not None and name in listing[0]

    def read(self, relpath: str, cap: int) -> bytes | None:
        """The bytes of the regular file at `relpath`, or None when the bundle holds no
        such file; OverCap when it holds more than `cap` bytes. Its directory is checked
        through the listings above it, never listed itself: a leaf directory per pod
        namespace (10^5) is cheaper to trust to O_NOFOLLOW and fstat than to list."""
        directory, slash, name = relpath.rpartition("/")
        real = self._directories.get(directory)
        if real is None:
            real = self._is_directory(directory)
        if not real or (slash and not directory) or name in ("", ".", ".."):
            return None
        try:
            # O_NONBLOCK: a FIFO must not hang the open; fstat then turns it away
            descriptor = os.open(
                f"{self._root}/{relpath}", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
            )
        except OSError:
            return None
        try:
            status = os.fstat(descriptor)
            if not stat.S_ISREG(status.st_mode):
                return None
            if status.st_size > cap:
                raise OverCap(relpath)
            # a short read of a regular file is its end: the usual file takes one read
            data = os.read(descriptor, status.st_size + 1)
            if len(data) <= status.st_size:
                return data
            return _read_rest(descriptor, data, relpath, cap)
        except OSError:
            return None
        finally:
            os.close(descriptor)

    def _is_directory(self, directory: str) -> bool:
        """Whether `directory` is a real directory of the bundle: listed as one by its
        parent (whose own listing is checked the same way)."""
        known = self._directories.get(directory)
        if known is None:
            if directory == "":
                known = self._listing("") is not None
            else:
                parent, _, name = directory.rpartition("/")
                listing = self._listing(parent)
                known = listing is not None and name in listing[1]
            self._directories[directory] = known
        return known

    def __iter__(self) -> Iterator[str]:
        pending = [""]
        while pending:
            directory = pending.pop()
            listing = self._listing(directory)
            if listing is None:
                continue
            prefix = f"{directory}/" if directory else ""
            files, subdirectories = listing
            yield from (f"{prefix}{name}" for name in files)
            pending.extend(f"{prefix}{name}" for name in subdirectories)

    def _listing(self, directory: str) -> Listing | None:
        """The listing of `directory`, or None when it is not a real directory of the
        bundle (some directory above does not list the next part as one)."""
        listings = self._listings
        if directory in listings:
            return listings[directory]
        if "" not in listings:
            listings[""] = _scan(self._root)
        listing = listings[""]
        # down from the top a part at a time (a loop: a hostile path may be deep)
        current = ""
        for part in directory.split("/") if directory else ():
            if not part:  # "a//b", "/a": no listing holds an empty name
                listing = None
                break
            current = f"{current}/{part}" if current else part
            if current not in listings:
                real = listing is not None and part in listing[1]
                listings[current] = _scan(f"{self._root}/{current}") if real else None
            listing = listings[current]
            if listing is None:
                break
        listings[directory] = listing
        return listing


def _read_rest(descriptor: int, first: bytes, relpath: str, cap: int) -> bytes:
    """The rest of a file that grew since its fstat."""
    chunks, size = [first], len(first)
    while chunk := os.read(descriptor, min(cap + 1 - size, 1 << 20)):
        chunks.append(chunk)
        size += len(chunk)
        if size > cap:
            raise OverCap(relpath)
    return b"".join(chunks)


def _scan(path: str) -> Listing | None:
    # the type comes from the directory entry: no stat per file, never a symlink followed
    files, subdirectories = [], []
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    subdirectories.append(entry.name)
                elif entry.is_file(follow_symlinks=False):
                    files.append(entry.name)
    except OSError:
        return None
    return frozenset(files), frozenset(subdirectories)
