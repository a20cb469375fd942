"""Opens a bundle safely: a .tar.gz, a .tar.zst, a plain .tar, or an unpacked directory.

Archives are never unpacked into files: the decompressed stream goes into one spool
file in a private temporary directory, its headers checked as they arrive
(bundle/spool.py), and members are read by offset. A hostile bundle (path traversal,
links, devices, decompression bombs) is refused with a one-line BundleError, and
nothing is ever written outside that directory.
"""

from __future__ import annotations

import gzip
import os
import shutil
import stat
import tempfile
import weakref
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeVar

import zstandard
from isal import igzip, isal_zlib
from needle.analyzer.bundle.directory import DirectoryFiles, OverCap
from needle.analyzer.bundle.growing import GrowingIndex, IndexWriter, Members
from needle.analyzer.bundle.manifest import decode_manifest, validate_manifest
from needle.analyzer.bundle.spool import Corrupt, Spooler
from needle.analyzer.errors import AnalyzerError, BundleError
from needle.analyzer.forked import Started, can_fork, run_forked
from needle.analyzer.gcpause import paused_gc
from needle.analyzer.heap import give_back_free_memory, keep_freed_memory

MANIFEST = "manifest.json"
T = TypeVar("T")
MiB = 1024 * 1024
GiB = 1024 * MiB


@dataclass(frozen=True)
class ReadLimits:
    """Caps that keep a hostile or broken bundle from exhausting disk, memory or time
    (docs/bundle-format.md, "Limits"). Each can be changed by its environment variable
    (ENVIRONMENT), e.g. NEEDLE_MAX_READ_BYTES=16G; from_env() reads them.

    Measured on a 1,000-node x 110-pod bundle (bench/synthetic_bundle.py: 558,004
    files, a 171 MB manifest, cluster/pods.json 21 MB the largest other file), in the
    process that reads most: analyze reads 269 MB in 116,503 files, show 106 MB in
    225,003, a diff of two such bundles 571 MB in 453,006. The defaults leave 1.5x
    headroom on the manifest, 7x on bytes and 8x on files read. Records parsed, with
    every command in one process (bench/read_budget.py): analyze 4,237,008, show
    3,568,008, the diff 8,474,016; the default leaves 3.8x."""

    max_member_bytes: int = 256 * MiB  # one file (member) of a bundle, the manifest apart
    max_total_bytes: int = 8 * GiB  # an archive, unpacked (its spool on disk)
    max_members: int = 2_000_000  # an archive's members
    max_manifest_bytes: int = 256 * MiB  # manifest.json
    # the run's budget, over every bundle it opens (a diff's two), in each process:
    max_read_bytes: int = 4 * GiB  # file bytes read
    max_files_read: int = 4_000_000  # files read
    max_records: int = 32_000_000  # records parsed (lines of text, objects of JSON)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ReadLimits:
        """The defaults, with any NEEDLE_MAX_* variable of ENVIRONMENT applied."""
        environ = os.environ if environ is None else environ
        changed = {
            name: _size(variable, environ[variable])
            for name, variable in ENVIRONMENT.items()
            if environ.get(variable, "").strip()
        }
        return cls(**changed)


# The environment variable that sets each limit (sizes take a K, M or G suffix: 1024s).
ENVIRONMENT = {
    "max_member_bytes": "NEEDLE_MAX_FILE_BYTES",
    "max_total_bytes": "NEEDLE_MAX_UNPACKED_BYTES",
    "max_members": "NEEDLE_MAX_MEMBERS",
    "max_manifest_bytes": "NEEDLE_MAX_MANIFEST_BYTES",
    "max_read_bytes": "NEEDLE_MAX_READ_BYTES",
    "max_files_read": "NEEDLE_MAX_FILES_READ",
    "max_records": "NEEDLE_MAX_RECORDS",
}
_UNITS = {"": 1, "K": 1024, "M": MiB, "G": GiB, "T": 1024 * GiB}


def _size(variable: str, text: str) -> int:
    value = text.strip().upper().removesuffix("B").removesuffix("I")
    number, unit = (value[:-1], value[-1]) if value[-1:] in _UNITS else (value, "")
    try:
        size = int(number) * _UNITS[unit]
    except ValueError:
        size = -1
    if size <= 0:
        raise AnalyzerError(
            f"{variable}={text!r} is not a positive size (a number, K, M or G: e.g. 16G)"
        )
    return size


