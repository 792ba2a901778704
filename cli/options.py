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
EncoderOptions = Annotated[Optional[list[str]], typer.Option(
    "--encoder-option", "-E", help="KEY=VALUE: an [encoder] setting for this command only, e.g. "
    "inference_matmul=bfloat16 (the events GRU's faster embedding); the trained weights must still fit. "
    "Repeatable.")]


def parse_encoder_options(values: list[str] | None) -> dict:
    """``["k=v", ...]`` → ``{k: v}``; values are read as JSON where they parse (3, 0.5, true), else as text."""
    import json

    from contrastkit.core.errors import ConfigError

    out: dict = {}
    for item in values or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--encoder-option takes KEY=VALUE, got {item!r}.")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out
