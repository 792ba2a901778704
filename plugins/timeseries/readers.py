"""Readers for time series: the UCR/UEA ``.ts`` format and long-format tables.

Both readers return :class:`~contrastkit.core.data.Samples` whose items are
``numpy.float32`` arrays of shape ``(C, T_i)`` — C channels, T_i time steps,
lengths free to differ between items; ``NaN`` marks a missing value.

* :class:`TsReader` parses the text format of the UCR/UEA time-series
  classification archive (Dau et al., "The UCR time series archive", 2019;
  Bagnall et al., "The UEA multivariate time series classification archive",
  2018) and offers the archive's problems that ship offline inside the pip
  packages ``aeon`` (and ``sktime``, if installed) as named data sets.
* :class:`LongFormatReader` reads one row per (id, time) from parquet or CSV,
  lazily with polars, and offers the small forecasting series shipped by aeon
  (``airline``, ``lynx``, ...) as named data sets.

Neither reader imports aeon or sktime: their data folders are found with
:func:`importlib.util.find_spec`, which does not run the package.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import polars as pl

from contrastkit.core import TEST, TRAIN, DataError, Reader, Samples, file_fingerprint, package_path

from .ts_format import TsTable, _data_lines, _parse_header, parse_ts

__all__ = ["TsReader", "LongFormatReader", "READERS", "AEON_HINT"]

#: What to tell a user whose named data set needs aeon's data folder.
AEON_HINT = "pip install --no-deps aeon==1.6.0"

_NAME_LIKE = re.compile(r"[A-Za-z][A-Za-z0-9_\-]*")


# ---------------------------------------------------------------------------
# where the offline data sets live
# ---------------------------------------------------------------------------
def _data_roots() -> list[tuple[str, Path]]:
    """``(package, folder)`` for each installed package that ships UCR/UEA data.

    Found with :func:`importlib.util.find_spec`, so aeon (installed without its
    dependencies) is never imported.
    """
    roots: list[tuple[str, Path]] = []
    for package in ("aeon", "sktime"):
        folder = package_path(package, "datasets", "data")
        if folder is not None and folder.is_dir():
            roots.append((package, folder))
    return roots


def _fmt_names(names: Iterable[str]) -> str:
    names = sorted(names, key=str.lower)
    return ", ".join(names) if names else "none (install aeon)"


_SPLIT_FILE = re.compile(r"^(?P<base>.+)_(?P<part>train|test)\.ts$", re.IGNORECASE)


def _find_case_insensitive(folder: Path, name: str) -> Path | None:
    exact = folder / name
    if exact.is_file():
        return exact
    try:
        for p in folder.iterdir():
            if p.name.lower() == name.lower() and p.is_file():
                return p
    except OSError:
        return None
    return None


def _pair_of(path: Path) -> tuple[str, Path | None, Path | None]:
    """``(name, train, test)`` for an ``X_TRAIN.ts``/``X_TEST.ts`` file whose partner exists."""
    m = _SPLIT_FILE.match(path.name)
    if not m:
        return path.stem, None, None
    base, part = m.group("base"), m.group("part")
    other = "test" if part.lower() == "train" else "train"
    other = other.upper() if part.isupper() else (other if part.islower() else other.capitalize())
    partner = _find_case_insensitive(path.parent, f"{base}_{other}.ts")
    if partner is None:
        return base, None, None
    return (base, path, partner) if part.lower() == "train" else (base, partner, path)


# -- cheap facts for the listing ------------------------------------------------
@dataclass(frozen=True)
class _TsFacts:
    n: int
    dims: int
    min_len: int
    max_len: int
    classification: bool
    classes: tuple[str, ...]


@functools.lru_cache(maxsize=256)
def _ts_facts(path: Path, mtime_ns: int) -> _TsFacts | None:
    """Counts from the header and a string scan of the data lines (no number parsing)."""
    try:
        lines = path.read_text(encoding="utf-8-sig", errors="replace").splitlines()
        head = _parse_header(path, lines)
    except (OSError, DataError):
        return None
    n, min_len, max_len, dims = 0, 0, 0, head.dimensions or (1 if head.univariate else 0)
    fixed = head.series_length if head.equal_length else None
    for _, line in _data_lines(lines, head.data_line):
        n += 1
        if not dims:
            dims = line.count(":") + 1 - head.labelled
        if fixed is None:
            t = line.split(":", 1)[0].count(",") + 1
            min_len = t if n == 1 else min(min_len, t)
            max_len = max(max_len, t)
    if fixed is not None:
        min_len = max_len = fixed
    return _TsFacts(n, max(dims, 1), min_len, max_len, head.class_label, tuple(head.class_values))


def _facts(path: Path) -> _TsFacts | None:
    try:
        return _ts_facts(path, path.stat().st_mtime_ns)
    except OSError:
        return None


@dataclass(frozen=True)
class _UcrSet:
    name: str
    train: Path
    test: Path
    package: str


@functools.lru_cache(maxsize=8)
def _scan_root(package: str, root: Path) -> tuple[_UcrSet, ...]:
    """Every classification problem with a ``_TRAIN.ts``/``_TEST.ts`` pair under ``root``."""
    found: list[_UcrSet] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for train in sorted(folder.glob("*.ts")):
            m = _SPLIT_FILE.match(train.name)
            if not m or m.group("part").lower() != "train" or m.group("base").startswith("UnitTest"):
                continue  # aeon's UnitTest* files are its own test fixtures
            _, tr, te = _pair_of(train)
            if tr is None or te is None:
                continue
            facts = _facts(tr)
            if facts is None or not facts.classification:
                continue
            found.append(_UcrSet(m.group("base"), tr, te, package))
    return tuple(found)


def _ucr_sets() -> dict[str, _UcrSet]:
    """Named UCR/UEA sets, keyed by lower-case name; aeon's win over sktime's."""
    sets: dict[str, _UcrSet] = {}
    for package, root in _data_roots():
        for s in _scan_root(package, root):
            sets.setdefault(s.name.lower(), s)
    return sets


def _describe_ucr(s: _UcrSet) -> str:
    tr, te = _facts(s.train), _facts(s.test)
    if tr is None or te is None:
        return f"UCR/UEA {s.name} from {s.package}"
    lo, hi = min(tr.min_len, te.min_len), max(tr.max_len, te.max_len)
    length = f"length {hi}" if lo == hi else f"length {lo}-{hi}"
    k = len(set(tr.classes) | set(te.classes))
    return (f"UCR/UEA {s.name} ({tr.n}/{te.n}, {tr.dims} channel(s), {length}, {k} classes) "
            f"from {s.package}")


def _missing_source(source: str, what: str, names: Iterable[str], have_data: bool) -> DataError:
    if not have_data and _NAME_LIKE.fullmatch(source):
        return DataError(
            f"'{source}' is not a file, and the named {what} data sets ship with the package aeon, which is "
            f"not installed; install it with `{AEON_HINT}`."
        )
    return DataError(f"'{source}' is neither an existing file nor a named {what} data set; valid names: "
                     f"{_fmt_names(names)}.")


class TsReader(Reader):
    """The UCR/UEA archive's ``.ts`` text format, and the archive's offline problems by name.

    Given ``X_TRAIN.ts`` (or ``X_TEST.ts``) whose partner file exists, both are
    read and ``split`` holds the archive's official train/test split (train
    items first); any other ``.ts`` file is read alone with ``split=None``.
    Ids are ``f"{name}_{split}_{i}"`` (``f"{name}_{i}"`` without a split).
    Labels are the class labels as strings, exactly as written in the file
    (``@targetLabel`` files give float targets and ``meta["task"] ==
    "regression"``).

    Options: ``pair`` (default True): set False to read only the given file.
    """

    name = "ts"
    suffixes = (".ts",)
    description = "UCR/UEA .ts files (univariate/multivariate, equal/unequal length) and the archive's offline problems"

    def datasets(self) -> dict[str, str]:
        return {s.name: _describe_ucr(s) for s in sorted(_ucr_sets().values(), key=lambda s: s.name.lower())}

    def read(self, source: str, options: dict[str, Any] | None = None) -> Samples:
        options = dict(options or {})
        path = Path(str(source)).expanduser()
        if path.is_file():
            name, train, test = _pair_of(path) if options.get("pair", True) else (path.stem, None, None)
            problem = name
        else:
            sets = _ucr_sets()
            found = sets.get(str(source).lower())
            if found is None:
                if path.suffix.lower() == ".ts" or path.parent != Path("."):
                    raise DataError(f"{path}: no such .ts file.")
                raise _missing_source(str(source), "UCR/UEA", [s.name for s in sets.values()], bool(_data_roots()))
            problem, train, test = found.name, found.train, found.test
        if train is not None and test is not None:
            tables = [(TRAIN, parse_ts(train)), (TEST, parse_ts(test))]
            files = [train, test]
        else:
            tables = [(None, parse_ts(path))]
            files = [path]
        return _ts_samples(problem, tables, files, str(source))


def _ts_samples(problem: str, tables: list[tuple[str | None, TsTable]], files: list[Path], source: str) -> Samples:
    dims = {t.n_dims for _, t in tables}
    if len(dims) > 1:
        (_, a), (_, b) = tables
        raise DataError(
            f"{b.path.name}: {b.n_dims} dimension(s) but {a.path.name} has {a.n_dims}; "
            "expected the train and test files to have the same number of dimensions."
        )
    kinds = {(t.header.class_label, t.header.target_label) for _, t in tables}
    if len(kinds) > 1:
        raise DataError(
            f"{tables[-1][1].path.name}: the label tags differ from {tables[0][1].path.name}'s; "
            "expected both files to declare the same @classLabel/@targetLabel."
        )
    ids: list[str] = []
    items: list[np.ndarray] = []
    labels: list | None = [] if tables[0][1].labels is not None else None
    split: list[str] | None = [] if tables[0][0] is not None else None
    for part, table in tables:
        prefix = f"{problem}_{part}_" if part else f"{problem}_"
        ids.extend(f"{prefix}{i}" for i in range(len(table.items)))
        items.extend(table.items)
        if labels is not None and table.labels is not None:
            labels.extend(table.labels)
        if split is not None and part is not None:
            split.extend([part] * len(table.items))
    lengths = [it.shape[1] for it in items]
    head = tables[0][1].header
    if head.class_label:
        classes: set[str] = set()
        for _, t in tables:
            classes.update(t.header.class_values)
        classes.update(labels or [])
        task, n_classes = "classification", len(classes)
    else:
        task, n_classes = ("regression" if head.target_label else None), 0
    meta = {
        "in_channels": dims.pop(),
        "length": max(lengths),
        "equal_length": len(set(lengths)) == 1,
        "n_classes": n_classes,
        "problem": problem,
        "task": task,
        # The file declares missing values ('?'): the time-series modality then accepts NaN by default.
        "missing": any(bool(t.header.missing) for _, t in tables),
    }
    return Samples(ids=ids, items=items, labels=labels, split=split, meta=meta, source=source,
                   fingerprint=file_fingerprint(*files))


# ---------------------------------------------------------------------------
# long format
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Forecast:
    """A forecasting series shipped in aeon's data folder."""

    folder: str
    file: str
    time: str
    values: tuple[str, ...]
    freq: str
    about: str


