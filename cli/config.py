"""`contrastkit config show|schema`: the resolved run config with its sources, and its JSON schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from .options import ConfigFile, Data, Json, Seed, Views

app = typer.Typer(name="config", help="Show a resolved run config, or the JSON schema of a plugin's run config.",
                  no_args_is_help=True)


@app.command("show")
def show(
    target: Annotated[str, typer.Argument(help="A run directory (its saved config is the base) or a plugin.")],
    config: ConfigFile = None,
    data: Data = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="Number of epochs.")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Samples per step and device.")] = None,
    views: Views = None,
    loss: Annotated[Optional[str], typer.Option("--loss", help="A registered loss.")] = None,
    encoder: Annotated[Optional[str], typer.Option("--encoder", help="A registered encoder of the plugin.")] = None,
    devices: Annotated[Optional[int], typer.Option("--devices", help="Processes/GPUs.")] = None,
    seed: Seed = None,
    lr: Annotated[Optional[float], typer.Option("--lr", help="Learning rate.")] = None,
    json_out: Json = False,
) -> None:
    """Print the config that `pretrain` would use (checked), each value with where it came from:
    default, recipe, saved run, file, flag or argument."""
    from contrastkit.core import config as cfgmod
    from contrastkit.core.errors import DataError
    from contrastkit.core.plugins import get_host, warn_failures

    from .pretrain import saved_config

    host = get_host()
    warn_failures(host)
    saved = None
    path = Path(target)
    if path.is_dir():
        saved = saved_config(path)
        if saved is None:
            raise DataError(f"{path}: not a contrastkit run directory (no config.json).")
        plugin = str(saved.get("plugin"))
    else:
        plugin = target
    flags = {"data": data, "epochs": epochs, "batch_size": batch_size, "views": views, "loss": loss,
             "encoder": encoder, "devices": devices, "seed": seed, "lr": lr}
    resolved = cfgmod.build(host.modality(plugin), plugin, cfgmod.load_toml(config) if config is not None else None,
                            flags, saved=saved, registry=host.registry)
    if json_out:
        typer.echo(json.dumps({"config": resolved.config, "sources": resolved.sources,
                               "config_hash": cfgmod.config_hash(resolved.config)}, indent=2, default=str))
        return
    rows = resolved.leaves()
    width = max(len(k) for k, _, _ in rows)
    for key, value, source in rows:
        typer.echo(f"{key:<{width}} = {json.dumps(value, default=str):<32} # {source}")
    typer.echo(f"# config hash {cfgmod.config_hash(resolved.config)}")


@app.command("schema")
def schema(
    plugin: Annotated[str, typer.Argument(help="The modality plugin, e.g. timeseries.")],
) -> None:
    """Print the JSON schema of PLUGIN's run config, its data_options included (for editors' TOML completion)."""
    from contrastkit.core.config import run_config_model
    from contrastkit.core.plugins import get_host

    modality = get_host().modality(plugin)
    doc = run_config_model(getattr(modality, "options", None)).model_json_schema()
    doc = {"$schema": "https://json-schema.org/draft/2020-12/schema", **doc,
           "title": f"contrastkit run config ({plugin})"}
    typer.echo(json.dumps(doc, indent=2))


def add_to(root: typer.Typer) -> None:
    root.add_typer(app, name="config")
