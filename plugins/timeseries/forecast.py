"""Forecasting with the frozen encoder's embeddings as covariates.

The question this evaluator answers: *do the pretrained encoder's embeddings
of the recent past help a forecaster?*  It trains the same forecaster twice on
the same rows — once on the target's own history, once with the embeddings of
the past window added as time-varying covariates — and compares their error
on a held-out period at the end of each series.

Protocol (``forecast-with-embeddings``, version 1):

1. **Split in time first.**  For a series of length ``T`` the last
   ``max(ceil(test_fraction * T), horizon)`` steps are the test period
   (:func:`time_split`).  Nothing is fitted before this split is made.
2. **Embeddings of the past only.**  For every time ``t`` the window
   ``x[:, t - context + 1 : t + 1]`` (the past up to and including ``t``) is
   embedded by the frozen encoder.  A PCA is fitted on the embeddings of
   windows that end in the training period only, and then applied to all of
   them (:func:`fit_covariates`); its ``pca_dims`` components become the
   covariates ``emb_0 … emb_k`` at time ``t``.
3. **Forecaster fitted on training steps only.**  A
   :class:`pytorch_forecasting.TimeSeriesDataSet` is built from the training
   rows; its target normaliser (a per-series ``GroupNormalizer``) and the
   covariate scalers are fitted there and reused, unchanged, for the test
   windows.  The forecaster is N-HiTS (Challu et al., *N-HiTS: Neural
   Hierarchical Interpolation for Time Series Forecasting*, AAAI 2023), an MLP
   model that is fast on CPU and takes past-only ("time-varying unknown")
   covariates in its encoder.
4. **Rolling-origin test.**  Every forecast origin whose full horizon lies in
   the test period is scored; the encoder part of a test window may reach back
   into training steps (that is the observed past at forecast time).
5. **Mean ± std over seeds.**  Model initialisation and batch order are drawn
   from each seed; both variants see the same seed.

What this evaluator cannot control: the encoder must not have been
pretrained on the test period, and the run's preprocessing (e.g. a
normalisation fitted per series over its whole length) must not have been
fitted on it either.  For a forecasting data set the pretraining side should
cut every series at :func:`time_split` (same ``horizon`` and
``test_fraction``) before it trains or fits anything.

Series shorter than :func:`min_length` are left out (``n_series`` counts
those used); a :class:`DataError` is raised when none is long enough, or when
the series' channel count differs from the encoder's ``in_channels``.

Metrics: ``mae_without``/``mae_with`` (and ``_std``), ``mae_ratio`` (with /
without; below 1 means the embeddings help), the same for sMAPE, and
``naive_mae``/``naive_smape`` of a seasonal-naive forecast (last value when
``season`` is 1) on exactly the same test windows, for scale.

Options (``ctx.options``): ``horizon``, ``context``, ``test_fraction``,
``max_epochs``, ``pca_dims``, ``target_channel`` (0), ``season`` (1, or
``ctx.meta["season"]``), ``hidden_size`` (32), ``batch_size`` (16),
``learning_rate`` (1e-2), ``accelerator`` ("cpu"), ``threads`` (1, torch
threads while the forecaster trains).
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from contrastkit.core import ConfigError, DataError, EvalContext, Evaluator, Samples, mean_std

__all__ = [
    "EVALUATORS",
    "ForecastEvaluator",
    "ForecastSettings",
    "build_frame",
    "covariate_frame",
    "fit_covariates",
    "fit_forecaster",
    "make_datasets",
    "min_length",
    "predict",
    "quiet",
    "resolve_settings",
    "seasonal_naive",
    "smape",
    "time_split",
    "torch_threads",
    "window_samples",
]

_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning_fabric",
            "pytorch_forecasting")


# --------------------------------------------------------------------------- settings and split


@dataclass(frozen=True)
class ForecastSettings:
    """The evaluator's resolved options (see the module docstring)."""

    horizon: int
    context: int
    test_fraction: float = 0.2
    max_epochs: int = 30
    pca_dims: int = 4
    target_channel: int = 0
    season: int = 1
    hidden_size: int = 32
    batch_size: int = 16
    learning_rate: float = 1e-2
    accelerator: str = "cpu"
    threads: int = 1


