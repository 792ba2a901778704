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

import hashlib
import json
import os
import re
import shutil
import sys
import time as time_mod
from dataclasses import dataclass
from datetime import timedelta
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import polars as pl

from contrastkit.core.data import Reader, Samples, array_fingerprint, file_fingerprint, package_path
from contrastkit.core.errors import DataError

from .messages import note, warn
from .store import EventSeq, EventStore, FlatWriter, cache_root, publish, scratch_folder

__all__ = ["EventSeq", "EventsReader", "CDNOWReader", "SyntheticReader", "READERS", "events_from_frame", "split_items",
           "cdnow_path"]

ID_CANDIDATES = ("id", "entity_id", "client_id", "customer_id", "user_id", "account_id", "card_id", "app_id",
                 "client", "customer", "user", "account", "entity")
TIME_CANDIDATES = ("time", "timestamp", "event_time", "datetime", "date", "trans_date", "event_date", "ts")
LABEL_CANDIDATES = ("label", "target", "y", "class")
#: Integer columns with such names are categorical codes, not quantities.
_CODE_LIKE = re.compile(r"(code|cat|categ|type|mcc|kind|channel|class|group|sku|zip|_id$|_no$|_nr$)", re.I)
#: ... and so are integers named like an identifier in camel case ("StockID", "InvoiceNo"), matched with
#: case so that "paid" or "casino" are not.
_ID_SUFFIX = re.compile(r"(Id|ID|No|NO|Nr|Number)$")
NULL_NAME = "<null>"
US_PER_DAY = 86_400_000_000


def split_items(starts: np.ndarray, time: np.ndarray, cat: np.ndarray, num: np.ndarray) -> EventStore:
    """Flat event arrays (sorted by entity, then time) cut at ``starts`` into a store of per-entity items."""
    return EventStore.from_flat(starts, time, cat, num)


