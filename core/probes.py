"""Modality-agnostic probes: classifiers and a regressor fitted on frozen embeddings.

Every probe follows the protocol in :mod:`contrastkit.core.evaluation`: it
takes the split the data already carries (``ctx.labelled_split()``), standardises
or normalises features inside a scikit-learn pipeline so cross-validation never
sees statistics of a held-out fold, picks its one hyper-parameter from a fixed
grid by cross-validation on the *training* split only, refits on the training
split, and scores once on the test split.  The seed drives the fold shuffling
(and the SVM's sub-sample), so each probe is re-run per seed and reports
``<metric>`` (mean) and ``<metric>_std``; the hyper-parameter chosen under the
first seed is reported as ``best_<param>``.

- :class:`SVMProbe` — the protocol of TS2Vec (Yue et al., "TS2Vec: Towards
  Universal Representation of Time Series", AAAI 2022): an RBF SVM whose C is
  chosen from ``{1e-4, …, 1e4, ∞}``.
- :class:`LinearProbe` — multinomial logistic regression (the usual linear
  evaluation of SimCLR, Chen et al., ICML 2020).
- :class:`KNNProbe` — cosine k-nearest neighbours on L2-normalised embeddings
  (Wu et al., "Unsupervised Feature Learning via Non-Parametric Instance
  Discrimination", CVPR 2018).
- :class:`RidgeProbe` — ridge regression for numeric targets (R², MAE).
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, r2_score, roc_auc_score
from sklearn.model_selection import BaseCrossValidator, GridSearchCV, KFold, StratifiedKFold, train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import Normalizer, StandardScaler
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

from .errors import ConfigError, DataError
from .evaluation import EvalContext, Evaluator, mean_std

#: Stand-in for TS2Vec's ``C = inf`` (a hard margin); libsvm wants a finite C.
HARD_MARGIN_C = 1e8
SVM_C_GRID: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2, 1e3, 1e4, HARD_MARGIN_C)
LINEAR_C_GRID: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2)
KNN_K_GRID: tuple[int, ...] = (1, 3, 5, 10, 20)
RIDGE_ALPHA_GRID: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2, 1e3)
#: TS2Vec fits its SVM grid search on at most this many training items.
SVM_MAX_TRAIN = 10_000


# --------------------------------------------------------------------------- helpers


def cv_folds(y: Sequence[Any] | np.ndarray, max_folds: int = 5, stratified: bool = True) -> int:
    """How many cross-validation folds the training targets ``y`` allow.

    Stratified: ``min(max_folds, size of the smallest class)``, so every fold
    holds at least one item of every class.  Not stratified (regression):
    ``min(max_folds, len(y))``.  A result below 2 means no cross-validation is
    possible and the caller falls back to a default hyper-parameter.
    """
    y = np.asarray(y)
    if len(y) == 0:
        return 0
    if not stratified:
        return int(min(max_folds, len(y)))
    counts = np.unique(y, return_counts=True)[1]
    return int(min(max_folds, counts.min()))


def make_cv(y: np.ndarray, seed: int, *, stratified: bool = True, max_folds: int = 5) -> BaseCrossValidator | None:
    """The shuffled (stratified) K-fold splitter for targets ``y``, or None when CV is impossible."""
    folds = cv_folds(y, max_folds=max_folds, stratified=stratified)
    if folds < 2:
        return None
    splitter = StratifiedKFold if stratified else KFold
    return splitter(n_splits=folds, shuffle=True, random_state=seed)


def grid_search(
    estimator: BaseEstimator,
    param: str,
    grid: Sequence[Any],
    X: np.ndarray,
    y: np.ndarray,
    seed: int,
    *,
    fallback: Any,
    stratified: bool = True,
    scoring: str | None = None,
    cv: BaseCrossValidator | None | str = "auto",
    n_jobs: int | None = None,
) -> tuple[BaseEstimator, Any]:
    """Pick ``param`` from ``grid`` by (stratified) K-fold CV on ``(X, y)``, refit on all of it.

    The folds come from :func:`make_cv` (shuffled with ``seed``) unless ``cv``
    gives the splitter.  When the data allow fewer than two folds (see
    :func:`cv_folds`), no search is made: the estimator is fitted with
    ``param = fallback``.  Returns the fitted estimator and the chosen value.
    """
    if isinstance(cv, str):
        cv = make_cv(y, seed, stratified=stratified)
    grid = list(grid)
    if cv is None or len(grid) == 1:
        value = fallback if cv is None else grid[0]
        est = clone(estimator).set_params(**{param: value})
        return est.fit(X, y), value
    search = GridSearchCV(clone(estimator), {param: grid}, cv=cv, scoring=scoring, refit=True, n_jobs=n_jobs)
    search.fit(X, y)
    return search.best_estimator_, search.best_params_[param]


def subsample(X: np.ndarray, y: np.ndarray, max_items: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_items`` rows of ``(X, y)``, stratified by ``y`` where the classes allow it."""
    if len(y) <= max_items:
        return X, y
    index = np.arange(len(y))
    try:
        keep = train_test_split(index, train_size=max_items, random_state=seed, stratify=y)[0]
    except ValueError:  # a class too small to stratify: draw uniformly
        keep = np.random.default_rng(seed).choice(index, size=max_items, replace=False)
    keep = np.sort(keep)
    return X[keep], y[keep]


