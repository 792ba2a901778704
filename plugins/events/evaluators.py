"""Entity-level evaluation: classification or regression from frozen embeddings, next to
the hand-crafted aggregate features of the CoLES paper.

Protocol ``events-entity`` (version 1):

1. The split is by entity (the source's, else core's hash of the id), made
   before anything is fitted; for CDNOW the label also lies in the future
   (the hold-out period after the calibration sequences).
2. On the training entities, each model picks its hyper-parameter from a fixed
   grid by (stratified) 3-fold cross-validation, is refitted, and scores once
   on the test entities: scikit-learn's HistGradientBoosting (learning rate in
   {0.05, 0.2}, 100 iterations) and a logistic regression (C in
   {0.01, 0.1, 1, 10}) for classes, or a ridge (α in {0.1, 1, 10, 100}) for
   numbers.
3. The *aggregate features* that CoLES (Babaev et al., SIGMOD 2022, §4.2)
   uses as its hand-crafted baseline — event count; first/last time, span and
   mean gap; for every numeric field the sum, mean, std, min and max; and for
   each of the most frequent values of every categorical field (chosen on
   training entities) the count of events and the sum and mean of every
   numeric field — are the non-learned baseline :class:`AggregateBaseline`
   (``aggregates``): ``evaluate --baseline`` fits the same models on them
   (row ``aggregates``) and on the embeddings and aggregates side by side (row
   ``pretrained+aggregates``: what the embeddings add).  The majority class
   (or the training mean) is reported as ``majority.<metric>``.
4. Mean ± std over the seeds (fold shuffling and the boosting's randomness).

Metrics: classification ``<model>.accuracy`` and, for two classes,
``<model>.auroc``; regression ``<model>.r2`` and ``<model>.mae``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, mean_absolute_error, r2_score, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from contrastkit.core import (
    TEST, TRAIN, ConfigError, DataError, EvalContext, Evaluator, FeatureBaseline, Samples, grid_search, make_cv,
    mean_std,
)

from .modality import as_store, inverse_numeric

__all__ = ["EntityProbe", "AggregateBaseline", "aggregate_features", "EVALUATORS"]

HGB_LR_GRID = (0.05, 0.2)
LOGISTIC_C_GRID = (0.01, 0.1, 1.0, 10.0)
RIDGE_ALPHA_GRID = (0.1, 1.0, 10.0, 100.0)
TOP_CATEGORIES = 20


def top_categories(items, train_mask: np.ndarray, top: int = TOP_CATEGORIES,
                   chunk_events: int = 2_000_000) -> list[list[int]]:
    """The ``top`` most frequent codes of every categorical field, counted on the events of the
    entities in ``train_mask`` (chunk by chunk, so an out-of-core store is never held whole)."""
    store = as_store(items)
    train_mask = np.asarray(train_mask, dtype=bool)
    n_cat = store.cat.shape[1]
    freq = [np.zeros(0, dtype=np.int64) for _ in range(n_cat)]
    for lo, hi in store.chunks(chunk_events) if n_cat else ():
        cat = store.gather(lo, hi, ("cat",))["cat"][np.repeat(train_mask[lo:hi], store.lengths[lo:hi])]
        for j in range(n_cat):
            if len(cat):
                f = np.bincount(cat[:, j].astype(np.int64))
                if len(f) > len(freq[j]):
                    f[: len(freq[j])] += freq[j]
                    freq[j] = f
                else:
                    freq[j][: len(f)] += f
    return [[int(c) for c in np.argsort(-f, kind="stable")[:top] if f[c] > 0] for f in freq]


def features_with(items, meta: dict, chosen: list[list[int]], chunk_events: int = 2_000_000) -> np.ndarray:
    """CoLES' aggregate features of every entity (N × F) given the chosen categories."""
    store = as_store(items)
    parts = []
    for lo, hi in store.chunks(chunk_events):
        g = store.gather(lo, hi)
        parts.append(_chunk_features(g["time"], g["cat"], g["num"], store.lengths[lo:hi], chosen, meta))
    if not parts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(parts)


def aggregate_features(items, meta: dict, train_mask: np.ndarray, top: int = TOP_CATEGORIES,
                       chunk_events: int = 2_000_000) -> np.ndarray:
    """CoLES' hand-crafted features of every entity (N × F), vectorised over the events of a chunk of
    entities at a time (so an out-of-core store is never held in memory whole); the top categories
    are chosen on the entities of ``train_mask``."""
    return features_with(items, meta, top_categories(items, train_mask, top, chunk_events), chunk_events)


