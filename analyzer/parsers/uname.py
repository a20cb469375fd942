"""Parses ``uname -a``: which kernel a node runs.

Form: one line, ``SYSNAME NODENAME RELEASE VERSION... MACHINE [PROCESSOR PLATFORM] OS``
(GNU coreutils and busybox alike), e.g. ``Linux node-1 5.4.0-104-generic #118-Ubuntu SMP
Wed Mar 2 19:02:41 UTC 2022 x86_64 x86_64 x86_64 GNU/Linux``. The version field holds
spaces, so only the first three fields are read by position.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from needle.analyzer.parsers.common import Parsed, lines_of

_NUMBERS = re.compile(r"\d+(?:[.-]\d+)*")


@dataclass(frozen=True, slots=True)
class Uname:
    """``uname -a``: the kernel's name (Linux), the host's name and the kernel release."""

    kernel_name: str
    nodename: str
    release: str  # e.g. "5.4.0-104-generic", "3.10.0-1127.el7.x86_64"


def parse_uname(data: bytes) -> Parsed[Uname]:
    """The first line with at least three fields; every other non-blank line unparsed."""
    records: list[Uname] = []
    unparsed: list[str] = []
    for line in lines_of(data):
        if not line.strip():
            continue
        fields = line.split()
        if records or len(fields) < 3:
            unparsed.append(line)
            continue
        records.append(Uname(kernel_name=fields[0], nodename=fields[1], release=fields[2]))
    return Parsed(tuple(records), tuple(unparsed))


def kernel_version(release: str) -> tuple[int, ...]:
    """The numbers a kernel release starts with, for comparing releases: "5.10.53" ->
    (5, 10, 53); "5.4.0-104-generic" -> (5, 4, 0, 104) (a distribution's ABI number
    after the dash orders its own builds of one upstream version); () when the release
    does not start with a number."""
    found = _NUMBERS.match(release.strip())
    if found is None:
        return ()
    return tuple(int(part) for part in re.split(r"[.-]", found.group()))