def records_in(data: bytes) -> int:
    """How many records parsing `data` can make, at most: a line of text holds one
    record, a JSON document one per object (ip -j puts a whole table on one line).
    Counted in C at >1 GB/s, so the budget stops a parse before it allocates."""
    stripped = data.lstrip()
    if stripped[:1] in (b"[", b"{"):
        return data.count(b"{")
    return data.count(b"\n") + 1


class ReadBudget:
    """What one run may read from its bundles in total (ReadLimits.max_read_bytes and
    max_files_read), shared by the bundles it opens. Per process: a forked worker
    spends its own copy. Going past it is one line of BundleError, naming the variable
    that raises it, before the bytes that would pass it are read (an archive member) or
    right after (a directory file, whose size is known once it is open)."""

    def __init__(self, limits: ReadLimits) -> None:
        self.limits = limits
        self.bytes_read = 0
        self.files_read = 0
        self.records = 0

    def take_records(self, origin: str, relpath: str, count: int) -> None:
        self.records += count
        if self.records > self.limits.max_records:
            raise BundleError(
                f"{origin}: parsing {relpath} takes this run past its budget of "
                f"{self.limits.max_records} records (lines of text, objects of JSON); "
                "set NEEDLE_MAX_RECORDS higher to analyze a bundle this large"
            )

    def take(self, origin: str, relpath: str, size: int) -> None:
        self.files_read += 1
        self.bytes_read += size
        limits = self.limits
        if self.bytes_read > limits.max_read_bytes:
            raise BundleError(
                f"{origin}: reading {relpath} takes this run past its budget of "
                f"{limits.max_read_bytes} bytes read; set NEEDLE_MAX_READ_BYTES higher "
                "(e.g. 16G) to read a bundle this large"
            )
        if self.files_read > limits.max_files_read:
            raise BundleError(
                f"{origin}: reading {relpath} takes this run past its budget of "
                f"{limits.max_files_read} files read; set NEEDLE_MAX_FILES_READ higher "
                "to read a bundle this large"
            )


class Bundle:
    """A readable bundle. Paths are bundle-relative, '/'-separated (docs/bundle-format.md).

    An archive's members are indexed by their offset in the spool when it opens, and a
    read is one pread(). A directory bundle's files are found as reads reach them: the
    directories on the way are checked against their parents' listings and the file is
    opened with O_NOFOLLOW and must be a regular file, so nothing is ever followed out
    of the bundle (bundle/directory.py).
    """

    def __init__(
        self,
        origin: str,
        root: Path,
        manifest: dict[str, Any],
        limits: ReadLimits,
        cleanup: Path | None,
        files: DirectoryFiles | Members | GrowingIndex,
        spool_fd: int | None = None,
        budget: ReadBudget | None = None,
    ) -> None:
        self.origin = origin
        # a directory bundle's own directory; for an archive, the private directory of
        # its spool (gone once the bundle is closed)
        self.root = root
        self.manifest = manifest
        self.limits = limits
        self.budget = budget if budget is not None else ReadBudget(limits)
        self._cleanup = cleanup
        self._files = files
        self._spool_fd = spool_fd
        self._root = str(root)
        self._closed = False
        self._summary: dict[str, Any] | None = None
        # the spool and its directory go when the bundle is closed, or at the latest when
        # this process exits (never in a forked worker: those leave with os._exit)
        self._release = weakref.finalize(self, _remove_private, spool_fd, cleanup)

    def exists(self, relpath: str) -> bool:
        return relpath in self._files

    def read_bytes(self, relpath: str) -> bytes | None:
        """The file's bytes, or None when the bundle does not hold it (absent data)."""
        if self._closed:
            # a read after close would find nothing, and absent data would pass for "none"
            raise BundleError(f"{self.origin}: read of {relpath} after the bundle was closed")
        cap = _cap(self.limits, relpath)
        if not isinstance(self._files, DirectoryFiles):
            found = self._files.get(relpath)
            if found is None:
                return None
            offset, size = found
            if size > cap:
                raise BundleError(f"{self.origin}: {relpath} is larger than {cap} bytes")
            self.budget.take(self.origin, relpath, size)
            return os.pread(self._spool_fd, size, offset)  # type: ignore[arg-type]
        try:
            data = self._files.read(relpath, cap)
        except OverCap:
            raise BundleError(f"{self.origin}: {relpath} is larger than {cap} bytes") from None
        if data is not None:
            self.budget.take(self.origin, relpath, len(data))
        return data

    def _all_spooled(self, members: Members) -> None:
        """The whole index of an archive whose members were read as they were spooled."""
        self._files = members

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

    def read_records(self, relpath: str) -> bytes | None:
        """The file's bytes, to be parsed: read_bytes(), and its records (an upper
        bound: see records_in) taken from the run's record budget before they exist."""
        data = self.read_bytes(relpath)
        if data is not None:
            self.budget.take_records(self.origin, relpath, records_in(data))
        return data

    def read_text(self, relpath: str) -> str | None:
        data = self.read_bytes(relpath)
        return None if data is None else data.decode("utf-8", errors="replace")

    def files(self, prefix: str = "") -> list[str]:
        """Every regular file under `prefix`, sorted."""
        wanted = prefix.rstrip("/") + "/" if prefix else ""
        return sorted(name for name in self._files if name.startswith(wanted))

    def export(self, destination: Path) -> None:
        """Write every file of the bundle under `destination` (a new directory)."""
        destination.mkdir(parents=True)
        for name in self._files:
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.read_bytes(name) or b"")

    def close(self) -> None:
        self._closed = True
        self._spool_fd = None
        self._cleanup = None
        self._release()  # once only: a finalizer

    def __enter__(self) -> Bundle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _cap(limits: ReadLimits, relpath: str) -> int:
    return limits.max_manifest_bytes if relpath == MANIFEST else limits.max_member_bytes


