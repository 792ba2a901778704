"""The time-series modality: batches, preprocessing, checks, the views picture.

An item is a float32 array (C, T_i); a batch is a tensor (B, C, T_max) padded
at the end with NaN.  NaN inside a series is a missing value.
"""

from __future__ import annotations

import sys
from typing import Any, Sequence

import numpy as np
import torch

from contrastkit.core import ConfigError, DataError, Modality, Samples
from .options import TimeseriesOptions

#: The default recipe: TS2Vec's encoder and contextual crops, instance-level InfoNCE.
DEFAULTS: dict[str, Any] = {
    "epochs": 60,
    "max_steps": 600,  # TS2Vec-style budget: large data sets get fewer epochs
    "batch_size": 8,
    "lr": 1e-3,
    "encoder": {"name": "dilated_conv", "hidden": 64, "out_dim": 320, "depth": 10},
    "head": {"name": "mlp", "out_dim": 128, "layers": 2},
    "loss": {"name": "infonce", "temperature": 0.1},
    "joint_view": {"name": "contextual_crop", "min_overlap": 0.5},
    "augmentations": [
        {"name": "scaling", "sigma": 0.1},
        {"name": "jitter", "sigma": 0.03},
        {"name": "timestamp_mask", "ratio": 0.5},  # TS2Vec masks each time step with p = 0.5
    ],
    "data_options": {"normalize": "global", "missing": "auto"},
    "evaluate": {"evaluators": ["svm", "linear", "knn", "forecast"], "seeds": [0, 1, 2]},
}

NORMALIZE = ("global", "instance", "none")
MISSING = ("auto", "error", "mask", "interpolate")


def collate(items: Sequence[np.ndarray]) -> torch.Tensor:
    """Stack (C, T_i) arrays into a (B, C, T_max) float32 tensor, NaN-padded at the end."""
    if len(items) == 0:
        raise DataError("cannot make a batch of no series.")
    c = items[0].shape[0]
    t = max(x.shape[1] for x in items)
    out = np.full((len(items), c, t), np.nan, dtype=np.float32)
    for i, x in enumerate(items):
        out[i, :, : x.shape[1]] = x
    return torch.from_numpy(out)


def _interpolate(x: np.ndarray) -> np.ndarray:
    x = x.copy()
    t = np.arange(x.shape[1])
    for ch in range(x.shape[0]):
        bad = np.isnan(x[ch])
        if bad.any() and (~bad).any():
            x[ch, bad] = np.interp(t[bad], t[~bad], x[ch, ~bad])
    return x


def prepare(samples: Samples, state: dict | None, options: dict) -> tuple[Samples, dict]:
    """Check shapes and missing values; normalise (fitted on training data when state is None)."""
    normalize = options.get("normalize", "global")
    missing = options.get("missing", "auto")
    if normalize not in NORMALIZE:
        raise ConfigError(f"data_options.normalize must be one of {', '.join(NORMALIZE)}, got {normalize!r}.")
    if missing not in MISSING:
        raise ConfigError(f"data_options.missing must be one of {', '.join(MISSING)}, got {missing!r}.")
    src = samples.source or "data"
    items = list(samples.items)
    if not items:
        raise DataError(f"{src}: no series.")
    channels = items[0].shape[0] if items[0].ndim == 2 else None
    declared = bool(samples.meta.get("missing", False))
    for sid, x in zip(samples.ids, items):
        if x.ndim != 2:
            raise DataError(f"{src}: series {sid!r} has shape {x.shape}; expected (channels, time).")
        if x.shape[0] != channels:
            raise DataError(f"{src}: series {sid!r} has {x.shape[0]} channel(s); expected {channels} like the first series.")
        if x.shape[1] == 0 or np.isnan(x).all():
            raise DataError(f"{src}: series {sid!r} has no observed value.")
        nan = np.isnan(x)
        if nan.any() and (missing == "error" or (missing == "auto" and not declared)):
            ch, step = np.argwhere(nan)[0]
            raise DataError(
                f"{src}: series {sid!r} has {int(nan.sum())} missing (NaN) value(s), the first in channel {ch} at "
                f"time step {step}; set data_options.missing to 'mask' or 'interpolate' to accept them."
            )
    if missing == "interpolate":
        items = [_interpolate(x) for x in items]
    if state is None:
        state = {"normalize": normalize, "channels": channels}
        if normalize == "global":
            cat = np.concatenate([x.astype(np.float64) for x in items], axis=1)
            mean = np.nanmean(cat, axis=1)
            std = np.nanstd(cat, axis=1)
            state["mean"] = [float(v) for v in mean]
            state["std"] = [float(v) if v > 1e-12 else 1.0 for v in std]
    elif state.get("channels") not in (None, channels):
        raise DataError(f"{src}: the series have {channels} channel(s), but the run was trained on {state['channels']}.")
    if state.get("normalize") == "global":
        mean = np.asarray(state["mean"], dtype=np.float32)[:, None]
        std = np.asarray(state["std"], dtype=np.float32)[:, None]
        items = [((x - mean) / std).astype(np.float32) for x in items]
    elif state.get("normalize") == "instance":
        items = [((x - np.nanmean(x, 1, keepdims=True)) / np.maximum(np.nanstd(x, 1, keepdims=True), 1e-8)).astype(np.float32)
                 for x in items]
    else:
        items = [x.astype(np.float32, copy=False) for x in items]
    meta = {**samples.meta, "in_channels": int(channels), "length": int(max(x.shape[1] for x in items))}
    out = Samples(ids=samples.ids, items=items, labels=samples.labels, split=samples.split, meta=meta,
                  source=samples.source, fingerprint=samples.fingerprint)
    return out, state


