"""Time-series augmentations: each changes what it should and nothing else."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.core.errors import ConfigError, DataError
from contrastkit.core.views import Augmentation, JointAugmentation, make_generator
from contrastkit.plugins.timeseries.augmentations import (
    AUGMENTATIONS,
    ContextualCrop,
    FrequencyMask,
    Jitter,
    MagnitudeWarp,
    Permutation,
    RandomCrop,
    Scaling,
    TimestampMask,
    TimeWarp,
    natural_cubic_spline,
    valid_lengths,
)


def batch(b: int = 8, c: int = 3, t: int = 64, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, c, t, generator=g)


def padded(seed: int = 0) -> torch.Tensor:
    """4 series of lengths 64, 40, 17, 64 padded with NaN; row 3 has a missing value at step 10."""
    x = batch(4, 2, 64, seed)
    x[1, :, 40:] = float("nan")
    x[2, :, 17:] = float("nan")
    x[3, 0, 10] = float("nan")
    return x


# Per-sample augmentations with arguments that make every sample change.
PER_SAMPLE = [
    Jitter(0.1),
    Scaling(0.3),
    MagnitudeWarp(0.3),
    TimeWarp(0.3),
    Permutation(5),
    TimestampMask(0.3),
    FrequencyMask(0.3),
]
IDS = [type(a).__name__ for a in PER_SAMPLE]


# ----------------------------------------------------------------------------- shared contract


def test_registry_dict_lists_every_class():
    assert set(AUGMENTATIONS) == {
        "jitter", "scaling", "magnitude_warp", "time_warp", "permutation",
        "random_crop", "timestamp_mask", "frequency_mask", "contextual_crop",
    }
    for name, cls in AUGMENTATIONS.items():
        base = JointAugmentation if name == "contextual_crop" else Augmentation
        assert issubclass(cls, base), name
        assert cls.__doc__ and ("et al." in cls.__doc__), name


@pytest.mark.parametrize("aug", PER_SAMPLE, ids=IDS)
def test_shape_dtype_no_inplace_and_padding_kept(aug):
    x = padded()
    before = x.clone()
    y = aug(x, make_generator(1))
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.equal(x.nan_to_num(7.0), before.nan_to_num(7.0)), "input modified in place"
    assert torch.isnan(y[1, :, 40:]).all() and torch.isnan(y[2, :, 17:]).all()
    assert torch.equal(valid_lengths(y), torch.tensor([64, 40, 17, 64]))
    assert not torch.isnan(y[0]).any()
    assert not torch.equal(y.nan_to_num(7.0), x.nan_to_num(7.0))


@pytest.mark.parametrize("aug", PER_SAMPLE + [RandomCrop(20)], ids=IDS + ["RandomCrop"])
def test_reproducible_and_redrawn(aug):
    x = batch()
    a = aug(x, make_generator(5))
    b = aug(x, make_generator(5))
    assert torch.equal(a, b)
    g = make_generator(5)
    c, d = aug(x, g), aug(x, g)
    assert not torch.equal(c, d)


@pytest.mark.parametrize("aug", PER_SAMPLE, ids=IDS)
def test_p_zero_is_identity_and_p_selects_samples(aug):
    x = padded()
    kwargs = {k: getattr(aug, k) for k in ("sigma", "knots", "max_segments", "ratio") if hasattr(aug, k)}
    none = type(aug)(**kwargs, p=0.0)(x, make_generator(0))
    assert none is not x and torch.equal(none.nan_to_num(7.0), x.nan_to_num(7.0))
    big = batch(400, 2, 32)
    y = type(aug)(**kwargs, p=0.5)(big, make_generator(0))
    changed = (y != big).flatten(1).any(dim=1).float().mean().item()
    assert 0.4 < changed < 0.6


@pytest.mark.parametrize("aug", PER_SAMPLE + [RandomCrop(5)], ids=IDS + ["RandomCrop"])
def test_batch_of_one(aug):
    x = batch(1, 2, 16)
    y = aug(x, make_generator(0))
    assert y.shape[:2] == (1, 2) and torch.isfinite(y).all()


def test_repr_shows_arguments():
    assert repr(Jitter(0.05, p=0.5)) == "Jitter(sigma=0.05, p=0.5)"
    assert repr(TimeWarp(0.1, knots=3)) == "TimeWarp(sigma=0.1, knots=3, p=1.0)"
    assert repr(RandomCrop(0.5)) == "RandomCrop(length=0.5, p=1.0)"
    assert repr(ContextualCrop()) == "ContextualCrop(min_overlap=0.5, same_length=True, max_length='auto', step_budget=16384)"


@pytest.mark.parametrize(
    "make",
    [
        lambda: Jitter(-0.1),
        lambda: Jitter("a"),
        lambda: Jitter(0.1, p=1.5),
        lambda: Scaling(float("nan")),
        lambda: MagnitudeWarp(knots=0),
        lambda: MagnitudeWarp(knots=2.5),
        lambda: TimeWarp(sigma=-1),
        lambda: TimeWarp(knots=True),
        lambda: Permutation(1),
        lambda: RandomCrop(0),
        lambda: RandomCrop(1.5),
        lambda: RandomCrop(0.0),
        lambda: RandomCrop("10"),
        lambda: RandomCrop(10, p=0.5),
        lambda: TimestampMask(1.2),
        lambda: FrequencyMask(-0.1),
        lambda: ContextualCrop(0.0),
        lambda: ContextualCrop(1.1),
    ],
)
def test_invalid_arguments_raise_config_error(make):
    with pytest.raises(ConfigError):
        make()


def test_wrong_batch_shape_is_a_data_error():
    with pytest.raises(DataError, match=r"\(B, C, T\)"):
        Jitter()(torch.zeros(3, 4), make_generator(0))


def test_valid_lengths():
    x = padded()
    x[0, :, 60:] = float("nan")
    x[0, 1, 59] = float("nan")  # one channel still observed at step 59
    assert valid_lengths(x).tolist() == [60, 40, 17, 64]
    assert valid_lengths(torch.full((1, 2, 5), float("nan"))).tolist() == [0]


# ----------------------------------------------------------------------------- point-wise


def test_jitter_adds_zero_mean_noise_with_sigma():
    x = batch(64, 4, 256)
    d = Jitter(0.05)(x, make_generator(0)) - x
    assert abs(d.mean().item()) < 2e-3
    assert d.std().item() == pytest.approx(0.05, rel=0.02)


def test_scaling_multiplies_each_channel_by_one_factor():
    x = batch(200, 3, 32).abs() + 0.5
    y = Scaling(0.2)(x, make_generator(0))
    ratio = y / x
    assert torch.allclose(ratio, ratio[..., :1].expand_as(ratio), atol=1e-5)
    factors = ratio[..., 0]
    assert factors.mean().item() == pytest.approx(1.0, abs=0.03)
    assert factors.std().item() == pytest.approx(0.2, rel=0.1)
    assert factors.flatten().unique().numel() == factors.numel()  # one draw per (sample, channel)


def test_magnitude_warp_is_a_smooth_curve_around_one():
    x = torch.ones(300, 2, 100)
    curve = MagnitudeWarp(0.2, knots=4)(x, make_generator(0))
    assert not torch.equal(curve[:, 0], curve[:, 1])  # per channel
    # First value is a knot ~ N(1, 0.2^2); the curve is smooth (small second differences).
    assert curve[:, :, 0].mean().item() == pytest.approx(1.0, abs=0.03)
    assert curve[:, :, 0].std().item() == pytest.approx(0.2, rel=0.15)
    assert curve.diff(n=2, dim=-1).abs().max().item() < 0.02
    # Multiplicative: x * curve.
    z = batch(300, 2, 100)
    assert torch.allclose(MagnitudeWarp(0.2)(z, make_generator(0)), z * curve, atol=1e-6)


def test_natural_cubic_spline_interpolates_knots_and_lines():
    values = torch.tensor([[1.0, 3.0, 2.0, 5.0, 4.0]])
    u = torch.arange(5.0).unsqueeze(0)
    assert torch.allclose(natural_cubic_spline(values, u), values, atol=1e-6)
    line = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    uu = torch.linspace(0, 3, 31).unsqueeze(0)
    assert torch.allclose(natural_cubic_spline(line, uu), uu, atol=1e-6)


# ----------------------------------------------------------------------------- time axis


def test_time_warp_keeps_endpoints_and_range():
    x = padded()
    y = TimeWarp(0.3)(x, make_generator(0))
    for row, n in enumerate([64, 40, 17]):
        assert torch.allclose(y[row, :, 0], x[row, :, 0])
        assert torch.allclose(y[row, :, n - 1], x[row, :, n - 1], atol=1e-5)
        lo, hi = x[row, :, :n].amin(dim=1, keepdim=True), x[row, :, :n].amax(dim=1, keepdim=True)
        assert ((y[row, :, :n] >= lo - 1e-6) & (y[row, :, :n] <= hi + 1e-6)).all()
    # A missing value only spreads to its neighbourhood.
    assert torch.isnan(y[3, 0]).sum() <= 2 and not torch.isnan(y[3, 1]).any()


def test_time_warp_is_monotone_and_identity_for_tiny_sigma():
    ramp = torch.arange(50.0).repeat(20, 2, 1)
    y = TimeWarp(0.4)(ramp, make_generator(0))
    assert (y.diff(dim=-1) > 0).all()  # a monotone warp of an increasing ramp
    assert torch.equal(y[:, 0], y[:, 1])  # channels share the warp
    assert (y - ramp).abs().max() > 1.0
    x = batch()
    assert torch.allclose(TimeWarp(1e-7)(x, make_generator(0)), x, atol=1e-4)
    assert torch.allclose(TimeWarp(0.0)(x, make_generator(0)), x, atol=1e-5)


def test_permutation_keeps_values_and_changes_order():
    x = padded()
    y = Permutation(4)(x, make_generator(0))
    for row, n in enumerate([64, 40, 17, 64]):
        a, b = x[row, :, :n], y[row, :, :n]
        assert torch.equal(a.nan_to_num(9.0).sort(dim=1).values, b.nan_to_num(9.0).sort(dim=1).values)
        assert not torch.equal(a.nan_to_num(9.0), b.nan_to_num(9.0))
    # Whole time steps move (channels together), in at most max_segments contiguous runs.
    ramp = torch.arange(30.0).repeat(500, 2, 1)
    z = Permutation(4)(ramp, make_generator(1))
    assert torch.equal(z[:, 0], z[:, 1])
    runs = (z[:, 0].diff(dim=-1) != 1).sum(dim=1) + 1
    assert runs.min().item() >= 2 and runs.max().item() <= 4
    assert set(runs.tolist()) == {2, 3, 4}


def test_permutation_leaves_too_short_series():
    x = torch.tensor([[[1.0, float("nan"), float("nan")]], [[1.0, 2.0, 3.0]]])
    y = Permutation(3)(x, make_generator(0))
    assert y[0, 0, 0] == 1.0 and torch.isnan(y[0, 0, 1:]).all()
    assert sorted(y[1, 0].tolist()) == [1.0, 2.0, 3.0] and y[1, 0].tolist() != [1.0, 2.0, 3.0]


def _window_start(x_row: torch.Tensor, w_row: torch.Tensor) -> list[int]:
    n = w_row.shape[-1]
    return [s for s in range(x_row.shape[-1] - n + 1) if torch.equal(x_row[:, s : s + n], w_row)]


def test_random_crop_is_a_contiguous_window_of_the_valid_region():
    x = padded()
    y = RandomCrop(16)(x, make_generator(0))
    assert y.shape == (4, 2, 16)
    for row, n in enumerate([64, 40, 17, 64]):
        starts = _window_start(x[row].nan_to_num(9.0), y[row].nan_to_num(9.0))
        assert starts and starts[0] + 16 <= n
    assert not torch.isnan(y[:3]).any()
    # Offsets drawn per sample, covering the whole valid range.
    ramp = torch.arange(20.0).repeat(300, 1, 1)
    starts = RandomCrop(5)(ramp, make_generator(0))[:, 0, 0]
    assert set(starts.tolist()) == set(float(s) for s in range(16))
    assert RandomCrop(0.25)(batch(2, 1, 64), make_generator(0)).shape == (2, 1, 16)


def test_random_crop_names_the_short_series():
    x = padded()
    message = "series at batch row 1 has 40 valid time steps, shorter than the crop length 41"
    with pytest.raises(DataError, match=message):
        RandomCrop(41)(x, make_generator(0))


# ----------------------------------------------------------------------------- masking


def test_timestamp_mask_zeroes_whole_steps_with_ratio():
    x = batch(64, 3, 128)
    y = TimestampMask(0.2)(x, make_generator(0))
    masked = (y == 0).all(dim=1)
    assert masked.float().mean().item() == pytest.approx(0.2, abs=0.01)
    keep = ~masked.unsqueeze(1).expand_as(x)
    assert torch.equal(y[keep], x[keep])
    assert not ((y == 0) & ~masked.unsqueeze(1)).any()  # never part of a step
    p = padded()
    z = TimestampMask(0.5)(p, make_generator(0))
    assert torch.isnan(z[2, :, 17:]).all()  # padding is not masked
    assert (z[2, :, :17] == 0).all(dim=0).any()


def test_frequency_mask_zeroes_some_bins_and_keeps_the_mean():
    x = batch(32, 2, 100) + 3.0
    y = FrequencyMask(0.3)(x, make_generator(0))
    assert torch.allclose(y.mean(dim=-1), x.mean(dim=-1), atol=1e-5)
    fx, fy = torch.fft.rfft(x.double()), torch.fft.rfft(y.double())
    same = (fy - fx).abs() < 1e-3
    zero = fy.abs() < 1e-3
    assert (same | zero).all()  # each bin is kept or removed
    removed = zero & ~same
    assert torch.equal(removed[:, 0], removed[:, 1])  # shared by the channels
    assert not removed[..., 0].any()
    assert removed[:, 0].float().mean().item() == pytest.approx(0.3, abs=0.05)


def test_frequency_mask_uses_each_valid_region():
    x = padded()
    x[:, :, :] += 2.0
    y = FrequencyMask(0.5)(x, make_generator(0))
    for row, n in enumerate([64, 40, 17]):
        assert y[row, :, :n].mean().item() == pytest.approx(x[row, :, :n].mean().item(), abs=1e-5)
    assert torch.isnan(y[3, 0, 10]) and torch.isfinite(y[3, 0, 11:]).all()


# ----------------------------------------------------------------------------- contextual crop


@pytest.mark.parametrize("same_length", [True, False])
def test_contextual_crop_views_share_a_common_segment(same_length):
    x = padded()
    aug = ContextualCrop(0.5, same_length=same_length)
    views, starts, common = aug.crops(x, 3, make_generator(0))
    assert len(views) == 3 and common >= math.ceil(0.5 * 17)
    if same_length:
        assert len({v.shape[-1] for v in views}) == 1
    for v, s in zip(views, starts):
        assert v.shape[:2] == (4, 2) and v.shape[-1] <= 17
        assert not torch.isnan(v[:3]).any()  # inside every valid region
        shared = views[0][:, :, starts[0] : starts[0] + common]
        assert torch.equal(v[:, :, s : s + common].nan_to_num(9.0), shared.nan_to_num(9.0))
    for row in range(4):  # each view is a window of its series
        for v in views:
            assert _window_start(x[row].nan_to_num(9.0), v[row].nan_to_num(9.0))


def test_contextual_crop_draws_lengths_per_call_and_offsets_per_sample():
    ramp = torch.arange(100.0).repeat(64, 1, 1)
    aug = ContextualCrop(0.5)
    g = make_generator(3)
    draws = [aug.crops(ramp, 2, g) for _ in range(10)]
    assert len({tuple(v.shape[-1] for v in d[0]) for d in draws}) > 1
    for views, starts, common in draws:
        assert common >= 50
        assert views[0][:, 0, 0].unique().numel() > 1 or views[0].shape[-1] == 100
    a = aug.views(ramp, 2, make_generator(7))
    b = aug.views(ramp, 2, make_generator(7))
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    one = aug.views(batch(1, 2, 10), 2, make_generator(0))
    assert len(one) == 2 and one[0].shape[0] == 1


def test_contextual_crop_rejects_an_empty_series():
    x = padded()
    x[2] = float("nan")
    with pytest.raises(DataError, match="batch row 2"):
        ContextualCrop().views(x, 2, make_generator(0))
