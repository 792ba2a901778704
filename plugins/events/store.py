"""Where the events of many entities live: three flat arrays and, per entity, a start and a length.

An :class:`EventStore` is the ``items`` of event :class:`~contrastkit.core.data.Samples`: a sequence
whose i-th element is entity i's :class:`EventSeq` (views into the flat arrays, sorted by time).
The flat arrays are either in memory or memory-mapped files (:meth:`EventStore.open`), which is how
a data set larger than memory is used: the reader writes the grouped events to disk bucket by
bucket (:mod:`.readers`), ``prepare`` maps them to the vocabulary chunk by chunk into new files,
and training and embedding read only the entities of the current batch, through the page cache.

Subsets (the train split, entities with enough events, each entity's last ``max_events``) only
change the per-entity starts and lengths; the events are never copied for them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

__all__ = ["EventSeq", "EventStore", "FlatWriter"]


class EventSeq(dict):
    """One entity's events: a dict of ``time``, ``cat`` and ``num`` arrays that compares by value
    (``a == b`` is one bool, NaN equal to NaN), so items can be checked for equality like arrays."""

    __hash__ = None  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, dict) or set(self) != set(other):
            return False
        for key, a in self.items():
            b = other[key]
            if not isinstance(b, np.ndarray) or a.shape != b.shape or a.dtype != b.dtype:
                return False
            if not np.array_equal(a, b, equal_nan=a.dtype.kind == "f"):
                return False
        return True

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)


class EventStore(Sequence):
    """Entities' events over flat arrays: ``time`` float64 (N,), ``cat`` int32 (N, C_cat), ``num``
    float32 (N, C_num); entity i holds rows ``starts[i] : starts[i] + lengths[i]``.

    Indexing with an int gives an :class:`EventSeq` of views; with a slice, or :meth:`subset` with
    any index, a new store over the same arrays.
    """

    def __init__(self, time: np.ndarray, cat: np.ndarray, num: np.ndarray, starts: np.ndarray,
                 lengths: np.ndarray, home: Path | None = None) -> None:
        self.time, self.cat, self.num = time, cat, num
        self.starts = np.asarray(starts, dtype=np.int64)
        self.lengths = np.asarray(lengths, dtype=np.int64)
        if self.starts.shape != self.lengths.shape:
            raise ValueError(f"{len(self.starts)} starts but {len(self.lengths)} lengths.")
        #: the folder of the memory-mapped files (None in memory); prepared copies are written beside
        self.home = home

    @classmethod
    def from_flat(cls, starts: np.ndarray, time: np.ndarray, cat: np.ndarray, num: np.ndarray,
                  home: Path | None = None) -> "EventStore":
        """Contiguous entities cut at ``starts`` (ascending, the first 0)."""
        starts = np.asarray(starts, dtype=np.int64)
        lengths = np.diff(np.append(starts, len(time)))
        return cls(time, cat, num, starts, lengths, home)

    # -- the sequence -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self.subset(np.arange(len(self))[i])
        i = int(i)
        if i < 0:
            i += len(self)
        a = int(self.starts[i])
        b = a + int(self.lengths[i])
        return EventSeq(time=self.time[a:b], cat=self.cat[a:b], num=self.num[a:b])

    def __iter__(self) -> Iterator[EventSeq]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        where = f"files in {self.home}" if self.on_disk else "memory"
        return f"EventStore({len(self):,} entities, {self.n_events:,} events, in {where})"

    @property
    def on_disk(self) -> bool:
        return isinstance(self.time, np.memmap)

    @property
    def n_events(self) -> int:
        return int(self.lengths.sum())

    # -- subsets (no event is copied) ---------------------------------------------------------
    def subset(self, index) -> "EventStore":
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        return EventStore(self.time, self.cat, self.num, self.starts[index], self.lengths[index], self.home)

    def last(self, max_events: int) -> "EventStore":
        """Each entity's last ``max_events`` events."""
        keep = np.minimum(self.lengths, max_events)
        return EventStore(self.time, self.cat, self.num, self.starts + self.lengths - keep, keep, self.home)

    # -- reading in chunks --------------------------------------------------------------------
    def positions(self, lo: int, hi: int) -> np.ndarray:
        """Row numbers of the events of entities ``lo:hi``, entity by entity."""
        lens = self.lengths[lo:hi]
        total = int(lens.sum())
        offsets = np.cumsum(lens) - lens
        return np.repeat(self.starts[lo:hi] - offsets, lens) + np.arange(total, dtype=np.int64)

    def chunks(self, max_events: int = 4_000_000) -> Iterator[tuple[int, int]]:
        """Ranges ``(lo, hi)`` of entities holding about ``max_events`` events each."""
        ends = np.cumsum(self.lengths)
        lo, n = 0, len(self)
        while lo < n:
            base = int(ends[lo - 1]) if lo else 0
            hi = int(np.searchsorted(ends, base + max_events, side="right"))
            hi = max(hi, lo + 1)
            yield lo, min(hi, n)
            lo = hi

    def gather(self, lo: int, hi: int, fields: Sequence[str] = ("time", "cat", "num")) -> dict[str, np.ndarray]:
        """The events of entities ``lo:hi`` as flat arrays (in memory)."""
        pos = self.positions(lo, hi)
        contiguous = len(pos) and pos[-1] - pos[0] + 1 == len(pos)
        out = {}
        for f in fields:
            arr = getattr(self, f)
            out[f] = np.asarray(arr[int(pos[0]):int(pos[-1]) + 1]) if contiguous else arr[pos]
        return out

    def sample_rows(self, n: int, seed: int = 0) -> np.ndarray:
        """Row numbers of ``n`` events drawn uniformly (with replacement: no permutation of all the
        events is held; sorted, for reading in order), or of all the events if there are at most ``n``."""
        total = self.n_events
        ends = np.cumsum(self.lengths)
        if n >= total:
            return self.positions(0, len(self))
        g = np.sort(np.random.default_rng(seed).integers(0, total, size=n))
        ent = np.searchsorted(ends, g, side="right")
        return self.starts[ent] + g - (ends[ent] - self.lengths[ent])

    # -- files ------------------------------------------------------------------------------------
    @staticmethod
    def open(folder: Path, n_cat: int, n_num: int, n_rows: int, starts: np.ndarray,
             lengths: np.ndarray) -> "EventStore":
        """Memory-map the flat files written by a :class:`FlatWriter` in ``folder``."""
        folder = Path(folder)

        def mm(name: str, dtype, shape):
            if n_rows == 0 or (len(shape) == 2 and shape[1] == 0):
                return np.zeros(shape, dtype=dtype)
            return np.memmap(folder / name, dtype=dtype, mode="r", shape=shape)

        return EventStore(mm("time.f64", np.float64, (n_rows,)), mm("cat.i32", np.int32, (n_rows, n_cat)),
                          mm("num.f32", np.float32, (n_rows, n_num)), starts, lengths, home=folder)