def check(samples: Samples, config: dict) -> None:
    """Refuse series shorter than a configured fixed crop length, naming the first such series."""
    lengths = [int((~np.isnan(x).all(axis=0)).sum()) for x in samples.items]
    for spec in config.get("augmentations") or []:
        if spec.get("name") != "random_crop":
            continue
        length = spec.get("length")
        if isinstance(length, int) and not isinstance(length, bool):
            short = [i for i, n in enumerate(lengths) if n < length]
            if short:
                i = short[0]
                raise DataError(
                    f"{samples.source or 'data'}: series {samples.ids[i]!r} has {lengths[i]} time steps, shorter than "
                    f"the crop length {length} ({len(short)} series are); lower random_crop.length or use a fraction."
                )
    if min(lengths) < 4:
        i = int(np.argmin(lengths))
        raise DataError(f"{samples.source or 'data'}: series {samples.ids[i]!r} has {lengths[i]} time step(s); at least 4 are needed.")
    message = long_series_note(max(lengths), len(lengths), config)
    if message:
        print(f"note: {message}", file=sys.stderr)


def long_series_note(longest: int, n: int, config: dict) -> str | None:
    """The pretraining note on long series: the crop cap the contextual crop will use (None if it does not bind).

    The batch is the configured one, or ``max(2, n)`` when the training split is smaller (as core does).
    """
    from .augmentations import ContextualCrop

    spec = config.get("joint_view") or {}
    if spec.get("name") != "contextual_crop":
        return None
    params = {k: v for k, v in spec.items() if k in ("max_length", "step_budget")}
    crop = ContextualCrop(**params)
    batch, views = int(config.get("batch_size") or 8), int(config.get("views") or 2)
    if n < batch:
        batch = max(2, n)
    cap = crop.cap(batch, views)
    if cap is None or longest <= cap:
        return None
    rule = (f"\"auto\": min(3000, max(512, step_budget {crop.step_budget} // ({batch} series × {views} views)))"
            if crop.max_length == "auto" else "joint_view.max_length")
    return (f"the training series have up to {longest} time steps: contextual crops are drawn from windows of at most "
            f"{cap} steps ({rule}), so a batch holds at most {batch * views * cap:,} rows × steps; set "
            "joint_view.max_length (steps, or \"none\") or joint_view.step_budget to change it, or --batch-size.")


def plot_views(batch: torch.Tensor, views: list[torch.Tensor], path, title: str = "", ids=None) -> None:
    """Rows: samples; columns: the original then each view (channels as lines)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from contrastkit.core import atomic_savefig

    n, k = batch.shape[0], len(views)
    fig, axes = plt.subplots(n, k + 1, figsize=(3.2 * (k + 1), 1.9 * n), squeeze=False, sharey="row")
    for i in range(n):
        for j, x in enumerate([batch] + list(views)):
            ax = axes[i, j]
            series = x[i].detach().cpu().numpy()
            for ch in range(series.shape[0]):
                ax.plot(series[ch], lw=0.9)
            if i == 0:
                ax.set_title("original" if j == 0 else f"view {j}", fontsize=9)
            if j == 0 and ids is not None:
                ax.set_ylabel(str(ids[i]), fontsize=7)
            ax.tick_params(labelsize=6)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)


def timeseries_modality() -> Modality:
    return Modality(
        name="timeseries",
        collate=collate,
        default_data="GunPoint",
        options=TimeseriesOptions,
        defaults=DEFAULTS,
        prepare=prepare,
        check=check,
        batch_size=lambda b: int(b.shape[0]),
        plot_views=plot_views,
        description="Univariate and multivariate time series (UCR/UEA .ts, long-format parquet/CSV)",
    )
