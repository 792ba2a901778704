"""Generated volumes for the volumes plugin's tests (written to tmp_path, never to the repo)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

TINY_VOLUMES_RECIPE = """
epochs = 2
batch_size = 16
lr = 0.003
[encoder]
name = "resnet3d"
width = 8
blocks = [1, 1]
[head]
out_dim = 16
[data_options]
patch_size = 8
stride = 3
patches_per_volume = 200
[evaluate]
evaluators = ["linear", "raw_intensity"]
seeds = [0]
"""


def tissue_volume(shape=(32, 32, 32), seed: int = 0, affine=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, label map, affine): three 'tissues' in smooth blobs inside a sphere of head, noisy intensities."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    field = gaussian_filter(rng.standard_normal(shape), sigma=3.0)
    field = (field - field.mean()) / field.std()
    labels = np.digitize(field, [-0.5, 0.5]).astype(np.int16)  # 0, 1, 2
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"))
    head = (grid ** 2).sum(0) < 0.9
    means = np.array([40.0, 80.0, 120.0])
    image = np.where(head, means[labels] + 6.0 * rng.standard_normal(shape), 0.0).astype(np.float32)
    affine = np.diag([1.5, 1.5, 2.0, 1.0]) if affine is None else affine
    return image, labels, affine


def save_nifti(path: Path, data: np.ndarray, affine=None) -> Path:
    import nibabel as nib

    nib.save(nib.Nifti1Image(np.asarray(data), np.eye(4) if affine is None else affine), str(path))
    return path