class FlatWriter:
    """Appends flat event arrays to three files in a new folder (plain writes, not a writable map,
    so the written pages never count as the process's memory), then opens them as a store."""

    def __init__(self, folder: Path, n_cat: int, n_num: int) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.n_cat, self.n_num, self.rows = n_cat, n_num, 0
        self._files = {name: open(self.folder / name, "wb") for name in ("time.f64", "cat.i32", "num.f32")}

    def append(self, time: np.ndarray, cat: np.ndarray, num: np.ndarray) -> None:
        np.ascontiguousarray(time, dtype=np.float64).tofile(self._files["time.f64"])
        np.ascontiguousarray(cat, dtype=np.int32).tofile(self._files["cat.i32"])
        np.ascontiguousarray(num, dtype=np.float32).tofile(self._files["num.f32"])
        self.rows += len(time)

    def close(self) -> None:
        for f in self._files.values():
            f.close()

    def open(self, starts: np.ndarray, lengths: np.ndarray) -> EventStore:
        self.close()
        return EventStore.open(self.folder, self.n_cat, self.n_num, self.rows, starts, lengths)


def cache_root(options: dict | None = None) -> Path:
    """Where out-of-core event files go: ``data_options.cache_dir``, else ``$CONTRASTKIT_CACHE``,
    else ``$XDG_CACHE_HOME/contrastkit`` (``~/.cache/contrastkit``)."""
    given = (options or {}).get("cache_dir") or os.environ.get("CONTRASTKIT_CACHE")
    if given:
        return Path(given).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "contrastkit"


def scratch_folder(parent: Path, prefix: str) -> Path:
    """A new folder under ``parent`` for files written now (renamed into place when complete)."""
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))


def publish(scratch: Path, final: Path, meta: dict) -> Path:
    """Write ``meta.json`` last, then rename the finished scratch folder to ``final`` (atomic: a
    crash leaves no half-written cache entry under the final name)."""
    with open(scratch / "meta.json", "w") as fh:
        json.dump(meta, fh)
    try:
        os.replace(scratch, final)
    except OSError:  # another process published the same entry first: use theirs
        shutil.rmtree(scratch, ignore_errors=True)
    return final
