"""Probes on synthetic embeddings: separable blobs, random labels, no leakage, ridge, the map picture."""

from __future__ import annotations

import os

import numpy as np
import pytest

from contrastkit.core.data import TEST, TRAIN, Samples
from contrastkit.core.errors import ConfigError, DataError
from contrastkit.core.evaluation import EvalContext
from contrastkit.core.pictures import atomic_savefig, embedding_map
from contrastkit.core.probes import (
    HARD_MARGIN_C,
    PROBES,
    KNNProbe,
    LinearProbe,
    RidgeProbe,
    SVMProbe,
    cv_folds,
    subsample,
)


def make_ctx(X: np.ndarray, labels, split, seeds=(0,)) -> EvalContext:
    """An EvalContext whose items are the embedding rows themselves."""
    n = len(X)
    samples = Samples(
        ids=[f"s{i}" for i in range(n)],
        items=[row.astype(np.float32) for row in X],
        labels=None if labels is None else list(labels),
        split=list(split),
        source="synthetic",
    )
    return EvalContext(samples=samples, embed=lambda s: np.stack(s.items), seeds=list(seeds))


def blobs(n_per_class=30, classes=("cat", "dog", "eel"), dim=8, sep=20.0, seed=0):
    """Well separated Gaussian blobs with string labels, alternating train/test."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(classes), dim)) * sep
    X = np.concatenate([centres[k] + rng.normal(size=(n_per_class, dim)) for k in range(len(classes))])
    y = [c for c in classes for _ in range(n_per_class)]
    split = [TRAIN if i % 2 == 0 else TEST for i in range(len(y))]
    return X, y, split


@pytest.mark.parametrize("name", sorted(PROBES))
def test_separable_blobs_are_classified_perfectly(name):
    X, y, split = blobs()
    result = PROBES[name]()(make_ctx(X, y, split, seeds=[0, 1]))
    m = result["metrics"]
    assert m["accuracy"] == 1.0
    assert m["accuracy_std"] == 0.0
    assert m["f1_macro"] == 1.0


@pytest.mark.parametrize("name", sorted(PROBES))
def test_random_labels_give_chance_accuracy(name):
    rng = np.random.default_rng(1)
    n = 400
    X = rng.normal(size=(n, 6))
    y = rng.choice(["a", "b"], size=n).tolist()
    split = [TRAIN if i < n // 2 else TEST for i in range(n)]
    m = PROBES[name]()(make_ctx(X, y, split, seeds=[0]))["metrics"]
    assert 0.35 < m["accuracy"] < 0.65


def test_result_carries_protocol_version_and_mean_std():
    X, y, split = blobs(n_per_class=12)
    result = SVMProbe()(make_ctx(X, y, split, seeds=[3, 4]))
    assert result["evaluator"] == "svm"
    assert result["protocol"] == "ts2vec-svm"
    assert result["protocol_version"] == "2"
    assert result["seeds"] == [3, 4]
    m = result["metrics"]
    for key in ("accuracy", "accuracy_std", "f1_macro", "f1_macro_std", "best_C"):
        assert isinstance(m[key], float)
    assert "auroc" not in m  # three classes
    assert LinearProbe()(make_ctx(X, y, split))["protocol"] == "linear-probe"
    assert KNNProbe()(make_ctx(X, y, split))["protocol"] == "knn-probe"


def test_binary_svm_reports_auroc():
    X, y, split = blobs(classes=("neg", "pos"))
    m = SVMProbe()(make_ctx(X, y, split))["metrics"]
    assert m["auroc"] == 1.0 and m["auroc_std"] == 0.0


def test_hyperparameter_depends_on_training_split_only():
    """Replacing every test item and label leaves the chosen C (and k) unchanged: no leakage."""
    rng = np.random.default_rng(2)
    n = 120
    X = rng.normal(size=(n, 5))
    y = np.where(X[:, 0] + 0.8 * rng.normal(size=n) > 0, "up", "down").tolist()  # noisy: C matters
    split = [TRAIN if i < 80 else TEST for i in range(n)]
    X2 = X.copy()
    X2[80:] = rng.normal(size=(40, 5)) * 5
    y2 = y[:80] + rng.choice(["up", "down"], size=40).tolist()
    for probe, key in ((SVMProbe(), "best_C"), (LinearProbe(), "best_C"), (KNNProbe(), "best_k")):
        a = probe(make_ctx(X, y, split))["metrics"]
        b = probe(make_ctx(X2, y2, split))["metrics"]
        assert a[key] == b[key]
        if probe.name == "svm":
            assert a[key] not in (HARD_MARGIN_C, 1e-4)  # a real choice, not a fallback or the grid's edge
            assert a["accuracy"] != b["accuracy"]  # the test side did change


def test_svm_falls_back_to_hard_margin_when_a_class_has_one_training_item():
    X, y, split = blobs(n_per_class=6)
    split = list(split)
    # keep a single training item of "eel"
    eel_train = [i for i, (c, s) in enumerate(zip(y, split)) if c == "eel" and s == TRAIN]
    for i in eel_train[1:]:
        split[i] = TEST
    m = SVMProbe()(make_ctx(X, y, split))["metrics"]
    assert m["best_C"] == HARD_MARGIN_C
    assert m["accuracy"] == 1.0
    assert KNNProbe()(make_ctx(X, y, split))["metrics"]["best_k"] == 1


def test_integer_and_mixed_labels_work():
    X, y, split = blobs(classes=(0, 1, 2))
    assert LinearProbe()(make_ctx(X, y, split))["metrics"]["accuracy"] == 1.0
    X, y, split = blobs(classes=(1, "two"))
    assert KNNProbe()(make_ctx(X, y, split))["metrics"]["accuracy"] == 1.0


def test_unlabelled_data_raises_data_error():
    X, _, split = blobs(n_per_class=5)
    for cls in (*PROBES.values(), RidgeProbe):
        with pytest.raises(DataError, match="no labels"):
            cls()(make_ctx(X, None, split))
        with pytest.raises(DataError, match="no labels"):
            cls()(make_ctx(X, [None] * len(X), split))


def test_single_class_training_split_raises_data_error():
    X, _, split = blobs(n_per_class=5)
    with pytest.raises(DataError, match="only one class"):
        SVMProbe()(make_ctx(X, ["same"] * len(X), split))


def test_non_finite_embeddings_raise_data_error():
    X, y, split = blobs(n_per_class=5)
    X[0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        LinearProbe()(make_ctx(X, y, split))


def test_ridge_fits_a_linear_target():
    rng = np.random.default_rng(3)
    n = 200
    X = rng.normal(size=(n, 10))
    target = X @ rng.normal(size=10) + 0.1 * rng.normal(size=n)
    split = [TRAIN if i % 4 else TEST for i in range(n)]
    result = RidgeProbe()(make_ctx(X, [float(t) for t in target], split))
    m = result["metrics"]
    assert result["protocol"] == "ridge-probe"
    assert m["r2"] > 0.9
    assert m["mae"] < 0.5 and m["mae_std"] < 0.01
    assert m["best_alpha"] > 0
    # numbers given as text are numbers too; words are not
    assert RidgeProbe()(make_ctx(X, [str(t) for t in target], split))["metrics"]["r2"] > 0.9
    with pytest.raises(DataError, match="not a number"):
        RidgeProbe()(make_ctx(X, ["x"] * n, split))


def test_cv_folds_degrades_with_tiny_classes():
    assert cv_folds(["a"] * 10 + ["b"] * 10) == 5
    assert cv_folds(["a"] * 10 + ["b"] * 3) == 3
    assert cv_folds(["a"] * 10 + ["b"]) == 1
    assert cv_folds([1.0, 2.0, 3.0], stratified=False) == 3
    assert cv_folds([]) == 0


def test_subsample_is_stratified_and_seeded():
    X = np.arange(1000.0)[:, None]
    y = np.array(["a"] * 900 + ["b"] * 100)
    Xs, ys = subsample(X, y, 100, seed=0)
    assert len(ys) == 100 and (ys == "b").sum() == 10
    assert np.array_equal(Xs, subsample(X, y, 100, seed=0)[0])
    assert not np.array_equal(Xs, subsample(X, y, 100, seed=1)[0])
    assert subsample(X, y, 5000, seed=0)[0] is X


def test_svm_grid_search_uses_at_most_max_train_items():
    X, y, split = blobs(n_per_class=40)
    m = SVMProbe(max_train=30)(make_ctx(X, y, split))["metrics"]
    assert m["accuracy"] == 1.0


def test_bad_grids_are_config_errors():
    with pytest.raises(ConfigError):
        SVMProbe(grid=[0.0, 1.0])
    with pytest.raises(ConfigError):
        KNNProbe(grid=[1.5])
    with pytest.raises(ConfigError):
        RidgeProbe(grid=[])


# --------------------------------------------------------------------------- pictures


def _no_temp_files(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")] == []


def test_embedding_map_writes_a_png_atomically(tmp_path):
    X, y, _ = blobs()
    out = embedding_map(X, y, tmp_path / "map.png", title="blobs")
    assert out == tmp_path / "map.png"
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.png"]


def test_embedding_map_handles_no_labels_many_classes_and_missing(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    embedding_map(X, None, tmp_path / "none.png")
    embedding_map(X, [float(v) for v in rng.normal(size=60)], tmp_path / "numeric.png")  # colour bar
    embedding_map(X, [f"c{i % 30}" for i in range(60)], tmp_path / "many.png")  # no legend
    embedding_map(X, [None if i % 3 else "a" for i in range(60)], tmp_path / "sub" / "missing.png")
    embedding_map(X[:1, :1], ["only"], tmp_path / "one.png")
    for name in ("none.png", "numeric.png", "many.png", "sub/missing.png", "one.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert _no_temp_files(tmp_path) and _no_temp_files(tmp_path / "sub")


def test_embedding_map_errors(tmp_path):
    X = np.zeros((5, 3))
    with pytest.raises(DataError, match="labels"):
        embedding_map(X, ["a"], tmp_path / "x.png")
    with pytest.raises(ConfigError, match="unknown projection"):
        embedding_map(X, None, tmp_path / "x.png", method="tsne")
    with pytest.raises(ConfigError, match="not a supported format"):
        embedding_map(X, None, tmp_path / "x.notaformat")
    try:
        import umap  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="umap-learn"):
            embedding_map(X, None, tmp_path / "x.png", method="umap")
    assert list(tmp_path.iterdir()) == []


def test_atomic_savefig_leaves_no_temp_file_on_failure(tmp_path):
    from matplotlib.figure import Figure

    class Boom(Exception):
        pass

    fig = Figure()
    fig.add_subplot().plot([0, 1], [0, 1])
    (tmp_path / "old.png").write_bytes(b"old")

    def explode(*args, **kwargs):
        raise Boom()

    fig.savefig = explode
    with pytest.raises(Boom):
        atomic_savefig(fig, tmp_path / "old.png")
    assert (tmp_path / "old.png").read_bytes() == b"old"  # the previous file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.png"]
    del fig.savefig
    atomic_savefig(fig, tmp_path / "old.png")
    assert (tmp_path / "old.png").read_bytes()[:4] == b"\x89PNG"
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(tmp_path / "old.png").st_mode & 0o777 == 0o666 & ~umask  # an ordinary file's mode


def test_svm_follows_ts2vec_on_small_training_sets():
    from contrastkit.core.probes import HARD_MARGIN_C

    X, y, split = blobs(n_per_class=30, classes=("a", "b"))  # 30 training items: below TS2Vec's 50
    m = SVMProbe()(make_ctx(X, y, split, seeds=[0]))["metrics"]
    assert m["best_C"] == HARD_MARGIN_C and m["accuracy"] == 1.0
    X, y, split = blobs(n_per_class=60, classes=("a", "b"))  # 60 training items: C is searched
    m = SVMProbe()(make_ctx(X, y, split, seeds=[0]))["metrics"]
    assert m["best_C"] != HARD_MARGIN_C or m["accuracy"] == 1.0
