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

Which items are fitted on is an explicit choice, the option ``protocol``
(``contrastkit evaluate --protocol``, ``ctx.options["protocol"]``):

- ``"kfold"`` (graph_svm) / ``"random"`` (node_logreg; ``"kfold"`` is taken to
  mean the same, the literature's resampling protocol): the papers' protocols
  above, which ignore any train/test split — the encoder is pretrained on every
  item without labels (``pretrain_on = "all"``) and the labels are used only
  here, split by the evaluator;
- ``"split"``: the data's own train/test split: fitted on the labelled
  training items (C by stratified CV on them only), scored once on the test
  items;
- unset: ``"split"`` when the reader found a split in the source
  (``samples.meta["source_split"]``: a TU ``NAME_graph_split.txt``, a ``split``
  attribute of saved PyG graphs, a ``test_mask``, a ``split`` column), else the
  resampling protocol.  (Data without a source split still carry the hash split
  of pretraining; ``protocol = "split"`` evaluates on it.)

Label efficiency: with ``ctx.label_fraction`` the classifier is fitted on the
stratified subset :meth:`EvalContext.label_subset` of each training part (each
outer fold's training folds; the training part of a split), at least one item
per class; the test parts are unchanged.  ``n_train`` reports the mean number
of items fitted on.

Both also report the same protocol on the raw features (``raw_accuracy``):
summed node features per graph, or a node's own features.
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

from contrastkit.core import TEST, TRAIN, ConfigError, DataError, EvalContext, Evaluator, Samples, mean_std

from .batch import NodeRef

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


def has_source_split(samples: Samples) -> bool:
    """True when the reader found a train/test split in the source (not the hash split of pretraining)."""
    return bool(samples.meta.get("source_split")) and samples.split is not None


def resolve_protocol(ctx: EvalContext, name: str, resampling: str, aliases: Sequence[str] = ()) -> str:
    """``ctx.options["protocol"]`` checked; unset: "split" for data with a source split, else ``resampling``."""
    chosen = ctx.options.get("protocol")
    if chosen is None:
        return "split" if has_source_split(ctx.samples) else resampling
    allowed = (resampling, *aliases, "split")
    if chosen not in allowed:
        raise ConfigError(f"evaluator '{name}': protocol must be one of {', '.join(allowed)}, got {chosen!r}.")
    return resampling if chosen in aliases else chosen


def _split_of(ctx: EvalContext, known: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Positions (among the labelled items) of the training and test items of the data's split."""
    s = ctx.samples
    if s.split is None:
        raise DataError(f"{s.source or 'the data'} has no train/test split; evaluator '{name}' with protocol "
                        "\"split\" needs one.")
    split = np.asarray(s.split, dtype=object)[known]
    tr, te = np.flatnonzero(split == TRAIN), np.flatnonzero(split == TEST)
    if len(tr) < 2 or len(te) < 1:
        raise DataError(f"{s.source or 'the data'}: {len(tr)} labelled training and {len(te)} labelled test items; "
                        f"evaluator '{name}' with protocol \"split\" needs at least 2 and 1.")
    return tr, te


def _smallest_class(y: np.ndarray) -> int:
    return int(np.unique(y, return_counts=True)[1].min()) if len(y) else 0


class GraphSVM(Evaluator):
    """SVM on frozen graph embeddings: stratified 10-fold CV over all labelled items (``protocol = "kfold"``)
    or the data's own train/test split (``"split"``); C and kernel by inner CV on the training part only."""

    name = "graph_svm"
    protocol = "graphcl-svm-10fold"
    version = "2"
    requires = "labels"
    description = ("SVM, 10-fold stratified CV over all labelled graphs (GraphCL/InfoGraph protocol) or the data's "
                   "train/test split, C by inner CV on the training part")
    primary_metric = "accuracy"
    PROTOCOLS = {"kfold": "graphcl-svm-10fold", "split": "graph-svm-split"}

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

    def _fit(self, X: np.ndarray, y: np.ndarray, seed: int):
        """The SVM fitted on (X, y): C and kernel by inner stratified CV on them; C = 1 when a class is too small."""
        pipe = Pipeline([("scale", StandardScaler()), ("svm", SVC(gamma="scale"))])
        inner_n = min(self.inner_folds, _smallest_class(y))
        if inner_n >= 2:
            search = GridSearchCV(pipe, {"svm__C": list(self.grid), "svm__kernel": list(self.kernels)},
                                  cv=StratifiedKFold(inner_n, shuffle=True, random_state=seed))
            return search.fit(X, y).best_estimator_
        return pipe.set_params(svm__C=1.0, svm__kernel=self.kernels[0]).fit(X, y)

    def _cv_accuracy(self, X: np.ndarray, y: np.ndarray, seed: int,
                     ctx: EvalContext | None = None) -> tuple[list[float], list[int]]:
        """Per outer fold: accuracy, and the number of items fitted on (the label subset of the training folds)."""
        smallest = int(np.bincount(y).min())
        folds = min(self.folds, smallest)
        if folds < 2:
            raise DataError(f"a class has {smallest} labelled item(s); 'graph_svm' needs at least 2 per class.")
        outer = StratifiedKFold(folds, shuffle=True, random_state=seed)
        accs, fitted = [], []
        for tr, te in outer.split(X, y):
            if ctx is not None:
                tr = tr[ctx.label_subset(y[tr])]
            model = self._fit(X[tr], y[tr], seed)
            accs.append(float(accuracy_score(y[te], model.predict(X[te]))))
            fitted.append(len(tr))
        return accs, fitted

    def _split_accuracy(self, X: np.ndarray, y: np.ndarray, tr: np.ndarray, te: np.ndarray, seed: int,
                        ctx: EvalContext) -> tuple[float, int]:
        tr = tr[ctx.label_subset(y[tr])]
        if len(np.unique(y[tr])) < 2:
            raise DataError(f"{ctx.samples.source or 'the data'}: the labelled training items hold one class only; "
                            "'graph_svm' needs two.")
        model = self._fit(X[tr], y[tr], seed)
        return float(accuracy_score(y[te], model.predict(X[te]))), len(tr)

    def run(self, ctx: EvalContext) -> dict[str, float]:
        if not ctx.seeds:
            raise ConfigError("evaluator 'graph_svm' got no seeds; give at least one.")
        mode = resolve_protocol(ctx, self.name, "kfold")
        self.protocol = self.PROTOCOLS[mode]
        h, y, known = _labelled(ctx, self.name)
        parts = _split_of(ctx, known, self.name) if mode == "split" else None
        out: dict[str, float] = {}
        sets = [("", h)]
        if self.raw_baseline and ctx.options.get("raw_baseline", True):
            items = [it for it, k in zip(ctx.samples.items, known) if k]
            sets.append(("raw_", raw_features(items)))
        fitted: list[int] = []
        with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for prefix, X in sets:
                if parts is None:
                    per_seed = [self._cv_accuracy(X, y, int(s), ctx) for s in ctx.seeds]
                    out[f"{prefix}accuracy"], out[f"{prefix}accuracy_std"] = mean_std(
                        [float(np.mean(a)) for a, _ in per_seed])
                    out[f"{prefix}fold_std"] = float(np.mean([np.std(a) for a, _ in per_seed]))
                    fitted += [n for _, f in per_seed for n in f]
                else:
                    runs = [self._split_accuracy(X, y, *parts, int(s), ctx) for s in ctx.seeds]
                    out[f"{prefix}accuracy"], out[f"{prefix}accuracy_std"] = mean_std([a for a, _ in runs])
                    fitted += [n for _, n in runs]
        out["n_items"] = float(len(y))
        out["n_train"] = float(np.mean(fitted))
        if parts is not None:
            out["n_test"] = float(len(parts[1]))
        return out


class NodeLogReg(Evaluator):
    """Logistic regression on frozen node embeddings: random stratified train/validation/test splits, one per
    seed (``protocol = "random"``), or the data's own split with C by CV on its training part (``"split"``)."""

    name = "node_logreg"
    protocol = "node-logreg-random-splits"
    version = "2"
    requires = "labels"
    description = ("logistic regression on frozen node embeddings, random 10/10/80 splits with C on validation "
                   "(GRACE), or the data's train/test split")
    primary_metric = "accuracy"
    PROTOCOLS = {"random": "node-logreg-random-splits", "split": "node-logreg-split"}

    def __init__(self, train: float = 0.1, val: float = 0.1, grid: Sequence[float] = LOGREG_C_GRID,
                 raw_baseline: bool = True, max_iter: int = 1000, inner_folds: int = 5) -> None:
        if not (0 < float(train) < 1 and 0 < float(val) < 1 and float(train) + float(val) < 1):
            raise ConfigError(f"evaluator 'node_logreg': train and val must be fractions with train + val < 1, got "
                              f"{train}, {val}.")
        if int(inner_folds) < 2:
            raise ConfigError(f"evaluator 'node_logreg': inner_folds must be at least 2, got {inner_folds}.")
        self.train, self.val = float(train), float(val)
        self.grid = _check_grid(self.name, grid)
        self.raw_baseline = bool(raw_baseline)
        self.max_iter = int(max_iter)
        self.inner_folds = int(inner_folds)

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

    def _model(self, c: float) -> Pipeline:
        return Pipeline([("scale", StandardScaler()), ("lr", LogisticRegression(C=c, max_iter=self.max_iter))])

    def _score(self, X: np.ndarray, y: np.ndarray, seed: int,
               ctx: EvalContext | None = None) -> tuple[float, float, int]:
        """(accuracy, macro-F1, items fitted on) on one random split; the label fraction thins its training part."""
        tr, va, te = self._split(y, seed)
        if ctx is not None:
            tr = tr[ctx.label_subset(y[tr])]
        if len(np.unique(y[tr])) < 2:
            raise DataError("a random training split holds one class only; the data set is too small.")
        best, best_acc = None, -1.0
        for c in self.grid:
            model = self._model(c).fit(X[tr], y[tr])
            acc = accuracy_score(y[va], model.predict(X[va]))
            if acc > best_acc:
                best, best_acc = model, acc
        pred = best.predict(X[te])
        return (float(accuracy_score(y[te], pred)), float(f1_score(y[te], pred, average="macro", zero_division=0)),
                len(tr))

    def _score_split(self, X: np.ndarray, y: np.ndarray, tr: np.ndarray, te: np.ndarray, seed: int,
                     ctx: EvalContext) -> tuple[float, float, int]:
        """(accuracy, macro-F1, items fitted on) on the data's split; C by stratified CV on the training part."""
        tr = tr[ctx.label_subset(y[tr])]
        if len(np.unique(y[tr])) < 2:
            raise DataError(f"{ctx.samples.source or 'the data'}: the labelled training items hold one class only; "
                            "'node_logreg' needs two.")
        inner_n = min(self.inner_folds, _smallest_class(y[tr]))
        if inner_n >= 2:
            search = GridSearchCV(self._model(1.0), {"lr__C": list(self.grid)},
                                  cv=StratifiedKFold(inner_n, shuffle=True, random_state=seed))
            model = search.fit(X[tr], y[tr]).best_estimator_
        else:
            model = self._model(1.0).fit(X[tr], y[tr])
        pred = model.predict(X[te])
        return (float(accuracy_score(y[te], pred)), float(f1_score(y[te], pred, average="macro", zero_division=0)),
                len(tr))

    def run(self, ctx: EvalContext) -> dict[str, float]:
        if not ctx.seeds:
            raise ConfigError("evaluator 'node_logreg' got no seeds; give at least one.")
        mode = resolve_protocol(ctx, self.name, "random", aliases=("kfold",))
        self.protocol = self.PROTOCOLS[mode]
        h, y, known = _labelled(ctx, self.name)
        parts = _split_of(ctx, known, self.name) if mode == "split" else None
        sets = [("", h)]
        if self.raw_baseline and ctx.options.get("raw_baseline", True):
            items = [it for it, k in zip(ctx.samples.items, known) if k]
            sets.append(("raw_", raw_features(items)))
        out: dict[str, float] = {}
        fitted: list[int] = []
        with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for prefix, X in sets:
                if parts is None:
                    runs = [self._score(X, y, int(s), ctx) for s in ctx.seeds]
                else:
                    runs = [self._score_split(X, y, *parts, int(s), ctx) for s in ctx.seeds]
                out[f"{prefix}accuracy"], out[f"{prefix}accuracy_std"] = mean_std([r[0] for r in runs])
                out[f"{prefix}f1_macro"], out[f"{prefix}f1_macro_std"] = mean_std([r[1] for r in runs])
                fitted += [r[2] for r in runs]
        out["n_items"] = float(len(y))
        out["n_train"] = float(np.mean(fitted))
        if parts is not None:
            out["n_test"] = float(len(parts[1]))
        return out


EVALUATORS: dict[str, type] = {"graph_svm": GraphSVM, "node_logreg": NodeLogReg}
