"""The tabular modality: batches, standardisation fitted on training rows, the views picture.

An item is a ``numpy.float32`` vector of F features (NaN = missing); a batch
is a ``torch.float32`` tensor ``B × F``.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from contrastkit.core import ConfigError, DataError, Modality, Samples

from .options import TabularOptions
from .readers import check_options

#: The default recipe: SCARF (Bahri et al., ICLR 2022) — corruption rate 0.6, InfoNCE with τ = 1,
#: an MLP encoder and a 2-layer projection head, Adam(W) at 1e-3 (SCARF: batch 128; 64 here, for
#: more steps per epoch on the small bundled tables).
DEFAULTS: dict[str, Any] = {
    "epochs": 40,
    "batch_size": 64,
    "lr": 1e-3,
    "weight_decay": 1e-5,
    "encoder": {"name": "mlp", "hidden": 256, "out_dim": 128, "depth": 3},
    "head": {"name": "mlp", "out_dim": 128, "layers": 2},
    "loss": {"name": "infonce", "temperature": 1.0},
    "augmentations": [{"name": "feature_corruption", "ratio": 0.6}],
    "data_options": {"standardize": True, "missing": "error"},
    "evaluate": {"evaluators": ["linear", "knn", "svm", "raw_features"], "seeds": [0, 1, 2]},
}

MISSING = ("error", "mean")


def collate(items: Sequence[np.ndarray]) -> torch.Tensor:
    """Stack F-vectors into a ``B × F`` float32 tensor (a copy: the items are never touched)."""
    if len(items) == 0:
        raise DataError("cannot make a batch of no rows.")
    try:
        batch = np.stack([np.asarray(item, dtype=np.float32) for item in items])
    except ValueError:
        sizes = sorted({np.asarray(item).shape for item in items})
        raise DataError(f"rows of different shapes {sizes[:3]} cannot make one batch; "
                        "expected F features each.") from None
    if batch.ndim != 2:
        raise DataError(f"a table row must be a vector of features, got shape {batch.shape[1:]}.")
    return torch.from_numpy(batch)


def _matrix(samples: Samples) -> np.ndarray:
    src = samples.source or "data"
    if len(samples) == 0:
        raise DataError(f"{src}: no rows.")
    try:
        x = np.stack([np.asarray(item, dtype=np.float64) for item in samples.items])
    except ValueError:
        first = np.asarray(samples.items[0]).shape
        bad = next(i for i, item in enumerate(samples.items) if np.asarray(item).shape != first)
        raise DataError(f"{src}: row {samples.ids[bad]!r} has shape {np.asarray(samples.items[bad]).shape}; "
                        f"expected {first} like the first row.") from None
    if x.ndim != 2:
        raise DataError(f"{src}: rows have shape {x.shape[1:]}; expected vectors of features.")
    return x


def prepare(samples: Samples, state: dict | None, options: dict) -> tuple[Samples, dict]:
    """Check the rows; impute and standardise with statistics fitted on the training rows.

    With ``state=None`` the per-feature mean and standard deviation are fitted
    on ``samples`` (the training split) and returned; with a state (from the
    run's checkpoint) they are applied, so ``embed`` and ``evaluate`` see the
    features exactly as training did.  ``data_options.missing = "mean"``
    fills NaN with the training mean; the default ``"error"`` refuses them.
    """
    options = check_options(options)
    standardize = options.get("standardize", True)
    missing = options.get("missing", "error")
    if not isinstance(standardize, bool):
        raise ConfigError(f"data_options.standardize must be true or false, got {standardize!r}.")
    if missing not in MISSING:
        raise ConfigError(f"data_options.missing must be one of {', '.join(MISSING)}, got {missing!r}.")
    src = samples.source or "data"
    x = _matrix(samples)
    names = list(samples.meta.get("feature_names") or [f"feature {j}" for j in range(x.shape[1])])
    nan = np.isnan(x)
    if nan.any() and missing == "error":
        row, col = np.argwhere(nan)[0]
        raise DataError(f"{src}: row {samples.ids[row]!r} has a missing value in column '{names[col]}' "
                        f"({int(nan.sum())} missing in all); set data_options.missing = \"mean\" to fill them.")
    if state is None:
        if len(x) < 2:
            raise DataError(f"{src}: {len(x)} training row(s); fitting the standardisation needs at least 2.")
        empty = np.where(nan.all(axis=0))[0]
        if len(empty):
            raise DataError(f"{src}: column '{names[empty[0]]}' has no value in the training rows.")
        with np.errstate(invalid="ignore"):
            mean, std = np.nanmean(x, axis=0), np.nanstd(x, axis=0)
        state = {
            "features": int(x.shape[1]),
            "feature_names": names,
            "mean": [float(v) for v in mean],
            "std": [float(v) if v > 1e-12 else 1.0 for v in std],
        }
    else:
        if int(state["features"]) != x.shape[1]:
            raise DataError(f"{src}: the rows have {x.shape[1]} features, but the run was trained on "
                            f"{state['features']}.")
        trained = state.get("feature_names")
        if trained and samples.meta.get("feature_names") and list(trained) != names:
            j = next(j for j, (a, b) in enumerate(zip(trained, names)) if a != b)
            raise DataError(f"{src}: feature column {j} is '{names[j]}', but the run was trained with "
                            f"'{trained[j]}' there.")
    mean = np.asarray(state["mean"], dtype=np.float64)
    std = np.asarray(state["std"], dtype=np.float64)
    if nan.any():
        x = np.where(nan, mean, x)
    if standardize:
        x = (x - mean) / std
    meta = {**samples.meta, "in_features": int(x.shape[1]), "feature_names": names}
    out = Samples(ids=samples.ids, items=x.astype(np.float32), labels=samples.labels, split=samples.split,
                  meta=meta, source=samples.source, fingerprint=samples.fingerprint)
    return out, state


def plot_views(batch: torch.Tensor, views: list[torch.Tensor], path, title: str = "", ids=None) -> None:
    """Rows: samples; columns: the original row then each view, features as a colour strip."""
    from matplotlib.figure import Figure

    from contrastkit.core.pictures import atomic_savefig

    n, k = batch.shape[0], len(views)
    fig = Figure(figsize=(2.6 * (k + 1), 0.9 * n + 0.8))
    axes = fig.subplots(n, k + 1, squeeze=False)
    scale = float(batch.abs().max()) or 1.0
    for i in range(n):
        for j, x in enumerate([batch] + list(views)):
            ax = axes[i, j]
            ax.imshow(x[i].detach().cpu().numpy()[None, :], aspect="auto", cmap="coolwarm", vmin=-scale, vmax=scale)
            ax.set_yticks([])
            ax.set_xticks([])
            if i == 0:
                ax.set_title("original" if j == 0 else f"view {j}", fontsize=9)
            if j == 0 and ids is not None:
                ax.set_ylabel(str(ids[i]), fontsize=7, rotation=0, ha="right")
    if title:
        fig.suptitle(title, fontsize=10)
    atomic_savefig(fig, path)


def tabular_modality() -> Modality:
    return Modality(
        name="tabular",
        collate=collate,
        default_data="breast_cancer",
        options=TabularOptions,
        defaults=DEFAULTS,
        prepare=prepare,
        batch_size=lambda b: int(b.shape[0]),
        plot_views=plot_views,
        description="Tables of numeric features (parquet/CSV, scikit-learn's bundled data sets)",
    )
