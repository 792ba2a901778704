"""Evaluators: the protocols' values on embeddings whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from contrastkit.core.data import Samples
from contrastkit.core.errors import ConfigError, DataError
from contrastkit.core.evaluation import EvalContext
from contrastkit.plugins.graphs.batch import NodeRef
from contrastkit.plugins.graphs.evaluators import GraphSVM, NodeLogReg, raw_features

from .conftest import ring


def _ctx(h: np.ndarray, labels: list, items=None, seeds=(0, 1)) -> EvalContext:
    n = len(labels)
    s = Samples(ids=list(range(n)), items=items if items is not None else [None] * n, labels=labels,
                split=["train"] * n)  # the source's split is ignored by both protocols
    return EvalContext(samples=s, embed=lambda _: h, seeds=list(seeds), options={"raw_baseline": False})


def test_graph_svm_separable_and_random():
    rng = np.random.default_rng(0)
    y = [i % 2 for i in range(60)]
    h = rng.normal(size=(60, 4)) + 5 * np.array(y)[:, None]
    m = GraphSVM().run(_ctx(h, y))
    assert m["accuracy"] == 1.0 and m["accuracy_std"] == 0.0 and m["n_items"] == 60
    noise = GraphSVM(grid=(1.0,)).run(_ctx(rng.normal(size=(60, 4)), y, seeds=(0,)))
    assert noise["accuracy"] < 0.8


def test_graph_svm_folds_shrink_to_the_smallest_class_and_unlabelled_items_are_left_out():
    rng = np.random.default_rng(1)
    y = [0] * 20 + [1] * 4 + [None] * 5
    h = rng.normal(size=(29, 3))
    h[20:24] += 10
    assert GraphSVM(grid=(1.0, 10.0)).run(_ctx(h, y, seeds=(0,)))["n_items"] == 24
    with pytest.raises(DataError):
        GraphSVM().run(_ctx(h[:21], [0] * 20 + [1]))
    with pytest.raises(ConfigError):
        GraphSVM(kernels=("poly",))


def test_node_logreg_splits_and_values():
    rng = np.random.default_rng(0)
    y = [i % 3 for i in range(300)]
    h = rng.normal(size=(300, 5)) + 4 * np.eye(3)[y] @ rng.normal(size=(3, 5))
    m = NodeLogReg().run(_ctx(h, y, seeds=(0, 1, 2)))
    assert m["accuracy"] > 0.9 and m["n_items"] == 300 and "f1_macro_std" in m
    ev = NodeLogReg(train=0.1, val=0.1)
    tr, va, te = ev._split(np.array(y), 0)
    assert (len(tr), len(va), len(te)) == (30, 30, 240) and not set(tr) & set(te)
    with pytest.raises(ConfigError):
        NodeLogReg(train=0.6, val=0.5)


def test_raw_features_are_summed_per_graph_or_taken_per_node():
    g = ring(3, features=2)
    assert np.allclose(raw_features([g]), g.x.sum(0).numpy()[None])
    assert np.allclose(raw_features([NodeRef(g, 2)]), g.x[2].numpy()[None])
    m = GraphSVM(raw_baseline=True).run(EvalContext(
        samples=Samples(ids=list(range(20)), items=[ring(3 + i % 2, features=2) for i in range(20)],
                        labels=[i % 2 for i in range(20)]),
        embed=lambda s: np.zeros((20, 2)) + torch.arange(20).numpy()[:, None] % 2, seeds=[0]))
    assert m["raw_accuracy"] == 1.0  # ring size (3 or 4 nodes) shows in the summed features
