"""`contrastkit embed`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .options import Data, EncoderOptions, RunDir, parse_encoder_options


def load_data_for_run(host, run, data: Optional[str]):
    """Read SRC (default: the run's own data) and give it the run's split rule."""
    from contrastkit.core.sources import read_source

    src = data if data is not None else run.config["data"]
    return read_source(host.registry, run.config["plugin"], src, run.config.get("data_options", {})).with_split()


def embed(
    run_dir: RunDir,
    data: Data = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="The parquet file to write "
                                                "(default: RUN_DIR/embeddings.parquet).")] = None,
    encoder_option: EncoderOptions = None,
) -> None:
    """Export the frozen encoder's embeddings of SRC to a parquet file (id, embedding, label, split)."""
    from contrastkit.core.export import embeddings_frame, write_embeddings
    from contrastkit.core.plugins import get_host, warn_failures
    from contrastkit.core.runs import check_writable, load_run

    host = get_host()
    warn_failures(host)
    options = parse_encoder_options(encoder_option)
    run = load_run(run_dir, host, options)
    check_writable(out or run_dir / "embeddings.parquet", "--out")  # before the data are read
    samples = run.prepare(load_data_for_run(host, run, data))
    h = run.embed(samples)
    out = out or run_dir / "embeddings.parquet"
    id_columns = samples.meta.get("id_columns")
    frame = embeddings_frame(samples.ids, h, samples.labels, samples.split, id_columns=id_columns)
    write_embeddings(out, frame, {
        "config_hash": run.card.get("config_hash", ""),
        "encoder": run.config["encoder"]["name"],
        "plugin": run.config["plugin"],
        "run": str(run_dir),
        "data": samples.source,
        "dim": int(h.shape[1]),
        "granularity": samples.meta.get("granularity", "sample"),
        "id_columns": list(id_columns or ["id"]),
        "encoder_options": options,
    })
    typer.echo(f"wrote {len(samples)} embeddings of dimension {h.shape[1]} to {out}")


def add_to(app: typer.Typer) -> None:
    app.command("embed")(embed)
