"""Readers for event sequences: one row per event in parquet or CSV, CDNOW, synthetic transactions.

Every reader returns :class:`~contrastkit.core.data.Samples` with one item per
entity (a client, a customer, a device): a dict of numpy arrays holding the
entity's events sorted by time,

* ``"time"``: float64 (L,), days since the Unix epoch for dates and datetimes
  (microsecond resolution; the column's own unit for a numeric time column);
* ``"cat"``: int32 (L, C_cat), codes into the *reader's* dictionary of each
  categorical column (``meta["cat_names"][column]``, the distinct values as
  text); ``prepare`` maps them to the run's fitted vocabulary;
* ``"num"``: float32 (L, C_num), the raw numeric fields.

Reading is lazy (``pl.scan_parquet`` / ``pl.scan_csv``): only the named
columns are read, rows are sorted by (entity, time) inside polars — by one
int64 key where the id is an integer, about 4× faster than a two-column
sort — and the items are an :class:`~.store.EventStore`: views into a few flat
arrays cut at the entity boundaries, so no Python loop ever runs per event.

A table too large to group in memory (``data_options.out_of_core``, "auto" by
default) is streamed instead (:func:`read_out_of_core`): hash buckets of
entities written by polars' streaming engine, each sorted and appended to flat
files that are memory-mapped and cached.
"""

from __future__ import annotations

from datetime import timedelta
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from contrastkit.core import DataError, Reader, Samples, array_fingerprint, file_fingerprint, package_path

from .store import EventSeq
from .out_of_core import read_out_of_core, use_out_of_core
from .table import ID_CANDIDATES, _join_labels, _pick, _plan, _scan, _split_column, events_from_frame, split_items


__all__ = ["EventSeq", "EventsReader", "CDNOWReader", "SyntheticReader", "READERS", "events_from_frame", "split_items",
           "cdnow_path"]


def read_split(ids: list, lf: pl.LazyFrame, labels_lf: pl.LazyFrame | None, options: dict, src: str,
               id_col: str) -> list[str] | None:
    """Each entity's source split ("train"/"test") from a split column of the labels table (first) or
    of the events table (one value per entity), or None when neither has one."""
    from contrastkit.core import TEST, TRAIN

    table, tid, where = None, None, src
    if labels_lf is not None:
        schema = labels_lf.collect_schema()
        col = _split_column(schema, options, src, required=options.get("split_column") is None)
        if col is not None:
            tid = options.get("labels_id_column") or options.get("id_column")
            if tid is None or tid not in schema.names():
                tid = _pick(schema, None, ID_CANDIDATES, "entity id", f"{src} labels", "labels_id_column")
            table, where = labels_lf.select(pl.col(tid).cast(pl.String).alias("__id"),
                                            pl.col(col).cast(pl.String).alias("__s")), f"{src} labels"
    if table is None:
        col = _split_column(lf.collect_schema(), options, src)
        if col is None:
            return None
        table = lf.select(pl.col(id_col).cast(pl.String).alias("__id"), pl.col(col).cast(pl.String).alias("__s"))
    per = table.with_columns(pl.col("__s").str.strip_chars().str.to_lowercase()) \
        .group_by("__id").agg(pl.col("__s").drop_nulls().unique().alias("__v")).collect()
    bad = per.filter(pl.col("__v").list.eval(pl.element().is_in([TRAIN, TEST]).not_()).list.any())
    if bad.height:
        row = bad.row(0, named=True)
        wrong = next(v for v in row["__v"] if v not in (TRAIN, TEST))
        raise DataError(f"{where}: split column {col!r} holds {wrong!r} for entity {row['__id']!r}; expected "
                        "'train' or 'test'.")
    mixed = per.filter(pl.col("__v").list.len() > 1)
    if mixed.height:
        raise DataError(f"{where}: entity {mixed['__id'][0]!r} has both 'train' and 'test' in split column "
                        f"{col!r}; a split is per entity.")
    left = pl.DataFrame({"__id": pl.Series([str(i) for i in ids], dtype=pl.String)})
    joined = left.join(per.with_columns(pl.col("__v").list.first().alias("__s")), on="__id", how="left",
                       maintain_order="left")["__s"]
    missing = joined.null_count()
    if missing:
        raise DataError(f"{where}: {missing} of {len(ids)} entities have no value in split column {col!r} "
                        f"(e.g. {ids[int(joined.is_null().arg_max())]!r}); give every entity 'train' or 'test'.")
    return joined.to_list()


def _labels_lazy(path: str, src: str) -> pl.LazyFrame:
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"{p}: no such labels file (data_options.labels).")
    return _scan(p, {})


