"""Reading a table too large to group in memory: hash buckets of entities, streamed, memory-mapped, cached.

``data_options.out_of_core`` ("auto" by default: when reading in memory would need more than half
the memory available, :func:`contrastkit.core.available_memory`) sends a table here instead of
:func:`.table.events_from_frame`: polars' streaming engine writes hash buckets of entities, each is
sorted and appended to flat files that are memory-mapped (:class:`~.store.EventStore`) and cached.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time as time_mod
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl

from contrastkit.core import DataError, available_memory, file_fingerprint

from .messages import note
from .store import EventStore, FlatWriter, cache_root, publish, scratch_folder
from .table import _Plan, _collect_sorted, _flatten, _global_dictionaries, _meta, _note_dropped, _nothing_left, _polars_error, _sorted_checked


# --------------------------------------------------------------------------- out of core
#: Bump when the layout of the files below changes (old cache entries are then ignored).
STORE_FORMAT = 1
_CACHE_OPTIONS = ("id_column", "time_column", "categorical", "numeric", "label_column", "time_format", "separator",
                  "split_column")


def _bytes_in_memory(plan: _Plan, path: Path) -> int:
    """About how many bytes reading ``path`` in memory would hold at its peak (frame, sort, arrays)."""
    per_row = 16 + (8 if plan.keyed else 0) + 8 + 8 * len(plan.cats) + 8 * len(plan.nums)
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            rows = int(pl.scan_parquet(path).select(pl.len()).collect().item())
        except Exception:  # noqa: BLE001 - the reading itself reports problems
            rows = path.stat().st_size // 8
        return 3 * rows * per_row
    return 3 * path.stat().st_size  # text: at least as many bytes per row as in memory


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GiB"


def _memory_budget(options: dict) -> int:
    mb = options.get("memory_budget_mb")
    if mb is None:
        return max(min(available_memory() // 4, 2 << 30), 128 << 20)
    if isinstance(mb, bool) or not isinstance(mb, (int, float)) or not mb > 0:
        raise DataError(f"data_options.memory_budget_mb must be a positive number of MiB, got {mb!r}.")
    return max(int(mb * (1 << 20)), 1 << 16)


def use_out_of_core(plan: _Plan, path: Path, options: dict) -> tuple[bool, int]:
    """(read out of core?, estimated bytes in memory), by ``data_options.out_of_core``: true, false or
    "auto" (the default: when reading in memory would need more than half the available memory)."""
    mode = options.get("out_of_core", "auto")
    if mode not in (True, False, "auto"):
        raise DataError(f"data_options.out_of_core must be true, false or \"auto\", got {mode!r}.")
    need = _bytes_in_memory(plan, path) if mode is not False else 0
    if mode == "auto":
        return need > available_memory() // 2, need
    return bool(mode), need


def _cache_key(path: Path, options: dict, plan: _Plan) -> str:
    st = path.stat()
    blob = json.dumps({"file": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                       "options": {k: options.get(k) for k in _CACHE_OPTIONS}, "format": STORE_FORMAT,
                       "columns": [plan.id_col, plan.time_col, plan.cats, plan.nums, plan.own_label]},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _open_cached(folder: Path) -> tuple[list, EventStore, list | None, dict, str]:
    meta = json.loads((folder / "meta.json").read_text())
    ent = pl.read_parquet(folder / "entities.parquet")
    store = EventStore.open(folder, len(meta["reader_meta"]["cat_columns"]), len(meta["reader_meta"]["num_columns"]),
                            meta["rows"], ent["start"].to_numpy(), ent["length"].to_numpy())
    labels = ent["label"].to_list() if "label" in ent.columns else None
    return ent["id"].to_list(), store, labels, meta["reader_meta"], meta["fingerprint"]


def read_out_of_core(plan: _Plan, path: Path, options: dict, need: int,
                     quiet: bool = False) -> tuple[list, EventStore, list | None, dict, str]:
    """Group the events of ``path`` by entity without holding them in memory.

    One streaming pass (polars' streaming engine) writes the rows into buckets by a hash of the
    entity id, as parquet files; each bucket — a few hundred MB at most, ``data_options.
    memory_budget_mb`` — is then read, sorted by (entity, time) and appended to three flat files,
    which are memory-mapped.  The result is cached under :func:`~.store.cache_root` (keyed by the
    file's path, size, modification time and the column options), so ``embed`` and ``evaluate`` on
    the same file reuse it.  Returns ``(ids, store, own labels, meta, fingerprint)``.
    """
    src = str(path)
    root = cache_root(options) / "events"
    key = _cache_key(path, options, plan)
    final = root / key
    if (final / "meta.json").is_file():
        try:
            out = _open_cached(final)
            if not quiet:
                note(f"{src}: using the events grouped earlier in {final}.")
            return out
        except Exception:  # noqa: BLE001 - a damaged entry is rebuilt
            shutil.rmtree(final, ignore_errors=True)
    budget = _memory_budget(options)
    n_buckets = int(min(max(1, -(-need // budget)), 4096))
    t0 = time_mod.perf_counter()
    if not quiet:
        note(f"{src}: reading out of core (about {_size(need)} in memory otherwise, {_size(available_memory())} "
              f"available): {n_buckets} bucket(s) of at most {_size(budget)}, files in {final}.")
    scratch = scratch_folder(root, key + ".")
    pool = ThreadPoolExecutor(max_workers=1)
    fingerprint = pool.submit(file_fingerprint, path)  # hashed (the GIL released) while polars works
    try:
        buckets = scratch / "buckets"
        query = plan.query.with_columns((pl.col(plan.id_col).hash(seed=0) % n_buckets).alias("__b"))
        try:
            query.sink_parquet(pl.PartitionBy(buckets, key="__b", include_key=False), mkdir=True)
        except pl.exceptions.PolarsError as exc:
            raise _polars_error(exc, src) from None
        parts = {int(d.name.split("=", 1)[1]): sorted(d.glob("*.parquet")) for d in buckets.glob("__b=*")}
        if not parts:
            raise DataError(f"{src}: no events (a header but no rows).")
        every = pl.scan_parquet([f for fs in parts.values() for f in fs])
        dictionaries = _global_dictionaries(every, plan.cats, every.collect_schema())
        writer = FlatWriter(scratch, len(plan.cats), len(plan.nums))
        ids_parts, starts_parts, len_parts, label_parts = [], [], [], []
        dropped = {"id": 0, "time": 0}
        for i, p in enumerate(sorted(parts)):
            df, lost = _sorted_checked(plan, _collect_sorted(plan, pl.scan_parquet(parts[p])), quiet)
            dropped = {k: dropped[k] + lost[k] for k in dropped}
            if df.height:
                ids_s, starts, t, cat, num, _, own = _flatten(plan, df, dictionaries)
                starts_parts.append(starts + writer.rows)
                len_parts.append(np.diff(np.append(starts, df.height)))
                ids_parts.append(ids_s)
                if own is not None:
                    label_parts.append(own)
                writer.append(t, cat, num)
            del df
            shutil.rmtree(buckets / f"__b={p}", ignore_errors=True)
            if not quiet and n_buckets > 1 and (i + 1) % max(1, len(parts) // 10) == 0:
                tty = sys.stderr.isatty()
                print(f"{chr(13) if tty else ''}  grouped {i + 1}/{len(parts)} buckets, {writer.rows:,} events",
                      end="" if tty else "\n", file=sys.stderr, flush=True)
        if not quiet and n_buckets > 1 and sys.stderr.isatty():
            print(file=sys.stderr)
        writer.close()
        if not quiet:
            _note_dropped(src, dropped, plan.time_col, plan.id_col)
        if writer.rows == 0:
            raise _nothing_left(src, plan, dropped)
        ids_s = pl.concat(ids_parts)
        order = ids_s.arg_sort(nulls_last=True).to_numpy()  # entities in the order of the in-memory reader
        ent = {"id": ids_s.gather(order), "start": np.concatenate(starts_parts)[order],
               "length": np.concatenate(len_parts)[order]}
        if label_parts:
            ent["label"] = pl.concat(label_parts).gather(order)
        pl.DataFrame(ent).write_parquet(scratch / "entities.parquet")
        shutil.rmtree(buckets, ignore_errors=True)
        reader_meta = _meta(plan, {c: d[3] for c, d in dictionaries.items()}, writer.rows)
        reader_meta["out_of_core"] = True
        fp = fingerprint.result()
        publish(scratch, final, {"reader_meta": reader_meta, "rows": writer.rows, "fingerprint": fp,
                                 "source": src, "format": STORE_FORMAT})
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    finally:
        pool.shutdown(wait=True)
    out = _open_cached(final)
    if not quiet:
        note(f"{src}: grouped {out[3]['n_events']:,} events of {len(out[0]):,} entities out of core in "
              f"{time_mod.perf_counter() - t0:.1f} s.")
    return out