def _check_features(*arrays: np.ndarray) -> list[np.ndarray]:
    out = []
    for a in arrays:
        a = np.asarray(a, dtype=np.float64)
        if a.ndim != 2:
            raise DataError(f"the embeddings have shape {a.shape}; a probe expects one row per item (N × D).")
        if not np.isfinite(a).all():
            raise DataError("the embeddings contain NaN or infinite values; the encoder may have diverged.")
        out.append(a)
    return out


def _encode_classes(y_train: np.ndarray, y_test: np.ndarray) -> tuple[np.ndarray, np.ndarray, list]:
    """Map labels of any hashable type (str, int, mixed) to integer codes 0..K-1."""
    values = set(y_train.tolist()) | set(y_test.tolist())
    try:
        classes = sorted(values)
    except TypeError:  # mixed types: order by their text
        classes = sorted(values, key=repr)
    code = {c: i for i, c in enumerate(classes)}
    tr = np.array([code[v] for v in y_train.tolist()], dtype=np.int64)
    te = np.array([code[v] for v in y_test.tolist()], dtype=np.int64)
    if len(np.unique(tr)) < 2:
        raise DataError(
            f"the training split has only one class ({classes[tr[0]]!r}); a probe needs at least two."
        )
    return tr, te, classes


def _numeric_targets(y: np.ndarray, which: str) -> np.ndarray:
    try:
        out = np.asarray(y.tolist(), dtype=np.float64)
    except (TypeError, ValueError):
        bad = next(v for v in y.tolist() if not _is_number(v))
        raise DataError(f"label {bad!r} in the {which} split is not a number; the ridge probe needs numeric labels.")
    if not np.isfinite(out).all():
        raise DataError(f"the {which} split has NaN or infinite labels; the ridge probe needs finite numbers.")
    return out


def _is_number(v: Any) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False


# --------------------------------------------------------------------------- base


class Probe(Evaluator):
    """A probe: one fit per seed on the training split, scored on the test split.

    Subclasses implement :meth:`fit_score`, returning the test metrics and the
    chosen hyper-parameters of one seed; :meth:`run` aggregates over seeds.
    """

    requires = "labels"
    classification = True

    def run(self, ctx: EvalContext) -> dict[str, float]:
        if not ctx.seeds:
            raise ConfigError(f"evaluator '{self.name}' got no seeds; give at least one.")
        X_tr, y_tr, X_te, y_te = ctx.labelled_split()
        X_tr, X_te = _check_features(X_tr, X_te)
        if self.classification:
            y_tr, y_te, _ = _encode_classes(y_tr, y_te)
        else:
            y_tr, y_te = _numeric_targets(y_tr, "training"), _numeric_targets(y_te, "test")
        runs = [self.fit_score(X_tr, y_tr, X_te, y_te, int(seed)) for seed in ctx.seeds]
        out: dict[str, float] = {}
        for key in runs[0][0]:
            out[key], out[f"{key}_std"] = mean_std([r[0][key] for r in runs])
        out.update({f"best_{k}": float(v) for k, v in runs[0][1].items()})
        return out

    def fit_score(
        self, X_tr: np.ndarray, y_tr: np.ndarray, X_te: np.ndarray, y_te: np.ndarray, seed: int
    ) -> tuple[dict[str, float], dict[str, float]]:  # pragma: no cover - interface
        raise NotImplementedError


