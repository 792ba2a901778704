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
    baseline: Annotated[bool, typer.Option("--baseline/--no-baseline", help="Also evaluate the baselines an SSL "
                                           "reviewer asks for, in one table: a randomly initialised encoder of the "
                                           "same shape, the same with its normalisation statistics fitted on the "
                                           "training items, and the domain's non-learned method(s).")] = False,
    label_fractions: Annotated[Optional[str], typer.Option(
        "--label-fractions", help="Label efficiency: re-fit each probe on stratified subsets of the training "
        "labels, e.g. 0.01,0.05,0.1,0.25,1.0 ('default' for those), one draw per seed, the same draws for every "
        "encoder and baseline.")] = None,
    curve: Annotated[Optional[Path], typer.Option("--curve", help="Draw the label-efficiency curves to this PNG "
                                                  "(needs --label-fractions).")] = None,
    protocol: Annotated[Optional[str], typer.Option("--protocol", help="An evaluation protocol the evaluators "
                                                    "offer, e.g. kfold or split for graphs (default: the data's "
                                                    "split when it has one).")] = None,
    encoder_option: EncoderOptions = None,
) -> None:
    """Evaluate a run's frozen encoder on labelled (or forecasting) data under the evaluation protocol."""
    from contrastkit.core.comparison import compare, format_comparison, parse_fractions
    from contrastkit.core.errors import ConfigError, DataError
    from contrastkit.core.evaluation import default_evaluators
    from contrastkit.core.plugins import get_host, warn_failures
    from contrastkit.core.runs import check_writable, load_run, write_json

    from .export import load_data_for_run

    fractions = parse_fractions(label_fractions)
    if curve is not None:
        from contrastkit.core.pictures import check_picture_path

        if not fractions:
            raise ConfigError("--curve draws the label-efficiency curves: give --label-fractions too.")
        check_picture_path(curve)
    host = get_host()
    warn_failures(host)
    options = parse_encoder_options(encoder_option)
    run = load_run(run_dir, host, options)
    for path, flag in ((out, "--out"), (map_png, "--map")):  # writable, before the data are read
        if path is not None:
            check_writable(path, flag)
    plugin = run.config["plugin"]
    try:
        seed_list = [int(s) for s in seeds.split(",")] if seeds else list(run.config["evaluate"]["seeds"])
    except ValueError:
        raise ConfigError(f"--seeds must be comma-separated integers, got {seeds!r}.") from None
    if not seed_list:
        raise ConfigError("--seeds: give at least one seed.")
    samples = run.prepare(load_data_for_run(host, run, data))
    names = evaluator or default_evaluators(host.registry, plugin, samples, run.config["evaluate"].get("evaluators"))
    if not names:
        raise DataError(f"{samples.source}: no evaluator applies (the data has no labels); name one with --evaluator.")
    for name in names:
        host.registry.get("evaluator", name, plugin)
    eval_options = dict(run.config["evaluate"].get("options", {}) or {})
    if protocol is not None:
        eval_options["protocol"] = protocol
    say = None if json_out else (lambda m: typer.echo(m, err=True))
    result = compare(host, run, samples, names, seed_list, options=eval_options, baseline=baseline,
                     fractions=fractions, progress=say)
    result = {"run": str(run_dir), "data": samples.source, "n_items": len(samples), **result}
    if options:
        result["encoder_options"] = options
    if curve is not None and result.get("label_efficiency"):
        from contrastkit.core.pictures import label_efficiency_curve

        label_efficiency_curve(result, curve, title=f"{plugin}: {samples.source}")
        result["curve"] = str(curve)
    if map_png is not None:
        from contrastkit.core.pictures import embedding_map

        embedding_map(run.embed(samples), samples.labels, map_png, title=f"{plugin}: {samples.source}")
        result["map"] = str(map_png)
    result = json_safe(result)
    if out is not None:
        write_json(out, result)
    if json_out:
        typer.echo(json.dumps(result, indent=2, allow_nan=False))
        return
    typer.echo(format_comparison(result), nl=False)
    for ev in result["evaluations"]:
        extra = {k: v for k, v in ev["metrics"].items() if k not in _table_keys(result, ev["evaluator"])}
        if extra:
            typer.echo(f"{ev['evaluator']}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in extra.items()))
    if "curve" in result:
        typer.echo(f"label-efficiency curve: {result['curve']}")
    if map_png is not None:
        typer.echo(f"embedding map: {map_png}")


def _table_keys(result: dict, evaluator: str) -> set[str]:
    keys = {e["metric"] for e in result.get("table", []) if e["evaluator"] == evaluator}
    return keys | {f"{k}_std" for k in keys}


def _fmt(v) -> str:
    if v is None:
        return "undefined"
    if isinstance(v, float) and v.is_integer() and abs(v) >= 1e6:
        return f"{v:.0e}" + (" (hard margin)" if v >= 1e8 else "")
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def json_safe(obj):
    """``obj`` with NaN/inf floats replaced by None (standard JSON), recursively."""
    import math

    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def add_to(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
