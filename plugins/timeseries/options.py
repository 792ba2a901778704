"""The ``data_options`` the time-series plugin reads (readers and ``prepare``), as a schema.

Declared on the modality (``Modality.options``): core checks a run's
``[data_options]`` against it before any data are read — unknown keys (with a
"did you mean") and wrong types fail with the dotted path.
"""

from __future__ import annotations

from typing import Annotated, Literal

import annotated_types as at

from contrastkit.core import DataOptions


class TimeseriesOptions(DataOptions):
    """``[data_options]`` of the timeseries plugin."""

    # prepare (plugins/timeseries/modality.py)
    normalize: Literal["global", "instance", "none"] = "global"
    missing: Literal["auto", "error", "mask", "interpolate"] = "auto"
    # UCR/UEA .ts reader
    pair: bool = True
    # long-format reader (parquet/CSV)
    id_column: str = "id"
    time_column: str = "time"
    value_columns: str | list[str] | None = None
    label_column: str | None = None
    split_column: str | None = None
    separator: str = ","
    infer_schema_length: Annotated[int, at.Ge(0)] | None = 10000