def _columns_list(value: Any, what: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise DataError(f"data_options.{what} must be a list of column names, got {value!r}.")


def _fold(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _pick(schema: pl.Schema, given: str | None, candidates: Sequence[str], what: str, src: str,
          option: str) -> str:
    cols = list(schema.names())
    if given is not None:
        if given not in cols:
            raise DataError(f"{src}: no {what} column {given!r} (data_options.{option}); the columns are "
                            f"{', '.join(cols)}.")
        return given
    lowered = {c.lower(): c for c in cols}
    for cand in candidates:
        if cand in lowered:
            return lowered[cand]
    folded: dict[str, str] = {}  # "CustomerID", "customer-id", "Customer Id" all fold to "customerid"
    for c in cols:
        folded.setdefault(_fold(c), c)
    for cand in candidates:
        if _fold(cand) in folded:
            return folded[_fold(cand)]
    if what == "time":
        for c in cols:
            if schema[c] in (pl.Date,) or isinstance(schema[c], pl.Datetime):
                return c
        for c in cols:  # e.g. "InvoiceDate", "order_time", "created_at" holding text or numbers
            f = _fold(c)
            if (f.endswith(("date", "time", "timestamp")) or c.lower().endswith("_at")) and \
                    (schema[c] == pl.String or schema[c].is_numeric()):
                return c
    raise DataError(f"{src}: cannot tell which column holds the {what}; name it with data_options.{option} "
                    f"(the columns are {', '.join(cols)}).")


def _is_categorical_dtype(dtype: pl.DataType) -> bool:
    return dtype in (pl.String, pl.Categorical, pl.Boolean) or isinstance(dtype, (pl.Enum, pl.Categorical))


def infer_columns(schema: pl.Schema, id_col: str, time_col: str, label_col: str | None) -> tuple[list[str], list[str]]:
    """(categorical, numeric) columns by dtype: text, booleans and code-named integers are categorical;
    floats and other integers numeric."""
    cats, nums = [], []
    for name, dtype in schema.items():
        if name in (id_col, time_col, label_col):
            continue
        code_like = bool(_CODE_LIKE.search(name) or _ID_SUFFIX.search(name))
        if _is_categorical_dtype(dtype) or (dtype.is_integer() and code_like):
            cats.append(name)
        elif dtype.is_numeric():
            nums.append(name)
    return cats, nums


def _time_expr(schema: pl.Schema, col: str, time_format: str | None) -> pl.Expr:
    dtype = schema[col]
    c = pl.col(col)
    if isinstance(dtype, pl.Datetime):
        return c.dt.epoch("us").cast(pl.Float64) / US_PER_DAY
    if dtype == pl.Date:
        return c.cast(pl.Int32).cast(pl.Float64)
    if dtype == pl.String:
        parsed = c.str.to_datetime(format=time_format, strict=False, time_unit="us")
        return parsed.dt.epoch("us").cast(pl.Float64) / US_PER_DAY
    if dtype.is_numeric():
        return c.cast(pl.Float64)
    raise DataError(f"time column {col!r} has type {dtype}; expected a datetime, a date, text or a number.")


#: Text time formats tried (on a sample) when polars' own inference cannot read every value.
TIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M",
    "%Y/%m/%d", "%Y%m%d", "%Y%m%d%H%M%S",
    "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y", "%m/%d/%y %H:%M", "%m/%d/%y",
    "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y", "%d/%m/%y %H:%M", "%d/%m/%y",
    "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y", "%d-%m-%Y %H:%M:%S", "%d-%m-%Y", "%m-%d-%Y",
    "%d %b %Y %H:%M:%S", "%d %b %Y", "%b %d %Y", "%d-%b-%Y", "%d-%b-%y",
)


def _infer_time_format(lf: pl.LazyFrame, col: str, src: str, quiet: bool, sample: int = 20_000) -> str | None:
    """A format that reads every value of a sample of the text time column ``col``, or None to let polars
    infer it.  polars infers one format from the first value, so a column such as "12/17/2011 12:17",
    "3/26/2011 14:03" fails on some rows or, worse, reads "7/2/2011" as 7 February: when its inference
    does not read every sampled value, the formats in :data:`TIME_FORMATS` are tried in turn, and a
    column that reads both as month/day and as day/month is reported as ambiguous."""
    try:
        values = lf.select(pl.col(col)).drop_nulls().head(sample).collect().to_series()
    except Exception:  # noqa: BLE001 - the main query reports problems
        return None
    if values.len() == 0:
        return None

    def reads_all(fmt: str | None) -> bool:
        try:
            return values.str.to_datetime(format=fmt, strict=False, time_unit="us").null_count() == 0
        except Exception:  # noqa: BLE001 - an unusable format
            return False

    working = [f for f in TIME_FORMATS if reads_all(f)]
    month_first = [f for f in working if f.startswith(("%m/", "%m-"))]
    day_first = [f for f in working if f.startswith(("%d/", "%d-", "%d."))]
    if month_first and day_first:
        if not quiet:
            warn(f"{src}: the dates of time column {col!r} read both as month/day and as day/month (e.g. "
                  f"{values[0]!r}); they are read as month/day ({month_first[0]!r}). Set data_options.time_format "
                  f"(e.g. {day_first[0]!r}) if that is wrong.")
        return month_first[0]
    if reads_all(None) and not (month_first or day_first):
        return None
    if working:
        if not quiet:
            note(f"{src}: time column {col!r} read with format {working[0]!r} (data_options.time_format to "
                  "change).")
        return working[0]
    return None


def _single_sort_key(lf: pl.LazyFrame, schema: pl.Schema, id_col: str, time_col: str) -> pl.Expr | None:
    """An int64 expression ordering rows by (entity, time) — the time coarsened by a power of two if
    the ranges demand it, so the reader checks the order afterwards — when the id is an integer and
    the time a datetime, date or integer; else None (sort by both columns)."""
    tdtype = schema[time_col]
    if not schema[id_col].is_integer() or not (tdtype.is_temporal() or tdtype.is_integer()) or tdtype == pl.Time \
            or isinstance(tdtype, pl.Duration):
        return None
    t = pl.col(time_col).to_physical().cast(pl.Int64)
    i = pl.col(id_col).cast(pl.Int64)
    try:
        st = lf.select(i.min().alias("a"), i.max().alias("b"), t.min().alias("c"), t.max().alias("d")).collect()
    except Exception:  # noqa: BLE001 - the main query reports problems
        return None
    a, b, c, d = (st[k][0] for k in "abcd")
    if None in (a, b, c, d) or (b - a + 1) >= 2 ** 40:
        return None
    shift = 0
    while (b - a + 1) * (((d - c) >> shift) + 1) >= 2 ** 62:
        shift += 1
    return (i - a) * (((d - c) >> shift) + 1) + (t - c) // (1 << shift)


def _time_sorted_within(ids: pl.Series, time: np.ndarray, block: int = 1 << 20) -> bool:
    """True if ``time`` never decreases between consecutive rows of one entity (checked a block of rows
    at a time, so the temporaries stay small)."""
    for a in range(0, max(len(time) - 1, 0), block):
        b = min(a + block + 1, len(time))
        ids_b = ids.slice(a, b - a)
        same = ids_b.eq_missing(ids_b.shift(1)).to_numpy()[1:]
        if (same & (np.diff(time[a:b]) < 0)).any():
            return False
    return True


def _codes(series: pl.Series) -> tuple[np.ndarray, list[str]]:
    """Dense codes of a categorical column and the distinct values (as text) they index."""
    if series.dtype.is_integer() and series.len() > series.null_count():
        values = series.to_numpy(allow_copy=True) if not series.null_count() else \
            series.fill_null(int(series.min()) - 1).to_numpy()
        lo, hi = int(values.min()), int(values.max())
        if hi - lo < max(4 * len(values), 1 << 20):  # a dense range: O(N) with a lookup table, no sort
            offset = (values - lo).astype(np.int64)
            present = np.bincount(offset, minlength=hi - lo + 1) > 0
            lut = (np.cumsum(present) - 1).astype(np.int32)
            codes = lut[offset]
            uniq = np.flatnonzero(present) + lo
        else:
            uniq, codes = np.unique(values, return_inverse=True)
            codes = codes.astype(np.int32)
        names = [str(v) for v in uniq.tolist()]
        if series.null_count():
            names[0] = NULL_NAME
        return codes, names
    s = series.cast(pl.String).fill_null(NULL_NAME)
    uniq = s.unique().sort()
    codes = s.cast(pl.Enum(uniq.to_list())).to_physical().to_numpy().astype(np.int32)
    return codes, uniq.to_list()


def _scan(path: Path, options: dict) -> pl.LazyFrame:
    name = path.name.lower()
    try:
        if name.endswith(".parquet") or name.endswith(".pq"):
            lf = pl.scan_parquet(path)
        else:
            sep = options.get("separator", "," if not name.endswith(".tsv") else "\t")
            lf = pl.scan_csv(path, separator=sep, infer_schema_length=10_000, try_parse_dates=True)
            schema = lf.collect_schema()
            # polars reads "03/04/2020" as 3 April without a word: the time column is kept as text, so
            # that _infer_time_format checks its format and reports ambiguous dates
            try:
                tcol = _pick(schema, options.get("time_column"), TIME_CANDIDATES, "time", str(path), "time_column")
            except DataError:
                tcol = None
            if tcol is not None and schema[tcol].is_temporal() and options.get("time_format") is None:
                lf = pl.scan_csv(path, separator=sep, infer_schema_length=10_000, try_parse_dates=True,
                                 schema_overrides={tcol: pl.String})
        lf.collect_schema()
    except pl.exceptions.NoDataError:
        raise DataError(f"{path}: the file is empty; expected one row per event with a header.") from None
    except Exception as exc:  # polars' parse errors
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: not a readable events table ({first}).") from None
    return lf


@dataclass
class _Plan:
    """The columns of an events table, resolved once, and the lazy query that selects them."""

    src: str
    schema: pl.Schema
    id_col: str
    time_col: str
    cats: list[str]
    nums: list[str]
    own_label: str | None
    query: pl.LazyFrame  # id, __t, cats, nums [, __label] [, __raw_t] [, __k]
    string_time: bool
    keyed: bool


def _plan(lf: pl.LazyFrame, options: dict, src: str, labels_frame: pl.LazyFrame | None, quiet: bool) -> _Plan:
    try:
        schema = lf.collect_schema()
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"{src}: not a readable events table ({str(exc).splitlines()[0] if str(exc) else exc}).") \
            from None
    id_col = _pick(schema, options.get("id_column"), ID_CANDIDATES, "entity id", src, "id_column")
    time_col = _pick(schema, options.get("time_column"), TIME_CANDIDATES, "time", src, "time_column")
    label_col = options.get("label_column")
    if label_col is not None and labels_frame is None and label_col not in schema.names():
        raise DataError(f"{src}: no label column {label_col!r} (data_options.label_column); the columns are "
                        f"{', '.join(schema.names())}.")
    if label_col is None and labels_frame is None:
        label_col = next((c for c in schema.names() if c.lower() in LABEL_CANDIDATES), None)
    own_label = label_col if (label_col is not None and label_col in schema.names() and labels_frame is None) else None
    cats = _columns_list(options.get("categorical"), "categorical")
    nums = _columns_list(options.get("numeric"), "numeric")
    inferred_c, inferred_n = infer_columns(schema, id_col, time_col, own_label)
    split_col = _split_column(schema, options, src)
    inferred_c = [c for c in inferred_c if c != split_col]  # the split is not a feature
    inferred_n = [c for c in inferred_n if c != split_col]
    inferred = cats is None or nums is None
    cats = inferred_c if cats is None else cats
    nums = inferred_n if nums is None else nums
    for col in cats + nums:
        if col not in schema.names():
            raise DataError(f"{src}: no column {col!r} (data_options.categorical/numeric); the columns are "
                            f"{', '.join(schema.names())}.")
    for col in nums:
        if not schema[col].is_numeric() and schema[col] != pl.Boolean:
            raise DataError(f"{src}: numeric column {col!r} holds {schema[col]}; list it under "
                            "data_options.categorical instead.")
    if inferred and not quiet:
        note(f"{src}: entity id {id_col!r}, time {time_col!r}, categorical {cats or 'none'}, numeric "
              f"{nums or 'none'}" + (f", label {own_label!r}" if own_label else "")
              + " (set data_options.id_column/time_column/categorical/numeric to change).")
    time_format = options.get("time_format")
    if time_format is None and schema[time_col] == pl.String:
        time_format = _infer_time_format(lf, time_col, src, quiet)
    t_expr = _time_expr(schema, time_col, time_format).alias("__t")
    keep = [pl.col(id_col), t_expr] + [pl.col(c) for c in cats] + [pl.col(c).cast(pl.Float32) for c in nums]
    if own_label:
        keep.append(pl.col(own_label).alias("__label"))
    string_time = schema[time_col] == pl.String
    if string_time:
        keep.append(pl.col(time_col).alias("__raw_t"))
    key = _single_sort_key(lf, schema, id_col, time_col)
    if key is not None:  # one int64 key (entity, time): polars sorts it ~4× faster than two columns
        keep.append(key.alias("__k"))
    query = lf.select(keep)
    return _Plan(src, schema, id_col, time_col, cats, nums, own_label, query, string_time, key is not None)


