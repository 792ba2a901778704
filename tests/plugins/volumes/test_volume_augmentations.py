"""Each 3-D view transform changes what it should and nothing else."""

from __future__ import annotations

import pytest
import torch

from contrastkit.core.errors import ConfigError, DataError
from contrastkit.core.views import make_generator
from contrastkit.plugins.volumes import augmentations as A


def batch(b: int = 6, size: int = 12, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 1, size, size, size, generator=g)


def ramp(b: int = 4, size: int = 12) -> torch.Tensor:
    """Voxel value = D index: a volume whose geometry is easy to follow."""
    d = torch.arange(size, dtype=torch.float32).view(1, 1, size, 1, 1)
    return d.expand(b, 1, size, size, size).clone()


ALL = [A.RandomResizedCrop(), A.Flip(), A.Rot90(), A.RandomAffine(), A.ElasticDeform(), A.IntensityScaleShift(),
       A.Gamma(), A.GaussianNoise(), A.GaussianBlur(), A.ContrastRemap(), A.CoarseDropout(), A.LocalShuffle()]


@pytest.mark.parametrize("aug", ALL, ids=lambda a: type(a).__name__)
def test_common_contract(aug):
    x = batch()
    before = x.clone()
    y = aug(x, make_generator(1))
    assert torch.equal(x, before), "input modified"
    assert y.shape == x.shape and y.dtype == x.dtype and y.device == x.device
    assert not torch.equal(y, x), "nothing changed"
    assert torch.equal(aug(x, make_generator(1)), y), "not reproducible from the generator"
    assert torch.isfinite(y).all()
    with pytest.raises(DataError):
        aug(x[0], make_generator(1))


@pytest.mark.parametrize("aug", ALL, ids=lambda a: type(a).__name__)
def test_p_zero_is_identity(aug):
    aug.p = 0.0
    x = batch()
    assert torch.equal(aug(x, make_generator(2)), x)


def test_flip_only_mirrors():
    x = batch(b=64)
    y = A.Flip(axes=(1,), p=0.5)(x, make_generator(0))
    flipped = torch.tensor([torch.equal(y[i], x[i].flip(2)) for i in range(64)])
    kept = torch.tensor([torch.equal(y[i], x[i]) for i in range(64)])
    assert bool((flipped | kept).all()) and 15 < int(flipped.sum()) < 50


def test_rot90_permutes_voxels_and_keeps_values():
    x = batch(b=32)
    y = A.Rot90()(x, make_generator(0))
    for i in range(32):
        assert torch.equal(y[i].flatten().sort().values, x[i].flatten().sort().values)
    assert sum(not torch.equal(y[i], x[i]) for i in range(32)) > 16


def test_rot90_leaves_non_cubic_planes_alone():
    x = torch.randn(8, 1, 4, 6, 8)
    assert torch.equal(A.Rot90()(x, make_generator(0)), x)


def test_resized_crop_full_scale_is_identity():
    x = batch()
    y = A.RandomResizedCrop(min_scale=1.0, max_scale=1.0)(x, make_generator(0))
    assert torch.allclose(y, x, atol=1e-5)


def test_overlapping_crops_respect_min_overlap_and_stay_inside():
    crops = A.OverlappingCrops(min_scale=0.3, max_scale=0.9, min_overlap=0.6)
    like = torch.zeros(1)
    c, a = crops.draw_boxes(4000, 3, make_generator(0), like)
    assert bool(((c.abs() + a) <= 1 + 1e-6).all()), "a box leaves the sample"
    for j in (1, 2):
        ov = A.box_overlap(c[:, 0], a[:, 0], c[:, j], a[:, j])
        assert float(ov.min()) >= 0.6 - 1e-5
    assert float(A.box_overlap(c[:, 0], a[:, 0], c[:, 1], a[:, 1]).mean()) < 0.99  # they do move


def test_overlapping_crops_show_the_box_they_drew():
    x = ramp(b=2, size=16)
    crops = A.OverlappingCrops(min_scale=0.5, max_scale=0.5, min_overlap=0.0)
    views = crops.views(x, 2, make_generator(3))
    c, a = crops.draw_boxes(2, 2, make_generator(3), x)
    for j, v in enumerate(views):
        assert v.shape == x.shape
        # along D the view spans the box's D range: its mean value is the box centre in voxel units
        centre_vox = (c[:, j, 0] + 1) / 2 * 16 - 0.5
        assert torch.allclose(v.mean(dim=(1, 2, 3, 4)), centre_vox, atol=0.3)


def test_affine_identity_parameters_keep_the_volume():
    x = batch()
    assert torch.allclose(A.RandomAffine(degrees=0, scale=0, translate=0)(x, make_generator(0)), x, atol=1e-5)