_FORECASTS: dict[str, _Forecast] = {
    "airline": _Forecast("Airline", "Airline.csv", "Date", ("Passengers",), "M",
                         "monthly international airline passengers 1949-1960 (Box & Jenkins)"),
    "lynx": _Forecast("Lynx", "Lynx.csv", "", ("0",), "Y", "annual Canadian lynx trappings 1821-1934"),
    "shampoo_sales": _Forecast("ShampooSales", "ShampooSales.csv", "Time", ("Sales",), "M",
                               "monthly shampoo sales over three years"),
    "pbs": _Forecast("PBS_dataset", "PBS_dataset.csv", "Month", ("Scripts",), "M",
                     "monthly scripts for immune sera in Australia's PBS 1991-2008 (intermittent counts)"),
    "solar": _Forecast("solar", "solar.csv", "datetime_gmt", ("solar_gen",), "30min",
                       "half-hourly national solar generation estimates for Great Britain, May 2021"),
    "uschange": _Forecast("Uschange", "Uschange.csv", "Quarter",
                          ("Consumption", "Income", "Production", "Savings", "Unemployment"), "Q",
                          "quarterly % changes of US consumption, income, production, savings, unemployment"),
}


def _forecast_files() -> dict[str, tuple[_Forecast, Path, str]]:
    found: dict[str, tuple[_Forecast, Path, str]] = {}
    for package, root in _data_roots():
        for name, spec in _FORECASTS.items():
            path = root / spec.folder / spec.file
            if name not in found and path.is_file():
                found[name] = (spec, path, package)
    return found


