"""An archive's member index while a forked child is still spooling it: the parent reads
a member as soon as its bytes are in the spool, not once the whole archive is.

Spooling a 1,000-node archive takes ~4 s, and building the model from it ~2 s more; a
needle bundle lists each node's files together, after the cluster's, so the build can
follow the spool node by node instead of waiting for its end.

The child appends each batch of members whose bytes it has written to an index file,
then writes one byte to a pipe. The parent waits on the pipe only for a member it has
not been told of yet. The child never waits on the parent: a pipe holding the index
itself would fill while the parent builds, and stall the spool. A member not told of
when the child stops is absent, as in a finished spool. Whether the archive was
refused is the child's answer, which the caller must take before trusting anything
read through this index.
"""

from __future__ import annotations

import os
import pickle
import struct
from collections.abc import Iterator

_LENGTH = struct.Struct("<Q")
Members = dict[str, tuple[int, int]]


class IndexWriter:
    """The spooling child's side: one record per batch, then one byte to the pipe."""

    def __init__(self, index_fd: int, told_fd: int) -> None:
        self.index_fd, self.told_fd = index_fd, told_fd

    def __call__(self, batch: Members) -> None:
        payload = pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(_LENGTH.pack(len(payload)) + payload)
        while view:
            view = view[os.write(self.index_fd, view) :]
        # one byte a batch of >= 4 MiB spooled: 2,048 for the 8 GiB cap, so the pipe
        # (64 KiB) cannot fill and block the child
        os.write(self.told_fd, b".")


class GrowingIndex:
    """The parent's side: name -> (offset, size) in the spool, as the child tells them.
    Looking up a member not told of yet waits until it is, or the child has stopped."""

    def __init__(self, index_fd: int, told_fd: int) -> None:
        self.members: Members = {}
        self._index_fd, self._told_fd = index_fd, told_fd
        self._offset = 0
        self.growing = True

    def get(self, name: str) -> tuple[int, int] | None:
        found = self.members.get(name)
        while found is None and self.growing:
            self._wait()
            found = self.members.get(name)
        return found

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.whole())

    def __len__(self) -> int:
        return len(self.whole())

    def whole(self) -> Members:
        """Every member, once the child has stopped."""
        while self.growing:
            self._wait()
        return self.members

    def close(self) -> None:
        for fd in (self._index_fd, self._told_fd):
            if fd >= 0:
                os.close(fd)
        self._index_fd = self._told_fd = -1
        self.growing = False

    def _wait(self) -> None:
        told = os.read(self._told_fd, 4096)
        if not told:  # the child has stopped: everything it wrote was told before
            self.growing = False
            return
        for _ in told:
            self._take_batch()

    def _take_batch(self) -> None:
        (length,) = _LENGTH.unpack(os.pread(self._index_fd, _LENGTH.size, self._offset))
        start = self._offset + _LENGTH.size
        payload = os.pread(self._index_fd, length, start)
        self._offset = start + length
        # written by our own child, complete before its byte was told
        self.members.update(pickle.loads(payload))  # noqa: S301


__all__ = ["GrowingIndex", "IndexWriter", "Members"]
