"""The evaluation protocol.

Every evaluator works on a frozen encoder under one protocol:

1. **Split before fitting.**  The split comes from the source (e.g. the UCR
   archive's train/test) or, where there is none, from a hash of each id
   (:func:`contrastkit.core.data.hash_split`) — the same split that
   pretraining used, so the encoder never saw the test items.  Evaluators that
   need a split in time make it themselves, before anything is fitted.
2. **Hyper-parameters on training data only.**  Each evaluator has a fixed grid
   and picks from it by cross-validation on the training split.
3. **Mean ± std over seeds.**  Everything random in the evaluator (folds,
   initialisation) is re-run for each seed; the result reports ``<metric>``
   (mean) and ``<metric>_std``.
4. **Named and versioned.**  The result carries the evaluator's protocol name
   and version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .data import TEST, TRAIN, Samples
from .errors import DataError


@dataclass
class EvalContext:
    """What an evaluator gets: the data, a frozen encoder and the seeds.

    ``samples`` are prepared (preprocessed with the run's fitted state) and
    carry a split.  ``embed(samples) -> np.ndarray`` returns the frozen
    encoder's representation h (N × D float32), no augmentation, no head.
    ``prepare(samples) -> samples`` applies the run's preprocessing to other
    data an evaluator loads itself.
    """

    samples: Samples
    embed: Callable[[Samples], np.ndarray]
    seeds: list[int]
    options: dict[str, Any] = field(default_factory=dict)
    run_dir: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    prepare: Callable[[Samples], Samples] | None = None
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def embeddings(self) -> np.ndarray:
        if "h" not in self._cache:
            self._cache["h"] = self.embed(self.samples)
        return self._cache["h"]

    def labelled_split(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(X_train, y_train, X_test, y_test) for the items that have a label."""
        s = self.samples
        if not s.has_labels:
            raise DataError(f"{s.source or 'the data'} has no labels; this evaluator needs labelled data.")
        if s.split is None:
            raise DataError(f"{s.source or 'the data'} has no train/test split.")
        h = self.embeddings()
        labels = np.array(["" if l is None else l for l in s.labels], dtype=object)
        known = np.array([l is not None for l in s.labels])
        split = np.array(s.split)
        tr = known & (split == TRAIN)
        te = known & (split == TEST)
        if tr.sum() < 2 or te.sum() < 1:
            raise DataError(
                f"{s.source or 'the data'}: {int(tr.sum())} labelled training and {int(te.sum())} labelled test "
                "items; the probe needs at least 2 and 1."
            )
        return h[tr], labels[tr], h[te], labels[te]


class Evaluator:
    """Base class of an evaluator.

    Subclasses set ``name``, ``protocol``, ``version`` and ``requires``
    (``"labels"`` when they need labelled items) and implement :meth:`run`,
    which returns a flat dict of metric name -> float (``<metric>`` is the
    mean over seeds and ``<metric>_std`` its standard deviation).
    """

    name: str = ""
    protocol: str = ""
    version: str = "1"
    requires: str = "labels"
    description: str = ""
    #: False for a baseline that never calls the encoder (e.g. probes on raw features): ``evaluate
    #: --baseline`` then does not run it a second time for the random-init encoder.
    uses_encoder: bool = True

    def run(self, ctx: EvalContext) -> dict[str, float]:  # pragma: no cover - interface
        raise NotImplementedError

    def __call__(self, ctx: EvalContext) -> dict[str, Any]:
        metrics = self.run(ctx)
        return {
            "evaluator": self.name,
            "protocol": self.protocol or self.name,
            "protocol_version": str(self.version),
            "seeds": list(ctx.seeds),
            "metrics": {k: float(v) for k, v in metrics.items()},
        }


def mean_std(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=0))


def default_evaluators(registry, modality: str, samples: Samples, configured: list[str] | None) -> list[str]:
    """The evaluators to run when the user names none: the recipe's, filtered by what the data allows."""
    available = {c.name: c.obj for c in registry.of_kind("evaluator", modality)}
    wants_series = samples.meta.get("task") == "forecast"
    names = configured if configured else sorted(available)
    chosen = []
    for name in names:
        cls = available.get(name)
        if cls is None:
            continue
        req = getattr(cls, "requires", "labels")
        if (req == "labels" and samples.has_labels and not wants_series) or (req == "series" and wants_series) or \
                req not in ("labels", "series"):
            chosen.append(name)
    return chosen


def run_evaluators(registry, modality: str, ctx: EvalContext, names: list[str], progress=None) -> dict[str, Any]:
    """Run the named evaluators; returns one JSON-able object with flat ``metrics``."""
    from .components import instantiate

    results, flat = [], {}
    for name in names:
        comp = registry.get("evaluator", name, modality)
        evaluator = instantiate("evaluator", name, comp.obj, {})
        if progress is not None:
            progress(name)
        res = evaluator(ctx)
        results.append(res)
        for key, val in res["metrics"].items():
            flat[f"{name}.{key}"] = val
    return {"metrics": flat, "evaluations": results}
