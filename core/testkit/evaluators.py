"""check_evaluator."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from typing import Any


from .compare import _expect_error, _is_array, _same_leaf
from .report import Report, _Checker, _label, _one_line, _own_rng

# --------------------------------------------------------------------------- evaluators


@_own_rng
def check_evaluator(
    evaluator: Any,
    ctx: Any,
    *,
    name: str | None = None,
    where: str = "",
    raise_: bool = True,
) -> Report:
    """Check an evaluator class on an :class:`~contrastkit.core.evaluation.EvalContext` of labelled, split data."""
    from ..evaluation import EvalContext

    cls = evaluator if isinstance(evaluator, type) else type(evaluator)
    c = _Checker(_label("evaluator", name, cls, where))
    try:
        ev = cls()
    except Exception as exc:  # noqa: BLE001
        c.failed("build with no arguments", f"{cls.__name__}() raised {_one_line(exc)} (core builds evaluators with "
                                            "no arguments; settings arrive in ctx.options)")
        return c.done(raise_)
    c.passed("build with no arguments")
    declared = {attr: getattr(ev, attr, None) for attr in ("name", "protocol", "version", "requires")}
    empty = [attr for attr, v in declared.items() if attr != "protocol" and not (isinstance(v, (str, int)) and str(v))]
    verb = "is" if len(empty) == 1 else "are"
    c.expect("declare name, version and requires", not empty, f"{', '.join(empty)} {verb} empty")

    def fresh(samples=None, seeds=None) -> EvalContext:
        return EvalContext(samples=samples if samples is not None else ctx.samples, embed=ctx.embed,
                           seeds=list(seeds if seeds is not None else ctx.seeds), options=dict(ctx.options),
                           run_dir=ctx.run_dir, meta=dict(ctx.meta), prepare=ctx.prepare)

    snapshot = copy.deepcopy((ctx.samples.ids, ctx.samples.labels, ctx.samples.split, list(ctx.samples.items)))
    try:
        result = ev(fresh())
    except Exception as exc:  # noqa: BLE001
        c.failed("run on valid data", f"it raised {_one_line(exc)}")
        return c.done(raise_)
    c.passed("run on valid data")
    metrics = result.get("metrics") if isinstance(result, dict) else None
    ok = isinstance(metrics, dict) and bool(metrics) and all(
        isinstance(k, str) and isinstance(v, float) and (math.isfinite(v) or math.isnan(v)) for k, v in metrics.items())
    if c.expect("return its metrics as numbers", ok, f"run returned {metrics!r:.160}"):
        try:
            json.dumps(result)
            c.passed("return JSON-able results")
        except (TypeError, ValueError) as exc:
            c.failed("return JSON-able results", f"json.dumps raised {_one_line(exc)}")
        pairs = [k for k in metrics if f"{k}_std" in metrics]
        c.expect("report a <metric> with its <metric>_std over the seeds", bool(pairs),
                 f"none of its metrics {sorted(metrics)[:6]} comes with a '_std'")
        try:
            again = ev(fresh())["metrics"]
            differ = [k for k in metrics if k not in again or not (
                metrics[k] == again[k] or (math.isnan(metrics[k]) and math.isnan(again[k]))
                or abs(metrics[k] - again[k]) <= 1e-9 * max(1.0, abs(metrics[k])))]
            c.expect("give the same metrics for the same seeds", not differ,
                     f"two runs with seeds {list(ctx.seeds)} differ in {differ[:3]}")
        except Exception as exc:  # noqa: BLE001
            c.failed("give the same metrics for the same seeds", f"the second run raised {_one_line(exc)}")
    after = (ctx.samples.ids, ctx.samples.labels, ctx.samples.split, list(ctx.samples.items))
    unchanged = all(_same_leaf(a, b) if _is_array(a) else a == b for a, b in zip(snapshot[:3], after[:3])) and all(
        _same_leaf(a, b) for a, b in zip(snapshot[3], after[3]))
    c.expect("leave the data unmodified", unchanged, "the samples' ids, labels, split or items changed during the run")
    if getattr(ev, "requires", None) == "labels":
        unlabelled = dataclasses.replace(ctx.samples, labels=None)
        _expect_error(c, "raise a ContrastkitError on unlabelled data", lambda s: ev(fresh(samples=s)),
                      [("data without labels", unlabelled)])
    return c.done(raise_)
