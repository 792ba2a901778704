"""`contrastkit tabular-describe FILE`: per-column statistics of a table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import polars as pl
import typer

from contrastkit.core import DataError

from .readers import SKLEARN_DATASETS, scan, sklearn_frame


def describe(frame: pl.LazyFrame | pl.DataFrame) -> list[dict]:
    """One dict per column: name, dtype, rows, nulls and, for numeric columns, mean, std, min, max."""
    lazy = frame.lazy()
    schema = lazy.collect_schema()
    exprs = [pl.len().alias("__rows")]
    for name, dtype in schema.items():
        col = pl.col(name)
        exprs.append(col.null_count().alias(f"{name}__nulls"))
        if dtype.is_numeric():
            exprs += [col.mean().alias(f"{name}__mean"), col.std().alias(f"{name}__std"),
                      col.min().cast(pl.Float64).alias(f"{name}__min"),
                      col.max().cast(pl.Float64).alias(f"{name}__max")]
        else:
            exprs.append(col.n_unique().alias(f"{name}__distinct"))
    try:
        stats = lazy.select(exprs).collect().row(0, named=True)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(f"the table cannot be read ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}).") \
            from None
    out = []
    for name, dtype in schema.items():
        row = {"column": name, "dtype": str(dtype), "rows": stats["__rows"], "nulls": stats[f"{name}__nulls"]}
        for key in ("mean", "std", "min", "max", "distinct"):
            if f"{name}__{key}" in stats:
                row[key] = stats[f"{name}__{key}"]
        out.append(row)
    return out


def tabular_describe(
    source: Annotated[str, typer.Argument(help="A parquet or CSV file, or a named tabular data set (e.g. wine).")],
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")] = False,
) -> None:
    """Print per-column statistics of a table: dtype, rows, nulls, mean, std, min, max (read lazily)."""
    if source.lower() in SKLEARN_DATASETS:
        frame: pl.LazyFrame | pl.DataFrame = sklearn_frame(source.lower())
    else:
        path = Path(source)
        if not path.name.lower().endswith((".parquet", ".csv")):
            raise DataError(f"{source}: not a .parquet or .csv file, nor a named data set "
                            f"({', '.join(SKLEARN_DATASETS)}).")
        frame = scan(path)
    columns = describe(frame)
    if json_out:
        typer.echo(json.dumps({"source": source, "columns": columns}, indent=2))
        return
    typer.echo(f"{source}: {columns[0]['rows'] if columns else 0} rows, {len(columns)} columns")
    typer.echo(f"{'column':<28} {'dtype':<8} {'nulls':>6} {'mean':>11} {'std':>11} {'min':>11} {'max':>11}")

    def fmt(v) -> str:
        return f"{v:>11.4g}" if isinstance(v, (int, float)) and v is not None else f"{'-':>11}"

    for c in columns:
        if "mean" in c:
            typer.echo(f"{c['column']:<28.28} {c['dtype']:<8.8} {c['nulls']:>6} {fmt(c['mean'])} {fmt(c['std'])} "
                       f"{fmt(c['min'])} {fmt(c['max'])}")
        else:
            typer.echo(f"{c['column']:<28.28} {c['dtype']:<8.8} {c['nulls']:>6} {c['distinct']:>11} distinct values")
