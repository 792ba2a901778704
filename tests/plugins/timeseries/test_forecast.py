"""Tests of the forecasting evaluator (embeddings of the past as forecaster covariates)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from contrastkit.core.data import Samples
from contrastkit.core.errors import DataError
from contrastkit.core.evaluation import EvalContext
from contrastkit.plugins.timeseries.forecast import (
    EVALUATORS,
    ForecastEvaluator,
    covariate_frame,
    make_datasets,
    min_length,
    quiet,
    resolve_settings,
    seasonal_naive,
    smape,
    time_split,
    window_samples,
)


def airline() -> np.ndarray:
    """aeon's Airline monthly passengers (144 points), read without importing aeon."""
    spec = importlib.util.find_spec("aeon")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("aeon is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "Airline" / "Airline.csv"
    if not path.exists():
        pytest.skip(f"{path} is missing")
    y = np.loadtxt(path, delimiter=",", skiprows=1, usecols=1, dtype=np.float32)
    assert y.shape == (144,)
    return y


def last_and_mean(windows: Samples) -> np.ndarray:
    """An informative stand-in for an encoder: each window's last value and mean, per channel."""
    x = np.stack(windows.items)  # N x C x L
    return np.concatenate([x[:, :, -1], np.nanmean(x, axis=2)], axis=1).astype(np.float32)


def context_for(series: list[np.ndarray], embed=last_and_mean, seeds=(0,), **options) -> EvalContext:
    samples = Samples(ids=[f"s{i}" for i in range(len(series))], items=series,
                      meta={"in_channels": series[0].shape[0]}, source="airline-test")
    return EvalContext(samples=samples, embed=embed, seeds=list(seeds), options=options,
                       meta={"in_channels": series[0].shape[0]})


# --------------------------------------------------------------------------- split in time


def test_time_split_holds_out_the_last_fraction_and_at_least_a_horizon():
    assert time_split(144, 12, 0.2) == 144 - 29  # ceil(0.2 * 144) = 29 test steps
    assert time_split(100, 30, 0.2) == 70  # the horizon is longer than 20 %
    assert time_split(10, 1, 0.5) == 5


@pytest.mark.parametrize("horizon,context,fraction", [(12, 24, 0.2), (3, 5, 0.2), (1, 2, 0.5), (6, 6, 0.1)])
def test_min_length_is_the_shortest_series_with_one_training_and_one_test_window(horizon, context, fraction):
    n = min_length(horizon, context, fraction)

    def fits(length: int) -> bool:
        split = time_split(length, horizon, fraction)
        embedded_train_rows = split - (context - 1)  # the first context-1 steps have no full window
        return embedded_train_rows >= context + horizon and length - split >= horizon

    assert fits(n) and not fits(n - 1)


def test_windows_hold_the_past_up_to_and_including_their_id():
    x = np.arange(20, dtype=np.float32).reshape(2, 10)
    w = window_samples(x, context=4)
    assert w.ids == list(range(3, 10))
    for t, item in zip(w.ids, w.items):
        assert item.shape == (2, 4)
        np.testing.assert_array_equal(item, x[:, t - 3 : t + 1])


def test_pca_normaliser_and_scalers_never_see_test_steps():
    y = airline()
    settings = resolve_settings({}, 144)
    assert (settings.horizon, settings.context) == (12, 24)
    split = time_split(144, settings.horizon, settings.test_fraction)
    changed = y.copy()
    changed[split:] = changed[split:] * 7.0 + 1000.0  # a different test period

    built = []
    with quiet():
        for series in (y, changed):
            frame, test_start, pca = covariate_frame([series[None]], last_and_mean, settings)
            train, test = make_datasets(frame, test_start, settings, [c for c in frame if c.startswith("emb_")])
            built.append((frame, test_start, pca, train, test))
    (f1, s1, p1, tr1, te1), (f2, s2, p2, tr2, te2) = built

    assert s1 == s2
    # PCA fitted on windows that end before the split only
    np.testing.assert_array_equal(p1.mean_, p2.mean_)
    np.testing.assert_array_equal(p1.components_, p2.components_)
    # target normaliser and covariate scalers fitted on training rows only
    np.testing.assert_array_equal(tr1.target_normalizer.norm_.to_numpy(), tr2.target_normalizer.norm_.to_numpy())
    scalers1, scalers2 = tr1.get_parameters()["scalers"], tr2.get_parameters()["scalers"]
    emb = sorted(c for c in scalers1 if c.startswith("emb_"))
    assert emb, "the covariates are scaled"
    for name in emb:
        np.testing.assert_array_equal(scalers1[name].mean_, scalers2[name].mean_)
        np.testing.assert_array_equal(scalers1[name].scale_, scalers2[name].scale_)
    # the test set reuses the training set's fitted normaliser, it does not refit on the test rows
    np.testing.assert_array_equal(te2.target_normalizer.norm_.to_numpy(), tr2.target_normalizer.norm_.to_numpy())
    # ... while the test rows do differ (the change was seen where it should be)
    train_rows = f1["time_idx"] < s1
    assert f1[train_rows].equals(f2[train_rows])
    assert not np.allclose(f1.loc[~train_rows, "target"], f2.loc[~train_rows, "target"])

    # training windows predict training steps only; test windows start in the test period
    x, _ = next(iter(tr1.to_dataloader(train=False, batch_size=1000)))
    assert int(x["decoder_time_idx"].max()) < s1
    x, _ = next(iter(te1.to_dataloader(train=False, batch_size=1000)))
    assert int(x["decoder_time_idx"].min()) == s1
    assert len(te1) == 144 - split - settings.horizon + 1  # every origin whose horizon fits


def test_seasonal_naive_and_smape():
    enc = np.arange(24, dtype=float)[None, :]  # one window, past values 0..23
    np.testing.assert_array_equal(seasonal_naive(enc, 3, 1), [[23, 23, 23]])
    np.testing.assert_array_equal(seasonal_naive(enc, 14, 12)[0, :3], [12, 13, 14])
    np.testing.assert_array_equal(seasonal_naive(enc, 14, 12)[0, 12:], [12, 13])
    assert smape(np.array([1.0, 0.0]), np.array([1.0, 0.0])) == 0.0
    assert math.isclose(smape(np.array([2.0]), np.array([1.0])), 100 * 2 / 3)


# --------------------------------------------------------------------------- end to end


def test_forecast_runs_end_to_end_on_airline(capfd):
    y = airline()
    result = ForecastEvaluator()(context_for([y[None]], max_epochs=3, season=12))
    assert result["protocol"] == "forecast-with-embeddings" and result["protocol_version"] == "1"
    m = result["metrics"]
    for key in ("mae_without", "mae_without_std", "mae_with", "mae_with_std", "mae_ratio", "naive_mae"):
        assert key in m and math.isfinite(m[key]), key
    assert m["mae_without"] > 0 and m["mae_with"] > 0 and m["naive_mae"] > 0
    assert m["mae_without_std"] == 0.0  # one seed
    assert m["mae_ratio"] == pytest.approx(m["mae_with"] / m["mae_without"])
    assert m["n_test_windows"] == 144 - time_split(144, 12, 0.2) - 12 + 1
    # MAE in passengers: the forecasts are in the data's scale, not the normaliser's
    assert 1.0 < m["mae_without"] < 400.0
    # lightning's banners stay out of the CLI's output
    out, err = capfd.readouterr()
    assert "GPU available" not in out + err and "max_epochs" not in out + err


def test_forecast_uses_every_long_enough_multichannel_series():
    y = airline()
    long = np.stack([y, np.roll(y, 1)])  # 2 channels, target is channel 0
    other = long[:, :120] * 0.5
    too_short = long[:, :30]
    m = ForecastEvaluator().run(context_for([long, other, too_short], max_epochs=1))
    assert m["n_series"] == 2.0
    assert math.isfinite(m["mae_with"]) and math.isfinite(m["mae_without"])


# --------------------------------------------------------------------------- errors


def test_too_short_series_is_a_data_error():
    y = airline()
    with pytest.raises(DataError, match="needs at least"):
        ForecastEvaluator().run(context_for([y[None, :40]], context=24, horizon=12))


def test_channel_mismatch_is_a_data_error_saying_what_was_expected():
    y = airline()
    ctx = context_for([y[None]])
    ctx.meta["in_channels"] = 3
    with pytest.raises(DataError, match="3 channel"):
        ForecastEvaluator().run(ctx)


def test_registered_under_its_name():
    assert EVALUATORS == {"forecast": ForecastEvaluator}
    assert ForecastEvaluator.requires == "series"
