"""Small generated event tables for the events plugin's tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from contrastkit.plugins.events.synthetic import synthetic_frames


@pytest.fixture
def events_files(tmp_path) -> tuple[Path, Path]:
    """(events.parquet, labels.csv) of 120 generated clients with 20–60 events each."""
    events, labels = synthetic_frames(n_clients=120, seed=3, min_events=20, max_events=60)
    ev, lab = tmp_path / "events.parquet", tmp_path / "labels.csv"
    events.write_parquet(ev)
    labels.write_csv(lab)
    return ev, lab


def tiny_table(path: Path, fmt: str = "csv") -> Path:
    """Three entities with hand-written events: text categories, an amount, string timestamps."""
    frame = pl.DataFrame({
        "user": ["a", "a", "a", "b", "b", "c"],
        "ts": ["2024-01-03", "2024-01-01", "2024-01-02", "2024-02-01", "2024-02-05", "2024-03-01"],
        "shop": ["x", "y", "x", "z", "x", "y"],
        "amount": [10.0, 1.0, 100.0, 5.0, np.nan, 2.0],
        "label": [1, 1, 1, 0, 0, 1],
    })
    if fmt == "csv":
        frame.write_csv(path)
    else:
        frame.write_parquet(path)
    return path
