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
3. The same models are fitted on the *aggregate features* that CoLES
   (Babaev et al., SIGMOD 2022, §4.2) uses as its hand-crafted baseline:
   event count; first/last time, span and mean gap; for every numeric field
   the sum, mean, std, min and max; and for each of the most frequent values
   of every categorical field (chosen on training entities) the count of
   events and the sum and mean of every numeric field — reported as
   ``aggregate_baseline.<model>.<metric>``; the majority class (or the
   training mean) as ``majority.<metric>``.
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

from contrastkit.core.data import TEST, TRAIN
from contrastkit.core.errors import DataError
from contrastkit.core.evaluation import EvalContext, Evaluator, mean_std
from contrastkit.core.probes import grid_search, make_cv

from .modality import as_store, inverse_numeric

__all__ = ["EntityProbe", "aggregate_features", "EVALUATORS"]

HGB_LR_GRID = (0.05, 0.2)
LOGISTIC_C_GRID = (0.01, 0.1, 1.0, 10.0)
RIDGE_ALPHA_GRID = (0.1, 1.0, 10.0, 100.0)
TOP_CATEGORIES = 20


def aggregate_features(items, meta: dict, train_mask: np.ndarray, top: int = TOP_CATEGORIES,
                       chunk_events: int = 2_000_000) -> np.ndarray:
    """CoLES' hand-crafted features of every entity (N × F), vectorised over the events of a chunk of
    entities at a time (so an out-of-core store is never held in memory whole)."""
    store = as_store(items)
    train_mask = np.asarray(train_mask, dtype=bool)
    chunks = list(store.chunks(chunk_events))
    n_cat = store.cat.shape[1]
    freq = [np.zeros(0, dtype=np.int64) for _ in range(n_cat)]
    for lo, hi in chunks if n_cat else ():  # the top categories, counted on the training entities' events
        cat = store.gather(lo, hi, ("cat",))["cat"][np.repeat(train_mask[lo:hi], store.lengths[lo:hi])]
        for j in range(n_cat):
            if len(cat):
                f = np.bincount(cat[:, j].astype(np.int64))
                if len(f) > len(freq[j]):
                    f[: len(freq[j])] += freq[j]
                    freq[j] = f
                else:
                    freq[j][: len(f)] += f
    chosen = [[int(c) for c in np.argsort(-f, kind="stable")[:top] if f[c] > 0] for f in freq]
    parts = []
    for lo, hi in chunks:
        g = store.gather(lo, hi)
        parts.append(_chunk_features(g["time"], g["cat"], g["num"], store.lengths[lo:hi], chosen, meta))
    if not parts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(parts)


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
    description = "entity labels from embeddings (HistGradientBoosting, logistic/ridge) vs aggregate features"

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
        agg = aggregate_features(s.items, {**ctx.meta, **s.meta}, tr)
        per_seed: dict[str, list[float]] = {}
        with threadpool_limits(limits=1), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for seed in ctx.seeds:
                idx_tr = np.flatnonzero(tr)
                if len(idx_tr) > self.max_train:
                    idx_tr = np.sort(np.random.default_rng(seed).choice(idx_tr, self.max_train, replace=False))
                found = {}
                for prefix, X in (("", h), ("aggregate_baseline.", agg)):
                    res = self._fit_all(X[idx_tr], y[idx_tr], X[te], y[te], task, seed)
                    found.update({prefix + k: v for k, v in res.items()})
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


EVALUATORS: dict[str, Any] = {"entity": EntityProbe}
