"""Evaluators of the graph literature's unsupervised protocols.

- :class:`GraphSVM` — GraphCL / InfoGraph graph classification (Sun et al.,
  ICLR 2020; You et al., NeurIPS 2020): an SVM on the frozen embeddings of
  *every* labelled graph under stratified 10-fold cross-validation; in each
  fold C (and the kernel, linear or RBF) is chosen by an inner 5-fold CV on the
  nine training folds only; accuracy is averaged over the folds, and the fold
  mean is averaged over seeds (the seed shuffles the folds).
- :class:`NodeLogReg` — GRACE / DGI node classification (Zhu et al. 2020;
  Veličković et al., ICLR 2019): logistic regression on the frozen node
  embeddings over random stratified splits (10 % train, 10 % validation for C,
  80 % test), one split per seed.

Both ignore the source's train/test split: in these protocols the encoder is
pretrained on every item without labels (``pretrain_on = "all"``) and the
labels are used only here, split by the evaluator.  Both also report the same
protocol on the raw features (``raw_accuracy``): summed node features per
graph, or a node's own features.
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

from contrastkit.core.errors import ConfigError, DataError
from contrastkit.core.evaluation import EvalContext, Evaluator, mean_std

from .batching import NodeRef

SVM_C_GRID = (1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2, 1e3)
LOGREG_C_GRID = (1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2)


def _labelled(ctx: EvalContext, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s = ctx.samples
    if not s.has_labels:
        raise DataError(f"{s.source or 'the data'} has no labels; evaluator '{name}' needs labelled items.")
    known = np.array([lbl is not None for lbl in s.labels])
    labels = [str(lbl) for lbl in np.array(s.labels, dtype=object)[known]]
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise DataError(f"{s.source or 'the data'}: the labelled items hold one class only; '{name}' needs two.")
    y = np.array([classes.index(lbl) for lbl in labels])
    h = np.asarray(ctx.embeddings(), dtype=np.float64)[known]
    if not np.isfinite(h).all():
        raise DataError("the embeddings contain NaN or infinite values; the encoder may have diverged.")
    return h, y, known


def raw_features(items: Sequence[Any]) -> np.ndarray:
    """The items' raw features: a node's own features, or a graph's summed node features."""
    if items and isinstance(items[0], NodeRef):
        return np.stack([r.graph.x[r.node].numpy() for r in items]).astype(np.float64)
    return np.stack([g.x.sum(0).numpy() for g in items]).astype(np.float64)


def _check_grid(name: str, grid: Sequence[float]) -> tuple[float, ...]:
    if not grid or any(not (float(c) > 0) for c in grid):
        raise ConfigError(f"evaluator '{name}': the C grid {list(grid)!r} must be a non-empty list of positive "
                          "numbers.")
    return tuple(float(c) for c in grid)


class GraphSVM(Evaluator):
    """SVM under stratified 10-fold CV over all labelled items, C and kernel by inner CV on the training folds."""

    name = "graph_svm"
    protocol = "graphcl-svm-10fold"
    version = "1"
    requires = "labels"
    description = "SVM, 10-fold stratified CV over all labelled graphs, C by inner CV (GraphCL/InfoGraph protocol)"

    def __init__(self, folds: int = 10, inner_folds: int = 5, grid: Sequence[float] = SVM_C_GRID,
                 kernels: Sequence[str] = ("rbf",), raw_baseline: bool = True) -> None:
        if int(folds) < 2 or int(inner_folds) < 2:
            raise ConfigError(f"evaluator 'graph_svm': folds and inner_folds must be at least 2, got {folds}, "
                              f"{inner_folds}.")
        bad = [k for k in kernels if k not in ("linear", "rbf")]
        if bad or not kernels:
            raise ConfigError(f"evaluator 'graph_svm': kernels must be among linear, rbf; got {list(kernels)!r}.")
        self.folds, self.inner_folds = int(folds), int(inner_folds)
        self.grid = _check_grid(self.name, grid)
        self.kernels = tuple(kernels)
        self.raw_baseline = bool(raw_baseline)

    def _cv_accuracy(self, X: np.ndarray, y: np.ndarray, seed: int) -> list[float]:
        smallest = int(np.bincount(y).min())
        folds = min(self.folds, smallest)
        if folds < 2:
            raise DataError(f"a class has {smallest} labelled item(s); 'graph_svm' needs at least 2 per class.")
        outer = StratifiedKFold(folds, shuffle=True, random_state=seed)
        accs = []
        pipe = Pipeline([("scale", StandardScaler()), ("svm", SVC(gamma="scale"))])
        for tr, te in outer.split(X, y):
            inner_n = min(self.inner_folds, int(np.bincount(y[tr]).min()))
            if inner_n >= 2:
                search = GridSearchCV(pipe, {"svm__C": list(self.grid), "svm__kernel": list(self.kernels)},
                                      cv=StratifiedKFold(inner_n, shuffle=True, random_state=seed))
                model = search.fit(X[tr], y[tr]).best_estimator_
            else:
                model = pipe.set_params(svm__C=1.0, svm__kernel=self.kernels[0]).fit(X[tr], y[tr])
            accs.append(float(accuracy_score(y[te], model.predict(X[te]))))
        return accs

    def run(self, ctx: EvalContext) -> dict[str, float]:
        if not ctx.seeds:
            raise ConfigError("evaluator 'graph_svm' got no seeds; give at least one.")
        h, y, known = _labelled(ctx, self.name)
        out: dict[str, float] = {}
        sets = [("", h)]
        if self.raw_baseline and ctx.options.get("raw_baseline", True):
            items = [it for it, k in zip(ctx.samples.items, known) if k]
            sets.append(("raw_", raw_features(items)))
        with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for prefix, X in sets:
                per_seed = [self._cv_accuracy(X, y, int(s)) for s in ctx.seeds]
                out[f"{prefix}accuracy"], out[f"{prefix}accuracy_std"] = mean_std([float(np.mean(a)) for a in per_seed])
                out[f"{prefix}fold_std"] = float(np.mean([np.std(a) for a in per_seed]))
        out["n_items"] = float(len(y))
        return out


