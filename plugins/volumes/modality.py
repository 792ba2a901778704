"""The volumes modality: batches, intensity normalisation, checks, the views picture.

An item is a :class:`~contrastkit.plugins.volumes.volume.Patch` (a reference
to a box of a volume); a batch is a float32 tensor ``B × 1 × D × H × W``.

Intensity normalisation (``data_options.normalize``), following nnU-Net's
practice for MRI (Isensee et al., "nnU-Net", Nature Methods 2021):

* ``"global"`` (default) — fitted in ``prepare`` on the training patches:
  the foreground voxels (above ``min + 0.1 · (p99 − min)`` of the sampled
  voxels) give clipping bounds at the ``clip_percentiles`` (0.5, 99.5) and then
  a mean and standard deviation; every voxel is clipped and standardised with
  them.  The numbers are the run's saved state, reused by embed/evaluate.
* ``"volume"`` — the same statistics per volume, from its own foreground
  (instance normalisation; right when scanners or contrasts differ).
* ``"none"`` — raw intensities.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from contrastkit.core import ConfigError, DataError, Modality, Samples

from .readers import foreground_threshold
from .volume import Patch
from .options import VolumesOptions

#: The default recipe: SimCLR-style instance discrimination of two overlapping 3-D crops of a patch
#: (Chen et al. 2020; 3-D views after Taleb et al., "3D Self-Supervised Methods for Medical Imaging", 2020).
DEFAULTS: dict[str, Any] = {
    "epochs": 10,
    "max_steps": 600,
    "batch_size": 64,
    "lr": 2e-3,
    "encoder": {"name": "resnet3d", "width": 16, "blocks": [1, 1, 1], "pool": "mean", "stem_stride": 2},
    "head": {"name": "mlp", "out_dim": 64, "layers": 2},
    "loss": {"name": "infonce", "temperature": 0.2},
    # Views that keep a patch's absolute intensities: tissue is told by intensity, so intensity
    # scaling / contrast remapping are available but not in the default recipe (docs/volumes.md).
    "joint_view": {"name": "overlapping_crops", "min_scale": 0.7, "max_scale": 1.0, "min_overlap": 0.7},
    "augmentations": [
        {"name": "flip"},
        {"name": "rot90"},
        {"name": "gaussian_noise", "sigma": 0.1, "p": 0.5},
        {"name": "gaussian_blur", "sigma_min": 0.3, "sigma_max": 1.0, "p": 0.3},
    ],
    "data_options": {"normalize": "global", "patch_size": 16},
    "evaluate": {"evaluators": ["linear", "knn", "raw_intensity"], "seeds": [0, 1, 2]},
}

NORMALIZE = ("global", "volume", "none")
#: Training patches read to fit the global normalisation (evenly spaced, so the fit is deterministic).
FIT_PATCHES = 256


def _norm_of(values: np.ndarray, clip: Sequence[float]) -> tuple[float, float, float, float]:
    """(lo, hi, mean, std) of the foreground of ``values``."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0, 0.0, 1.0
    fg = values[values > foreground_threshold(values)]
    if fg.size < 10:
        fg = values
    lo, hi = (float(v) for v in np.percentile(fg, [clip[0], clip[1]]))
    clipped = np.clip(fg, lo, hi)
    mean, std = float(clipped.mean()), float(clipped.std())
    return lo, hi, mean, std if std > 1e-8 else 1.0


def _clip_option(options: dict) -> tuple[float, float]:
    clip = options.get("clip_percentiles", (0.5, 99.5))
    try:
        lo, hi = (float(v) for v in clip)
    except (TypeError, ValueError):
        raise ConfigError(f"data_options.clip_percentiles must be two numbers, got {clip!r}.") from None
    if not 0 <= lo < hi <= 100:
        raise ConfigError(f"data_options.clip_percentiles must satisfy 0 ≤ low < high ≤ 100, got {clip!r}.")
    return lo, hi


def prepare(samples: Samples, state: dict | None, options: dict) -> tuple[Samples, dict]:
    """Check the items; fit (state None) or apply the intensity normalisation."""
    normalize = options.get("normalize", "global")
    if normalize not in NORMALIZE:
        raise ConfigError(f"data_options.normalize must be one of {', '.join(NORMALIZE)}, got {normalize!r}.")
    clip = _clip_option(options)
    src = samples.source or "data"
    items = list(samples.items)
    if not items:
        raise DataError(f"{src}: no volumes or patches.")
    bad = next((i for i, x in enumerate(items) if not isinstance(x, Patch)), None)
    if bad is not None:
        raise DataError(f"{src}: item {samples.ids[bad]!r} is a {type(items[bad]).__name__}; the volumes plugin "
                        "reads its own items (use its readers).")
    sizes = {x.size for x in items}
    if len(sizes) != 1:
        raise DataError(f"{src}: the items have different sizes {sorted(sizes)[:3]}; set data_options.patch_size "
                        "or volume_size to one value.")
    if state is None:
        state = {"normalize": normalize, "clip_percentiles": list(clip)}
        if normalize == "global":
            pick = np.unique(np.linspace(0, len(items) - 1, min(FIT_PATCHES, len(items))).astype(int))
            voxels = np.concatenate([items[i].raw().ravel() for i in pick])
            lo, hi, mean, std = _norm_of(voxels, clip)
            state.update(lo=lo, hi=hi, mean=mean, std=std)
    mode = state.get("normalize", "global")
    if mode == "global":
        norm = (state["lo"], state["hi"], state["mean"], state["std"])
        items = [x.with_norm(norm) for x in items]
    elif mode == "volume":
        clip_state = tuple(state.get("clip_percentiles", clip))
        per_volume: dict[Any, tuple] = {}
        for x in items:
            if x.volume not in per_volume:
                per_volume[x.volume] = _norm_of(x.volume.load().ravel(), clip_state)
        items = [x.with_norm(per_volume[x.volume]) for x in items]
    else:
        items = [x.with_norm(None) for x in items]
    size = next(iter(sizes))
    meta = {**samples.meta, "in_channels": 1, "patch_size": int(size[0]), "input_shape": [int(s) for s in size]}
    out = Samples(ids=samples.ids, items=items, labels=samples.labels, split=samples.split, meta=meta,
                  source=samples.source, fingerprint=samples.fingerprint)
    return out, state