def _chunk_features(time: np.ndarray, cat: np.ndarray, num: np.ndarray, lengths: np.ndarray, chosen: list,
                    meta: dict) -> np.ndarray:
    n = len(lengths)
    owner = np.repeat(np.arange(n), lengths)
    time = np.asarray(time, dtype=np.float64)
    if num.shape[1] and meta.get("numeric_state"):
        num = inverse_numeric(num, meta["numeric_state"])
    num = np.asarray(num, dtype=np.float64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    first, last = time[starts], time[starts + lengths - 1]
    span = last - first
    feats = [lengths.astype(np.float64), first, last, span, span / np.maximum(lengths - 1, 1)]
    cnt = np.maximum(lengths, 1).astype(np.float64)
    for j in range(num.shape[1]):
        x = num[:, j]
        s = np.bincount(owner, x, minlength=n)
        s2 = np.bincount(owner, x * x, minlength=n)
        mean = s / cnt
        std = np.sqrt(np.maximum(s2 / cnt - mean ** 2, 0))
        mn = np.full(n, np.inf)
        mx = np.full(n, -np.inf)
        np.minimum.at(mn, owner, x)
        np.maximum.at(mx, owner, x)
        feats += [s, mean, std, mn, mx]
    for j in range(cat.shape[1]):
        codes = cat[:, j].astype(np.int64)
        for c in chosen[j]:
            hit = codes == c
            k = np.bincount(owner, hit.astype(np.float64), minlength=n)
            feats.append(k)
            for m in range(num.shape[1]):
                s = np.bincount(owner, np.where(hit, num[:, m], 0.0), minlength=n)
                feats += [s, s / np.maximum(k, 1)]
    return np.nan_to_num(np.column_stack(feats), nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def _task(labels: np.ndarray, meta: dict) -> str:
    if meta.get("task") in ("classification", "regression"):
        return meta["task"]
    numeric = all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in labels)
    if numeric and any(isinstance(v, (float, np.floating)) for v in labels) and len(set(labels.tolist())) > 20:
        return "regression"
    return "classification"


def _score_cls(model, X_te, y_te) -> dict[str, float]:
    out = {"accuracy": float(accuracy_score(y_te, model.predict(X_te)))}
    classes = list(model.classes_)
    if len(classes) == 2:
        if len(set(y_te.tolist())) == 2:
            p = model.predict_proba(X_te)[:, 1]
            out["auroc"] = float(roc_auc_score((y_te == classes[1]).astype(int), p))
        else:
            out["auroc"] = float("nan")
    return out


def _score_reg(model, X_te, y_te) -> dict[str, float]:
    pred = model.predict(X_te)
    return {"r2": float(r2_score(y_te, pred)), "mae": float(mean_absolute_error(y_te, pred))}


class EntityProbe(Evaluator):
    """Entity classification / regression from embeddings with gradient boosting and a linear model,
    side by side with CoLES' aggregate-feature baseline (see the module docstring)."""

    name = "entity"
    protocol = "events-entity"
    version = "1"
    requires = "labels"
    description = "entity labels from embeddings (HistGradientBoosting, logistic/ridge)"
    primary_metric = "hgb.auroc"  # CoLES reports boosting on the embeddings (accuracy or AUROC)

    def __init__(self, max_train: int = 50_000) -> None:
        self.max_train = int(max_train)

    def _fit_all(self, X_tr, y_tr, X_te, y_te, task: str, seed: int) -> dict[str, float]:
        out: dict[str, float] = {}
        strat = task == "classification"
        cv = make_cv(y_tr, seed, stratified=strat, max_folds=3)
        if strat:
            hgb = HistGradientBoostingClassifier(max_iter=100, early_stopping=False, random_state=seed)
            lin = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(max_iter=500))])
            lin_name, lin_param, lin_grid, score = "logistic", "model__C", LOGISTIC_C_GRID, _score_cls
        else:
            hgb = HistGradientBoostingRegressor(max_iter=100, early_stopping=False, random_state=seed)
            lin = Pipeline([("scale", StandardScaler()), ("model", Ridge())])
            lin_name, lin_param, lin_grid, score = "ridge", "model__alpha", RIDGE_ALPHA_GRID, _score_reg
        model, _ = grid_search(hgb, "learning_rate", HGB_LR_GRID, X_tr, y_tr, seed, fallback=0.1, cv=cv)
        out.update({f"hgb.{k}": v for k, v in score(model, X_te, y_te).items()})
        model, _ = grid_search(lin, lin_param, lin_grid, X_tr, y_tr, seed, fallback=1.0, cv=cv)
        out.update({f"{lin_name}.{k}": v for k, v in score(model, X_te, y_te).items()})
        return out

    def run(self, ctx: EvalContext) -> dict[str, float]:
        s = ctx.samples
        if not s.has_labels:
            raise DataError(f"{s.source or 'the data'} has no labels; evaluator 'entity' needs per-entity labels "
                            "(data_options.labels or label_column).")
        if s.split is None:
            raise DataError(f"{s.source or 'the data'} has no train/test split.")
        known = np.array([lbl is not None for lbl in s.labels])
        split = np.array(s.split)
        tr, te = known & (split == TRAIN), known & (split == TEST)
        if tr.sum() < 4 or te.sum() < 1:
            raise DataError(f"{s.source or 'the data'}: {int(tr.sum())} labelled training and {int(te.sum())} "
                            "labelled test entities; the evaluator needs at least 4 and 1.")
        labels = np.array([lbl for lbl in s.labels], dtype=object)
        task = _task(labels[known], s.meta)
        if task == "regression":
            y = np.array([float(v) if v is not None else np.nan for v in s.labels])
        else:
            y = np.array([str(v) for v in s.labels], dtype=object)
        h = ctx.embeddings()
        per_seed: dict[str, list[float]] = {}
        with threadpool_limits(limits=1), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for seed in ctx.seeds:
                idx_tr = np.flatnonzero(tr)
                if ctx.label_fraction is not None:  # label efficiency: a stratified part of the training labels
                    strata = y[idx_tr] if task == "classification" else np.zeros(len(idx_tr))
                    idx_tr = idx_tr[ctx.label_subset(strata)]
                if len(idx_tr) > self.max_train:
                    idx_tr = np.sort(np.random.default_rng(seed).choice(idx_tr, self.max_train, replace=False))
                found = self._fit_all(h[idx_tr], y[idx_tr], h[te], y[te], task, seed)
                if task == "classification":
                    values, counts = np.unique(y[idx_tr].astype(str), return_counts=True)
                    found["majority.accuracy"] = float(np.mean(y[te].astype(str) == values[np.argmax(counts)]))
                else:
                    pred = np.full(int(te.sum()), float(np.mean(y[idx_tr])))
                    found["majority.r2"] = float(r2_score(y[te], pred))
                    found["majority.mae"] = float(mean_absolute_error(y[te], pred))
                for k, v in found.items():
                    per_seed.setdefault(k, []).append(v)
        out: dict[str, float] = {}
        for k, vals in per_seed.items():
            out[k], out[f"{k}_std"] = mean_std(vals)
        return out


