"""`contrastkit evaluate`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from .options import Data, EncoderOptions, Json, RunDir, parse_encoder_options


def evaluate(
    run_dir: RunDir,
    data: Data = None,
    evaluator: Annotated[Optional[list[str]], typer.Option("--evaluator", "-e", help="An evaluator to run "
                                                           "(repeatable); default: those the data allows.")] = None,
    seeds: Annotated[Optional[str], typer.Option("--seeds", help="Comma-separated seeds, e.g. 0,1,2.")] = None,
    json_out: Json = False,
    map_png: Annotated[Optional[Path], typer.Option("--map", help="Also draw a 2-D map of the embeddings, "
                                                    "coloured by label, to this PNG.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Also write the JSON result to this file.")] = None,
    baseline: Annotated[bool, typer.Option("--baseline/--no-baseline", help="Also evaluate a randomly initialised "
                                           "encoder of the same shape, to show what pretraining added.")] = False,
    encoder_option: EncoderOptions = None,
) -> None:
    """Evaluate a run's frozen encoder on labelled (or forecasting) data under the evaluation protocol."""
    from contrastkit.core.errors import ConfigError, DataError
    from contrastkit.core.evaluation import EvalContext, default_evaluators, run_evaluators
    from contrastkit.core.plugins import get_host, warn_failures
    from contrastkit.core.runs import load_run, write_json

    from .export import load_data_for_run

    host = get_host()
    warn_failures(host)
    options = parse_encoder_options(encoder_option)
    run = load_run(run_dir, host, options)
    plugin = run.config["plugin"]
    samples = run.prepare(load_data_for_run(host, run, data))
    try:
        seed_list = [int(s) for s in seeds.split(",")] if seeds else list(run.config["evaluate"]["seeds"])
    except ValueError:
        raise ConfigError(f"--seeds must be comma-separated integers, got {seeds!r}.") from None
    names = evaluator or default_evaluators(host.registry, plugin, samples, run.config["evaluate"].get("evaluators"))
    if not names:
        raise DataError(f"{samples.source}: no evaluator applies (the data has no labels); name one with --evaluator.")
    for name in names:
        host.registry.get("evaluator", name, plugin)
    ctx = EvalContext(samples=samples, embed=run.embed, seeds=seed_list, run_dir=run_dir, meta=run.meta,
                      prepare=run.prepare, options=dict(run.config["evaluate"].get("options", {})))
    result = run_evaluators(host.registry, plugin, ctx, names,
                            progress=None if json_out else lambda n: typer.echo(f"evaluating with {n} ...", err=True))
    result = {"run": str(run_dir), "data": samples.source, "n_items": len(samples), **result}
    if options:
        result["encoder_options"] = options
    if baseline:
        rand = run.random_init(host, seed=run.config["seed"])
        base_ctx = EvalContext(samples=samples, embed=rand.embed, seeds=seed_list, run_dir=run_dir, meta=run.meta,
                               prepare=run.prepare, options=ctx.options)
        # a baseline that never calls the encoder gives the same figures: not run twice
        base_names = [n for n in names if getattr(host.registry.get("evaluator", n, plugin).obj, "uses_encoder", True)]
        base = run_evaluators(host.registry, plugin, base_ctx, base_names,
                              progress=None if json_out else lambda n: typer.echo(f"evaluating the random-init "
                                                                                  f"encoder with {n} ...", err=True))
        result["metrics"].update({f"random_init.{k}": v for k, v in base["metrics"].items()})
        result["random_init"] = base["evaluations"]
    if map_png is not None:
        from contrastkit.core.pictures import embedding_map

        embedding_map(ctx.embeddings(), samples.labels, map_png, title=f"{plugin}: {samples.source}")
        result["map"] = str(map_png)
    if out is not None:
        write_json(out, result)
    if json_out:
        typer.echo(json.dumps(result, indent=2))
        return
    base_by_name = {ev["evaluator"]: ev["metrics"] for ev in result.get("random_init", [])}
    for ev in result["evaluations"]:
        m, b = ev["metrics"], base_by_name.get(ev["evaluator"])
        typer.echo(f"{ev['evaluator']} ({ev['protocol']} v{ev['protocol_version']}, seeds {ev['seeds']}):"
                   + ("   [pretrained | random init]" if b else ""))
        for key, val in m.items():
            if key.endswith("_std"):
                continue
            std = m.get(f"{key}_std")
            line = f"  {key:<18} {val:.4f}" + (f" ± {std:.4f}" if std is not None else "")
            if b is not None and key in b:
                line += f"   | {b[key]:.4f}" + (f" ± {b[key + '_std']:.4f}" if f"{key}_std" in b else "")
            typer.echo(line)
    if map_png is not None:
        typer.echo(f"embedding map: {map_png}")


def add_to(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