# ---------------------------------------------------------------------------
class EventsReader(Reader):
    """One row per event in parquet or CSV; options name the columns (or they are inferred)."""

    name = "events"
    suffixes = (".parquet", ".pq", ".csv", ".tsv")
    description = "Event tables (parquet/CSV, one row per event): entity id, time, categorical and numeric fields"

    def read(self, source: str, options: dict[str, Any] | None = None) -> Samples:
        options = dict(options or {})
        path = Path(source).expanduser()
        if not path.is_file():
            raise DataError(f"{path}: no such file.")
        lf = _scan(path, options)
        labels_lf = _labels_lazy(options["labels"], str(path)) if options.get("labels") else None
        files = [path] + ([Path(options["labels"]).expanduser()] if options.get("labels") else [])
        plan = _plan(lf, options, str(path), labels_lf, quiet=False)
        out_of_core, need = use_out_of_core(plan, path, options)
        if out_of_core:
            ids, items, labels, meta, fp = read_out_of_core(plan, path, options, need)
            if labels_lf is not None:  # the labels file is joined anew every time
                fp += "+" + file_fingerprint(*files[1:])
                labels = _join_labels(labels_lf, ids, None, options, str(path))
            split = read_split(ids, lf, labels_lf, options, str(path), plan.id_col)
            return Samples(ids=ids, items=items, labels=labels, split=split, meta=meta, source=str(path),
                           fingerprint=fp)
        # sha256 releases the GIL: the fingerprint is hashed while polars reads and sorts
        with ThreadPoolExecutor(max_workers=1) as pool:
            fingerprint = pool.submit(file_fingerprint, *files)
            ids, items, labels, meta = events_from_frame(lf, options, str(path), labels_lf, plan=plan)
            split = read_split(ids, lf, labels_lf, options, str(path), plan.id_col)
            return Samples(ids=ids, items=items, labels=labels, split=split, meta=meta, source=str(path),
                           fingerprint=fingerprint.result())


# ---------------------------------------------------------------------------
CDNOW_FILES = {"CDNOW": "CDNOW_master.txt", "CDNOW_sample": "CDNOW_sample.txt"}
LIFETIMES_HINT = "pip install --no-deps lifetimes==0.11.3"
#: Day 0 of CDNOW (1997-01-01) in days since the Unix epoch.
CDNOW_DAY0 = 9862


def cdnow_path(name: str = "CDNOW") -> Path | None:
    """The CDNOW file shipped with the ``lifetimes`` package (found without importing it)."""
    path = package_path("lifetimes", "datasets", CDNOW_FILES[name])
    return path if path is not None and path.is_file() else None


def read_cdnow_frame(path: Path) -> pl.DataFrame:
    """CDNOW's whitespace-separated purchases as (customer_id, day, cds, amount)."""
    lines = pl.read_csv(path, has_header=False, new_columns=["line"], separator="\x1f", quote_char=None)
    parts = lines.select(pl.col("line").str.strip_chars().str.extract_groups(
        r"^(\S+)\s+(?:\S+\s+)?(\d{8})\s+(\d+)\s+([-\d.]+)$")).unnest("line")
    parts.columns = ["customer_id", "date", "cds", "amount"]
    parts = parts.drop_nulls()
    return parts.select(
        pl.col("customer_id"),
        pl.col("date").str.to_date("%Y%m%d").alias("date"),
        pl.col("cds").cast(pl.Float32),
        pl.col("amount").cast(pl.Float32),
    )