def test_affine_and_elastic_move_voxels_but_keep_intensity_range():
    x = ramp(b=4, size=16)
    for aug in (A.RandomAffine(degrees=15), A.ElasticDeform(sigma=2.0)):
        y = aug(x, make_generator(0))
        assert y.min() >= x.min() - 1e-4 and y.max() <= x.max() + 1e-4  # trilinear + border: no new values
        assert (y - x).abs().max() > 0.5


def test_intensity_scale_shift_is_affine_per_sample():
    x = batch()
    y = A.IntensityScaleShift(scale=0.2, shift=0.5)(x, make_generator(0))
    for i in range(x.shape[0]):
        a = torch.linalg.lstsq(torch.stack([x[i].flatten(), torch.ones(x[i].numel())], 1), y[i].flatten()[:, None])
        slope, icpt = a.solution.flatten().tolist()
        assert 0.8 - 1e-4 <= slope <= 1.2 + 1e-4 and abs(icpt) <= 0.5 + 1e-4
        assert torch.allclose(x[i] * slope + icpt, y[i], atol=1e-4)


def test_gamma_and_contrast_remap_are_monotone_and_keep_the_range():
    x = batch()
    for aug in (A.Gamma(log_gamma=0.5), A.ContrastRemap(knots=5)):
        y = aug(x, make_generator(0))
        for i in range(x.shape[0]):
            order = x[i].flatten().argsort()
            assert bool((y[i].flatten()[order].diff() >= -1e-5).all()), "order of intensities changed"
            assert torch.isclose(y[i].min(), x[i].min(), atol=1e-4) and torch.isclose(y[i].max(), x[i].max(), atol=1e-4)


def test_contrast_remap_inverts_when_asked():
    x = batch(b=3)
    y = A.ContrastRemap(invert=1.0)(x, make_generator(0))
    for i in range(3):
        order = x[i].flatten().argsort()
        assert bool((y[i].flatten()[order].diff() <= 1e-5).all())


def test_noise_has_the_drawn_scale():
    x = torch.zeros(200, 1, 8, 8, 8)
    y = A.GaussianNoise(sigma=0.4)(x, make_generator(0))
    stds = y.flatten(1).std(1)
    assert float(stds.max()) <= 0.45 and 0.15 < float(stds.mean()) < 0.25  # U(0, 0.4): mean 0.2


def test_blur_keeps_the_mean_of_a_constant_and_smooths_noise():
    c = torch.full((2, 1, 10, 10, 10), 3.0)
    blur = A.GaussianBlur(sigma_min=1.0, sigma_max=1.0)
    assert torch.allclose(blur(c, make_generator(0)), c, atol=1e-5)
    x = batch()
    assert float(blur(x, make_generator(0)).std()) < 0.6 * float(x.std())


def test_coarse_dropout_only_touches_the_holes():
    x = batch(b=8, size=16) + 10.0
    aug = A.CoarseDropout(holes=2, size=0.4, fill="zero")
    y = aug(x, make_generator(0))
    holes = aug.hole_mask(x, make_generator(0))
    assert torch.equal(y[~holes.expand_as(x)], x[~holes.expand_as(x)])
    assert bool((y[holes.expand_as(x)] == 0).all()) and holes.any()
    frac = holes.float().mean()
    assert 0.01 < float(frac) < 0.3


def test_local_shuffle_keeps_each_cells_voxels():
    x = batch(b=3, size=8)
    y = A.LocalShuffle(block=4, fraction=1.0)(x, make_generator(0))
    for i in range(3):
        for d in (0, 4):
            for h in (0, 4):
                for w in (0, 4):
                    a = x[i, 0, d:d + 4, h:h + 4, w:w + 4].flatten().sort().values
                    b = y[i, 0, d:d + 4, h:h + 4, w:w + 4].flatten().sort().values
                    assert torch.equal(a, b)
    assert not torch.equal(x, y)


@pytest.mark.parametrize("cls,kwargs", [
    (A.OverlappingCrops, {"min_scale": 0.9, "max_scale": 0.5}),
    (A.OverlappingCrops, {"min_overlap": 1.5}),
    (A.Flip, {"axes": [3]}),
    (A.GaussianBlur, {"sigma_min": 2.0, "sigma_max": 1.0}),
    (A.CoarseDropout, {"fill": "blue"}),
    (A.LocalShuffle, {"block": 1}),
    (A.ContrastRemap, {"knots": 0}),
    (A.Gamma, {"p": 2.0}),
])
def test_bad_arguments_raise_one_sentence(cls, kwargs):
    with pytest.raises(ConfigError) as err:
        cls(**kwargs)
    assert "\n" not in str(err.value)


def test_no_device_string_in_the_plugin():
    from pathlib import Path

    import contrastkit.plugins.volumes as pkg

    device_name = "cu" + "da"  # spelled in two parts so that this file passes the same check
    for f in Path(pkg.__file__).parent.glob("*.py"):
        assert device_name not in f.read_text().lower(), f
