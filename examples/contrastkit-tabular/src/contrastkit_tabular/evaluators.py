"""A tabular evaluator: do the embeddings beat the table they came from?

On tables, a linear model on the (standardised) raw features is a strong
baseline — often stronger than self-supervised embeddings (Bahri et al.,
SCARF, ICLR 2022, compare against it throughout).  :class:`RawFeatureBaseline`
runs core's linear probe twice under the same protocol, on the frozen
encoder's embeddings and on the raw features, and reports both and the gain.
"""

from __future__ import annotations

import numpy as np

from contrastkit.core import DataError, EvalContext, Evaluator
from contrastkit.core.probes import LinearProbe

__all__ = ["EVALUATORS", "RawFeatureBaseline"]


def raw_features(samples) -> np.ndarray:
    """The items as an ``N × F`` float32 matrix."""
    try:
        x = np.stack([np.asarray(item, dtype=np.float32) for item in samples.items])
    except ValueError:
        raise DataError(f"{samples.source or 'the data'}: rows have different numbers of features.") from None
    if x.ndim != 2:
        raise DataError(f"{samples.source or 'the data'}: items have shape {x.shape[1:]}; expected feature vectors.")
    return x


class RawFeatureBaseline(Evaluator):
    """Linear probe on the embeddings vs on the raw features (same split, grid and seeds).

    Metrics: ``accuracy`` and ``raw_accuracy`` (each with ``_std`` over the
    seeds), ``f1_macro`` and ``raw_f1_macro``, and ``gain`` = accuracy −
    raw_accuracy (positive when pretraining adds something a linear model on
    the table cannot find).
    """

    name = "raw_features"
    protocol = "linear-probe-vs-raw-features"
    version = "1"
    requires = "labels"
    description = "Linear probe on the embeddings and on the raw features; reports both and the gain."

    def run(self, ctx: EvalContext) -> dict[str, float]:
        probe = LinearProbe()
        embedded = probe.run(ctx)
        raw_ctx = EvalContext(samples=ctx.samples, embed=raw_features, seeds=list(ctx.seeds), options=ctx.options,
                              meta=ctx.meta)
        raw = probe.run(raw_ctx)
        out: dict[str, float] = {}
        for key in ("accuracy", "f1_macro"):
            out[key], out[f"{key}_std"] = embedded[key], embedded[f"{key}_std"]
            out[f"raw_{key}"], out[f"raw_{key}_std"] = raw[key], raw[f"{key}_std"]
        out["gain"] = out["accuracy"] - out["raw_accuracy"]
        return out


EVALUATORS: dict[str, type[Evaluator]] = {"raw_features": RawFeatureBaseline}
