"""The point-cloud modality: batches, preprocessing, the default recipe, the views picture.

An item is a float32 array ``N × C`` (C ≥ 3: x, y, z, then per-point
features).  ``prepare`` brings every cloud to ``num_points`` points (a
deterministic re-sample seeded by the cloud's id: a random subset when it has
more, all its points plus random repeats when it has fewer) and, by default,
into the unit sphere (centred at its centroid, farthest point at radius 1).
A batch is then one dense tensor ``B × num_points × C``.
"""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

import numpy as np
import torch

from contrastkit.core import ConfigError, DataError, Modality, Samples

from .readers import check_cloud
from .options import PointsOptions

#: The default recipe: a PointNet, CrossPoint-style geometric views with crops and dropout,
#: instance-level InfoNCE; sized to train on a laptop CPU in a few minutes.
DEFAULTS: dict[str, Any] = {
    "epochs": 40,
    "max_steps": 300,
    "batch_size": 32,
    "lr": 1e-3,
    "encoder": {"name": "pointnet", "widths": [64, 128, 256], "pool": "max"},
    "head": {"name": "mlp", "out_dim": 128, "layers": 2},
    "loss": {"name": "infonce", "temperature": 0.1},
    "augmentations": [
        {"name": "crop", "shape": "ball", "ratio": [0.6, 1.0], "p": 0.5},
        {"name": "point_dropout", "max_ratio": 0.3},
        {"name": "rotate_up", "max_angle": 180.0},
        {"name": "scale", "low": 0.8, "high": 1.25},
        {"name": "jitter", "sigma": 0.01, "clip": 0.05},
        {"name": "normalize"},
    ],
    "data_options": {"num_points": 512, "normalize": "sphere"},
    "evaluate": {"evaluators": ["linear_svm", "knn", "retrieval", "raw_d2"], "seeds": [0, 1, 2]},
}

NORMALIZE = ("sphere", "none")


def collate(items: Sequence[np.ndarray]) -> torch.Tensor:
    """Stack N × C clouds into a B × N × C float32 tensor (clouds of other sizes are repeated/cut to the first's N)."""
    if len(items) == 0:
        raise DataError("cannot make a batch of no point clouds.")
    arrays = [np.asarray(x, dtype=np.float32) for x in items]
    c = arrays[0].shape[-1] if arrays[0].ndim == 2 else None
    for i, a in enumerate(arrays):
        if a.ndim != 2 or a.shape[1] != c or a.shape[0] < 1:
            raise DataError(f"cloud {i} of the batch has shape {a.shape}; expected N × {c} like the first.")
    n = arrays[0].shape[0]
    arrays = [a if a.shape[0] == n else a[np.arange(n) % a.shape[0]] for a in arrays]
    return torch.from_numpy(np.stack(arrays))


def _seed(item_id: Any) -> int:
    return int.from_bytes(hashlib.sha256(str(item_id).encode()).digest()[:8], "big")


def resample(points: np.ndarray, n: int, item_id: Any) -> np.ndarray:
    """``n`` points of a cloud, a pure function of (points, n, id): a random subset when it has more,
    all of its points plus random repeats when it has fewer."""
    m = len(points)
    if m == n:
        return points
    rng = np.random.default_rng(_seed(item_id))
    if m > n:
        index = np.sort(rng.choice(m, size=n, replace=False))
    else:
        index = np.concatenate([np.arange(m), rng.choice(m, size=n - m, replace=True)])
    return points[index]


def normalize_cloud(points: np.ndarray) -> np.ndarray:
    """Centre at the centroid and scale so the farthest point lies at radius 1 (features untouched)."""
    out = points.astype(np.float32, copy=True)
    xyz = out[:, :3].astype(np.float64)
    xyz -= xyz.mean(axis=0)
    radius = float(np.linalg.norm(xyz, axis=1).max())
    out[:, :3] = xyz / radius if radius > 0 else xyz
    return out


def prepare(samples: Samples, state: dict | None, options: dict) -> tuple[Samples, dict]:
    """Check every cloud, bring it to ``num_points`` points and (by default) into the unit sphere."""
    n = options.get("num_points", 512)
    normalize = options.get("normalize", "sphere")
    if isinstance(n, bool) or not isinstance(n, int) or n < 8:
        raise ConfigError(f"data_options.num_points must be an integer >= 8, got {n!r}.")
    if normalize not in NORMALIZE:
        raise ConfigError(f"data_options.normalize must be one of {', '.join(NORMALIZE)}, got {normalize!r}.")
    src = samples.source or "data"
    if len(samples) == 0:
        raise DataError(f"{src}: no point clouds.")
    items = [check_cloud(x, f"{src}: cloud {sid!r}") for sid, x in zip(samples.ids, samples.items)]
    channels = items[0].shape[1]
    for sid, x in zip(samples.ids, items):
        if x.shape[1] != channels:
            raise DataError(f"{src}: cloud {sid!r} has {x.shape[1]} columns; expected {channels} like the first cloud.")
    if state is None:
        state = {"num_points": int(n), "channels": int(channels), "normalize": normalize}
    elif state.get("channels") != channels:
        raise DataError(f"{src}: the clouds have {channels} column(s) (x, y, z + features), but the run was trained "
                        f"on {state.get('channels')}.")
    out_items = []
    for sid, x in zip(samples.ids, items):
        x = resample(x, int(state["num_points"]), sid)
        if state["normalize"] == "sphere":
            x = normalize_cloud(x)
        out_items.append(np.ascontiguousarray(x, dtype=np.float32))
    meta = {**samples.meta, "in_channels": int(channels), "features": int(channels) - 3,
            "num_points": int(state["num_points"]), "granularity": "cloud"}
    return Samples(ids=samples.ids, items=out_items, labels=samples.labels, split=samples.split, meta=meta,
                   source=samples.source, fingerprint=samples.fingerprint), state


def plot_views(batch: torch.Tensor, views: list[torch.Tensor], path, title: str = "", ids=None) -> None:
    """Rows: samples; columns: the cloud, then each view, as 3-D scatter plots coloured by height."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from contrastkit.core import atomic_savefig

    n, k = batch.shape[0], len(views)
    fig = plt.figure(figsize=(2.8 * (k + 1), 2.8 * n))
    for i in range(n):
        for j, x in enumerate([batch] + list(views)):
            ax = fig.add_subplot(n, k + 1, i * (k + 1) + j + 1, projection="3d")
            p = x[i, :, :3].detach().float().cpu().numpy()
            ax.scatter(p[:, 0], p[:, 1], p[:, 2], c=p[:, 2], s=2, cmap="viridis", depthshade=False)
            ax.set_box_aspect((1, 1, 1))
            lim = float(np.abs(p).max()) or 1.0
            for setter in (ax.set_xlim, ax.set_ylim, ax.set_zlim):
                setter(-lim, lim)
            ax.set_xticks([]), ax.set_yticks([]), ax.set_zticks([])
            ax.view_init(elev=20, azim=-60)
            label = "original" if j == 0 else f"view {j}"
            if j == 0 and ids is not None:
                label = f"{ids[i]}"
            ax.set_title(label, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)


def points_modality() -> Modality:
    return Modality(
        name="points",
        collate=collate,
        default_data="synthetic_shapes",
        options=PointsOptions,
        defaults=DEFAULTS,
        prepare=prepare,
        batch_size=lambda b: int(b.shape[0]),
        plot_views=plot_views,
        description="Point clouds (.npy/.npz arrays; .ply/.off/.obj/.stl meshes via trimesh; ModelNet-style folders)",
    )
