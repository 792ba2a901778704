"""Each point-cloud view changes what it should and nothing else."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.core.errors import ConfigError, DataError
from contrastkit.core.views import make_generator
from contrastkit.plugins.points.augmentations import (
    AUGMENTATIONS,
    Crop,
    Jitter,
    NormalizeSphere,
    PatchMask,
    PointDropout,
    RotateSO3,
    RotateUp,
    Scale,
    Translate,
    random_rotations,
)


def clouds(b=4, n=128, features=0, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, n, 3 + features, generator=g)
    return x


def pairwise(x: torch.Tensor) -> torch.Tensor:
    p = x[..., :3].double()
    return (p[:, :, None, :] - p[:, None, :, :]).norm(dim=-1)


def rows_of(out: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
    """For each point of out (B × N × C), whether it equals some point of src in the same sample."""
    d = (out.double()[:, :, None, :] - src.double()[:, None, :, :]).abs().amax(dim=-1)
    return d.min(dim=-1).values < 1e-7


def test_registry_names():
    assert set(AUGMENTATIONS) == {"rotate_up", "rotate_so3", "scale", "translate", "jitter", "point_dropout",
                                  "crop", "patch_mask", "normalize"}


def test_rotate_up_keeps_norms_distances_height_and_features():
    x = clouds(features=2)
    y = RotateUp()(x, make_generator(0))
    assert y.shape == x.shape and not torch.allclose(y, x)
    assert torch.allclose(y[..., :3].norm(dim=-1), x[..., :3].norm(dim=-1), atol=1e-5)
    assert torch.allclose(pairwise(y), pairwise(x), atol=1e-4)
    assert torch.equal(y[..., 2], x[..., 2]) and torch.equal(y[..., 3:], x[..., 3:])
    # each sample gets its own angle
    angle = torch.atan2(y[:, 0, 1], y[:, 0, 0]) - torch.atan2(x[:, 0, 1], x[:, 0, 0])
    assert len({round(math.remainder(float(a), 2 * math.pi), 4) for a in angle}) == 4


def test_rotate_up_respects_its_limit_and_axis():
    x = clouds()
    y = RotateUp(max_angle=10.0, axis=0)(x, make_generator(1))
    assert torch.equal(y[..., 0], x[..., 0])
    cos = (torch.nn.functional.normalize(y[..., 1:], dim=-1) * torch.nn.functional.normalize(x[..., 1:], dim=-1)).sum(-1)
    assert (cos > math.cos(math.radians(10.0)) - 1e-4).all()


def test_rotate_so3_is_a_proper_rotation_per_sample():
    r = random_rotations(64, make_generator(0), "cpu")
    assert torch.allclose(r @ r.transpose(1, 2), torch.eye(3).expand(64, 3, 3), atol=1e-5)
    assert torch.allclose(torch.linalg.det(r), torch.ones(64), atol=1e-5)
    # the axis of the up vector is spread over the sphere: its mean is near 0
    assert r[:, :, 2].mean(0).abs().max() < 0.3
    x = clouds()
    y = RotateSO3()(x, make_generator(0))
    assert torch.allclose(pairwise(y), pairwise(x), atol=1e-4) and not torch.allclose(y, x)


def test_scale_changes_extents_by_the_drawn_factors():
    x = clouds()
    aug = Scale(0.5, 2.0)
    factors = aug.factors(x, make_generator(3))
    y = aug(x, make_generator(3))
    assert torch.allclose(y, x * factors[:, None, :])
    extent = lambda t: t.amax(1) - t.amin(1)  # noqa: E731
    assert torch.allclose(extent(y) / extent(x), factors, atol=1e-5)
    assert ((factors >= 0.5) & (factors <= 2.0)).all() and factors.std() > 0
    iso = Scale(0.5, 2.0, anisotropic=False).factors(x, make_generator(3))
    assert torch.allclose(iso[:, 0:1].expand(-1, 3), iso)


def test_translate_shifts_each_cloud_rigidly_within_bounds():
    x = clouds()
    y = Translate(0.2)(x, make_generator(0))
    shift = y - x
    assert torch.allclose(shift, shift[:, :1, :].expand_as(shift), atol=1e-6)
    assert (shift.abs() <= 0.2 + 1e-6).all() and torch.allclose(pairwise(y), pairwise(x), atol=1e-5)


def test_jitter_is_small_clipped_noise_on_coordinates_only():
    x = clouds(b=8, n=512, features=1)
    y = Jitter(sigma=0.01, clip=0.02)(x, make_generator(0))
    noise = y[..., :3] - x[..., :3]
    assert (noise.abs() <= 0.02 + 1e-6).all() and 0.007 < float(noise.std()) < 0.011
    assert torch.equal(y[..., 3:], x[..., 3:])


def test_point_dropout_keeps_n_and_only_input_points():
    x = clouds(n=200, features=1)
    y = PointDropout(max_ratio=0.8)(x, make_generator(0))
    assert y.shape == x.shape and rows_of(y, x).all()
    unique = torch.tensor([len(torch.unique(y[b], dim=0)) for b in range(4)])
    assert (unique >= 200 * 0.2).all() and (unique < 200).any()
    assert torch.equal(PointDropout(0.8, p=0.0)(x, make_generator(0)), x)


@pytest.mark.parametrize("shape", ["ball", "cuboid"])
def test_crop_keeps_exactly_the_points_of_its_region(shape):
    x = clouds(n=256)
    aug = Crop(shape=shape, ratio=(0.3, 0.6))
    score, n_keep = aug.region(x, make_generator(5))
    y = aug(x, make_generator(5))
    assert y.shape == x.shape
    for b in range(x.shape[0]):
        kept = x[b, score[b].argsort()[: n_keep[b]]]
        # every output point is inside the region, and every point of the region survives
        assert rows_of(y[b:b + 1], kept[None]).all() and rows_of(kept[None], y[b:b + 1]).all()
        inside = score[b] <= score[b].sort().values[n_keep[b] - 1]
        assert int(inside.sum()) == int(n_keep[b])
        assert 0.3 * 256 <= n_keep[b] <= 0.6 * 256 + 1


def test_patch_mask_resample_removes_the_masked_patches():
    x = clouds(n=256)
    aug = PatchMask(num_patches=16, patch_size=16, ratio=0.5)
    masked, _, centres = aug.masked_points(x, make_generator(2))
    y = aug(x, make_generator(2))
    assert y.shape == x.shape and masked.any(dim=1).all() and (~masked).any(dim=1).all()
    for b in range(x.shape[0]):
        visible = x[b, ~masked[b]]
        assert rows_of(y[b:b + 1], visible[None]).all() and rows_of(visible[None], y[b:b + 1]).all()
    assert centres.shape == (4, 16) and all(len(set(c.tolist())) == 16 for c in centres)


def test_patch_mask_centre_mode_collapses_patches_to_their_centres():
    x = clouds(n=256)
    aug = PatchMask(num_patches=8, patch_size=32, ratio=0.25, mode="centre")
    masked, owner, _ = aug.masked_points(x, make_generator(4))
    y = aug(x, make_generator(4))
    assert torch.equal(y[~masked], x[~masked])
    for b in range(4):
        assert torch.equal(y[b, masked[b]], x[b, owner[b, masked[b]]])


def test_patch_mask_everything_keeps_the_centres():
    x = clouds(n=64)
    y = PatchMask(num_patches=8, patch_size=64, ratio=1.0)(x, make_generator(0))
    assert all(len(torch.unique(y[b], dim=0)) == 8 for b in range(4))


def test_normalize_puts_each_cloud_in_the_unit_sphere():
    x = clouds(features=1) * 5 + 3
    y = NormalizeSphere()(x, None)
    assert torch.allclose(y[..., :3].mean(1), torch.zeros(4, 3), atol=1e-5)
    assert torch.allclose(y[..., :3].norm(dim=-1).amax(1), torch.ones(4), atol=1e-5)
    assert torch.equal(y[..., 3:], x[..., 3:])


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
def test_inputs_are_untouched_and_seeds_reproduce(name):
    x = clouds()
    before = x.clone()
    aug = AUGMENTATIONS[name]()
    a, b = aug(x, make_generator(7)), aug(x, make_generator(7))
    assert torch.equal(x, before) and torch.equal(a, b) and a.dtype == x.dtype and a.shape == x.shape
    with pytest.raises(DataError, match="B × N × C"):
        aug(x[0], make_generator(0))


@pytest.mark.parametrize("cls, kwargs", [
    (RotateUp, {"max_angle": 270}), (RotateUp, {"axis": 3}), (Scale, {"low": 2.0, "high": 1.0}),
    (Scale, {"low": 0}), (Jitter, {"sigma": -1}), (PointDropout, {"max_ratio": 1.0}),
    (Crop, {"shape": "sphere"}), (Crop, {"ratio": (0.9, 0.1)}), (PatchMask, {"mode": "zero"}),
    (PatchMask, {"num_patches": 0}), (Translate, {"shift": "big"}),
])
def test_bad_arguments_are_config_errors(cls, kwargs):
    with pytest.raises(ConfigError):
        cls(**kwargs)