def _scan(path: Path, options: dict[str, Any]) -> pl.LazyFrame:
    if not path.is_file():
        raise DataError(f"{path}: no such file{'' if not path.exists() else ' (a folder, not a file)'}.")
    suffix = path.name.lower()
    try:
        if suffix.endswith(".parquet"):
            return pl.scan_parquet(path)
        if suffix.endswith(".csv"):
            return pl.scan_csv(path, separator=options.get("separator", ","),
                               infer_schema_length=options.get("infer_schema_length", 10000))
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(f"{path}: cannot read the file ({_first_line(exc)}).") from None
    raise DataError(f"{path}: expected a .parquet or .csv file for the long format.")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


class LongFormatReader(Reader):
    """Long-format tables: one row per (id, time), read lazily with polars.

    Options (all optional):

    ``id_column`` (``"id"``), ``time_column`` (``"time"``),
    ``value_columns`` (default: every numeric column other than the id, time,
    label and split columns) — one channel each, in that order;
    ``label_column`` (``"label"`` if present; one label per id),
    ``split_column`` (``"split"`` if present; ``train``/``test`` per id);
    ``separator`` and ``infer_schema_length`` for CSV.

    Rows are sorted by (id, time); each id becomes one item ``(C, T_i)``, ids in
    sorted order.  Null values become ``NaN``.  Named data sets are the
    forecasting series that ship with aeon (``airline``, ``lynx``, ...): one
    item each, ``meta["task"] == "forecast"``.
    """

    name = "long"
    suffixes = (".parquet", ".csv")
    description = "long-format parquet/CSV (one row per id and time step) and aeon's offline forecasting series"

    def datasets(self) -> dict[str, str]:
        return {
            name: f"{spec.about}: {len(spec.values)} channel(s), freq {spec.freq}, from {package}"
            for name, (spec, _, package) in sorted(_forecast_files().items())
        }

    def read(self, source: str, options: dict[str, Any] | None = None) -> Samples:
        options = dict(options or {})
        path = Path(str(source)).expanduser()
        if not path.exists():
            named = _forecast_files()
            key = str(source).lower()
            if key in named:
                return _read_forecast(key, *named[key][:2])
            if path.suffix.lower() in self.suffixes or path.parent != Path("."):
                raise DataError(f"{path}: no such file.")
            raise _missing_source(str(source), "forecasting", named, bool(_data_roots()))
        return read_long(path, options)


