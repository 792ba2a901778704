"""The comparison of `evaluate --baseline`: fitted-normalisation random init, label fractions, the table."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from contrastkit.core.comparison import exceeds_spread, format_comparison, parse_fractions
from contrastkit.core.data import Samples
from contrastkit.core.errors import DataError
from contrastkit.core.evaluation import EvalContext, stratified_subset
from contrastkit.core.modality import Modality
from contrastkit.core.probes import LinearProbe
from contrastkit.core.runs import Run, fit_normalisation, norm_layers


def _collate(items):
    return torch.as_tensor(np.stack(items), dtype=torch.float32)


MODALITY = Modality(name="vec", collate=_collate, default_data="none")


def _encoder() -> nn.Module:
    torch.manual_seed(0)
    enc = nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Dropout(0.5), nn.Linear(5, 4),
                        nn.BatchNorm1d(4))
    enc.out_dim = 4
    return enc


def test_fit_normalisation_sets_the_data_statistics_and_nothing_else():
    enc = _encoder()
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    rng = np.random.default_rng(0)
    items = [rng.normal(3.0, 2.0, size=3).astype(np.float32) for _ in range(40)]
    assert fit_normalisation(enc, MODALITY, items, torch.device("cpu"), batch_size=64) == 2
    after = enc.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    # only the running statistics (and their counters) change; every weight and bias stays
    assert changed == {"1.running_mean", "1.running_var", "1.num_batches_tracked",
                       "5.running_mean", "5.running_var", "5.num_batches_tracked"}
    # one batch holds every item: the first layer's statistics are those of the Linear's outputs
    with torch.no_grad():
        pre = enc[0](_collate(items))
    assert torch.allclose(after["1.running_mean"], pre.mean(0), atol=1e-5)
    assert torch.allclose(after["1.running_var"], pre.var(0, unbiased=True), atol=1e-4)
    assert not enc.training and all(not m.training for m in enc.modules())  # left in eval mode
    assert enc[1].momentum == 0.1  # the layer's own momentum restored


def test_fit_normalisation_with_batches_and_a_last_batch_of_one():
    enc = _encoder()
    items = [np.full(3, float(i), dtype=np.float32) for i in range(9)]  # 9 = 2 × 4 + 1: merged into one more
    assert fit_normalisation(enc, MODALITY, items, torch.device("cpu"), batch_size=4) == 2
    assert int(enc[1].num_batches_tracked) == 2  # batches of 5 and 4, never one of a single item


def test_an_encoder_without_batchnorm_is_left_alone():
    enc = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    assert norm_layers(enc) == []
    assert fit_normalisation(enc, MODALITY, [np.ones(3, np.float32)] * 4, torch.device("cpu")) == 0
    assert all(torch.equal(before[k], v) for k, v in enc.state_dict().items())


@pytest.mark.slow
def test_random_init_fitted_differs_from_random_init_only_in_normalisation_statistics():
    """On a real encoder with BatchNorm (the points plugin's PointNet) built the way `evaluate` does."""
    from contrastkit.core.plugins import get_host

    host = get_host()
    cfg = {"plugin": "points", "encoder": {"name": "pointnet"}, "batch_size": 8, "seed": 3}
    base = Run(Path("."), cfg, {}, host.modality("points"), nn.Identity(), {}, {"in_channels": 3},
               torch.device("cpu"))
    rng = np.random.default_rng(1)
    clouds = [rng.normal(size=(64, 3)).astype(np.float32) for _ in range(12)]
    samples = Samples(ids=list(range(12)), items=clouds)
    plain = base.random_init(host, seed=3).encoder.state_dict()
    fitted = base.random_init(host, seed=3, fit_norm_on=samples).encoder.state_dict()
    stats = {k for k in plain if k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
    assert stats  # PointNet has BatchNorm layers
    for k in plain:
        if k in stats:
            continue
        assert torch.equal(plain[k], fitted[k]), k  # same random weights
    assert all(not torch.equal(plain[k], fitted[k]) for k in stats if k.endswith("running_mean"))
    assert all(float(plain[k].abs().max()) == 0.0 for k in stats if k.endswith("running_mean"))  # untouched: 0


def test_stratified_subset_is_stratified_reproducible_and_keeps_every_class():
    y = np.array(["a"] * 50 + ["b"] * 30 + ["c"] * 3)
    idx = stratified_subset(y, 0.1, seed=7)
    counts = {c: int((y[idx] == c).sum()) for c in "abc"}
    assert counts == {"a": 5, "b": 3, "c": 1}  # round(0.1 · n), at least one per class
    assert np.array_equal(idx, stratified_subset(y, 0.1, seed=7))  # same seed, same draw
    assert not np.array_equal(idx, stratified_subset(y, 0.1, seed=8))
    assert np.array_equal(stratified_subset(y, 1.0, seed=0), np.arange(len(y)))
    # labels of any type give the same draw as their text (ints and strings mixed in one data set)
    assert np.array_equal(stratified_subset(np.array([1] * 10 + [2] * 10), 0.2, 1),
                          stratified_subset(np.array(["1"] * 10 + ["2"] * 10), 0.2, 1))
    with pytest.raises(DataError, match=r"label fraction must lie in \(0, 1\]"):
        stratified_subset(y, 0.0, 0)


def test_label_fraction_draws_are_the_same_for_every_encoder():
    """Two different 'encoders' on the same data fit their probe on exactly the same training items."""
    rng = np.random.default_rng(0)
    n = 60
    labels = ["x" if i % 3 else "y" for i in range(n)]
    split = ["train" if i < 40 else "test" for i in range(n)]
    samples = Samples(ids=list(range(n)), items=[None] * n, labels=labels, split=split)
    h1, h2 = rng.normal(size=(n, 4)), rng.normal(size=(n, 6))
    seen = []
    for h in (h1, h2):
        ctx = EvalContext(samples=samples, embed=lambda _s, h=h: h, seeds=[0], label_fraction=0.25, label_seed=5)
        X_tr, y_tr, X_te, y_te = ctx.labelled_split()
        rows = [int(np.flatnonzero((h[:40] == r).all(1))[0]) for r in X_tr]
        seen.append(rows)
        assert len(X_te) == 20  # the test split is never subsampled
    assert seen[0] == seen[1]
    y_train = np.array(labels[:40])
    assert len(seen[0]) == len(stratified_subset(y_train, 0.25, 5)) == round(0.25 * 27) + round(0.25 * 13)


def test_a_probe_with_a_label_fraction_fits_on_fewer_items():
    rng = np.random.default_rng(0)
    n = 200
    y = rng.integers(0, 2, size=n)
    h = y[:, None] + rng.normal(0, 0.5, size=(n, 3))
    samples = Samples(ids=list(range(n)), items=[None] * n, labels=y.tolist(),
                      split=["train" if i < 150 else "test" for i in range(n)])
    full = LinearProbe()(EvalContext(samples=samples, embed=lambda _s: h, seeds=[0]))["metrics"]
    tiny = LinearProbe()(EvalContext(samples=samples, embed=lambda _s: h, seeds=[0], label_fraction=0.02,
                                     label_seed=0))["metrics"]
    assert full["accuracy"] > 0.8 and 0.0 <= tiny["accuracy"] <= 1.0


def test_exceeds_spread_needs_a_spread_and_non_overlapping_intervals():
    assert exceeds_spread(0.9, 0.01, 0.8, 0.02) is True
    assert exceeds_spread(0.9, 0.05, 0.85, 0.02) is False
    assert exceeds_spread(0.9, 0.0, 0.85, 0.0) is None  # a deterministic probe measures no spread
    assert exceeds_spread(float("nan"), 0.1, 0.8, 0.1) is None


def test_parse_fractions():
    assert parse_fractions("1,0.1, 0.01") == [0.01, 0.1, 1.0]
    assert parse_fractions("default") == [0.01, 0.05, 0.1, 0.25, 1.0]
    for bad in ("0", "1.5", "a,b", ""):
        with pytest.raises(DataError):
            parse_fractions(bad)


def test_text_table_says_what_undefined_means():
    result = {"rows": [{"name": "pretrained"}, {"name": "random_init"}], "spread": "std over evaluation seeds [0]",
              "table": [{"evaluator": "svm", "metric": "auroc", "protocol": "p v1",
                         "rows": {"pretrained": {"mean": None, "std": None},
                                  "random_init": {"mean": 0.5, "std": 0.0, "delta": None, "exceeds_spread": None}}}]}
    text = format_comparison(result)
    assert "nan" not in text.lower() and "undefined" in text and "null in --json" in text
