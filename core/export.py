"""The embeddings file: parquet written with polars, atomically.

Columns: ``id`` (the entity's id from the input), ``embedding`` (fixed-size
list of float32), and where known ``label`` and ``split``.  File metadata
(key-value) carries the run's config hash, the encoder's name, the embedding
dimension and the granularity.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from .errors import DataError
from .rundir import file_mode

META_PREFIX = "contrastkit."


def embeddings_frame(ids: list, h: np.ndarray, labels: list | None = None, split: list | None = None,
                     id_columns: list[str] | None = None) -> pl.DataFrame:
    """The embeddings table.

    With ``id_columns`` (e.g. ``["graph_id", "node_id"]`` for node embeddings, or
    ``["volume", "x", "y", "z"]`` for patches), each id is a tuple of that many
    parts: every part gets its own column and ``id`` joins them with "/".
    """
    h = np.ascontiguousarray(h, dtype=np.float32)
    if h.ndim != 2 or h.shape[0] != len(ids):
        raise DataError(f"embeddings of shape {h.shape} do not match {len(ids)} ids.")
    parts: dict[str, Any] = {}
    if id_columns:
        width = len(id_columns)
        bad = next((i for i in ids if not isinstance(i, (tuple, list)) or len(i) != width), None)
        if bad is not None:
            raise DataError(f"id {bad!r} is not a tuple of {width} parts ({', '.join(id_columns)}).")
        for j, name in enumerate(id_columns):
            parts[name] = pl.Series(name, [i[j] for i in ids])
        ids = ["/".join(str(p) for p in i) for i in ids]
    cols: dict[str, Any] = {
        "id": pl.Series("id", ids),
        **parts,
        "embedding": pl.Series("embedding", h, dtype=pl.Array(pl.Float32, h.shape[1])),
    }
    if labels is not None and any(lbl is not None for lbl in labels):
        cols["label"] = pl.Series("label", labels)
    if split is not None:
        cols["split"] = pl.Series("split", split, dtype=pl.String)
    return pl.DataFrame(cols)


def write_embeddings(path: str | Path, frame: pl.DataFrame, metadata: dict[str, Any]) -> Path:
    """Write ``frame`` to ``path`` via a temporary file in the same folder and a rename."""
    path = Path(path)
    if path.suffix.lower() != ".parquet":
        raise DataError(f"{path}: the embeddings file must end with .parquet.")
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {f"{META_PREFIX}{k}": v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        frame.write_parquet(tmp, metadata=meta)
        os.chmod(tmp, file_mode())  # mkstemp makes 0600; the file gets the umask's mode like any other
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_metadata(path: str | Path) -> dict[str, str]:
    """The contrastkit key-value metadata of an embeddings file."""
    raw = pl.read_parquet_metadata(path)
    return {k[len(META_PREFIX):]: v for k, v in raw.items() if k.startswith(META_PREFIX)}
