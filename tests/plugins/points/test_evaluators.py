"""The point-cloud evaluators: linear-SVM protocol, D2 raw-feature baseline, retrieval under augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from contrastkit.core.data import Samples
from contrastkit.core.errors import ConfigError, DataError
from contrastkit.core.evaluation import EvalContext, FeatureBaseline, default_evaluators
from contrastkit.plugins.points.augmentations import random_rotations
from contrastkit.plugins.points.evaluators import (
    EVALUATORS,
    SVM_C_GRID,
    LinearSVMProbe,
    RawD2Baseline,
    RetrievalEvaluator,
    d2_descriptor,
)
from contrastkit.plugins.points.modality import prepare
from contrastkit.plugins.points.readers import SyntheticShapesReader


@pytest.fixture(scope="module")
def shapes() -> Samples:
    raw = SyntheticShapesReader().read("synthetic_shapes", {"num_points": 128, "train_per_class": 8,
                                                            "test_per_class": 4})
    return prepare(raw, None, {"num_points": 128})[0]


def d2_embed(samples: Samples) -> np.ndarray:
    return np.stack([d2_descriptor(x) for x in samples.items])


def test_registry():
    assert EVALUATORS == {"linear_svm": LinearSVMProbe, "raw_d2": RawD2Baseline, "retrieval": RetrievalEvaluator}
    assert {n: cls.requires for n, cls in EVALUATORS.items()} == {"linear_svm": "labels", "raw_d2": "labels",
                                                                   "retrieval": "items"}
    assert issubclass(RawD2Baseline, FeatureBaseline) and not RawD2Baseline.uses_encoder
    assert RetrievalEvaluator.label_efficiency is False and LinearSVMProbe.label_efficiency is True


def test_d2_descriptor_is_invariant_to_rotation_translation_and_scale():
    x = np.random.default_rng(0).normal(size=(200, 3))
    r = random_rotations(1, torch.Generator().manual_seed(0), "cpu")[0].double().numpy()
    moved = 3.0 * x @ r.T + np.array([1.0, -2.0, 0.5])
    a, b = d2_descriptor(x), d2_descriptor(moved)
    assert a.shape == (2 * 32 + 3,)
    assert np.abs(a[:-3] - b[:-3]).sum() < 0.02 and np.allclose(a[-3:], b[-3:], rtol=1e-4)
    assert not np.allclose(a, d2_descriptor(x * np.array([3.0, 1.0, 0.2])))


def test_linear_svm_separates_separable_embeddings_and_picks_c_from_the_grid():
    rng = np.random.default_rng(0)
    labels = ["a", "b"] * 20
    h = rng.normal(size=(40, 8)) + np.array([[4.0 if l == "a" else -4.0] + [0.0] * 7 for l in labels])
    s = Samples(ids=list(range(40)), items=list(h), labels=labels, split=["train"] * 30 + ["test"] * 10)
    ctx = EvalContext(samples=s, embed=lambda smp: np.stack(smp.items), seeds=[0, 1])
    out = LinearSVMProbe()(ctx)
    m = out["metrics"]
    assert out["protocol"] == "modelnet-linear-svm" and m["accuracy"] == 1.0 and m["accuracy_std"] == 0.0
    assert m["best_C"] in SVM_C_GRID


def test_raw_d2_beats_chance_on_the_synthetic_shapes_and_ignores_the_encoder(shapes):
    calls = []
    ctx = EvalContext(samples=shapes, embed=lambda s: calls.append(1) or np.zeros((len(s), 4)), seeds=[0])
    out = RawD2Baseline()(ctx)
    m = out["metrics"]
    assert set(m) == {"linear_svm.accuracy", "linear_svm.accuracy_std", "linear_svm.f1_macro",
                      "linear_svm.f1_macro_std", "linear_svm.best_C"}
    assert m["linear_svm.accuracy"] > 0.4 and not calls  # 10 classes: chance is 0.1
    # the same figures as the plugin's linear-SVM probe fed the D2 features as embeddings
    ref = LinearSVMProbe()(EvalContext(samples=shapes, embed=d2_embed, seeds=[0]))["metrics"]
    assert m["linear_svm.accuracy"] == ref["accuracy"] and m["linear_svm.best_C"] == ref["best_C"]


def test_raw_d2_features_are_the_d2_descriptor_of_any_clouds(shapes):
    base = RawD2Baseline(bins=8, pairs=512)
    some = shapes.subset([0, 5, 7])
    f = base.features(some)
    assert f.shape == (3, 2 * 8 + 3)
    assert np.array_equal(f[1], d2_descriptor(shapes.items[5], bins=8, pairs=512))
    # clouds that are in no Samples read by a reader (e.g. retrieval's augmented queries)
    q = Samples(ids=["q0"], items=[shapes.items[0] * 2.0 + 1.0])
    assert np.allclose(base.features(q)[0], f[0], atol=0.02)  # D2 is invariant to scale and translation
    with pytest.raises(ConfigError, match="bins"):
        RawD2Baseline(bins=1)
    with pytest.raises(DataError, match="no clouds"):
        base.features(Samples(ids=[], items=[]))


def test_label_fraction_changes_what_linear_svm_fits_on(shapes):
    """8 training clouds per class, 10 classes: a fraction f fits max(1, round(8 f)) per class."""
    fitted = []

    class Spy(LinearSVMProbe):
        def fit_score(self, X_tr, y_tr, X_te, y_te, seed):
            fitted.append((len(y_tr), np.bincount(y_tr).tolist(), len(y_te)))
            return super().fit_score(X_tr, y_tr, X_te, y_te, seed)

    for fraction, per_class in ((None, 8), (1.0, 8), (0.25, 2), (0.5, 4), (0.01, 1)):
        fitted.clear()
        ctx = EvalContext(samples=shapes, embed=d2_embed, seeds=[0], label_fraction=fraction, label_seed=3)
        Spy()(ctx)
        assert fitted == [(10 * per_class, [per_class] * 10, 40)], fraction
    # the draw is the same for the same seed, and the test split is never subsampled
    a = EvalContext(samples=shapes, embed=d2_embed, seeds=[0], label_fraction=0.25, label_seed=3).labelled_split()
    b = EvalContext(samples=shapes, embed=d2_embed, seeds=[0], label_fraction=0.25, label_seed=3).labelled_split()
    assert np.array_equal(a[0], b[0]) and len(a[3]) == 40


def test_retrieval_finds_augmented_copies_with_an_invariant_descriptor(shapes):
    test = shapes.part("test")
    ctx = EvalContext(samples=shapes, embed=d2_embed, seeds=[0, 1])
    m = RetrievalEvaluator(copies=2)(ctx)["metrics"]
    assert m["gallery_size"] == len(test) == 40
    assert m["instance_top1"] > 0.3 and m["class_top1"] >= m["instance_top1"]  # chance: 1/40
    noise = EvalContext(samples=shapes, embed=lambda s: np.random.default_rng(len(s)).normal(size=(len(s), 8)),
                        seeds=[0])
    assert RetrievalEvaluator(copies=2)(noise)["metrics"]["instance_top1"] < 0.15


def test_retrieval_on_unlabelled_clouds_reports_instances_only(shapes):
    unlabelled = Samples(ids=shapes.ids, items=shapes.items, split=shapes.split, source="folder")
    assert default_evaluators(_Registry(), "points", unlabelled, ["linear_svm", "raw_d2", "retrieval"]) == ["retrieval"]
    ctx = EvalContext(samples=unlabelled, embed=d2_embed, seeds=[0, 1])
    m = RetrievalEvaluator(copies=2)(ctx)["metrics"]
    labelled = RetrievalEvaluator(copies=2)(EvalContext(samples=shapes, embed=d2_embed, seeds=[0, 1]))["metrics"]
    assert set(m) == {"instance_top1", "instance_top1_std", "gallery_size"}
    assert m["instance_top1"] == labelled["instance_top1"] and m["gallery_size"] == 40  # labels change nothing else


def test_retrieval_class_top1_by_hand():
    """Four clouds, two labels; an embedding that maps every copy to the first gallery cloud of its label."""
    rng = np.random.default_rng(0)
    items = [rng.normal(size=(32, 3)).astype(np.float32) for _ in range(4)]
    s = Samples(ids=list("abcd"), items=items, labels=["x", "x", "y", None])

    def embed(smp):  # gallery: one-hot per cloud; queries (ids q…): the one-hot of cloud 0 or 2
        if smp.ids[0] != "q0":
            return np.eye(4)
        n = len(smp)
        truth = np.tile(np.arange(4), n // 4)
        return np.eye(4)[np.where(truth < 2, 0, 2)]

    m = RetrievalEvaluator(copies=2)(EvalContext(samples=s, embed=embed, seeds=[0]))["metrics"]
    assert m["instance_top1"] == 0.5  # clouds a and c are found, b and d are not
    # labelled queries: a→a (x) hit, b→a (x) hit, c→c (y) hit; d has no label and is not counted
    assert m["class_top1"] == 1.0


class _Registry:
    """Just enough of a registry for default_evaluators."""

    class _C:
        def __init__(self, name, obj):
            self.name, self.obj = name, obj

    def of_kind(self, kind, modality):
        return [self._C(n, c) for n, c in EVALUATORS.items()]


def test_retrieval_errors():
    with pytest.raises(ConfigError):
        RetrievalEvaluator(copies=0)
    s = Samples(ids=[0], items=[np.zeros((8, 3))])
    with pytest.raises(DataError, match="two clouds"):
        RetrievalEvaluator()(EvalContext(samples=s, embed=d2_embed, seeds=[0]))
