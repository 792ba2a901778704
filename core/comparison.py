"""The comparison a reviewer asks for: a pretrained encoder beside its baselines, in one table.

:func:`compare` runs the same evaluators, on the same data, splits and seeds, for every *row*:

``pretrained``
    the run's trained encoder;
``random_init``
    a freshly initialised encoder of the same shape (same seed as the run);
``random_init_fitted``
    the same random weights with their normalisation statistics (BatchNorm running mean and
    variance) fitted by one pass over the training items
    (:func:`contrastkit.core.runs.fit_normalisation`) — the like-for-like bar for encoders with
    BatchNorm, whose untouched statistics make each BatchNorm layer the identity.  For an
    encoder without such layers it *is* ``random_init``, and is reported as such, not re-run;
``<baseline>``
    each non-learned method the modality registers (a
    :class:`~contrastkit.core.evaluation.FeatureBaseline`: MiniRocket, Weisfeiler-Lehman,
    aggregates, D2, raw intensities): its features take the place of the embeddings.

With ``label_fractions``, every evaluator that fits on labels is re-fitted on stratified subsets
of the training labels (:func:`~contrastkit.core.evaluation.stratified_subset`): one draw per
evaluation seed, the same draws for every row, at least one item per class — a label-efficiency
curve per row.

The result is one JSON-able dict: flat ``metrics`` (``<evaluator>.<metric>`` for the pretrained
encoder, ``<row>.<evaluator>.<metric>`` for the others), the per-row evaluations, a ``table`` with
mean ± std per row and whether each row's difference from the pretrained encoder exceeds the seed
spread (the two ± intervals do not overlap: |Δ| > std₁ + std₂), and the curves.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

import numpy as np

from .capabilities import declared
from .data import TRAIN, Samples
from .errors import ContrastkitError, DataError
from .evaluation import EvalContext, Evaluator, FeatureBaseline, mean_std

PRETRAINED = "pretrained"
RANDOM_INIT = "random_init"
RANDOM_INIT_FITTED = "random_init_fitted"
#: Label fractions of ``evaluate --label-fractions`` when none are given.
DEFAULT_FRACTIONS = (0.01, 0.05, 0.1, 0.25, 1.0)

ROW_TITLES = {
    PRETRAINED: "pretrained",
    RANDOM_INIT: "random init",
    RANDOM_INIT_FITTED: "random init, fitted norm",
}


@dataclass
class Row:
    """One column of the comparison: a name, how it embeds, and what it is."""

    name: str
    embed: Callable[[Samples], np.ndarray]
    kind: str  # "encoder" | "random" | "baseline"
    description: str = ""
    same_as: str | None = None  # reported with another row's figures (e.g. fitted == random without BatchNorm)


def table_metrics(metrics: dict[str, float]) -> list[str]:
    """The metrics reported as mean ± std (those with a ``_std`` partner), in the evaluator's order."""
    return [k for k in metrics if not k.endswith("_std") and f"{k}_std" in metrics]


def primary_metric(evaluator: Any, metrics: dict[str, float]) -> str | None:
    keys = table_metrics(metrics)
    want = declared(evaluator, Evaluator, "primary_metric")
    if want and want in keys:
        return want
    for preferred in ("accuracy", "auroc", "r2"):
        hit = [k for k in keys if k == preferred or k.endswith("." + preferred)]
        if hit:
            return hit[0]
    return keys[0] if keys else None


def exceeds_spread(a: float, sa: float, b: float, sb: float) -> bool | None:
    """|a − b| > sa + sb (the two ± intervals do not overlap).

    None — no verdict — when a value is undefined, or when neither side has a spread (a deterministic
    probe over one pretraining run measures none: then the spread over pretraining seeds, from
    bench/quality_table.py, is the one to compare with)."""
    if any(v is None or not math.isfinite(v) for v in (a, b)):
        return None
    if (sa or 0.0) <= 1e-12 and (sb or 0.0) <= 1e-12:  # float noise of equal values is no spread
        return None
    return bool(abs(a - b) > (sa or 0.0) + (sb or 0.0))