class NodeLogReg(Evaluator):
    """Logistic regression over random stratified train/validation/test splits (one per seed)."""

    name = "node_logreg"
    protocol = "node-logreg-random-splits"
    version = "1"
    requires = "labels"
    description = "logistic regression on frozen node embeddings, random 10/10/80 splits, C on validation (GRACE)"

    def __init__(self, train: float = 0.1, val: float = 0.1, grid: Sequence[float] = LOGREG_C_GRID,
                 raw_baseline: bool = True, max_iter: int = 1000) -> None:
        if not (0 < float(train) < 1 and 0 < float(val) < 1 and float(train) + float(val) < 1):
            raise ConfigError(f"evaluator 'node_logreg': train and val must be fractions with train + val < 1, got "
                              f"{train}, {val}.")
        self.train, self.val = float(train), float(val)
        self.grid = _check_grid(self.name, grid)
        self.raw_baseline = bool(raw_baseline)
        self.max_iter = int(max_iter)

    def _split(self, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        index = np.arange(len(y))
        n_classes = len(np.unique(y))
        n_tr = max(n_classes, int(round(self.train * len(y))))
        n_va = max(n_classes, int(round(self.val * len(y))))
        if n_tr + n_va >= len(y):
            raise DataError(f"{len(y)} labelled items are too few for a train/validation/test split.")
        try:
            tr, rest = train_test_split(index, train_size=n_tr, random_state=seed, stratify=y)
            va, te = train_test_split(rest, train_size=n_va, random_state=seed, stratify=y[rest])
        except ValueError:  # a class too small to stratify
            rng = np.random.default_rng(seed)
            perm = rng.permutation(index)
            tr, va, te = perm[:n_tr], perm[n_tr:n_tr + n_va], perm[n_tr + n_va:]
        return tr, va, te

    def _score(self, X: np.ndarray, y: np.ndarray, seed: int) -> tuple[float, float]:
        tr, va, te = self._split(y, seed)
        if len(np.unique(y[tr])) < 2:
            raise DataError("a random training split holds one class only; the data set is too small.")
        best, best_acc = None, -1.0
        for c in self.grid:
            model = Pipeline([("scale", StandardScaler()),
                              ("lr", LogisticRegression(C=c, max_iter=self.max_iter))]).fit(X[tr], y[tr])
            acc = accuracy_score(y[va], model.predict(X[va]))
            if acc > best_acc:
                best, best_acc = model, acc
        pred = best.predict(X[te])
        return float(accuracy_score(y[te], pred)), float(f1_score(y[te], pred, average="macro", zero_division=0))

    def run(self, ctx: EvalContext) -> dict[str, float]:
        if not ctx.seeds:
            raise ConfigError("evaluator 'node_logreg' got no seeds; give at least one.")
        h, y, known = _labelled(ctx, self.name)
        sets = [("", h)]
        if self.raw_baseline and ctx.options.get("raw_baseline", True):
            items = [it for it, k in zip(ctx.samples.items, known) if k]
            sets.append(("raw_", raw_features(items)))
        out: dict[str, float] = {}
        with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for prefix, X in sets:
                runs = [self._score(X, y, int(s)) for s in ctx.seeds]
                out[f"{prefix}accuracy"], out[f"{prefix}accuracy_std"] = mean_std([r[0] for r in runs])
                out[f"{prefix}f1_macro"], out[f"{prefix}f1_macro_std"] = mean_std([r[1] for r in runs])
        out["n_items"] = float(len(y))
        return out


EVALUATORS: dict[str, type] = {"graph_svm": GraphSVM, "node_logreg": NodeLogReg}
