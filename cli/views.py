"""`contrastkit views`: a picture of K views of a few samples."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .options import ConfigFile, Data, Plugin, Seed, Views


def views(
    plugin: Plugin,
    out: Annotated[Path, typer.Option("--out", "-o", help="The PNG file to write.")],
    data: Data = None,
    config: ConfigFile = None,
    k: Views = None,
    samples: Annotated[int, typer.Option("--samples", "-n", help="How many samples to draw.")] = 4,
    seed: Seed = None,
) -> None:
    """Draw a few samples of SRC with K augmented views each, as pretraining would see them."""
    from contrastkit.core.components import build_views
    from contrastkit.core.data import TRAIN
    from contrastkit.core.errors import ConfigError
    from contrastkit.core.plugins import get_host, warn_failures
    from contrastkit.core.runs import move_to
    from contrastkit.core.sources import read_source
    from contrastkit.core.views import make_generator

    from .pretrain import build_config

    host = get_host()
    warn_failures(host)
    cfg = build_config(host, plugin, config, {"data": data, "views": k, "seed": seed})
    modality = host.modality(plugin)
    if modality.plot_views is None:
        raise ConfigError(f"plugin '{plugin}' cannot draw its views (its modality has no plot_views).")
    if samples < 1:
        raise ConfigError(f"--samples must be at least 1, got {samples}.")
    raw = read_source(host.registry, plugin, cfg["data"], cfg["data_options"]).with_split().part(TRAIN)
    prepared, _ = modality.prepare(raw, None, cfg["data_options"]) if modality.prepare else (raw, {})
    items = list(prepared.items[:samples])
    batch = modality.collate(items)
    generator = build_views(host.registry, plugin, cfg, meta=dict(prepared.meta))
    vs = generator(move_to(batch, "cpu"), make_generator(cfg["seed"]))
    title = f"{plugin}: {prepared.source} — {generator.k} views"
    modality.plot_views(batch, vs, out, title=title, ids=prepared.ids[:samples])
    typer.echo(f"wrote {len(items)} samples × {generator.k} views to {out}")


def add_to(app: typer.Typer) -> None:
    app.command("views")(views)
