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
from typing import Any, Callable, Sequence

import numpy as np

from .capabilities import declared
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
    #: Label efficiency: fit on a stratified ``label_fraction`` of the training labels only
    #: (:meth:`label_subset`), drawn with ``label_seed``; None uses every training label.
    label_fraction: float | None = None
    label_seed: int = 0
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def label_subset(self, y_train: Sequence[Any] | np.ndarray) -> np.ndarray:
        """Positions (into ``y_train``, sorted) of the training labels an evaluator may fit on.

        Every position without a label fraction; with one, a stratified draw of that fraction
        (:func:`stratified_subset`), which depends only on the labels, the fraction and
        ``label_seed`` — so every encoder and baseline is fitted on the same items.  Evaluators
        that make their own training folds call this on each fold's training labels.
        """
        y_train = np.asarray(y_train, dtype=object)
        if self.label_fraction is None or self.label_fraction >= 1.0:
            return np.arange(len(y_train))
        return stratified_subset(y_train, self.label_fraction, self.label_seed)

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
        X_tr, y_tr = h[tr], labels[tr]
        keep = self.label_subset(y_tr)
        return X_tr[keep], y_tr[keep], h[te], labels[te]


def stratified_subset(y: Sequence[Any] | np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted positions of a stratified ``fraction`` of ``y``: per class ``max(1, round(fraction · n_c))``
    items, drawn without replacement with ``seed`` (at least one example of every class).

    The draw is a pure function of (the labels in order, ``fraction``, ``seed``): the same subset for
    every encoder and baseline evaluated on the same data.
    """
    if not 0 < fraction <= 1:
        raise DataError(f"a label fraction must lie in (0, 1], got {fraction!r}.")
    y = np.asarray([str(v) for v in np.asarray(y, dtype=object).tolist()], dtype=object)
    if fraction >= 1:
        return np.arange(len(y))
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(round(fraction * 1_000_000))])
    keep = []
    for cls in sorted(set(y.tolist())):
        pos = np.flatnonzero(y == cls)
        k = max(1, int(round(fraction * len(pos))))
        keep.append(rng.permutation(pos)[:k])
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)


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
    #: True when it fits on training labels (through :meth:`EvalContext.labelled_split` or
    #: :meth:`EvalContext.label_subset`), so a label-efficiency curve means something; False for
    #: evaluators that fit nothing on labels (e.g. retrieval).
    label_efficiency: bool = True
    #: The metric a label-efficiency curve and summaries show; None: the first one it reports.
    primary_metric: str | None = None

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


class FeatureBaseline(Evaluator):
    """A non-learned method: hand-made features of the items in place of an encoder's embeddings.

    The domain's strongest method without learning (MiniRocket for series, a Weisfeiler-Lehman map
    for graphs, aggregate features for event sequences, D2 for shapes, raw intensities for volumes).
    A subclass implements :meth:`features` and, where the features are fitted (MiniRocket's biases,
    the most frequent categories), :meth:`fit` — called on the *training* items only.

    Two uses:

    - ``contrastkit evaluate --baseline`` runs every evaluator of the comparison on these features
      exactly as on the encoder's embeddings (same probes, same splits, same label fractions): one
      row of the comparison table, named after the baseline.
    - Named on its own (``--evaluator NAME``), :meth:`run` fits core's probes listed in
      :attr:`probes` on the features; metrics ``<probe>.<metric>``.

    It never calls the encoder (``uses_encoder = False``).
    """

    uses_encoder = False
    requires = "labels"
    #: core probes (by name) that :meth:`run` fits when the baseline is run on its own.
    probes: tuple[str, ...] = ("linear", "knn")
    #: True: ``evaluate --baseline`` also evaluates the pretrained embeddings and these features side
    #: by side (row ``pretrained+<name>``) — what the embeddings add to the non-learned method.
    concat_row: bool = False

    def fit(self, train: Samples, meta: dict[str, Any]) -> None:
        """Fit what the features need on the training items (default: nothing)."""

    def features(self, samples: Samples) -> np.ndarray:  # pragma: no cover - interface
        """N × F float features of ``samples`` (any items of the modality, e.g. augmented copies)."""
        raise NotImplementedError

    def embedder(self, samples: Samples, meta: dict[str, Any]) -> Callable[[Samples], np.ndarray]:
        """Fit on ``samples``' training part and return an ``embed(samples) -> N × F`` function
        (``samples`` itself is featurised once and cached)."""
        train = samples.part(TRAIN) if samples.split is not None else samples
        self.fit(train, meta)
        cache: dict[int, np.ndarray] = {}

        def embed(s: Samples) -> np.ndarray:
            if s is samples:
                if id(s) not in cache:
                    cache[id(s)] = np.asarray(self.features(s), dtype=np.float32)
                return cache[id(s)]
            return np.asarray(self.features(s), dtype=np.float32)

        return embed

    def run(self, ctx: EvalContext) -> dict[str, float]:
        from dataclasses import replace

        from .probes import PROBES, RidgeProbe

        known = {**PROBES, "ridge": RidgeProbe}
        feats_ctx = replace(ctx, embed=self.embedder(ctx.samples, {**ctx.meta, **ctx.samples.meta}), _cache={})
        out: dict[str, float] = {}
        for name in self.probes:
            for key, val in known[name]().run(feats_ctx).items():
                out[f"{name}.{key}"] = val
        return out


def mean_std(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=0))


def default_evaluators(registry, modality: str, samples: Samples, configured: list[str] | None) -> list[str]:
    """The evaluators to run when the user names none: the recipe's, filtered by what the data allows."""
    available = {c.name: c.obj for c in registry.of_kind("evaluator", modality)}
    wants_series = samples.meta.get("task") == "forecast"
    # Non-learned baselines are rows of `evaluate --baseline`'s comparison, not evaluators of the
    # encoder: run by default only when the recipe names them.
    names = configured if configured else sorted(n for n, c in available.items()
                                                 if not (isinstance(c, type) and issubclass(c, FeatureBaseline)))
    chosen = []
    for name in names:
        cls = available.get(name)
        if cls is None:
            continue
        req = declared(cls, Evaluator, "requires")
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