def item_array(item: Patch) -> np.ndarray:
    """The voxels of one item, normalised and resampled to its size (D × H × W float32)."""
    x = item.raw()
    if item.norm is not None:
        lo, hi, mean, std = item.norm
        x = (np.clip(x, lo, hi) - mean) / std
    x = x.astype(np.float32, copy=False)
    if tuple(x.shape) != tuple(item.size):
        t = torch.from_numpy(np.ascontiguousarray(x))[None, None]
        x = F.interpolate(t, size=tuple(item.size), mode="trilinear", align_corners=False)[0, 0].numpy()
    return x


def collate(items: Sequence[Patch]) -> torch.Tensor:
    """Stack items into a ``B × 1 × D × H × W`` float32 tensor."""
    if len(items) == 0:
        raise DataError("cannot make a batch of no volumes.")
    arrays = [item_array(x) for x in items]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise DataError(f"the items of a batch have different sizes {sorted(shapes)[:3]}; they must be equal.")
    return torch.from_numpy(np.stack(arrays)[:, None])


def check(samples: Samples, config: dict) -> None:
    """Refuse a patch too small for the encoder's down-sampling, naming the sizes."""
    size = int(samples.meta.get("patch_size", 0) or 0)
    enc = config.get("encoder") or {}
    if enc.get("name") == "vit3d":
        p = int(enc.get("patch", 4))
        if size and size % p:
            raise DataError(f"{samples.source or 'data'}: patch_size {size} is not a multiple of the vit3d patch "
                            f"{p}; change data_options.patch_size or encoder.patch.")
    if size and size < 4:
        raise DataError(f"{samples.source or 'data'}: patch_size {size} is below 4 voxels; raise "
                        "data_options.patch_size.")


def orthogonal_slices(volume: np.ndarray) -> np.ndarray:
    """The three central orthogonal slices of a D × H × W array, side by side (padded to one height)."""
    d, h, w = volume.shape
    slices = [volume[d // 2], volume[:, h // 2], volume[:, :, w // 2]]
    height = max(s.shape[0] for s in slices)
    gap = np.full((height, 1), np.nan, dtype=np.float32)
    parts = []
    for s in slices:
        pad = np.full((height - s.shape[0], s.shape[1]), np.nan, dtype=np.float32)
        parts += [np.vstack([s, pad]), gap]
    return np.hstack(parts[:-1])


def plot_views(batch: torch.Tensor, views: list[torch.Tensor], path, title: str = "", ids=None) -> None:
    """Rows: samples; columns: the original then each view, each as three orthogonal central slices."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from contrastkit.core import atomic_savefig

    n, k = batch.shape[0], len(views)
    fig, axes = plt.subplots(n, k + 1, figsize=(3.3 * (k + 1), 1.5 * n + 0.6), squeeze=False)
    for i in range(n):
        base = batch[i, 0].detach().float().cpu().numpy()
        vmin, vmax = np.percentile(base, [1, 99])
        for j, x in enumerate([batch] + list(views)):
            ax = axes[i, j]
            img = orthogonal_slices(x[i, 0].detach().float().cpu().numpy())
            ax.imshow(img, cmap="gray", vmin=vmin, vmax=vmax if vmax > vmin else vmin + 1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title("original (axial | coronal | sagittal)" if j == 0 else f"view {j}", fontsize=8)
            if j == 0 and ids is not None:
                ax.set_ylabel("/".join(str(p) for p in ids[i]) if isinstance(ids[i], tuple) else str(ids[i]),
                              fontsize=6)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)


def volumes_modality() -> Modality:
    return Modality(
        name="volumes",
        collate=collate,
        default_data="mni152-tissue",
        options=VolumesOptions,
        defaults=DEFAULTS,
        prepare=prepare,
        check=check,
        batch_size=lambda b: int(b.shape[0]),
        plot_views=plot_views,
        description="3-D medical volumes (NIfTI .nii/.nii.gz, .npy): patches or whole volumes",
    )
