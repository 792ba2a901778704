"""Fixtures of the volumes plugin's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.plugins.volumes.volume_data import TINY_VOLUMES_RECIPE, save_nifti, tissue_volume


@pytest.fixture
def labelled_volume(tmp_path) -> tuple[Path, Path]:
    """(image.nii.gz, labels.nii.gz) of one generated 32³ volume."""
    image, labels, affine = tissue_volume()
    return (save_nifti(tmp_path / "image.nii.gz", image, affine),
            save_nifti(tmp_path / "image_labels.nii.gz", labels, affine))


@pytest.fixture
def tiny_volumes_recipe(tmp_path) -> Path:
    p = tmp_path / "tiny_volumes.toml"
    p.write_text(TINY_VOLUMES_RECIPE)
    return p