def _remove_private(spool_fd: int | None, cleanup: Path | None) -> None:
    if spool_fd is not None:
        os.close(spool_fd)
    if cleanup is not None:
        shutil.rmtree(cleanup, ignore_errors=True)


def open_bundle(path: str | os.PathLike[str], limits: ReadLimits | None = None) -> Bundle:
    """Open the bundle at `path`; raise BundleError with a one-line reason if it is unusable."""
    return open_bundles([path], limits)[0]


# From this many bytes of a manifest on, validating it in a forked child (while this
# process decodes the next one or spools archives) pays for the fork.
PARALLEL_CHECK_BYTES = 8 * MiB


@dataclass
class _Opening:
    """A bundle whose files are found and whose manifest is decoded, not yet validated."""

    origin: str
    root: Path
    manifest: dict[str, Any]
    size: int  # manifest bytes
    cleanup: Path | None = None
    files: DirectoryFiles | Members | GrowingIndex | None = None
    spool_fd: int | None = None
    # spools the rest of an archive (set while only its manifest is in)
    finish: Callable[[], None] | None = None
    source: IO[bytes] | None = None
    # or a forked child spooling it: its member index, or why the archive is refused
    spooling: Started[tuple[Members | None, str | None]] | None = None
    # or a forked child telling its members as it spools them (bundle/growing.py), and
    # why it refused the archive when it did
    growing: GrowingIndex | None = None
    telling: Started[str | None] | None = None

    def stop_spooling(self) -> None:
        """Stop any child still spooling the archive (its spool stays this opening's)."""
        for child in (self.spooling, self.telling):
            if child is not None:
                child.cancel()
        self.spooling = self.telling = None
        if self.growing is not None:
            self.growing.close()
            self.growing = None

    def release(self) -> None:
        self.stop_spooling()
        if self.source is not None:
            self.source.close()
            self.source = None
        if self.spool_fd is not None:
            os.close(self.spool_fd)
            self.spool_fd = None
        if self.cleanup is not None:
            shutil.rmtree(self.cleanup, ignore_errors=True)

    def bundle(self, limits: ReadLimits, budget: ReadBudget) -> Bundle:
        assert self.files is not None
        return Bundle(
            self.origin,
            self.root,
            self.manifest,
            limits,
            self.cleanup,
            self.files,
            spool_fd=self.spool_fd,
            budget=budget,
        )


def open_bundles(
    paths: list[str | os.PathLike[str]], limits: ReadLimits | None = None
) -> list[Bundle]:
    """Open several bundles (a diff's two) at once: each large manifest is validated in
    a forked child from the moment it is decoded, while this process decodes the next
    one and then finds every bundle's files. Refused as open_bundle() refuses."""
    return open_and_build(paths, lambda bundle: None, limits)[0]


