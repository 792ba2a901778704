"""Event tables to event stores: column picking, time parsing, the sort by (entity, time), flat arrays.

One row per event in a polars ``LazyFrame`` becomes an :class:`~.store.EventStore` of one item per
entity (see :mod:`.readers` for the items' layout): :func:`events_from_frame` plans the columns
(:class:`_Plan`), collects the rows sorted by (entity, time) inside polars and cuts flat arrays at
the entity boundaries.  :mod:`.out_of_core` streams the same plan for tables larger than memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import polars as pl

from contrastkit.core import DataError

from .messages import note, warn
from .store import EventStore


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
