"""Giving freed memory back to the operating system.

Freeing a 1,000-node manifest (~10^6 small objects) leaves holes all over glibc's heap
that it keeps for later; `malloc_trim` returns the free pages now, before the rules run
(and before forked workers would share, then copy, them). A no-op off glibc.
"""

from __future__ import annotations

import ctypes


def give_back_free_memory() -> None:
    # the symbols already loaded into this process (libc's among them): looking libc up
    # by name with ctypes.util.find_library would run `ldconfig -p` on every analysis
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return
    trim(0)
