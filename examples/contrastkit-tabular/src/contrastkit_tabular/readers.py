"""Readers for tables: parquet and CSV files (read lazily with polars), and named data sets.

A table has one row per entity: an id column, optionally a label column and a
``split`` column (``train``/``test``), and numeric feature columns.  The
column names come from the run config's ``[data_options]``:

============== =========== ===============================================
option         default     meaning
============== =========== ===============================================
id_column      ``"id"``    the entity's id (unique, not null)
label_column   ``"label"`` the label, if the table has that column
split_column   ``"split"`` ``train``/``test`` per row, if the table has it
feature_columns all others the numeric columns to learn from
============== =========== ===============================================

The named data sets ship inside scikit-learn's wheel (no download):
``breast_cancer``, ``wine`` and ``iris``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from contrastkit.core import ConfigError, DataError, Reader, Samples
from contrastkit.core.data import TEST, TRAIN, array_fingerprint, file_fingerprint

#: Every ``data_options`` key the tabular plugin understands (readers and preparation).
OPTIONS = ("id_column", "label_column", "split_column", "feature_columns", "standardize", "missing")

#: name -> (scikit-learn loader, description)
SKLEARN_DATASETS: dict[str, tuple[str, str]] = {
    "breast_cancer": ("load_breast_cancer", "Wisconsin breast cancer: 569 rows, 30 features, 2 classes (scikit-learn)"),
    "wine": ("load_wine", "Wine recognition: 178 rows, 13 features, 3 classes (scikit-learn)"),
    "iris": ("load_iris", "Iris: 150 rows, 4 features, 3 classes (scikit-learn)"),
}


def check_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """The options, refusing keys the tabular plugin does not know."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ConfigError(f"data_options has unknown key(s) {', '.join(unknown)} for tabular data; "
                          f"valid keys: {', '.join(OPTIONS)}.")
    for key in ("id_column", "label_column", "split_column"):
        if key in options and not isinstance(options[key], str):
            raise ConfigError(f"data_options.{key} must be a column name (a string), got {options[key]!r}.")
    cols = options.get("feature_columns")
    if cols is not None and (not isinstance(cols, list) or not cols or not all(isinstance(c, str) for c in cols)):
        raise ConfigError(f"data_options.feature_columns must be a non-empty list of column names, got {cols!r}.")
    return options


def scan(path: str | Path) -> pl.LazyFrame:
    """A lazy frame over a parquet or CSV file; unreadable files are a DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file.")
    kind = "parquet" if path.name.lower().endswith(".parquet") else "CSV"
    try:
        frame = pl.scan_parquet(path) if kind == "parquet" else pl.scan_csv(path, infer_schema_length=10_000)
        frame.collect_schema()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(f"{path}: not a readable {kind} file ({_first_line(exc)}).") from None
    return frame


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0].rstrip(".") if text else type(exc).__name__


def frame_samples(frame: pl.LazyFrame | pl.DataFrame, options: dict[str, Any], source: str,
                  fingerprint: str = "") -> Samples:
    """Samples from a table: one float32 feature vector per row, with ids, labels and split."""
    options = check_options(options)
    lazy = frame.lazy()
    schema = lazy.collect_schema()
    columns = list(schema.names())
    id_col = options.get("id_column", "id")
    if id_col not in schema:
        raise DataError(f"{source}: no id column '{id_col}' among the columns {', '.join(columns)}; "
                        "set data_options.id_column.")
    label_col = options.get("label_column", "label")
    if label_col not in schema:
        if "label_column" in options:
            raise DataError(f"{source}: no label column '{label_col}' among the columns {', '.join(columns)}.")
        label_col = None
    split_col = options.get("split_column", "split")
    if split_col not in schema:
        if "split_column" in options:
            raise DataError(f"{source}: no split column '{split_col}' among the columns {', '.join(columns)}.")
        split_col = None
    reserved = {id_col, label_col, split_col}
    features = options.get("feature_columns") or [c for c in columns if c not in reserved]
    for col in features:
        if col not in schema:
            raise DataError(f"{source}: no feature column '{col}' among the columns {', '.join(columns)}.")
        if not (schema[col].is_numeric() or schema[col] == pl.Boolean):
            raise DataError(f"{source}: column '{col}' holds {schema[col]}, not numbers; list the numeric columns "
                            "in data_options.feature_columns.")
    if not features:
        raise DataError(f"{source}: no feature column besides {', '.join(c for c in reserved if c)}.")
    wanted = [id_col] + [c for c in (label_col, split_col) if c] + features
    try:
        table = lazy.select(wanted).collect()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(f"{source}: cannot be read ({_first_line(exc)}).") from None
    if table.height == 0:
        raise DataError(f"{source}: the table has no rows.")
    ids = table[id_col].to_list()
    if None in ids:
        raise DataError(f"{source}: row {ids.index(None)} has no id (column '{id_col}').")
    split = None
    if split_col:
        split = table[split_col].cast(pl.String).to_list()
        bad = next((i for i, s in enumerate(split) if s not in (TRAIN, TEST)), None)
        if bad is not None:
            raise DataError(f"{source}: row {bad} (id {ids[bad]!r}) has split {split[bad]!r} in column "
                            f"'{split_col}'; expected '{TRAIN}' or '{TEST}'.")
    labels = table[label_col].to_list() if label_col else None
    items = table.select(features).cast(pl.Float64).fill_null(float("nan")).to_numpy().astype(np.float32)
    meta = {"in_features": len(features), "feature_names": list(features)}
    return Samples(ids=ids, items=items, labels=labels, split=split, meta=meta, source=source,
                   fingerprint=fingerprint)


class TableReader(Reader):
    """Parquet and CSV tables, read lazily with polars (only the columns used are loaded)."""

    name = "table"
    suffixes = (".parquet", ".csv")
    description = "Parquet/CSV tables: an id column, optional label and split columns, numeric features"

    def read(self, source: str, options: dict[str, Any] | None = None) -> Samples:
        options = check_options(options)
        path = Path(source)
        return frame_samples(scan(path), options, str(path), file_fingerprint(path))


def sklearn_frame(name: str) -> pl.DataFrame:
    """A scikit-learn toy data set as a table with ``id``, the features and ``label`` (the class name)."""
    import sklearn.datasets

    loader, _ = SKLEARN_DATASETS[name]
    bunch = getattr(sklearn.datasets, loader)()
    data = np.asarray(bunch.data, dtype=np.float64)
    columns = {"id": np.arange(len(data))}
    columns.update({str(col): data[:, j] for j, col in enumerate(bunch.feature_names)})
    columns["label"] = np.asarray(bunch.target_names)[bunch.target].astype(str)
    return pl.DataFrame(columns)


class SklearnDatasets(Reader):
    """The small classification tables that ship inside scikit-learn (no download)."""

    name = "sklearn"
    description = "scikit-learn's bundled tables: breast_cancer, wine, iris"

    def datasets(self) -> dict[str, str]:
        return {name: desc for name, (_, desc) in SKLEARN_DATASETS.items()}

    def read(self, source: str, options: dict[str, Any] | None = None) -> Samples:
        check_options(options)
        name = str(source).lower()
        if name not in SKLEARN_DATASETS:
            raise DataError(f"{source}: not a named tabular data set; valid names: {', '.join(SKLEARN_DATASETS)}.")
        frame = sklearn_frame(name)
        samples = frame_samples(frame, {}, name)
        samples.fingerprint = array_fingerprint([np.asarray(samples.items)])
        return samples


READERS = (TableReader(), SklearnDatasets())