def _polars_error(exc: Exception, src: str) -> DataError:
    if isinstance(exc, pl.exceptions.NoDataError):
        return DataError(f"{src}: the file is empty; expected one row per event with a header.")
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return DataError(f"{src}: cannot read the events ({first}).")


def _collect_sorted(plan: _Plan, frame: pl.LazyFrame, engine: str = "auto") -> pl.DataFrame:
    """The rows of ``frame`` (``plan.query`` or a bucket of it) sorted by (entity, time) inside the
    query — polars then never holds the unsorted and the sorted table at once.  The sort is stable:
    events of one entity at the same time keep the table's order, in memory and out of core alike."""
    if plan.keyed:
        df = frame.sort("__k", nulls_last=True, maintain_order=True).drop("__k").collect(engine=engine)
        if df["__t"].null_count() or not _time_sorted_within(df[plan.id_col], df["__t"].to_numpy()):
            # coarsened times left ties out of order
            df = df.sort([plan.id_col, "__t"], nulls_last=True, maintain_order=True)
        return df
    return frame.sort([plan.id_col, "__t"], nulls_last=True, maintain_order=True).collect(engine=engine)


def _sorted_checked(plan: _Plan, df: pl.DataFrame, quiet: bool) -> tuple[pl.DataFrame, dict[str, int]]:
    """Sorted rows (:func:`_collect_sorted`) checked: unreadable times refused, rows without an entity id
    or a time dropped (counted: ``{"id": n, "time": n}``)."""
    n_null_id = df[plan.id_col].null_count()
    if n_null_id:
        df = df.filter(pl.col(plan.id_col).is_not_null())
    if plan.string_time:
        bad = df.select((pl.col("__t").is_null() & pl.col("__raw_t").is_not_null()).arg_true()).to_series()
        if bad.len():
            example = df["__raw_t"][int(bad[0])]
            raise DataError(f"{plan.src}: {bad.len()} value(s) of time column {plan.time_col!r} cannot be read as "
                            f"dates, e.g. {example!r}; give data_options.time_format (e.g. \"%Y-%m-%d %H:%M:%S\").")
        df = df.drop("__raw_t")
    n_null_t = df["__t"].null_count()
    if n_null_t:
        df = df.filter(pl.col("__t").is_not_null())
    return df, {"id": n_null_id, "time": n_null_t}


