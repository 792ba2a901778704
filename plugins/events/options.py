"""The ``data_options`` the events plugin reads (readers, store and ``prepare``), as a schema.

Declared on the modality (``Modality.options``): core checks a run's
``[data_options]`` against it before any data are read.
"""

from __future__ import annotations

from typing import Annotated, Literal

import annotated_types as at

from contrastkit.core import DataOptions

Columns = str | list[str] | None


class EventsOptions(DataOptions):
    """``[data_options]`` of the events plugin."""

    # table readers (parquet/CSV): columns, parsing, labels
    id_column: str | None = None
    time_column: str | None = None
    label_column: str | None = None
    split_column: str | None = None
    categorical: Columns = None
    numeric: Columns = None
    time_format: str | None = None
    separator: str | None = None
    labels: str | None = None
    labels_id_column: str | None = None
    streaming: bool = False
    # out-of-core grouping
    out_of_core: bool | Literal["auto"] = "auto"
    memory_budget_mb: Annotated[float, at.Gt(0)] | None = None
    cache_dir: str | None = None
    # CDNOW
    calibration_weeks: Annotated[float, at.Ge(1), at.Le(77)] = 39
    target: Literal["repeat", "spend"] = "repeat"
    # synthetic_transactions
    n_clients: Annotated[int, at.Ge(2)] = 2000
    seed: int = 0
    n_categories: Annotated[int, at.Ge(1)] | None = None
    signal: float | None = None
    synthetic_min_events: Annotated[int, at.Ge(1)] | None = None
    synthetic_max_events: Annotated[int, at.Ge(1)] | None = None
    # prepare (plugins/events/modality.py)
    min_events: Annotated[int, at.Ge(1)] | None = 1
    max_events: Annotated[int, at.Ge(1)] | None = None
    min_frequency: Annotated[int, at.Ge(1)] | None = 5
    max_vocab: Annotated[int, at.Ge(1)] | None = 50_000
    numeric_transform: Literal["log1p", "none"] = "log1p"
    scaling: Literal["robust", "standard", "none"] = "robust"