class AggregateBaseline(FeatureBaseline):
    """CoLES' aggregate features (Babaev et al., SIGMOD 2022, §4.2) as the non-learned baseline.

    Per entity: event count; first/last time, span and mean gap; for every numeric field the sum,
    mean, std, min and max; and for each of the ``top`` most frequent values of every categorical
    field — chosen on the *training* entities (:meth:`fit`) — the count of events and the sum and
    mean of every numeric field.  Numeric fields are taken back to their raw scale first.  In
    ``evaluate --baseline`` these features go through the same evaluators as the embeddings; on its
    own (``-e aggregates``) through the entity protocol.
    """

    name = "aggregates"
    concat_row = True  # also a row "pretrained+aggregates": what the embeddings add to the aggregates
    protocol = "events-entity-on-aggregate-features"
    version = "1"
    description = "CoLES' aggregate features (counts, sums, means, std, min/max per field and top category)"

    def __init__(self, top: int = TOP_CATEGORIES) -> None:
        if isinstance(top, bool) or not isinstance(top, int) or top < 0:
            raise ConfigError(f"aggregates: top must be an integer ≥ 0, got {top!r}.")
        self.top = top
        self.chosen: list[list[int]] | None = None
        self.meta: dict = {}

    def fit(self, train: Samples, meta: dict) -> None:
        self.meta = dict(meta)
        self.chosen = top_categories(train.items, np.ones(len(train), dtype=bool), self.top)

    def features(self, samples: Samples) -> np.ndarray:
        if self.chosen is None:
            raise DataError("aggregates: fit the baseline on the training entities before computing features.")
        return features_with(samples.items, {**self.meta, **samples.meta}, self.chosen)

    def run(self, ctx: EvalContext) -> dict[str, float]:
        from dataclasses import replace

        return EntityProbe().run(replace(ctx, embed=self.embedder(ctx.samples, {**ctx.meta, **ctx.samples.meta}),
                                         _cache={}))


EVALUATORS: dict[str, Any] = {"entity": EntityProbe, "aggregates": AggregateBaseline}
