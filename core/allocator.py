"""Keep freed memory in the process instead of returning it to the OS at once (glibc only).

glibc serves every block above its mmap threshold (at most 32 MiB by default)
with a fresh ``mmap`` and unmaps it on free, so a training step that allocates
and frees the same large activations every step pays a page fault per 4 KiB
each time, and trims the heap top whenever 128 KiB of it are free.  Raising
both thresholds lets the allocator reuse those blocks: measured 2.2–3.3×
faster steps for the point-cloud encoders on a 2-core CPU (bench/bench_points.py
``--tune-malloc``), identical results.  The cost: the process keeps its peak
memory until it exits — right for a command-line run, which is where
contrastkit asks for it (:func:`request`); training and embedding apply it
(:func:`apply_requested`) once the data are read and prepared, so the peak of
reading a large data set is given back first and not kept for the whole run.  Set ``CONTRASTKIT_MALLOC_TUNE=0`` to keep glibc's defaults.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

ENV = "CONTRASTKIT_MALLOC_TUNE"
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's malloc.h


def tune_allocator(mmap_threshold: int = 2**30, trim_threshold: int = 2**31 - 1) -> bool:
    """Raise glibc's mmap and trim thresholds; True if it was done (False elsewhere or when switched off)."""
    if os.environ.get(ENV, "1").strip().lower() in ("0", "false", "no", "off") or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to tune
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold))) and bool(mallopt(_M_TRIM_THRESHOLD,
                                                                                   int(trim_threshold)))


_requested = False
_applied = False


def request() -> None:
    """Ask for :func:`tune_allocator` at the start of training (the CLI does; a library user is not affected)."""
    global _requested
    _requested = True


def apply_requested() -> bool:
    """Tune the allocator if :func:`request` was called and it is not done yet; True if it was done now."""
    global _applied
    if not _requested or _applied:
        return False
    _applied = tune_allocator()
    return _applied
