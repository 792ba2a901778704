"""`contrastkit pretrain`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from .options import ConfigFile, Data, Plugin, Seed, Views


def build_config(host, plugin: str, config: Optional[Path], overrides: dict, out: Optional[Path] = None,
                 resume: bool = False, sources: bool = False):
    """Defaults ← config file ← flags, checked whole (core.config.build); on --resume the run's saved
    config is the base.  Returns the config dict (with ``sources``: the core.config.Resolved)."""
    from contrastkit.core import config as cfgmod

    resolved = cfgmod.build(host.modality(plugin), plugin,
                            cfgmod.load_toml(config) if config is not None else None, overrides,
                            saved=saved_config(out) if resume else None, registry=host.registry)
    return resolved if sources else resolved.config


def saved_config(run_dir: Optional[Path]) -> Optional[dict]:
    """A run directory's saved config.json, or None where there is none."""
    from contrastkit.core.errors import DataError
    from contrastkit.core.runs import CONFIG_FILE

    saved = run_dir / CONFIG_FILE if run_dir is not None else None
    if saved is None or not saved.is_file():
        return None
    try:
        return json.loads(saved.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{saved}: not a readable run config ({exc}).") from None


def pretrain(
    plugin: Plugin,
    out: Annotated[Path, typer.Option("--out", "-o", help="The run directory to create (or to resume).")],
    data: Data = None,
    config: ConfigFile = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="Number of epochs.")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Samples per step and device.")] = None,
    views: Views = None,
    loss: Annotated[Optional[str], typer.Option("--loss", help="A registered loss, e.g. infonce.")] = None,
    encoder: Annotated[Optional[str], typer.Option("--encoder", help="A registered encoder of the plugin.")] = None,
    devices: Annotated[Optional[int], typer.Option("--devices", help="Processes/GPUs (DDP when > 1).")] = None,
    seed: Seed = None,
    lr: Annotated[Optional[float], typer.Option("--lr", help="Learning rate.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its last checkpoint.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
) -> None:
    """Pretrain an encoder on PLUGIN's data with contrastive views; writes a run directory."""
    from contrastkit.core.plugins import get_host, warn_failures
    from contrastkit.core.training import pretrain as run_pretrain

    host = get_host()
    warn_failures(host)
    cfg = build_config(host, plugin, config, {
        "data": data, "epochs": epochs, "batch_size": batch_size, "views": views, "loss": loss,
        "encoder": encoder, "devices": devices, "seed": seed, "lr": lr,
    }, out, resume)
    summary = run_pretrain(host, cfg, out, resume=resume, progress=progress)
    if not summary:  # not rank 0
        return
    d = summary["diagnostics"]
    typer.echo(
        f"pretrained '{plugin}' on {summary['data']['source']} ({summary['data']['n_train']} training items) "
        f"for {summary['epochs_done']} epochs in {summary['train_seconds']:.1f} s; final loss {summary['final_loss']:.4f}"
    )
    typer.echo(
        f"projections z: alignment {d['alignment']:.3f}, uniformity {d['uniformity']:.3f}, "
        f"effective rank {d['effective_rank']:.1f} of {d['dim']}; "
        f"representations h: effective rank {d['h_effective_rank']:.1f} of {d['h_dim']}"
    )
    typer.echo(f"run: {out}")


def add_to(app: typer.Typer) -> None:
    app.command("pretrain")(pretrain)