def _nothing_left(src: str, plan: _Plan, dropped: dict[str, int]) -> DataError:
    if dropped["time"] == 0:
        return DataError(f"{src}: no event has an entity id in column {plan.id_col!r}.")
    return DataError(f"{src}: no event has both an entity id (column {plan.id_col!r}) and a time (column "
                     f"{plan.time_col!r}).")


def _note_dropped(src: str, dropped: dict[str, int], time_col: str, id_col: str) -> None:
    if dropped["id"]:
        note(f"{src}: {dropped['id']} event(s) without an entity id (column {id_col!r}) are dropped.")
    if dropped["time"]:
        note(f"{src}: {dropped['time']} event(s) without a time (column {time_col!r}) are dropped.")


def _global_dictionaries(frame: pl.LazyFrame, cats: list[str], schema: pl.Schema) -> dict[str, tuple]:
    """Every categorical column's distinct values over the whole table (one streaming pass each), in
    the order :func:`_codes` gives them, so out-of-core codes equal in-memory ones."""
    out = {}
    for c in cats:
        if schema[c].is_integer():
            u = frame.select(pl.col(c).unique()).collect(engine="streaming").to_series()
            vals = np.sort(u.drop_nulls().to_numpy())
            if len(vals):
                has_null = bool(u.null_count())
                out[c] = ("int", vals, has_null, ([NULL_NAME] if has_null else []) + [str(v) for v in vals.tolist()])
                continue
        u = frame.select(pl.col(c).cast(pl.String).fill_null(NULL_NAME).unique()).collect(engine="streaming")
        out[c] = ("str", None, False, u.to_series().sort().to_list())
    return out