def read_long(path: str | Path, options: dict[str, Any] | None = None) -> Samples:
    """Read a long-format parquet/CSV file into Samples (see :class:`LongFormatReader`)."""
    path = Path(path)
    options = dict(options or {})
    lf = _scan(path, options)
    try:
        schema = lf.collect_schema()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(f"{path}: cannot read the file ({_first_line(exc)}).") from None
    columns = list(schema.names())

    def need(option: str, default: str | None) -> str | None:
        col = options.get(option, default)
        if col is None:
            return None
        if col not in schema:
            raise DataError(
                f"{path.name}: no column '{col}' (option {option}); columns found: {', '.join(columns)}."
            )
        return col

    id_col = need("id_column", "id")
    time_col = need("time_column", "time")
    label_col = need("label_column", "label" if "label" in schema else None)
    split_col = need("split_column", "split" if "split" in schema else None)
    reserved = {id_col, time_col, label_col, split_col}
    if options.get("value_columns") is not None:
        value_cols = list(options["value_columns"])
        if isinstance(options["value_columns"], str):
            value_cols = [options["value_columns"]]
        for col in value_cols:
            if col not in schema:
                raise DataError(
                    f"{path.name}: no column '{col}' (option value_columns); columns found: {', '.join(columns)}."
                )
            if not schema[col].is_numeric():
                raise DataError(
                    f"{path.name}: value column '{col}' has type {schema[col]}; expected a numeric column."
                )
    else:
        value_cols = [c for c in columns if c not in reserved and schema[c].is_numeric()]
    if not value_cols:
        raise DataError(
            f"{path.name}: no numeric value column besides the id, time, label and split columns; "
            f"columns found: {', '.join(columns)}."
        )

    keep = [id_col, time_col, *value_cols] + [c for c in (label_col, split_col) if c]
    try:
        df = (
            lf.select(keep)
            .with_columns([pl.col(c).cast(pl.Float32) for c in value_cols])
            .sort([id_col, time_col], nulls_last=True)
            .collect()
        )
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(f"{path}: cannot read the file ({_first_line(exc)}).") from None
    if df.height == 0:
        raise DataError(f"{path.name}: the file has no rows; expected one row per id and time step.")
    for col in (id_col, time_col):
        n_null = df[col].null_count()
        if n_null:
            raise DataError(f"{path.name}: column '{col}' has {n_null} missing value(s); expected every row to have one.")

    same_id = pl.col(id_col) == pl.col(id_col).shift(1)
    dup = df.filter(same_id & (pl.col(time_col) == pl.col(time_col).shift(1)))
    if dup.height:
        bad_id, bad_t = dup.row(0)[0], dup.row(0)[1]
        raise DataError(
            f"{path.name}: id {_show(bad_id)} has more than one row at time {bad_t}; expected one row per id and time."
        )

    aggs = [pl.len().alias("__n")]
    for col, what in ((label_col, "label"), (split_col, "split")):
        if col:
            aggs += [pl.col(col).drop_nulls().n_unique().alias(f"__{what}_k"),
                     pl.col(col).drop_nulls().first().alias(f"__{what}")]
    groups = df.group_by(id_col, maintain_order=True).agg(aggs)
    for col, what in ((label_col, "label"), (split_col, "split")):
        if col:
            varying = groups.filter(pl.col(f"__{what}_k") > 1)
            if varying.height:
                raise DataError(
                    f"{path.name}: id {_show(varying[id_col][0])} has more than one value in the {what} column "
                    f"'{col}'; expected one {what} per id."
                )

    ids = groups[id_col].to_list()
    counts = groups["__n"].to_numpy()
    values = df.select(value_cols).to_numpy().astype(np.float32, copy=False)
    items = [np.ascontiguousarray(block.T) for block in np.split(values, np.cumsum(counts)[:-1])]
    labels = groups["__label"].to_list() if label_col else None
    split = None
    if split_col:
        split = [None if s is None else str(s).strip().lower() for s in groups["__split"].to_list()]
        bad = [(i, s) for i, s in zip(ids, split) if s not in (TRAIN, TEST)]
        if bad:
            value = "no value" if bad[0][1] is None else f"split {bad[0][1]!r}"
            raise DataError(
                f"{path.name}: id {_show(bad[0][0])} has {value} in column '{split_col}'; "
                f"expected '{TRAIN}' or '{TEST}'."
            )
    lengths = counts.tolist()
    meta = {
        "in_channels": len(value_cols),
        "length": int(max(lengths)),
        "equal_length": len(set(lengths)) == 1,
        "n_classes": len({lbl for lbl in labels if lbl is not None}) if labels is not None else 0,
        "problem": path.stem,
        "value_columns": value_cols,
    }
    return Samples(ids=ids, items=items, labels=labels, split=split, meta=meta, source=str(path),
                   fingerprint=file_fingerprint(path))