def parse_fractions(text: str | Sequence[float] | None) -> list[float] | None:
    """``"0.01,0.1,1"`` → ``[0.01, 0.1, 1.0]`` (sorted, each in (0, 1]); ``"default"`` → the defaults."""
    if text is None:
        return None
    if isinstance(text, str):
        if text.strip().lower() == "default":
            return list(DEFAULT_FRACTIONS)
        try:
            values = [float(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise DataError(f"--label-fractions takes comma-separated numbers in (0, 1], got {text!r}.") from None
    else:
        values = [float(v) for v in text]
    if not values or any(not (0 < v <= 1) for v in values):
        raise DataError(f"label fractions must be numbers in (0, 1], got {text!r}.")
    return sorted(set(values))


def _evaluate(registry, modality: str, ctx: EvalContext, name: str) -> dict[str, Any]:
    from .components import instantiate

    comp = registry.get("evaluator", name, modality)
    return instantiate("evaluator", name, comp.obj, {})(ctx)


def feature_baselines(registry, modality: str, samples: Samples) -> list[str]:
    """Names of the modality's registered non-learned baselines that the data allow (labels)."""
    out = []
    for comp in registry.of_kind("evaluator", modality):
        obj = comp.obj
        if isinstance(obj, type) and issubclass(obj, FeatureBaseline):
            if obj.requires == "labels" and not samples.has_labels:
                continue
            out.append(comp.name)
    return sorted(out)


def compare(host, run, samples: Samples, names: list[str], seeds: list[int], *, options: dict | None = None,
            baseline: bool = True, fractions: Sequence[float] | None = None,
            progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Evaluate ``run`` (a loaded :class:`~contrastkit.core.runs.Run`) on prepared ``samples`` with the
    evaluators ``names``, beside its baselines when ``baseline``; see the module docstring."""
    registry = host.registry
    plugin = run.config["plugin"]
    options = dict(options or {})
    say = progress or (lambda _m: None)
    evaluators = {n: registry.get("evaluator", n, plugin).obj for n in names}
    on_encoder = [n for n in names if declared(evaluators[n], Evaluator, "uses_encoder")]
    standalone = [n for n in names if n not in on_encoder]

    def context(embed) -> EvalContext:
        return EvalContext(samples=samples, embed=embed, seeds=list(seeds), run_dir=run.path, meta=run.meta,
                           prepare=run.prepare, options=options)

    rows = [Row(PRETRAINED, _cached(run.embed, samples), "encoder",
                f"the run's encoder ({run.config['encoder']['name']})")]
    notes: list[str] = []
    if baseline:
        seed = int(run.config.get("seed", 0))
        rand = run.random_init(host, seed=seed)
        rows.append(Row(RANDOM_INIT, rand.embed, "random", "random weights, same shape (seed of the run)"))
        fit_on = samples if run.config.get("pretrain_on", "train") == "all" else samples.part(TRAIN)
        from .runs import norm_layers

        fitted = None
        if norm_layers(rand.encoder):
            t = time.perf_counter()
            try:
                fitted = run.random_init(host, seed=seed, fit_norm_on=fit_on)
            except (ContrastkitError, ValueError, RuntimeError) as exc:  # e.g. a batch the norm layers refuse
                notes.append(f"random_init_fitted could not be fitted ({_first_line(exc)}); it is random_init here.")
            else:
                say(f"fitted the random encoder's normalisation statistics on {len(fit_on)} items "
                    f"({time.perf_counter() - t:.1f} s)")
        else:
            notes.append(f"encoder '{run.config['encoder']['name']}' keeps no normalisation statistics: "
                         "random_init_fitted is random_init.")
        if fitted is not None:
            rows.append(Row(RANDOM_INIT_FITTED, fitted.embed, "random",
                            "the same random weights, BatchNorm statistics fitted on the training items"))
        else:
            rows.append(Row(RANDOM_INIT_FITTED, rand.embed, "random", "no normalisation statistics fitted",
                            same_as=RANDOM_INIT))
        from .components import instantiate

        for name in feature_baselines(registry, plugin, samples):
            comp = registry.get("evaluator", name, plugin)
            t = time.perf_counter()
            try:  # a baseline that cannot describe these data is left out, with a note — never the whole result
                fb = instantiate("evaluator", name, comp.obj, {})
                embed = fb.embedder(samples, {**run.meta, **samples.meta})
                embed(samples)
            except ContrastkitError as exc:
                notes.append(f"baseline '{name}' left out: {_first_line(exc)}")
                continue
            say(f"computed the '{name}' features ({time.perf_counter() - t:.1f} s)")
            rows.append(Row(name, embed, "baseline", fb.description or type(fb).__doc__.splitlines()[0]))
            if declared(fb, FeatureBaseline, "concat_row"):
                rows.append(Row(f"{PRETRAINED}+{name}", _concat(rows[0].embed, embed, samples), "combined",
                                f"the pretrained embeddings and the '{name}' features side by side"))
        attempted = set(feature_baselines(registry, plugin, samples))  # rows now (or left out, with a note)
        standalone = [n for n in standalone if n not in attempted]

    evaluations: dict[str, list[dict]] = {}
    contexts: dict[str, EvalContext] = {}
    for row in rows:
        if row.same_as:
            evaluations[row.name] = evaluations[row.same_as]
            continue
        ctx = contexts[row.name] = context(row.embed)
        evaluations[row.name] = []
        for name in on_encoder:
            say(f"evaluating {ROW_TITLES.get(row.name, row.name)} with {name} ...")
            try:
                evaluations[row.name].append(_evaluate(registry, plugin, ctx, name))
            except ContrastkitError as exc:
                if row.name == PRETRAINED:
                    raise
                notes.append(f"{row.name} with {name} left out: {_first_line(exc)}")
    if standalone:
        ctx = contexts.get(PRETRAINED) or context(run.embed)
        evaluations["standalone"] = []
        for name in standalone:
            say(f"evaluating with {name} ...")
            evaluations["standalone"].append(_evaluate(registry, plugin, ctx, name))

    flat: dict[str, float] = {}
    for row in rows:
        for ev in evaluations[row.name]:
            prefix = "" if row.name == PRETRAINED else f"{row.name}."
            flat.update({f"{prefix}{ev['evaluator']}.{k}": v for k, v in ev["metrics"].items()})
    for ev in evaluations.get("standalone", []):
        flat.update({f"{ev['evaluator']}.{k}": v for k, v in ev["metrics"].items()})

    result: dict[str, Any] = {
        "metrics": flat,
        "evaluations": evaluations[PRETRAINED] + evaluations.get("standalone", []),
        "rows": [{"name": r.name, "kind": r.kind, "description": r.description,
                  **({"same_as": r.same_as} if r.same_as else {})} for r in rows],
        "spread": "std over evaluation seeds " + str(list(seeds)),
    }
    if baseline:
        result["baselines"] = {r.name: evaluations[r.name] for r in rows if r.name != PRETRAINED}
        result["random_init"] = evaluations[RANDOM_INIT]  # kept for scripts written before the table
    result["table"] = comparison_table(rows, evaluations, on_encoder)
    if notes:
        result["notes"] = notes

    if fractions:
        result["label_efficiency"] = label_efficiency(registry, plugin, rows, contexts, evaluations, evaluators,
                                                      on_encoder, samples, list(seeds), list(fractions), say,
                                                      result.setdefault("notes", []))
        if not result["notes"]:
            del result["notes"]
    return result


def _cached(embed: Callable[[Samples], np.ndarray], samples: Samples) -> Callable[[Samples], np.ndarray]:
    """``embed`` computing the evaluated ``samples`` once (other samples, e.g. augmented queries, each time)."""
    cache: dict[int, np.ndarray] = {}

    def cached(s: Samples) -> np.ndarray:
        if s is not samples:
            return embed(s)
        if id(s) not in cache:
            cache[id(s)] = embed(s)
        return cache[id(s)]

    return cached


def _concat(first: Callable[[Samples], np.ndarray], second: Callable[[Samples], np.ndarray],
            samples: Samples) -> Callable[[Samples], np.ndarray]:
    cache: dict[int, np.ndarray] = {}

    def embed(s: Samples) -> np.ndarray:
        if id(s) in cache:
            return cache[id(s)]
        out = np.concatenate([np.asarray(first(s), np.float32), np.asarray(second(s), np.float32)], axis=1)
        if s is samples:
            cache[id(s)] = out
        return out

    return embed


def comparison_table(rows: list[Row], evaluations: dict[str, list[dict]], names: list[str]) -> list[dict]:
    """One entry per (evaluator, metric): each row's mean ± std, its difference from the pretrained
    encoder and whether that difference exceeds the seed spread."""
    table = []
    by_row = {r.name: {ev["evaluator"]: ev for ev in evaluations[r.name]} for r in rows}
    for name in names:
        base = by_row[PRETRAINED].get(name)
        if base is None:
            continue
        for metric in table_metrics(base["metrics"]):
            entry: dict[str, Any] = {"evaluator": name, "metric": metric,
                                     "protocol": f"{base['protocol']} v{base['protocol_version']}", "rows": {}}
            pm, ps = base["metrics"][metric], base["metrics"].get(f"{metric}_std", 0.0)
            for row in rows:
                ev = by_row[row.name].get(name)
                if ev is None or metric not in ev["metrics"]:
                    continue
                m, s = ev["metrics"][metric], ev["metrics"].get(f"{metric}_std", 0.0)
                cell: dict[str, Any] = {"mean": _json_num(m), "std": _json_num(s)}
                if row.name != PRETRAINED:
                    cell["delta"] = _json_num(pm - m) if _finite(pm, m) else None
                    cell["exceeds_spread"] = exceeds_spread(pm, ps, m, s)
                entry["rows"][row.name] = cell
            table.append(entry)
    return table


def label_efficiency(registry, plugin: str, rows: list[Row], contexts: dict[str, EvalContext],
                     evaluations: dict[str, list[dict]], evaluators: dict[str, Any], names: list[str],
                     samples: Samples, seeds: list[int], fractions: list[float], say,
                     notes: list[str] | None = None) -> dict[str, Any]:
    """Label-efficiency curves: each (row, evaluator that fits labels) re-fitted per fraction and draw."""
    notes = notes if notes is not None else []
    fitting = [n for n in names if declared(evaluators[n], Evaluator, "label_efficiency")
               and declared(evaluators[n], Evaluator, "requires") == "labels"]
    y_train = _training_labels(samples)
    counts = {f: int(len(_subset_size(y_train, f, seeds[0]))) if len(y_train) else None for f in fractions}
    curves: dict[str, dict] = {}
    for row in rows:
        if row.same_as:
            curves[row.name] = curves.get(row.same_as, {})
            continue
        full = {ev["evaluator"]: ev for ev in evaluations[row.name]}
        per_eval: dict[str, dict[str, list]] = {}
        for name in fitting:
            points: dict[str, list] = {}
            if name not in full:  # the row's evaluation was left out (see the notes)
                continue
            m = full[name]["metrics"]
            for f in fractions:
                n_labels = counts[f]
                if f >= 1.0:
                    merged = {k: (m[k], m[f"{k}_std"]) for k in table_metrics(m)}
                    if "n_train" in m:  # an evaluator with its own folds says how many labels it fitted on
                        n_labels = int(round(m["n_train"]))
                else:
                    say(f"label fraction {f:g}: {ROW_TITLES.get(row.name, row.name)} with {name} ...")
                    try:
                        draws = []
                        for s in seeds:
                            ctx = replace(contexts[row.name], seeds=[int(s)], label_fraction=float(f),
                                          label_seed=int(s))
                            draws.append(_evaluate(registry, plugin, ctx, name)["metrics"])
                        merged = {k: mean_std([d[k] for d in draws]) for k in table_metrics(m)}
                        if all("n_train" in d for d in draws):
                            n_labels = int(round(float(np.mean([d["n_train"] for d in draws]))))
                    except ContrastkitError as exc:  # e.g. too few labels at this fraction for the protocol
                        notes.append(f"label fraction {f:g}, {row.name} with {name}: {_first_line(exc)}")
                        merged = {k: (None, None) for k in table_metrics(m)}
                for k, (m_, s_) in merged.items():
                    points.setdefault(k, []).append({"fraction": f, "mean": _json_num(m_), "std": _json_num(s_),
                                                     "n_labels": n_labels})
            per_eval[name] = points
        curves[row.name] = per_eval
    primary = {}
    for name in fitting:
        ev = next((e for e in evaluations[PRETRAINED] if e["evaluator"] == name), None)
        if ev is not None:
            primary[name] = primary_metric(evaluators[name], ev["metrics"])
    return {"fractions": fractions, "draws": seeds, "n_train_labels": len(y_train),
            "rule": "stratified draw of each fraction of the training labels (at least one per class), "
                    "one draw per evaluation seed, the same draws for every row",
            "primary_metric": primary, "curves": curves}


def _training_labels(samples: Samples) -> np.ndarray:
    if not samples.has_labels:
        return np.zeros(0, dtype=object)
    split = samples.split or [TRAIN] * len(samples)
    return np.array([l for l, s in zip(samples.labels, split) if l is not None and s == TRAIN], dtype=object)


def _subset_size(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    from .evaluation import stratified_subset

    return stratified_subset(y, fraction, seed)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__).rstrip(".")


def _finite(*values: Any) -> bool:
    return all(v is not None and isinstance(v, (int, float)) and math.isfinite(v) for v in values)


def _json_num(v: Any) -> float | None:
    """A float, or None for NaN/inf (standard JSON has no NaN)."""
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


# --------------------------------------------------------------------------- text


def _cell(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "undefined"
    return f"{mean:.4f} ± {std or 0.0:.4f}"


def format_comparison(result: dict[str, Any]) -> str:
    """The comparison as text: one table per evaluator, then the label-efficiency curves."""
    lines: list[str] = []
    rows = [r["name"] for r in result.get("rows", [])]
    titles = [ROW_TITLES.get(r, r) for r in rows]
    by_eval: dict[str, list[dict]] = {}
    for entry in result.get("table", []):
        by_eval.setdefault(entry["evaluator"], []).append(entry)
    seeds = result.get("spread", "")
    for name, entries in by_eval.items():
        lines.append(f"{name} ({entries[0]['protocol']}; ± is the {seeds}; * the difference from the pretrained "
                     "encoder exceeds both spreads)" if len(rows) > 1 else f"{name} ({entries[0]['protocol']}; "
                     f"± is the {seeds})")
        width = [max(18, len(t) + 2) for t in titles]
        lines.append("  " + f"{'metric':<20}" + "".join(f"{t:<{w}}" for t, w in zip(titles, width)))
        for entry in entries:
            cells = []
            for r, w in zip(rows, width):
                c = entry["rows"].get(r)
                if c is None:
                    cells.append(f"{'—':<{w}}")
                    continue
                mark = " *" if c.get("exceeds_spread") else ("  " if r != PRETRAINED else "")
                cells.append(f"{_cell(c['mean'], c['std']) + mark:<{w}}")
            lines.append("  " + f"{entry['metric']:<20}" + "".join(cells))
        lines.append("")
    if any(c.get("exceeds_spread", False) is None and c["mean"] is not None and c.get("delta") is not None
           for e in result.get("table", []) for c in e["rows"].values()):
        lines.append("(no mark where neither side varies over the evaluation seeds: one run of a deterministic probe "
                     "measures no spread; bench/quality_table.py compares over pretraining seeds.)")
    undefined = sorted({e["metric"] for e in result.get("table", []) for c in e["rows"].values() if c["mean"] is None})
    if undefined:
        lines.append(f"undefined: {', '.join(undefined)} — not computable on this data (e.g. AUROC when the test "
                     "split holds one class); null in --json.")
    for note in result.get("notes", []):
        lines.append(f"note: {note}")
    le = result.get("label_efficiency")
    if le:
        lines.append(f"label efficiency ({le['rule']}; {le['n_train_labels']} training labels):")
        for name, metric in le["primary_metric"].items():
            if metric is None:
                continue
            lines.append(f"  {name} {metric}")
            width = [max(18, len(t) + 2) for t in titles]
            lines.append("    " + f"{'fraction':<10}{'labels':<8}" + "".join(f"{t:<{w}}" for t, w in zip(titles, width)))
            for i, f in enumerate(le["fractions"]):
                cells, n = [], None
                for r, w in zip(rows, width):
                    pts = le["curves"].get(r, {}).get(name, {}).get(metric, [])
                    p = pts[i] if i < len(pts) else None
                    n = n or (p or {}).get("n_labels")
                    cells.append(f"{(_cell(p['mean'], p['std']) if p else '—'):<{w}}")
                lines.append("    " + f"{f:<10g}{str(n if n is not None else '—'):<8}" + "".join(cells))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