def open_and_build(
    paths: list[str | os.PathLike[str]],
    build: Callable[[Bundle], T],
    limits: ReadLimits | None = None,
) -> tuple[list[Bundle], list[T]]:
    """Open bundles as open_bundles() does and run `build` on each (build its model) as
    soon as its files are found, while the manifests are still being validated in
    forked children (a 1,000-node manifest takes ~1 s) and a later archive may still be
    spooling. `build` may meet a manifest that turns out invalid: then the refusal is
    what is raised, whatever `build` returned or raised. The caller closes the bundles."""
    limits = limits or ReadLimits.from_env()
    keep_freed_memory()  # files read one after another: each reuses the last one's pages
    budget = ReadBudget(limits)  # one for the run: a diff's two bundles share it
    sources = [Path(path) for path in paths]
    openings: list[_Opening] = []
    built: list[Bundle] = []
    results: list[T] = []
    failure: list[Exception] = []  # held until the verdicts say who is at fault

    def run_build(bundle: Bundle) -> None:
        built.append(bundle)
        if failure:
            return
        try:
            results.append(build(bundle))
        except Exception as exc:  # noqa: BLE001 - see `failure`
            failure.append(exc)

    # two archives or more: each one's rest is spooled by a child started the moment its
    # manifest is found, so the spools run beside this process's decoding and building
    # (one archive is, too, from PARALLEL_CHECK_BYTES of manifest on: see _begin)
    in_child = can_fork() and sum(not source.is_dir() for source in sources) > 1
    try:
        for verdict in _begin_all(sources, limits, budget, openings, run_build, in_child):
            if verdict is not None:
                raise BundleError(verdict)
        if failure:
            raise failure[0]
        return built, results
    except BaseException:
        # a built bundle owns its opening's spool; the rest release theirs (and stop
        # any child still spooling)
        for bundle in built:
            bundle.close()
        for opening in openings[: len(built)]:
            opening.stop_spooling()
        for opening in openings[len(built) :]:
            opening.release()
        raise


