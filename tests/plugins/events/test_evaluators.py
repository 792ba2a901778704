"""The entity evaluator and CoLES' aggregate features."""

from __future__ import annotations

import numpy as np
import pytest

from contrastkit.core.data import Samples
from contrastkit.core.evaluation import EvalContext, stratified_subset
from contrastkit.core.errors import DataError
from contrastkit.plugins.events.evaluators import AggregateBaseline, EntityProbe, aggregate_features
from contrastkit.plugins.events.modality import prepare
from contrastkit.plugins.events.readers import SyntheticReader, split_items


def test_aggregate_features_by_hand():
    # entity 0: codes [2, 3, 2], amounts [1, 2, 4], times [0, 1, 3]; entity 1: code [3], amount [10], time [5]
    items = split_items(np.array([0, 3]), np.array([0.0, 1, 3, 5]), np.array([[2], [3], [2], [3]], dtype=np.int32),
                        np.array([[1.0], [2], [4], [10]], dtype=np.float32))
    f = aggregate_features(items, {}, np.array([True, True]), top=2)
    # count, first, last, span, mean gap | sum, mean, std, min, max | per code (2 then 3): count, sum, mean
    assert f[0, :5].tolist() == [3, 0, 3, 3, 1.5]
    assert f[0, 5:10] == pytest.approx([7, 7 / 3, np.std([1, 2, 4]), 1, 4])
    assert f[0, 10:13].tolist() == [2, 5, 2.5] and f[0, 13:16].tolist() == [1, 2, 2]
    assert f[1, 10:16].tolist() == [0, 0, 0, 1, 10, 10]


def synthetic_ctx(seeds=(0,)):
    raw = SyntheticReader().read("synthetic_transactions", {"n_clients": 300, "seed": 2}).with_split()
    s, _ = prepare(raw, None, {})
    rng = np.random.default_rng(0)
    labels = np.array(s.labels)
    h = (labels[:, None] + rng.normal(0, 0.7, size=(len(s), 4))).astype(np.float32)  # informative embeddings
    return EvalContext(samples=s, embed=lambda _: h, seeds=list(seeds), meta=s.meta)


def test_entity_probe_reports_models_and_majority():
    m = EntityProbe()(synthetic_ctx())["metrics"]
    for key in ("hgb.accuracy", "hgb.auroc", "logistic.accuracy", "logistic.auroc", "majority.accuracy"):
        assert key in m and f"{key}_std" in m
    assert not any(k.startswith("aggregate_baseline") for k in m)  # the aggregates are a row of their own now
    assert m["logistic.auroc"] > 0.8 and m["logistic.accuracy"] > m["majority.accuracy"]


def test_aggregate_baseline_is_the_entity_protocol_on_aggregate_features():
    ctx = synthetic_ctx()
    m = AggregateBaseline()(ctx)["metrics"]
    assert m["hgb.auroc"] > 0.6  # the class changes the category mix: aggregates see it
    # the same numbers as the entity probe fitted on aggregate_features with the categories of the training split
    s = ctx.samples
    train = np.array(s.split) == "train"
    feats = aggregate_features(s.items, s.meta, train)
    direct = EntityProbe()(EvalContext(samples=s, embed=lambda _: feats, seeds=[0], meta=s.meta))["metrics"]
    assert m["hgb.auroc"] == pytest.approx(direct["hgb.auroc"]) and m["logistic.accuracy"] == direct["logistic.accuracy"]


def test_entity_probe_label_fraction_fits_on_a_stratified_part():
    ctx = synthetic_ctx()
    fitted = []
    probe = EntityProbe()
    real = probe._fit_all

    def spy(X_tr, y_tr, *a, **k):
        fitted.append(list(y_tr))
        return real(X_tr, y_tr, *a, **k)

    probe._fit_all = spy
    ctx.label_fraction, ctx.label_seed = 0.1, 3
    probe(ctx)
    s = ctx.samples
    y_train = np.array([str(v) for v, sp in zip(s.labels, s.split) if sp == "train"])
    assert len(fitted[0]) == len(stratified_subset(y_train, 0.1, 3))
    for cls in set(y_train):  # every class kept, about a tenth of each
        n = int((y_train == cls).sum())
        assert [str(v) for v in fitted[0]].count(cls) == max(1, round(0.1 * n))


def test_entity_probe_regression():
    ctx = synthetic_ctx()
    s = ctx.samples
    y = [float(len(it["time"])) + 0.5 for it in s.items]  # a number the aggregates know exactly
    s.meta["task"] = "regression"
    ctx.samples = Samples(s.ids, s.items, y, s.split, s.meta, s.source, s.fingerprint)
    m = AggregateBaseline()(ctx)["metrics"]
    assert m["hgb.r2"] > 0.95 and "majority.r2" in m and "ridge.mae" in m


def test_entity_probe_needs_labels():
    ctx = synthetic_ctx()
    s = ctx.samples
    ctx.samples = Samples(s.ids, s.items, None, s.split, s.meta, s.source, s.fingerprint)
    with pytest.raises(DataError, match="no labels"):
        EntityProbe()(ctx)