class CDNOWReader(Reader):
    """CDNOW purchases (Fader, Hardie & Lee 2005, shipped in ``lifetimes``), split in time.

    Each customer's items are the purchases of the calibration period (the
    first ``calibration_weeks`` = 39 weeks, 1997-01-01 to 1997-09-30, as in the
    BTYD literature); the label comes from the hold-out period that follows
    (to 1998-06-30): ``target = "repeat"`` (default) is 1 if the customer buys
    again in the hold-out, else 0; ``target = "spend"`` is log1p of the
    hold-out spend (a regression target).  The split in time comes before
    anything is fitted: no hold-out purchase ever reaches the encoder.
    """

    name = "cdnow"
    suffixes = ()
    description = "CDNOW purchases (lifetimes), calibration-period sequences, hold-out repeat purchase / spend"

    def datasets(self) -> dict[str, str]:
        out = {}
        if cdnow_path("CDNOW") is not None:
            out["CDNOW"] = ("CDNOW: 23,570 customers' CD purchases 1997-98; sequence of the first 39 weeks, label: "
                            "repeat purchase in the next 39 weeks")
        if cdnow_path("CDNOW_sample") is not None:
            out["CDNOW_sample"] = "CDNOW sample: 2,357 customers (10%), same task as CDNOW"
        return out

    def read(self, source: str, options: dict[str, Any] | None = None) -> Samples:
        options = dict(options or {})
        path = cdnow_path(source)
        if path is None:
            raise DataError(f"{source}: the CDNOW file ships with the lifetimes package; {LIFETIMES_HINT}.")
        weeks = options.get("calibration_weeks", 39)
        if isinstance(weeks, bool) or not isinstance(weeks, (int, float)) or not 1 <= weeks <= 77:
            raise DataError(f"data_options.calibration_weeks must be a number of weeks in [1, 77], got {weeks!r}.")
        target = options.get("target", "repeat")
        if target not in ("repeat", "spend"):
            raise DataError(f"data_options.target must be \"repeat\" or \"spend\" for CDNOW, got {target!r}.")
        frame = read_cdnow_frame(path)
        day0 = frame["date"].min()
        cut = day0 + timedelta(days=int(round(7 * weeks)))
        calib = frame.filter(pl.col("date") < cut)
        hold = frame.filter(pl.col("date") >= cut).group_by("customer_id").agg(
            pl.col("amount").sum().alias("spend"), pl.len().alias("n"))
        opts = {"id_column": "customer_id", "time_column": "date", "categorical": [], "numeric": ["cds", "amount"]}
        ids, items, _, meta = events_from_frame(calib.lazy(), opts, source, quiet=True)
        idf = pl.DataFrame({"customer_id": pl.Series(ids, dtype=pl.String)})
        joined = idf.join(hold, on="customer_id", how="left", maintain_order="left")
        if target == "repeat":
            labels = (joined["n"].fill_null(0) > 0).cast(pl.Int64).to_list()
        else:
            labels = np.log1p(joined["spend"].fill_null(0.0).to_numpy().astype(np.float64)).tolist()
        meta.update({"calibration_end": str(cut), "target": target, "task": "regression" if target == "spend"
                     else "classification"})
        return Samples(ids=ids, items=items, labels=labels, meta=meta, source=source,
                       fingerprint=file_fingerprint(path) + f"-w{weeks}-{target}")


# ---------------------------------------------------------------------------
class SyntheticReader(Reader):
    """Generated transactions whose class changes the generating process (see :mod:`.synthetic`)."""

    name = "synthetic_transactions"
    suffixes = ()
    description = "Generated transactions with a known class label (for tests and scale)"

    def datasets(self) -> dict[str, str]:
        return {"synthetic_transactions": "generated card transactions, 2,000 clients × 50–300 events, amount + "
                                          "100 category codes, a binary class that changes the process "
                                          "(data_options n_clients, seed, synthetic_min_events, synthetic_max_events)"}

    def read(self, source: str, options: dict[str, Any] | None = None) -> Samples:
        from .synthetic import generate_transactions

        options = dict(options or {})
        n = options.get("n_clients", 2000)
        seed = options.get("seed", 0)
        if isinstance(n, bool) or not isinstance(n, int) or n < 2:
            raise DataError(f"data_options.n_clients must be an integer ≥ 2, got {n!r}.")
        # min_events/max_events are prepare's options; the generator's own lengths have their own names
        kwargs = {k: options[k] for k in ("n_categories", "signal") if k in options}
        for key in ("min_events", "max_events"):
            if f"synthetic_{key}" in options:
                kwargs[key] = options[f"synthetic_{key}"]
        try:
            g = generate_transactions(n_clients=n, seed=int(seed), **kwargs)
        except ValueError as exc:
            raise DataError(f"synthetic_transactions: {exc}") from None
        starts = np.concatenate([[0], np.cumsum(g["lengths"])[:-1]])
        n_cat = int(kwargs.get("n_categories", 100))
        items = split_items(starts, g["event_time"], g["category"][:, None],
                            g["amount"][:, None].astype(np.float32))
        meta = {"cat_columns": ["category"], "num_columns": ["amount"],
                "cat_names": {"category": [str(i) for i in range(n_cat)]}, "id_column": "client_id",
                "time_column": "event_time", "granularity": "entity", "n_events": int(len(g["event_time"]))}
        return Samples(ids=list(range(n)), items=items, labels=g["label"].astype(int).tolist(), meta=meta,
                       source=source, fingerprint=array_fingerprint([g["category"], g["amount"]]))


READERS = [EventsReader(), CDNOWReader(), SyntheticReader()]