def _int_option(options: dict[str, Any], name: str, default: int, low: int = 1) -> int:
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) and not (
        isinstance(value, float) and value.is_integer()
    ):
        raise ConfigError(f"forecast option {name}={value!r} must be an integer >= {low}.")
    value = int(value)
    if value < low:
        raise ConfigError(f"forecast option {name}={value} must be an integer >= {low}.")
    return value


def resolve_settings(options: dict[str, Any], length: int, meta: dict[str, Any] | None = None) -> ForecastSettings:
    """Fill the defaults that depend on the (longest) series length ``length``.

    ``horizon`` defaults to ``min(12, max(1, length // 10))`` and ``context``
    (the encoder window, also the forecaster's look-back) to
    ``min(24, max(2, length // 6))``.
    """
    meta = meta or {}
    horizon = _int_option(options, "horizon", min(12, max(1, length // 10)))
    context = _int_option(options, "context", min(24, max(2, length // 6)), low=2)
    test_fraction = options.get("test_fraction", 0.2)
    if not isinstance(test_fraction, (int, float)) or not 0.0 < float(test_fraction) < 1.0:
        raise ConfigError(f"forecast option test_fraction={test_fraction!r} must be a number between 0 and 1.")
    lr = options.get("learning_rate", 1e-2)
    if not isinstance(lr, (int, float)) or lr <= 0:
        raise ConfigError(f"forecast option learning_rate={lr!r} must be a positive number.")
    return ForecastSettings(
        horizon=horizon,
        context=context,
        test_fraction=float(test_fraction),
        max_epochs=_int_option(options, "max_epochs", 30),
        pca_dims=_int_option(options, "pca_dims", 4),
        target_channel=_int_option(options, "target_channel", 0, low=0),
        season=_int_option(options, "season", int(meta.get("season", 1) or 1)),
        hidden_size=_int_option(options, "hidden_size", 32),
        batch_size=_int_option(options, "batch_size", 16),
        learning_rate=float(lr),
        accelerator=str(options.get("accelerator", "cpu")),
        threads=_int_option(options, "threads", 1),
    )


def time_split(length: int, horizon: int, test_fraction: float = 0.2) -> int:
    """Index of the first test time step of a series of ``length`` steps.

    The test period is the last ``max(ceil(test_fraction * length), horizon)``
    steps; steps ``0 … split - 1`` are training steps, ``split … length - 1``
    test steps.

    >>> time_split(144, 12, 0.2)
    115
    """
    n_test = max(int(math.ceil(test_fraction * length)), horizon)
    return length - n_test


def min_length(horizon: int, context: int, test_fraction: float = 0.2) -> int:
    """Shortest series the evaluator accepts.

    The first ``context - 1`` steps have no full window to embed; after them
    the training period must hold at least one forecaster window
    (``context + horizon`` steps) and the test period at least one horizon.
    """
    need_train = (context - 1) + context + horizon
    length = need_train + horizon
    while time_split(length, horizon, test_fraction) < need_train:
        length += 1
    return length


# --------------------------------------------------------------------------- embeddings as covariates


def window_samples(series: np.ndarray, context: int, like: Samples | None = None) -> Samples:
    """Samples of the windows ``series[:, t - context + 1 : t + 1]`` for ``t = context - 1 … T - 1``.

    The id of each window is ``t``, the last (most recent) step it contains.
    ``like`` provides ``meta`` and ``source`` (what the encoder is built from).
    """
    T = series.shape[1]
    times = list(range(context - 1, T))
    items = [np.ascontiguousarray(series[:, t - context + 1 : t + 1], dtype=np.float32) for t in times]
    meta = dict(like.meta) if like is not None else {}
    source = f"{like.source} (windows of {context})" if like is not None and like.source else f"windows of {context}"
    return Samples(ids=times, items=items, meta=meta, source=source)


def fit_covariates(
    embeddings: Sequence[np.ndarray],
    times: Sequence[np.ndarray],
    splits: Sequence[int],
    dims: int,
) -> tuple[list[np.ndarray], Any]:
    """Fit a PCA on the embeddings of training windows only; transform all.

    ``embeddings[i]`` is the (N_i × D) embedding of series i's windows,
    ``times[i]`` their end times and ``splits[i]`` the series' first test step.
    Only windows with ``time < split`` (they end in the training period, so
    they contain training steps only) enter the fit.  Returns the transformed
    covariates per series and the fitted PCA.
    """
    from sklearn.decomposition import PCA

    if not all(np.isfinite(h).all() for h in embeddings):
        raise DataError("the encoder returned non-finite embeddings for some windows; expected finite numbers.")
    train = np.concatenate([h[np.asarray(t) < s] for h, t, s in zip(embeddings, times, splits)], axis=0)
    train = train.astype(np.float64)
    k = max(1, min(dims, train.shape[1], train.shape[0] - 1))
    pca = PCA(n_components=k, svd_solver="full").fit(train)
    return [pca.transform(h.astype(np.float64)).astype(np.float32) for h in embeddings], pca


def build_frame(
    targets: Sequence[np.ndarray],
    times: Sequence[np.ndarray],
    covariates: Sequence[np.ndarray],
    splits: Sequence[int],
) -> tuple[Any, int]:
    """Long pandas frame (``time_idx``, ``series``, ``target``, ``emb_*``) and the common first test index.

    Each series' time index is shifted so that its first test step falls on
    the same ``time_idx`` for every series; rows start at the first embedded
    step, so both variants use exactly the same rows.
    """
    import pandas as pd

    offset = max(splits)
    parts = []
    for i, (y, t, z, s) in enumerate(zip(targets, times, covariates, splits)):
        t = np.asarray(t)
        part = {"time_idx": (t - s + offset).astype(np.int64), "series": str(i), "target": y[t].astype(np.float32)}
        for j in range(z.shape[1]):
            part[f"emb_{j}"] = z[:, j]
        parts.append(pd.DataFrame(part))
    frame = pd.concat(parts, ignore_index=True)
    frame["series"] = frame["series"].astype("category")
    return frame, offset


def covariate_frame(
    series: Sequence[np.ndarray],
    embed: Callable[[Samples], np.ndarray],
    settings: ForecastSettings,
    like: Samples | None = None,
) -> tuple[Any, int, Any]:
    """Steps 1-2 of the protocol: split each series in time, embed its past windows, reduce by PCA.

    Returns the long frame of :func:`build_frame`, the common first test
    ``time_idx`` and the PCA, which was fitted on windows ending in the
    training period only.
    """
    source = (like.source if like is not None else "") or "the data"
    splits = [time_split(a.shape[1], settings.horizon, settings.test_fraction) for a in series]
    embeddings, times = [], []
    for a in series:
        windows = window_samples(a, settings.context, like=like)
        h = np.asarray(embed(windows), dtype=np.float32)
        if h.ndim != 2 or h.shape[0] != len(windows):
            raise DataError(
                f"{source}: the encoder returned embeddings of shape {h.shape} for {len(windows)} windows; "
                "expected one row per window."
            )
        embeddings.append(h)
        times.append(np.asarray(windows.ids))
    covariates, pca = fit_covariates(embeddings, times, splits, settings.pca_dims)
    targets = [a[settings.target_channel] for a in series]
    frame, test_start = build_frame(targets, times, covariates, splits)
    return frame, test_start, pca


# --------------------------------------------------------------------------- the forecaster


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence lightning's and pytorch-forecasting's logging and warnings inside the block."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # imported first: importing lightning sets its loggers' level itself
        import lightning.pytorch  # noqa: F401
        import pytorch_forecasting  # noqa: F401
    saved = {}
    for name in _LOGGERS:
        log = logging.getLogger(name)
        saved[name] = log.level
        log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` intra-op torch threads, then restore the previous number.

    The forecaster is tiny: one thread is as fast as several on an idle
    machine and an order of magnitude faster on a busy one (threads spin
    waiting for each other on every small matrix product).
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def make_datasets(frame: Any, test_start: int, settings: ForecastSettings, covariates: list[str]) -> tuple[Any, Any]:
    """Training and test :class:`TimeSeriesDataSet`.

    The training set (and with it the target normaliser and covariate scalers)
    is built from rows with ``time_idx < test_start`` only; the test set reuses
    its fitted parameters and holds every window whose prediction starts at or
    after ``test_start`` with its full horizon inside the data.
    """
    from pytorch_forecasting import TimeSeriesDataSet
    from pytorch_forecasting.data import GroupNormalizer

    train = TimeSeriesDataSet(
        frame[frame["time_idx"] < test_start],
        time_idx="time_idx",
        target="target",
        group_ids=["series"],
        min_encoder_length=settings.context,
        max_encoder_length=settings.context,
        min_prediction_length=settings.horizon,
        max_prediction_length=settings.horizon,
        time_varying_unknown_reals=["target", *covariates],
        target_normalizer=GroupNormalizer(groups=["series"]),
        add_relative_time_idx=False,
        add_target_scales=False,
        add_encoder_length=False,
        allow_missing_timesteps=False,
    )
    test = TimeSeriesDataSet.from_dataset(train, frame, predict=False, stop_randomization=True,
                                          min_prediction_idx=test_start)
    return train, test


def fit_forecaster(train: Any, settings: ForecastSettings, seed: int) -> Any:
    """Train N-HiTS on the training set with the given seed; returns the model in eval mode."""
    import lightning.pytorch as pl
    from pytorch_forecasting.metrics import MAE
    from pytorch_forecasting.models import NHiTS
    from torch import nn

    pl.seed_everything(seed, workers=True, verbose=False)
    model = NHiTS.from_dataset(
        train,
        hidden_size=settings.hidden_size,
        learning_rate=settings.learning_rate,
        loss=MAE(),
        log_interval=-1,
        log_val_interval=-1,
        logging_metrics=nn.ModuleList([]),  # the default metrics, computed every step, cost ~5x the training
    )
    loader = train.to_dataloader(train=True, batch_size=min(settings.batch_size, len(train)), num_workers=0)
    trainer = pl.Trainer(
        accelerator=settings.accelerator,
        devices=1,
        max_epochs=settings.max_epochs,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        logger=False,
        gradient_clip_val=0.1,
        # not deterministic=True: Lightning would switch torch's deterministic mode on for the whole
        # process and leave it on; on CPU these kernels are reproducible for a given seed anyway.
    )
    trainer.fit(model, train_dataloaders=loader)
    return model.eval()


def predict(model: Any, test: Any, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(predictions, truth, encoder targets) on the test windows, in the original scale."""
    import torch

    loader = test.to_dataloader(train=False, batch_size=batch_size, num_workers=0)
    preds, ys, encs = [], [], []
    device = next(model.parameters()).device
    with torch.no_grad():
        for x, (y, _) in loader:
            x = {k: v.to(device) if torch.is_tensor(v) else v for k, v in x.items()}
            out = model(x)
            preds.append(model.to_prediction(out).cpu().numpy())
            ys.append(y.cpu().numpy())
            encs.append(x["encoder_target"].cpu().numpy())
    return np.concatenate(preds), np.concatenate(ys), np.concatenate(encs)


def seasonal_naive(encoder_target: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """Seasonal-naive forecast from each window's past: ŷ[h] = y[o + h - m⌈(h+1)/m⌉] (last value when m = 1)."""
    L = encoder_target.shape[1]
    h = np.arange(horizon)
    idx = L + h - season * np.ceil((h + 1) / season).astype(int)
    return encoder_target[:, idx]


def mae(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.abs(pred - y)))


def smape(pred: np.ndarray, y: np.ndarray) -> float:
    """Symmetric MAPE in percent (0 … 200); terms where both are 0 count as 0."""
    den = np.abs(pred) + np.abs(y)
    ratio = np.divide(2.0 * np.abs(pred - y), den, out=np.zeros_like(den, dtype=np.float64), where=den > 0)
    return float(100.0 * np.mean(ratio))


# --------------------------------------------------------------------------- the evaluator


class ForecastEvaluator(Evaluator):
    """Does a forecaster get better when it sees the frozen encoder's embeddings of the past?

    See the module docstring for the protocol.  Needs one or more long series
    (items C × T), not labels.
    """

    name = "forecast"
    protocol = "forecast-with-embeddings"
    version = "1"
    requires = "series"
    label_efficiency = False  # fits on the series' own future values, never on labels
    description = "N-HiTS forecast of channel 0 with vs without PCA-reduced embeddings of the past window (MAE)."

    def run(self, ctx: EvalContext) -> dict[str, float]:
        series = self._series(ctx)
        settings = resolve_settings(ctx.options, max(s.shape[1] for _, s in series), ctx.meta)
        source = ctx.samples.source or "the data"
        need = min_length(settings.horizon, settings.context, settings.test_fraction)
        usable = [(sid, s) for sid, s in series if s.shape[1] >= need]
        if not usable:
            longest = max(s.shape[1] for _, s in series)
            raise DataError(
                f"{source}: the longest series has {longest} time steps, but the forecast evaluator needs at least "
                f"{need} (context {settings.context}, horizon {settings.horizon}, test fraction "
                f"{settings.test_fraction:g}); pass a smaller context/horizon or a longer series."
            )
        if settings.target_channel >= usable[0][1].shape[0]:
            raise ConfigError(
                f"forecast option target_channel={settings.target_channel} but {source} has "
                f"{usable[0][1].shape[0]} channel(s)."
            )

        # 1.-2. split in time, embed the past windows, PCA fitted on training windows only
        frame, test_start, _ = covariate_frame([a for _, a in usable], ctx.embed, settings, like=ctx.samples)
        emb_cols = [c for c in frame.columns if c.startswith("emb_")]

        # 3./4. same rows, same seeds, without and with the covariates
        results: dict[str, list[float]] = {k: [] for k in ("mae_without", "mae_with", "smape_without", "smape_with")}
        naive: tuple[float, float] | None = None
        with quiet(), torch_threads(settings.threads):
            variants = {"without": make_datasets(frame, test_start, settings, []),
                        "with": make_datasets(frame, test_start, settings, emb_cols)}
            if len(variants["with"][1]) == 0:  # pragma: no cover - guaranteed by min_length
                raise DataError(f"{source}: no forecast window fits in the test period.")
            for seed in ctx.seeds or [0]:
                for variant, (train, test) in variants.items():
                    model = fit_forecaster(train, settings, seed)
                    pred, y, enc = predict(model, test)
                    results[f"mae_{variant}"].append(mae(pred, y))
                    results[f"smape_{variant}"].append(smape(pred, y))
                    if naive is None:
                        base = seasonal_naive(enc, settings.horizon, min(settings.season, settings.context))
                        naive = (mae(base, y), smape(base, y))

        out: dict[str, float] = {}
        for key, values in results.items():
            out[key], out[f"{key}_std"] = mean_std(values)
        out["mae_ratio"] = out["mae_with"] / out["mae_without"] if out["mae_without"] > 0 else float("nan")
        out["naive_mae"], out["naive_smape"] = naive if naive is not None else (float("nan"), float("nan"))
        out["n_series"] = float(len(usable))
        out["n_test_windows"] = float(len(variants["with"][1]))
        out["horizon"] = float(settings.horizon)
        out["context"] = float(settings.context)
        return out

    @staticmethod
    def _series(ctx: EvalContext) -> list[tuple[Any, np.ndarray]]:
        """The items as float32 (C, T) arrays, trailing missing steps cut, channels checked."""
        s = ctx.samples
        source = s.source or "the data"
        if len(s) == 0:
            raise DataError(f"{source} holds no series; the forecast evaluator needs at least one.")
        expected = ctx.meta.get("in_channels", s.meta.get("in_channels"))
        out = []
        for sid, item in zip(s.ids, s.items):
            a = np.asarray(item, dtype=np.float32)
            if a.ndim == 1:
                a = a[None, :]
            if a.ndim != 2:
                raise DataError(f"{source}: series {sid!r} has shape {a.shape}; expected (channels, time steps).")
            if expected is not None and a.shape[0] != int(expected):
                raise DataError(
                    f"{source}: series {sid!r} has {a.shape[0]} channel(s) but the encoder was pretrained on "
                    f"{int(expected)}; expected series with {int(expected)} channel(s)."
                )
            observed = ~np.isnan(a).all(axis=0)
            last = int(np.nonzero(observed)[0][-1]) + 1 if observed.any() else 0
            a = a[:, :last]
            out.append((sid, a))
        target = int(ctx.options.get("target_channel", 0) or 0)
        for sid, a in out:
            if target < a.shape[0] and np.isnan(a[target]).any():
                raise DataError(
                    f"{source}: series {sid!r} has {int(np.isnan(a[target]).sum())} missing value(s) in target "
                    f"channel {target}; the forecast evaluator needs a complete target."
                )
        return out


EVALUATORS: dict[str, type[Evaluator]] = {"forecast": ForecastEvaluator}