def _codes_in(series: pl.Series, d: tuple) -> np.ndarray:
    kind, vals, has_null, names = d
    if kind == "int":
        nulls = series.null_count()
        v = (series.fill_null(int(vals[0])) if nulls else series).to_numpy()
        codes = (np.searchsorted(vals, v) + int(has_null)).astype(np.int32)
        if nulls:
            codes[series.is_null().to_numpy()] = 0
        return codes
    return series.cast(pl.String).fill_null(NULL_NAME).cast(pl.Enum(names)).to_physical().to_numpy().astype(np.int32)


def _flatten(plan: _Plan, df: pl.DataFrame, dictionaries: dict | None = None):
    """(entity ids, starts, time, cat, num, cat_names, own labels) of a sorted frame."""
    ids_col = df[plan.id_col]
    change = ids_col.ne_missing(ids_col.shift(1)).to_numpy()
    if len(change):
        change[0] = True
    starts = np.flatnonzero(change)
    ids = ids_col.gather(starts)
    time = df["__t"].to_numpy()
    cat_names: dict[str, list[str]] = {}
    cat = np.empty((df.height, len(plan.cats)), dtype=np.int32)
    for j, c in enumerate(plan.cats):
        if dictionaries is None:
            cat[:, j], cat_names[c] = _codes(df[c])
        else:
            cat[:, j], cat_names[c] = _codes_in(df[c], dictionaries[c]), dictionaries[c][3]
    num = np.empty((df.height, len(plan.nums)), dtype=np.float32)
    for j, c in enumerate(plan.nums):
        num[:, j] = df[c].cast(pl.Float32).fill_null(float("nan")).to_numpy()
    labels = df["__label"].gather(starts) if plan.own_label else None
    return ids, starts, time, cat, num, cat_names, labels