def _read_forecast(name: str, spec: _Forecast, path: Path) -> Samples:
    """One forecasting series from aeon's data folder as a single (C, T) item."""
    try:
        df = pl.read_csv(path, infer_schema_length=None)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(f"{path}: cannot read the file ({_first_line(exc)}).") from None
    missing = [c for c in (spec.time, *spec.values) if c not in df.columns]
    if missing:
        raise DataError(
            f"{path.name}: no column '{missing[0]}' for the named series '{name}'; columns found: "
            f"{', '.join(df.columns)}."
        )
    try:
        values = df.select([pl.col(c).cast(pl.Float32) for c in spec.values]).to_numpy().T
    except pl.exceptions.PolarsError:
        raise DataError(f"{path.name}: the values of the named series '{name}' are not all numeric.") from None
    times = df[spec.time].cast(pl.Utf8).to_list()
    meta = {
        "task": "forecast",
        "in_channels": values.shape[0],
        "length": values.shape[1],
        "equal_length": True,
        "n_classes": 0,
        "freq": spec.freq,
        "start": times[0],
        "end": times[-1],
        "problem": name,
        "value_columns": list(spec.values),
    }
    return Samples(ids=[name], items=[np.ascontiguousarray(values, dtype=np.float32)], labels=None, split=None,
                   meta=meta, source=str(path), fingerprint=file_fingerprint(path))


#: The readers this plugin registers.
READERS = [TsReader(), LongFormatReader()]