def _begin(source: Path, limits: ReadLimits, rest_in_child: bool = False) -> _Opening:
    origin = str(source)
    if not source.exists():
        raise BundleError(f"{origin}: no such file or directory")
    if source.is_dir():
        root = _bundle_root(source, origin)
        data = _manifest_bytes(root, origin, limits.max_manifest_bytes)
        return _Opening(origin, root, _decode(data, origin), len(data))
    workdir = Path(tempfile.mkdtemp(prefix="needle-bundle-"))
    opening = _Opening(origin, workdir, {}, 0, cleanup=workdir)
    try:
        fd = os.open(workdir / "bundle.tar", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        opening.spool_fd = fd
        opening.source = source.open("rb")
        spooler = _guarded(
            origin, lambda: Spooler(_decompressed(opening.source, origin).read, fd, limits, origin)
        )
        found = _guarded(origin, spooler.manifest)
        if found is None:  # no manifest anywhere: this raises, naming what is wrong
            _strip_single_folder(_guarded(origin, spooler.finish), origin)
            raise BundleError(f"{origin}: no manifest.json; this is not a needle bundle")
        if found[1] > limits.max_manifest_bytes:
            raise _manifest_too_large(origin, found[1], limits.max_manifest_bytes)
        data = os.pread(fd, found[1], found[0])

        def finish() -> None:
            opening.files = _strip_single_folder(_guarded(origin, spooler.finish), origin)
            if opening.source is not None:
                opening.source.close()
                opening.source = None

        opening.finish = finish
        if rest_in_child or (can_fork() and found[1] >= PARALLEL_CHECK_BYTES):
            # the child reads on from the shared file offsets; this process never
            # touches the stream or writes to the spool again
            if spooler.walk.members.get(MANIFEST) == found:
                _tell_as_spooled(opening, spooler, workdir, origin)
            else:  # in a folder: named as the bundle names them once all are in
                opening.spooling = Started(partial(_spool_rest, opening), "spool")
            opening.finish = None
            opening.source.close()
            opening.source = None
        opening.manifest, opening.size = _decode(data, origin), len(data)
        return opening
    except BaseException:
        opening.release()
        raise


def _tell_as_spooled(opening: _Opening, spooler: Spooler, workdir: Path, origin: str) -> None:
    """Spool the rest of the archive in a forked child that tells this process of each
    member once its bytes are in (bundle/growing.py), so a build can start at once."""
    index_fd = os.open(workdir / "index", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    told_read, told_write = os.pipe()
    opening.growing = GrowingIndex(index_fd, told_read)

    def spool() -> str | None:
        spooler.tell_members(IndexWriter(index_fd, told_write))
        try:
            _guarded(origin, spooler.finish)
        except BundleError as refused:
            return str(refused)
        return None

    try:
        opening.telling = Started(spool, "spool")
    finally:
        os.close(told_write)  # the child's copy is the one whose end says it stopped


def _settle(opening: _Opening, bundle: Bundle) -> None:
    """Wait for the child still spooling `bundle`'s archive: refuse the archive as it
    did, or give the bundle the whole member index."""
    growing, telling = opening.growing, opening.telling
    if growing is None or telling is None:
        return
    try:
        members = growing.whole()
        refusal = telling.result()
    finally:
        opening.stop_spooling()
    if refusal is not None:
        raise BundleError(refusal)
    bundle._all_spooled(members)


def _decode(data: bytes, origin: str) -> dict[str, Any]:
    with paused_gc():  # a 1,000-node manifest is ~10^7 JSON objects
        return decode_manifest(data, origin)


def _verdict(manifest: dict[str, Any], origin: str, reference: dict[str, Any] | None) -> str | None:
    try:
        validate_manifest(manifest, origin, reference)
    except BundleError as refused:
        return str(refused)
    return None


def _begin_all(
    paths: list[Path],
    limits: ReadLimits,
    budget: ReadBudget,
    openings: list[_Opening],
    then: Callable[[Bundle], None],
    rest_in_child: bool,
) -> list[str | None]:
    """Begin each bundle in turn (into `openings`), then find each bundle's files and
    pass it to `then`; each manifest's verdict, in order. A large manifest is checked
    in a forked child while this process goes on. Later manifests are checked against
    the first, whose own verdict comes first: a diff's two manifests share most
    records, each checked once."""
    if not paths:
        for opening in openings:
            _find_files(opening)
            bundle = opening.bundle(limits, budget)
            then(bundle)  # reading members as they are spooled, if they still are
            _settle(opening, bundle)
        return []
    opening = _begin(paths[0], limits, rest_in_child)
    openings.append(opening)
    reference = openings[0].manifest if len(openings) > 1 else None
    check = partial(_verdict, opening.manifest, opening.origin, reference)
    rest = partial(_begin_all, paths[1:], limits, budget, openings, then, rest_in_child)
    if can_fork() and opening.size >= PARALLEL_CHECK_BYTES:
        later, verdict = run_forked([rest, check], "manifest check")
        return [verdict, *later]
    verdict = check()  # in this process: nothing is built from a manifest found invalid
    return [verdict] if verdict is not None else [verdict, *rest()]


def _find_files(opening: _Opening) -> None:
    """An archive's members (spooled here, or by the child spooling it), or the
    directory's files (to be listed as reads reach them)."""
    if opening.growing is not None:
        opening.files = opening.growing
    elif opening.spooling is not None:
        spooling, opening.spooling = opening.spooling, None
        files, refusal = spooling.result()
        if refusal is not None:
            raise BundleError(refusal)
        opening.files = files
    elif opening.finish is not None:
        finish, opening.finish = opening.finish, None
        finish()
    if opening.files is None:
        opening.files = DirectoryFiles(str(opening.root))


def _spool_rest(
    opening: _Opening,
) -> tuple[dict[str, tuple[int, int]] | None, str | None]:
    """An archive's member index, or why it is refused (a refusal must reach the user
    as one line, from whichever process found it)."""
    try:
        assert opening.finish is not None
        opening.finish()
    except BundleError as refused:
        return None, str(refused)
    return opening.files, None


def _guarded(origin: str, step: Callable[[], T]) -> T:
    """Run a step of reading an archive; a broken stream becomes one line of BundleError."""
    try:
        return step()
    except BundleError:
        raise
    except (
        Corrupt,
        EOFError,
        zlib.error,
        isal_zlib.error,
        zstandard.ZstdError,
        OSError,
        ValueError,
    ) as exc:
        raise BundleError(f"{origin}: bundle is truncated or corrupt ({_reason(exc)})") from None


def _decompressed(raw: IO[bytes], origin: str) -> IO[bytes]:
    magic = raw.read(4)
    raw.seek(0)
    if magic[:2] == b"\x1f\x8b":
        # ISA-L's inflate: a 1,000-node bundle's 1.2 GB of tar in 0.2 s (zlib's: 0.7 s),
        # on the path that every later step waits for
        return igzip.IGzipFile(fileobj=raw, mode="rb")
    if magic == b"\x28\xb5\x2f\xfd":
        return zstandard.ZstdDecompressor().stream_reader(raw)  # type: ignore[return-value]
    raw.seek(257)
    is_tar = raw.read(5) == b"ustar"
    raw.seek(0)
    if is_tar:
        return raw
    raise BundleError(
        f"{origin}: not a bundle (expected a .tar.gz, .tar.zst or a directory, "
        f"found {_kind_of(magic)})"
    )


# What a file is, by its first bytes, for the ones people send instead of a bundle.
_MAGIC = {
    b"PK\x03\x04": "a zip archive",
    b"BZh": "a bzip2 file",
    b"\xfd7zX": "an xz file",
    b"7z\xbc\xaf": "a 7-Zip archive",
    b"%PDF": "a PDF document",
}


def _kind_of(magic: bytes) -> str:
    for start, kind in _MAGIC.items():
        if magic.startswith(start):
            return kind
    if not magic:
        return "an empty file"
    if all(32 <= byte < 127 or byte in b"\t\r\n" for byte in magic):
        return "a text file"
    return "a file of another kind"


def _strip_single_folder(
    members: dict[str, tuple[int, int]], origin: str
) -> dict[str, tuple[int, int]]:
    """Members as the bundle names them: manifest.json at the top, or inside a single
    folder someone re-tarred (then that folder's name is dropped)."""
    if MANIFEST in members:
        return members
    tops = {name.split("/", 1)[0] for name in members}
    if len(tops) == 1:
        (top,) = tops
        prefix = f"{top}/"
        if f"{prefix}{MANIFEST}" in members:
            return {name.removeprefix(prefix): at for name, at in members.items()}
    raise BundleError(f"{origin}: no manifest.json; this is not a needle bundle")


def _manifest_bytes(root: Path, origin: str, cap: int) -> bytes:
    """manifest.json of a directory bundle: a regular file (no link followed) of at
    most `cap` bytes, refused from its size before a byte of it is read."""
    try:
        descriptor = os.open(root / MANIFEST, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        raise BundleError(f"{origin}: no manifest.json; this is not a needle bundle") from None
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise BundleError(f"{origin}: no manifest.json; this is not a needle bundle")
        if status.st_size > cap:
            raise _manifest_too_large(origin, status.st_size, cap)
        chunks, size = [], 0
        while chunk := os.read(descriptor, min(cap + 1 - size, 1 << 24)):
            chunks.append(chunk)
            size += len(chunk)
            if size > cap:  # it grew since fstat
                raise _manifest_too_large(origin, size, cap)
        return b"".join(chunks)
    finally:
        os.close(descriptor)


def _manifest_too_large(origin: str, size: int, cap: int) -> BundleError:
    return BundleError(
        f"{origin}: manifest.json holds {size} bytes, over the {cap}-byte cap; set "
        "NEEDLE_MAX_MANIFEST_BYTES higher if this bundle is trusted"
    )


def _bundle_root(directory: Path, origin: str) -> Path:
    """The directory holding manifest.json: the top, or a single folder someone re-tarred."""
    if (directory / MANIFEST).exists():
        return directory
    entries = list(directory.iterdir())
    only = entries[0] if len(entries) == 1 else None
    if only is not None and only.is_dir() and not only.is_symlink() and (only / MANIFEST).exists():
        return only
    raise BundleError(f"{origin}: no manifest.json; this is not a needle bundle")


def _reason(exc: BaseException) -> str:
    """Why an archive could not be read, in needle's words where the library's would be
    its internals ("Compressed file ended before the end-of-stream marker ...")."""
    if isinstance(exc, EOFError):
        return "it ends before its compressed data does: was it cut short?"
    if isinstance(exc, zlib.error | isal_zlib.error | gzip.BadGzipFile | zstandard.ZstdError):
        return "its compressed data is damaged"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc) or "unreadable data"
    return text.splitlines()[0]