def _meta(plan: _Plan, cat_names: dict, n_events: int) -> dict:
    return {"cat_columns": plan.cats, "num_columns": plan.nums, "cat_names": cat_names, "id_column": plan.id_col,
            "time_column": plan.time_col, "granularity": "entity", "n_events": int(n_events)}


def events_from_frame(lf: pl.LazyFrame, options: dict, src: str, labels_frame: pl.LazyFrame | None = None,
                      quiet: bool = False, plan: _Plan | None = None) -> tuple[list, EventStore, list | None, dict]:
    """Group a (lazy) table of events by entity, sorted by time, in memory.

    Returns ``(ids, items, labels, meta)`` — see the module docstring for the items.
    """
    plan = plan or _plan(lf, options, src, labels_frame, quiet)
    engine = "streaming" if options.get("streaming") else "auto"
    try:
        df = _collect_sorted(plan, plan.query, engine)
    except pl.exceptions.PolarsError as exc:
        raise _polars_error(exc, src) from None
    if df.height == 0:
        raise DataError(f"{src}: no events (a header but no rows).")
    df, dropped = _sorted_checked(plan, df, quiet)
    if not quiet:
        _note_dropped(src, dropped, plan.time_col, plan.id_col)
    if df.height == 0:
        raise _nothing_left(src, plan, dropped)
    ids_s, starts, time, cat, num, cat_names, own = _flatten(plan, df)
    ids = ids_s.to_list()
    items = EventStore.from_flat(starts, time, cat, num)
    labels = own.to_list() if own is not None else (
        _join_labels(labels_frame, ids, ids_s.dtype, options, src) if labels_frame is not None else None)
    return ids, items, labels, _meta(plan, cat_names, df.height)


# --------------------------------------------------------------------------- out of core
#: Bump when the layout of the files below changes (old cache entries are then ignored).
STORE_FORMAT = 1
_CACHE_OPTIONS = ("id_column", "time_column", "categorical", "numeric", "label_column", "time_format", "separator",
                  "split_column")


