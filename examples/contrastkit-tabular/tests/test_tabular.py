"""Behaviour of the tabular plugin's components, with values."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from contrastkit.core import ConfigError, DataError, EvalContext, Samples, make_generator
from contrastkit_tabular.augmentations import FeatureCorruption, FeatureMask, GaussianNoise
from contrastkit_tabular.cli import describe
from contrastkit_tabular.encoders import MLPEncoder
from contrastkit_tabular.evaluators import RawFeatureBaseline
from contrastkit_tabular.modality import collate, prepare
from contrastkit_tabular.readers import SklearnDatasets, TableReader


def table(n: int = 12, f: int = 5) -> torch.Tensor:
    # distinct values everywhere: value = 100 * row + column
    return (100 * torch.arange(n).unsqueeze(1) + torch.arange(f).unsqueeze(0)).float()


# --------------------------------------------------------------------------- SCARF


def test_corruption_draws_each_value_from_the_same_column_of_the_batch():
    x = table()
    view = FeatureCorruption(ratio=0.6)(x, make_generator(0))
    column_of = view.long() % 100
    assert torch.equal(column_of, torch.arange(5).expand(12, 5))  # every value stays in its column
    row_of = view.long() // 100
    assert set(row_of.flatten().tolist()) <= set(range(12))  # ... and comes from a row of this batch


def test_corruption_replaces_exactly_round_ratio_times_f_features_per_row_at_most():
    x = table(n=64, f=10)
    changed = []
    g = make_generator(1)
    for _ in range(20):
        view = FeatureCorruption(ratio=0.3)(x, g)
        per_row = (view != x).sum(dim=1)
        assert int(per_row.max()) <= 3  # q = round(0.3 * 10); a donor may be the row itself
        changed.append(per_row.float().mean().item())
    assert np.mean(changed) == pytest.approx(3 * (1 - 1 / 64), abs=0.15)


def test_corruption_with_p_zero_is_the_identity_and_bad_ratio_is_refused():
    x = table()
    assert torch.equal(FeatureCorruption(ratio=0.5, p=0.0)(x, make_generator(0)), x)
    with pytest.raises(ConfigError, match="ratio must be a number in \\(0, 1\\]"):
        FeatureCorruption(ratio=0.0)


def test_noise_and_mask():
    x = torch.ones(50, 20)
    noisy = GaussianNoise(sigma=0.5)(x, make_generator(0))
    assert float((noisy - x).std()) == pytest.approx(0.5, rel=0.1)
    masked = FeatureMask(ratio=0.25)(x, make_generator(0))
    assert set(masked.unique().tolist()) == {0.0, 1.0}
    assert float((masked == 0).float().mean()) == pytest.approx(0.25, abs=0.05)
    with pytest.raises(DataError, match=r"expects a float table batch of shape \(B, F\)"):
        FeatureMask()(torch.ones(2, 3, 4), make_generator(0))


# --------------------------------------------------------------------------- encoder


def test_mlp_maps_rows_to_out_dim_and_names_the_expected_width():
    enc = MLPEncoder(in_features=5, hidden=8, out_dim=3, depth=2)
    assert enc(torch.randn(4, 5)).shape == (4, 3)
    with pytest.raises(DataError, match="expected a float batch of shape B × 5"):
        enc(torch.randn(4, 6))
    with pytest.raises(ConfigError, match="norm must be one of"):
        MLPEncoder(in_features=5, norm="group")


# --------------------------------------------------------------------------- readers and preparation


def write_table(path, n=10):
    rng = np.random.default_rng(0)
    frame = pl.DataFrame({
        "id": [f"r{i}" for i in range(n)],
        "age": rng.integers(20, 60, n),
        "income": rng.normal(1000, 100, n),
        "label": ["a", "b"] * (n // 2),
        "split": ["train"] * (n - 2) + ["test"] * 2,
    })
    frame.write_csv(path) if str(path).endswith(".csv") else frame.write_parquet(path)
    return frame


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_table_reader_reads_ids_labels_split_and_features(tmp_path, suffix):
    frame = write_table(tmp_path / f"t{suffix}")
    s = TableReader().read(str(tmp_path / f"t{suffix}"), {})
    assert s.ids == frame["id"].to_list() and s.labels == frame["label"].to_list()
    assert s.split == frame["split"].to_list()
    assert s.meta == {"in_features": 2, "feature_names": ["age", "income"]}
    np.testing.assert_allclose(s.items[:, 1], frame["income"].to_numpy(), rtol=1e-6)
    only = TableReader().read(str(tmp_path / f"t{suffix}"), {"feature_columns": ["income"]})
    assert only.meta["feature_names"] == ["income"]


def test_table_reader_errors_name_the_file_and_column(tmp_path):
    path = tmp_path / "t.csv"
    pl.DataFrame({"key": [1, 2], "x": [1.0, 2.0]}).write_csv(path)
    with pytest.raises(DataError, match=r"t.csv: no id column 'id' among the columns key, x; set data_options"):
        TableReader().read(str(path), {})
    pl.DataFrame({"id": [1, 2], "city": ["a", "b"], "x": [1.0, 2.0]}).write_csv(path)
    with pytest.raises(DataError, match=r"column 'city' holds String, not numbers"):
        TableReader().read(str(path), {})
    pl.DataFrame({"id": [1, 2], "split": ["train", "val"], "x": [1.0, 2.0]}).write_csv(path)
    with pytest.raises(DataError, match=r"row 1 \(id 2\) has split 'val'"):
        TableReader().read(str(path), {})
    with pytest.raises(ConfigError, match="unknown key\\(s\\) idcolumn"):
        TableReader().read(str(path), {"idcolumn": "id"})


def test_named_data_sets_ship_with_scikit_learn():
    reader = SklearnDatasets()
    assert set(reader.datasets()) == {"breast_cancer", "wine", "iris"}
    iris = reader.read("iris", {})
    assert len(iris) == 150 and iris.meta["in_features"] == 4
    assert set(iris.labels) == {"setosa", "versicolor", "virginica"}


def test_standardisation_is_fitted_on_training_rows_and_reused():
    train = Samples(ids=[0, 1, 2, 3], items=np.array([[0, 10], [2, 10], [4, 30], [6, 30]], dtype=np.float32))
    test = Samples(ids=[9], items=np.array([[3, 20]], dtype=np.float32))
    prepared, state = prepare(train, None, {})
    np.testing.assert_allclose(prepared.items.mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(prepared.items.std(0), 1, atol=1e-6)
    held_out, same = prepare(test, state, {})
    assert same is state
    np.testing.assert_allclose(held_out.items, [[0.0, 0.0]], atol=1e-6)  # the training mean maps to 0
    with pytest.raises(DataError, match="the rows have 3 features, but the run was trained on 2"):
        prepare(Samples(ids=[0], items=np.zeros((1, 3), np.float32)), state, {})


def test_missing_values_are_refused_or_filled_with_the_training_mean():
    s = Samples(ids=["a", "b", "c"], items=np.array([[1, 2], [np.nan, 4], [3, 6]], dtype=np.float32),
                meta={"feature_names": ["x", "y"]}, source="t.csv")
    with pytest.raises(DataError, match="t.csv: row 'b' has a missing value in column 'x'"):
        prepare(s, None, {})
    filled, state = prepare(s, None, {"missing": "mean", "standardize": False})
    assert state["mean"][0] == 2.0 and filled.items[1, 0] == 2.0


def test_collate_stacks_rows_and_refuses_an_empty_list():
    rows = [np.arange(3, dtype=np.float32), np.ones(3, np.float32)]
    batch = collate(rows)
    assert batch.dtype == torch.float32 and batch.shape == (2, 3)
    with pytest.raises(DataError, match="cannot make a batch of no rows"):
        collate([])


# --------------------------------------------------------------------------- evaluator and command


def test_raw_feature_baseline_reports_both_probes_and_the_gain():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (40, 3)), rng.normal(3, 1, (40, 3))]).astype(np.float32)
    labels = ["a"] * 40 + ["b"] * 40
    split = ["train" if i % 4 else "test" for i in range(80)]
    samples = Samples(ids=list(range(80)), items=x, labels=labels, split=split)
    ctx = EvalContext(samples=samples, embed=lambda s: np.zeros((len(s), 2), np.float32) + np.arange(2), seeds=[0])
    out = RawFeatureBaseline()(ctx)["metrics"]
    assert out["raw_accuracy"] > 0.9 and out["accuracy"] == pytest.approx(0.5)  # constant embeddings: chance
    assert out["gain"] == pytest.approx(out["accuracy"] - out["raw_accuracy"])


def test_describe_gives_column_statistics():
    stats = {c["column"]: c for c in describe(pl.DataFrame({"x": [1.0, 2.0, None], "s": ["a", "b", "a"]}))}
    assert stats["x"]["nulls"] == 1 and stats["x"]["mean"] == 1.5 and stats["x"]["max"] == 2.0
    assert stats["s"]["distinct"] == 2 and stats["s"]["rows"] == 3
