"""Option aliases shared by the CLI commands (one definition, one help text)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

Data = Annotated[Optional[str], typer.Option(
    "--data", "-d", help="A file, a folder or a named data set (see `contrastkit datasets`); "
    "default: the plugin's embedded data set, or the run's data.")]
ConfigFile = Annotated[Optional[Path], typer.Option("--config", "-c", help="A TOML file with run settings.")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]
Seed = Annotated[Optional[int], typer.Option("--seed", help="Random seed.")]
Views = Annotated[Optional[int], typer.Option("--views", "-k", help="Number of views per sample (K ≥ 2).")]
RunDir = Annotated[Path, typer.Argument(help="A run directory written by `contrastkit pretrain`.")]
Plugin = Annotated[str, typer.Argument(help="The modality plugin, e.g. timeseries (see `contrastkit plugins`).")]