def _cgroup_memory_files() -> list[tuple[str, str]]:
    """(limit file, usage file) of this process's memory cgroup, v2 and v1, where they can be found."""
    out = []
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, rel = parts
        rel = rel.lstrip("/")
        if controllers == "":  # v2
            base = Path("/sys/fs/cgroup") / rel
            out.append((str(base / "memory.max"), str(base / "memory.current")))
        elif "memory" in controllers.split(","):
            for base in (Path("/sys/fs/cgroup/memory") / rel, Path("/sys/fs/cgroup/memory")):
                out.append((str(base / "memory.limit_in_bytes"), str(base / "memory.usage_in_bytes")))
    return out


def available_memory() -> int:
    """Bytes this process can still use: MemAvailable, lowered by a cgroup (v2 or v1) limit."""
    avail = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
    except OSError:
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            avail = 8 << 30
    for limit_f, usage_f in _cgroup_memory_files():
        try:
            limit = Path(limit_f).read_text().strip()
            if limit != "max" and int(limit) < (1 << 60):
                used = int(Path(usage_f).read_text().strip())
                stat = dict(line.split() for line in (Path(usage_f).parent / "memory.stat").read_text().splitlines()
                            if len(line.split()) == 2)
                # the page cache counts as used but is given back under pressure
                used -= int(stat.get("total_cache", stat.get("cache", stat.get("file", 0))))
                avail = min(avail, int(limit) - max(used, 0))
        except (OSError, ValueError):
            continue
    return max(int(avail), 64 << 20)


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


def _join_labels(labels_frame: pl.LazyFrame, ids: list, id_dtype: pl.DataType, options: dict, src: str) -> list:
    schema = labels_frame.collect_schema()
    lid = options.get("labels_id_column") or options.get("id_column")
    if lid is None or lid not in schema.names():
        lid = _pick(schema, None, ID_CANDIDATES, "entity id", f"{src} labels", "labels_id_column")
    lcol = options.get("label_column")
    if lcol is None:
        lcol = next((c for c in schema.names() if c.lower() in LABEL_CANDIDATES), None)
        if lcol is None:
            others = [c for c in schema.names() if c != lid]
            if len(others) != 1:
                raise DataError(f"{src} labels: name the label column with data_options.label_column (the columns "
                                f"are {', '.join(schema.names())}).")
            lcol = others[0]
    if lcol not in schema.names():
        raise DataError(f"{src} labels: no label column {lcol!r}; the columns are {', '.join(schema.names())}.")
    table = labels_frame.select(pl.col(lid).cast(pl.String).alias("__id"), pl.col(lcol).alias("__label")) \
        .unique("__id", keep="first").collect()
    left = pl.DataFrame({"__id": pl.Series([str(i) for i in ids], dtype=pl.String)})
    joined = left.join(table, on="__id", how="left", maintain_order="left")
    missing = joined["__label"].null_count()
    if missing == len(ids):
        raise DataError(f"{src} labels: no entity id of the events occurs in column {lid!r} of the labels table.")
    if missing:
        note(f"{src}: {missing} of {len(ids)} entities have no label.")
    return joined["__label"].to_list()


def _split_column(schema: pl.Schema, options: dict, src: str, required: bool = True) -> str | None:
    """The column holding each entity's train/test split: ``data_options.split_column``, else a column
    named ``split`` (any case); None when there is none."""
    col = options.get("split_column")
    if col is not None:
        if col not in schema.names():
            if required:
                raise DataError(f"{src}: no split column {col!r} (data_options.split_column); the columns are "
                                f"{', '.join(schema.names())}.")
            return None
        return col
    return next((c for c in schema.names() if c.lower() == "split"), None)


def read_split(ids: list, lf: pl.LazyFrame, labels_lf: pl.LazyFrame | None, options: dict, src: str,
               id_col: str) -> list[str] | None:
    """Each entity's source split ("train"/"test") from a split column of the labels table (first) or
    of the events table (one value per entity), or None when neither has one."""
    from contrastkit.core.data import TEST, TRAIN

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
