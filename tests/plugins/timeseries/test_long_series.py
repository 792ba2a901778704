"""Long series train and embed with bounded memory: the crop cap, its note, chunked inference; fixed splits.

Also: every timeseries evaluator honours a source's train/test split and the label fraction.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from contrastkit.core.data import TEST, TRAIN, Samples
from contrastkit.core.errors import ConfigError, DataError
from contrastkit.core.evaluation import EvalContext
from contrastkit.plugins.timeseries import encoders
from contrastkit.plugins.timeseries.augmentations import ContextualCrop, crop_cap
from contrastkit.plugins.timeseries.encoders import DilatedConvEncoder
from contrastkit.plugins.timeseries.modality import DEFAULTS, long_series_note


def test_crop_cap_values():
    assert crop_cap(8, 2) == 1024  # 16,384 // 16
    assert crop_cap(2, 2) == 3000  # 4,096 capped at TS2Vec's max_train_length
    assert crop_cap(64, 2) == 512  # 128 floored at 512
    assert crop_cap(8, 2, step_budget=40_000) == 2500
    assert ContextualCrop().cap(8, 2) == 1024
    assert ContextualCrop(max_length=700).cap(8, 2) == 700
    assert ContextualCrop(max_length="none").cap(8, 2) is None
    with pytest.raises(ConfigError, match="max_length"):
        ContextualCrop(max_length="long")
    with pytest.raises(ConfigError, match="step_budget"):
        ContextualCrop(step_budget=0)


def test_crops_of_long_series_stay_within_the_cap_and_short_ones_are_unchanged():
    g = torch.Generator().manual_seed(0)
    long = torch.randn(8, 1, 2000)
    views, starts, common = ContextualCrop().crops(long, 2, g)
    assert max(v.shape[-1] for v in views) <= 1024 and common >= 512  # min_overlap 0.5 of the 1024 window
    # the two views still share their common segment
    torch.testing.assert_close(views[0][..., starts[0]:starts[0] + common], views[1][..., starts[1]:starts[1] + common])
    # the windows land anywhere in each series, not only at its start
    with torch.no_grad():
        firsts = [int((long[i, 0] == views[0][i, 0, 0]).nonzero()[0]) for i in range(8)]
    assert max(firsts) > 200
    # series no longer than the cap: the same draws and crops as with no cap at all
    short = torch.randn(8, 1, 150)
    a = ContextualCrop().crops(short, 2, torch.Generator().manual_seed(1))
    b = ContextualCrop(max_length=None).crops(short, 2, torch.Generator().manual_seed(1))
    assert a[1:] == b[1:] and all(torch.equal(x, y) for x, y in zip(a[0], b[0]))


def test_long_series_note_only_when_the_cap_binds():
    cfg = {**DEFAULTS, "views": 2}
    text = long_series_note(2000, 100, cfg)
    assert "up to 2000 time steps" in text and "at most 1024 steps" in text and "joint_view.max_length" in text
    assert long_series_note(150, 50, cfg) is None  # GunPoint: nothing changes
    fixed = {**cfg, "joint_view": {"name": "contextual_crop", "max_length": 1500}}
    assert "at most 1500 steps" in long_series_note(2000, 100, fixed)
    # a training split smaller than the batch: the batch core will use (max(2, n))
    assert "at most 2730 steps" in long_series_note(4000, 3, cfg)  # 16,384 // (3 series × 2 views)
    assert long_series_note(2000, 100, {**cfg, "joint_view": {"name": "contextual_crop", "max_length": "none"}}) is None


def test_inference_runs_in_chunks_with_the_same_result(monkeypatch):
    torch.manual_seed(0)
    enc = DilatedConvEncoder(2, hidden=8, out_dim=16, depth=2).eval()
    x = torch.randn(10, 2, 300)
    with torch.no_grad():
        whole = enc(x)
    seen = []
    forward = enc.forward_timesteps
    monkeypatch.setattr(enc, "forward_timesteps", lambda b: seen.append(b.shape[0]) or forward(b))
    monkeypatch.setattr(encoders, "INFERENCE_STEPS", 1000)  # 3 rows of 300 steps per chunk
    with torch.no_grad():
        chunked = enc(x)
    assert seen == [3, 3, 3, 1]
    torch.testing.assert_close(chunked, whole, rtol=1e-5, atol=1e-6)
    seen.clear()
    enc(x)  # with gradients (training): one pass, the batch the user asked for
    assert seen == [10]


def _long_file(path, n=10, length=1500, n_test=2, seed=0):
    rng = np.random.default_rng(seed)
    rows = {"id": [], "time": [], "value": [], "label": [], "split": []}
    t = np.arange(length)
    for i in range(n):
        period = 40 if i % 2 else 90
        rows["id"] += [f"s{i:02d}"] * length
        rows["time"] += t.tolist()
        rows["value"] += (np.sin(2 * np.pi * t / period + rng.uniform(0, 6)) + 0.2 * rng.standard_normal(length)).tolist()
        rows["label"] += ["ab"[i % 2]] * length
        rows["split"] += [TEST if i >= n - n_test else TRAIN] * length
    pl.DataFrame(rows).write_parquet(path)
    return path


@pytest.mark.slow
def test_long_series_pretrain_notes_the_cap_trains_and_embeds(cli, tmp_path):
    data = _long_file(tmp_path / "long.parquet")
    cfg = tmp_path / "recipe.toml"
    cfg.write_text('[encoder]\nname = "dilated_conv"\nhidden = 8\nout_dim = 16\ndepth = 2\n[head]\nout_dim = 8\n')
    run = tmp_path / "run"
    r = cli("pretrain", "timeseries", "--data", data, "--config", cfg, "--out", run, "--epochs", "1", "--no-progress")
    assert r.code == 0, r
    assert "note: the training series have up to 1500 time steps: contextual crops are drawn from windows of at " \
           "most 1024 steps" in r.err
    assert (run / "checkpoints").is_dir()
    out = tmp_path / "emb.parquet"
    r = cli("embed", run, "--data", data, "--out", out)
    assert r.code == 0, r
    frame = pl.read_parquet(out)
    assert frame.height == 10 and len(frame["embedding"][0]) == 16


# --------------------------------------------------------------------------- fixed splits and label fractions


def _spy_probes(monkeypatch):
    from contrastkit.core import probes

    seen = []
    for cls in (probes.SVMProbe, probes.LinearProbe, probes.KNNProbe):
        original = cls.fit_score

        def spy(self, X_tr, y_tr, X_te, y_te, seed, _original=original):
            seen.append((self.name, len(y_tr), len(y_te)))
            return _original(self, X_tr, y_tr, X_te, y_te, seed)

        monkeypatch.setattr(cls, "fit_score", spy)
    return seen


def _summary(samples: Samples) -> np.ndarray:
    """A stand-in encoder: mean, std, min and max of each series."""
    return np.stack([[np.nanmean(x), np.nanstd(x), np.nanmin(x), np.nanmax(x)] for x in samples.items]).astype(np.float32)


def _run_all(ctx, registry):
    from contrastkit.core.evaluation import run_evaluators

    return run_evaluators(registry, "timeseries", ctx, ["svm", "linear", "knn", "minirocket"])


def test_a_split_column_is_honoured_by_every_evaluator(monkeypatch, tmp_path):
    from contrastkit.core.data import hash_split
    from contrastkit.core.plugins import get_host
    from contrastkit.core.sources import read_source
    from contrastkit.plugins.timeseries import minirocket

    n = 24
    path = tmp_path / "split.parquet"
    rows = {"id": [], "time": [], "value": [], "label": [], "split": []}
    rng = np.random.default_rng(0)
    ids = [f"x{i}" for i in range(n)]
    # the file's split is the opposite of the hash split for most ids: a hash split would show
    split = {sid: (TRAIN if hash_split(sid) == TEST or i % 3 else TEST) for i, sid in enumerate(ids)}
    for i, sid in enumerate(ids):
        rows["id"] += [sid] * 20
        rows["time"] += list(range(20))
        rows["value"] += (rng.standard_normal(20) + (i % 2)).tolist()
        rows["label"] += [str(i % 2)] * 20
        rows["split"] += [split[sid]] * 20
    pl.DataFrame(rows).write_parquet(path)
    host = get_host()
    samples = read_source(host.registry, "timeseries", str(path), {}).with_split()
    assert samples.split == [split[s] for s in samples.ids]
    n_train = sum(v == TRAIN for v in split.values())
    assert n_train != sum(hash_split(s) == TRAIN for s in ids)

    fitted = []
    original = minirocket.MiniRocket.fit
    monkeypatch.setattr(minirocket.MiniRocket, "fit", lambda self, items: fitted.append(len(items)) or original(self, items))
    seen = _spy_probes(monkeypatch)
    ctx = EvalContext(samples=samples, embed=_summary, seeds=[0])
    _run_all(ctx, host.registry)
    assert sorted(seen) == sorted([(p, n_train, n - n_train) for p in ("svm", "linear", "knn")] * 2)  # encoder + minirocket
    assert fitted == [n_train]


def test_the_ucr_train_test_files_and_the_label_fraction_are_honoured(monkeypatch):
    from contrastkit.core.evaluation import stratified_subset
    from contrastkit.core.plugins import get_host
    from contrastkit.plugins.timeseries.readers import TsReader

    try:
        s = TsReader().read("ItalyPowerDemand")
    except DataError:  # pragma: no cover
        pytest.skip("ItalyPowerDemand is not installed")
    host = get_host()
    seen = _spy_probes(monkeypatch)
    _run_all(EvalContext(samples=s, embed=_summary, seeds=[0]), host.registry)
    assert set(seen) == {(p, 67, 1029) for p in ("svm", "linear", "knn")}
    seen.clear()
    y_train = [l for l, p in zip(s.labels, s.split) if p == TRAIN]
    k = len(stratified_subset(y_train, 0.25, 3))
    counts = sorted(np.unique(y_train, return_counts=True)[1].tolist())
    assert counts == [33, 34] and k == 16  # round(0.25 · 33) + round(0.25 · 34) = 8 + 8 (8.5: half to even)
    _run_all(EvalContext(samples=s, embed=_summary, seeds=[0], label_fraction=0.25, label_seed=3), host.registry)
    assert set(seen) == {(p, k, 1029) for p in ("svm", "linear", "knn")} and len(seen) == 6


def test_forecast_fits_no_labels():
    from contrastkit.plugins.timeseries.forecast import ForecastEvaluator
    from contrastkit.plugins.timeseries.minirocket import MiniRocketBaseline

    assert ForecastEvaluator.label_efficiency is False
    assert MiniRocketBaseline.label_efficiency is True and MiniRocketBaseline.uses_encoder is False


def test_a_missing_split_value_is_refused_in_one_sentence(tmp_path):
    from contrastkit.plugins.timeseries.readers import read_long

    path = tmp_path / "s.parquet"
    pl.DataFrame({"id": [1, 1, 2, 2], "time": [0, 1, 0, 1], "value": [0.0, 1.0, 2.0, 3.0],
                  "split": ["train", "train", None, None]}).write_parquet(path)
    with pytest.raises(DataError) as err:
        read_long(path)
    assert str(err.value) == "s.parquet: id 2 has no value in column 'split'; expected 'train' or 'test'."