def _classification_metrics(model: BaseEstimator, X_te: np.ndarray, y_te: np.ndarray) -> dict[str, float]:
    pred = model.predict(X_te)
    return {
        "accuracy": float(accuracy_score(y_te, pred)),
        "f1_macro": float(f1_score(y_te, pred, average="macro", zero_division=0)),
    }


# --------------------------------------------------------------------------- probes


class SVMProbe(Probe):
    """TS2Vec's SVM protocol: RBF SVC (gamma='scale') on the representations, C by grid search.

    As in TS2Vec (Yue et al. 2022, ``fit_svm``): C is chosen from
    :data:`SVM_C_GRID` (``{1e-4, …, 1e4, ∞}``, :data:`HARD_MARGIN_C` standing
    for ∞) by stratified 5-fold CV on the training split — on at most
    ``max_train`` training items sub-sampled with the seed, the best model
    refitted on that sub-sample — except for small training sets (fewer than
    50 items, or fewer than 5 per class), where TS2Vec skips the search and
    fits the hard-margin SVM.  ``standardize=True`` adds a StandardScaler inside
    the pipeline (fitted per CV fold); TS2Vec does not standardise.

    Metrics: ``accuracy``, ``f1_macro`` and, with two classes, ``auroc`` (from
    the decision function), each with ``_std``; ``best_C`` of the first seed.
    """

    name = "svm"
    protocol = "ts2vec-svm"
    version = "2"
    description = "RBF SVM on the embeddings, C chosen by CV on the training split (TS2Vec protocol)."

    def __init__(self, grid: Sequence[float] = SVM_C_GRID, max_train: int = SVM_MAX_TRAIN, n_jobs: int | None = None,
                 standardize: bool = False):
        if not grid or any(not (c > 0) for c in grid):
            raise ConfigError(f"the SVM's C grid {list(grid)!r} must be a non-empty list of positive numbers.")
        if max_train < 2:
            raise ConfigError(f"max_train={max_train!r} must be at least 2.")
        self.grid = tuple(float(c) for c in grid)
        self.max_train = int(max_train)
        self.n_jobs = n_jobs
        self.standardize = bool(standardize)

    def fit_score(self, X_tr, y_tr, X_te, y_te, seed):
        X_fit, y_fit = subsample(X_tr, y_tr, self.max_train, seed)
        steps = [("scale", StandardScaler())] if self.standardize else []
        pipe = Pipeline([*steps, ("svm", SVC(kernel="rbf", gamma="scale"))])
        n_classes = len(np.unique(y_fit))
        if len(y_fit) < 50 or len(y_fit) // n_classes < 5:  # TS2Vec: too small to search, hard margin
            model, c = pipe.set_params(svm__C=HARD_MARGIN_C).fit(X_fit, y_fit), HARD_MARGIN_C
        else:
            model, c = grid_search(pipe, "svm__C", self.grid, X_fit, y_fit, seed, fallback=HARD_MARGIN_C,
                                   n_jobs=self.n_jobs)
        metrics = _classification_metrics(model, X_te, y_te)
        if n_classes == 2:
            metrics["auroc"] = _binary_auroc(model, X_te, y_te)
        return metrics, {"C": c}


def _binary_auroc(model: BaseEstimator, X_te: np.ndarray, y_te: np.ndarray) -> float:
    """AUROC of the positive (second) class; NaN if the test split holds one class only."""
    positive = model.classes_[1]
    truth = y_te == positive
    if truth.all() or not truth.any():
        return float("nan")
    return float(roc_auc_score(truth, model.decision_function(X_te)))


