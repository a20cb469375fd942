"""Pausing Python's cyclic garbage collector while building large object graphs.

A 1,000-node bundle becomes ~10^7 long-lived objects (routes, links, facts) that never
form garbage cycles; with the collector on, every few thousand allocations it walks
them all again, which made building the model ~2x slower. Nested pauses are fine: only
the outermost one turns collection back on.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            # what was built is long-lived: keep the collector from walking it ever again
            gc.freeze()
            gc.enable()
