"""The point-cloud evaluators: linear-SVM protocol, D2 raw-feature baseline, retrieval under augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from contrastkit.core.data import Samples
from contrastkit.core.errors import ConfigError, DataError
from contrastkit.core.evaluation import EvalContext
from contrastkit.plugins.points.augmentations import random_rotations
from contrastkit.plugins.points.evaluators import (
    EVALUATORS,
    SVM_C_GRID,
    LinearSVMProbe,
    RawD2Probe,
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
    assert EVALUATORS == {"linear_svm": LinearSVMProbe, "raw_d2": RawD2Probe, "retrieval": RetrievalEvaluator}
    assert {cls.requires for cls in EVALUATORS.values()} == {"labels"}


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
    m = RawD2Probe()(ctx)["metrics"]
    assert m["accuracy"] > 0.4 and not calls  # 10 classes: chance is 0.1


def test_retrieval_finds_augmented_copies_with_an_invariant_descriptor(shapes):
    test = shapes.part("test")
    ctx = EvalContext(samples=shapes, embed=d2_embed, seeds=[0, 1])
    m = RetrievalEvaluator(copies=2)(ctx)["metrics"]
    assert m["gallery_size"] == len(test) == 40
    assert m["instance_top1"] > 0.3 and m["class_top1"] >= m["instance_top1"]  # chance: 1/40
    noise = EvalContext(samples=shapes, embed=lambda s: np.random.default_rng(len(s)).normal(size=(len(s), 8)),
                        seeds=[0])
    assert RetrievalEvaluator(copies=2)(noise)["metrics"]["instance_top1"] < 0.15


def test_retrieval_errors():
    with pytest.raises(ConfigError):
        RetrievalEvaluator(copies=0)
    s = Samples(ids=[0, 1], items=[np.zeros((8, 3))] * 2)
    with pytest.raises(DataError, match="labels"):
        RetrievalEvaluator()(EvalContext(samples=s, embed=d2_embed, seeds=[0]))