class LinearProbe(Probe):
    """Linear evaluation: standardise, multinomial logistic regression (lbfgs), C by stratified CV.

    C comes from :data:`LINEAR_C_GRID`; with too few items per class for CV,
    C = 1.  Convergence warnings of lbfgs are silenced: the CV already judges
    each C by what it achieves.  Fitting runs with one BLAS thread.  Metrics: ``accuracy``, ``f1_macro`` (+ ``_std``),
    ``best_C``.
    """

    name = "linear"
    protocol = "linear-probe"
    version = "1"
    description = "Logistic regression on standardised embeddings, C chosen by CV on the training split."

    def __init__(self, grid: Sequence[float] = LINEAR_C_GRID, max_iter: int = 1000):
        if not grid or any(not (c > 0) for c in grid):
            raise ConfigError(f"the linear probe's C grid {list(grid)!r} must be a non-empty list of positive numbers.")
        self.grid = tuple(float(c) for c in grid)
        self.max_iter = int(max_iter)

    def fit_score(self, X_tr, y_tr, X_te, y_te, seed):
        pipe = Pipeline(
            [("scale", StandardScaler()), ("logreg", LogisticRegression(solver="lbfgs", max_iter=self.max_iter))]
        )
        # One BLAS thread: lbfgs makes many tiny calls, where thread hand-offs between
        # numpy's and scipy's OpenBLAS pools cost far more than they save (30x on 2 cores).
        with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
            warnings.simplefilter("ignore", ConvergenceWarning)
            model, c = grid_search(pipe, "logreg__C", self.grid, X_tr, y_tr, seed, fallback=1.0)
        return _classification_metrics(model, X_te, y_te), {"C": c}


class KNNProbe(Probe):
    """Cosine k-nearest-neighbour probe on L2-normalised embeddings.

    k comes from :data:`KNN_K_GRID`, capped so that every CV fold's training
    part holds at least k items; with too few items for CV, k = 1.  Metrics:
    ``accuracy``, ``f1_macro`` (+ ``_std``), ``best_k``.
    """

    name = "knn"
    protocol = "knn-probe"
    version = "1"
    description = "Cosine k-NN on L2-normalised embeddings, k chosen by CV on the training split."

    def __init__(self, grid: Sequence[int] = KNN_K_GRID):
        if not grid or any(int(k) != k or k < 1 for k in grid):
            raise ConfigError(f"the k-NN grid {list(grid)!r} must be a non-empty list of positive integers.")
        self.grid = tuple(sorted(int(k) for k in grid))

    def fit_score(self, X_tr, y_tr, X_te, y_te, seed):
        cv = make_cv(y_tr, seed)
        # k may not exceed the smallest training part of a CV fold (or the whole set without CV).
        room = min(len(tr) for tr, _ in cv.split(X_tr, y_tr)) if cv is not None else len(y_tr)
        grid = [k for k in self.grid if k <= room] or [1]
        pipe = Pipeline(
            [("norm", Normalizer()), ("knn", KNeighborsClassifier(metric="cosine", algorithm="brute"))]
        )
        model, k = grid_search(pipe, "knn__n_neighbors", grid, X_tr, y_tr, seed, fallback=1, cv=cv)
        return _classification_metrics(model, X_te, y_te), {"k": k}


class RidgeProbe(Probe):
    """Ridge regression on standardised embeddings for numeric labels.

    alpha comes from :data:`RIDGE_ALPHA_GRID`, chosen by shuffled K-fold CV
    (mean squared error) on the training split.  Metrics: ``r2``, ``mae``
    (+ ``_std``), ``best_alpha``.
    """

    name = "ridge"
    protocol = "ridge-probe"
    version = "1"
    description = "Ridge regression on standardised embeddings for numeric labels (R², MAE)."
    classification = False

    def __init__(self, grid: Sequence[float] = RIDGE_ALPHA_GRID):
        if not grid or any(not (a > 0) for a in grid):
            raise ConfigError(f"the ridge alpha grid {list(grid)!r} must be a non-empty list of positive numbers.")
        self.grid = tuple(float(a) for a in grid)

    def fit_score(self, X_tr, y_tr, X_te, y_te, seed):
        pipe = Pipeline([("scale", StandardScaler()), ("ridge", Ridge())])
        model, alpha = grid_search(
            pipe, "ridge__alpha", self.grid, X_tr, y_tr, seed,
            fallback=1.0, stratified=False, scoring="neg_mean_squared_error",
        )
        pred = model.predict(X_te)
        r2 = float(r2_score(y_te, pred)) if len(y_te) >= 2 else float("nan")
        return {"r2": r2, "mae": float(mean_absolute_error(y_te, pred))}, {"alpha": alpha}


#: The classification probes, by name.
PROBES: dict[str, type[Probe]] = {"svm": SVMProbe, "linear": LinearProbe, "knn": KNNProbe}


#: Public names of the feature check and the classification metrics (plugins' probes reuse them).
check_features = _check_features
classification_metrics = _classification_metrics
