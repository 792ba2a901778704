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
sort — and the per-entity items are views into a few flat arrays cut at the
entity boundaries, so no Python loop ever runs per event.
"""

from __future__ import annotations

import re
from datetime import timedelta
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import polars as pl

from contrastkit.core.data import Reader, Samples, array_fingerprint, file_fingerprint, package_path
from contrastkit.core.errors import DataError

__all__ = ["EventSeq", "EventsReader", "CDNOWReader", "SyntheticReader", "READERS", "events_from_frame", "split_items",
           "cdnow_path"]

ID_CANDIDATES = ("id", "entity_id", "client_id", "customer_id", "user_id", "account_id", "card_id", "app_id",
                 "client", "customer", "user", "account", "entity")
TIME_CANDIDATES = ("time", "timestamp", "event_time", "datetime", "date", "trans_date", "event_date", "ts")
LABEL_CANDIDATES = ("label", "target", "y", "class")
#: Integer columns with such names are categorical codes, not quantities.
_CODE_LIKE = re.compile(r"(code|cat|categ|type|mcc|kind|channel|class|group|_id$)", re.I)
NULL_NAME = "<null>"
US_PER_DAY = 86_400_000_000


def _note(msg: str) -> None:
    print(f"note: {msg}", file=sys.stderr)


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


def split_items(starts: np.ndarray, time: np.ndarray, cat: np.ndarray, num: np.ndarray) -> list[EventSeq]:
    """Cut flat event arrays (sorted by entity, then time) at ``starts`` into per-entity dicts of views."""
    bounds = np.append(starts, len(time)).astype(np.int64)
    return [EventSeq(time=time[a:b], cat=cat[a:b], num=num[a:b])
            for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist())]


def _columns_list(value: Any, what: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise DataError(f"data_options.{what} must be a list of column names, got {value!r}.")


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
    if what == "time":
        for c in cols:
            if schema[c] in (pl.Date,) or isinstance(schema[c], pl.Datetime):
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
        if _is_categorical_dtype(dtype) or (dtype.is_integer() and _CODE_LIKE.search(name)):
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


def _time_sorted_within(ids: pl.Series, time: np.ndarray) -> bool:
    """True if ``time`` never decreases between consecutive rows of one entity."""
    same = ids.eq_missing(ids.shift(1)).to_numpy()[1:]
    return not bool((same & (np.diff(time) < 0)).any())


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
        lf.collect_schema()
    except pl.exceptions.NoDataError:
        raise DataError(f"{path}: the file is empty; expected one row per event with a header.") from None
    except Exception as exc:  # polars' parse errors
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: not a readable events table ({first}).") from None
    return lf


def events_from_frame(lf: pl.LazyFrame, options: dict, src: str, labels_frame: pl.LazyFrame | None = None,
                      quiet: bool = False) -> tuple[list, list[dict], list | None, dict]:
    """Group a (lazy) table of events by entity, sorted by time.

    Returns ``(ids, items, labels, meta)`` — see the module docstring for the items.
    """
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
        _note(f"{src}: entity id {id_col!r}, time {time_col!r}, categorical {cats or 'none'}, numeric "
              f"{nums or 'none'}" + (f", label {own_label!r}" if own_label else "")
              + " (set data_options.id_column/time_column/categorical/numeric to change).")

    t_expr = _time_expr(schema, time_col, options.get("time_format")).alias("__t")
    keep = [pl.col(id_col), t_expr] + [pl.col(c) for c in cats] + [pl.col(c).cast(pl.Float32) for c in nums]
    if own_label:
        keep.append(pl.col(own_label).alias("__label"))
    query = lf.select(keep)
    bad_time = None
    if schema[time_col] == pl.String:
        bad_time = (pl.col("__t").is_null() & pl.col("__raw_t").is_not_null())
        query = lf.select(keep + [pl.col(time_col).alias("__raw_t")])
    query = query.filter(pl.col(id_col).is_not_null())
    key = _single_sort_key(lf, schema, id_col, time_col)
    two_columns = query.sort([id_col, "__t"], nulls_last=True)
    engine = "streaming" if options.get("streaming") else "auto"
    try:
        if key is not None:  # one int64 key (entity, time): polars sorts it ~4× faster than two columns
            df = lf.select(keep + [key.alias("__k")]).filter(pl.col(id_col).is_not_null()) \
                .sort("__k", nulls_last=True).drop("__k").collect(engine=engine)
            if df["__t"].null_count() or not _time_sorted_within(df[id_col], df["__t"].to_numpy()):
                df = two_columns.collect(engine=engine)  # coarsened times left ties out of order
        else:
            df = two_columns.collect(engine=engine)
    except pl.exceptions.NoDataError:
        raise DataError(f"{src}: the file is empty; expected one row per event with a header.") from None
    except pl.exceptions.PolarsError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{src}: cannot read the events ({first}).") from None
    if df.height == 0:
        raise DataError(f"{src}: no events (0 rows with an entity id).")
    if bad_time is not None:
        bad = df.select(bad_time.arg_true()).to_series()
        if bad.len():
            example = df["__raw_t"][int(bad[0])]
            raise DataError(f"{src}: {bad.len()} value(s) of time column {time_col!r} cannot be read as dates, "
                            f"e.g. {example!r}; give data_options.time_format (e.g. \"%Y-%m-%d %H:%M:%S\").")
        df = df.drop("__raw_t")
    n_null_t = df["__t"].null_count()
    if n_null_t:
        if not quiet:
            _note(f"{src}: {n_null_t} event(s) without a time are dropped.")
        df = df.filter(pl.col("__t").is_not_null())
        if df.height == 0:
            raise DataError(f"{src}: no event has a time in column {time_col!r}.")

    ids_col = df[id_col]
    change = ids_col.ne_missing(ids_col.shift(1)).to_numpy()
    change[0] = True
    starts = np.flatnonzero(change)
    ids = ids_col.gather(starts).to_list()
    time = df["__t"].to_numpy()
    cat_names: dict[str, list[str]] = {}
    if cats:
        cat = np.empty((df.height, len(cats)), dtype=np.int32)
        for j, c in enumerate(cats):
            cat[:, j], cat_names[c] = _codes(df[c])
    else:
        cat = np.zeros((df.height, 0), dtype=np.int32)
    if nums:
        num = np.empty((df.height, len(nums)), dtype=np.float32)
        for j, c in enumerate(nums):
            num[:, j] = df[c].cast(pl.Float32).fill_null(float("nan")).to_numpy()
    else:
        num = np.zeros((df.height, 0), dtype=np.float32)
    items = split_items(starts, time, cat, num)

    labels = None
    if own_label:
        labels = df["__label"].gather(starts).to_list()
    elif labels_frame is not None:
        labels = _join_labels(labels_frame, ids, ids_col.dtype, options, src)
    meta = {"cat_columns": cats, "num_columns": nums, "cat_names": cat_names, "id_column": id_col,
            "time_column": time_col, "granularity": "entity", "n_events": int(df.height)}
    return ids, items, labels, meta


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
        _note(f"{src}: {missing} of {len(ids)} entities have no label.")
    return joined["__label"].to_list()


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
        # sha256 releases the GIL: the fingerprint is hashed while polars reads and sorts
        with ThreadPoolExecutor(max_workers=1) as pool:
            fingerprint = pool.submit(file_fingerprint, *files)
            ids, items, labels, meta = events_from_frame(lf, options, str(path), labels_lf)
            return Samples(ids=ids, items=items, labels=labels, meta=meta, source=str(path),
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
