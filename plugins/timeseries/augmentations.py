"""View transforms for time series.

Every transform takes a batch ``x`` of shape ``(B, C, T)`` (float, the form the
time-series collate produces: series shorter than ``T`` are padded at the END
with NaN; a NaN inside a series is a missing value) and returns a NEW tensor of
the same dtype and device.  Random parameters are drawn per sample from the
``torch.Generator`` passed at each call, so views change at every step and a
seeded generator reproduces them exactly.  Padding stays NaN and stays at the
end.  Everything is batched (no Python loop over samples) and device-agnostic.

The *valid length* of a series is one past its last time step at which some
channel is not NaN; time steps after it are padding.  (A series whose final
steps are missing in every channel is therefore treated as shorter.)

References
----------
- T. T. Um et al., "Data Augmentation of Wearable Sensor Data for Parkinson's
  Disease Monitoring using Convolutional Neural Networks", ICMI 2017 — jitter,
  scaling, magnitude warping, time warping, permutation, cropping.
- Z. Yue et al., "TS2Vec: Towards Universal Representation of Time Series",
  AAAI 2022 — contextual (overlapping) crops and timestamp masking.
- X. Zhang et al., "Self-Supervised Contrastive Pre-Training for Time Series
  via Time-Frequency Consistency" (TF-C), NeurIPS 2022; G. Woo et al., "CoST",
  ICLR 2022; L. Yang & S. Hong, "BTSF", ICML 2022 — frequency-domain masking.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from contrastkit.core import AlignedViews, Augmentation, ConfigError, DataError, JointAugmentation, check_int

__all__ = [
    "AUGMENTATIONS",
    "ContextualCrop",
    "FrequencyMask",
    "Jitter",
    "MagnitudeWarp",
    "Permutation",
    "RandomCrop",
    "Scaling",
    "TimeWarp",
    "TimestampMask",
    "crop_cap",
    "valid_lengths",
]


# --------------------------------------------------------------------------- helpers


def _check_batch(x: Any, who: str) -> torch.Tensor:
    """``x`` if it is a floating ``(B, C, T)`` tensor, else a DataError."""
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or not x.is_floating_point():
        what = f"a {x.dim()}-D {x.dtype} tensor" if isinstance(x, torch.Tensor) else type(x).__name__
        raise DataError(f"{who} expects a float time-series batch of shape (B, C, T), got {what}.")
    return x


def _check_nonneg(who: str, name: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{who}: {name} must be a number, got {value!r}.") from None
    if not math.isfinite(v) or v < 0:
        raise ConfigError(f"{who}: {name} must be a finite number >= 0, got {value!r}.")
    return v


def _check_fraction(who: str, name: str, value: Any, *, open_low: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{who}: {name} must be a number, got {value!r}.") from None
    ok = (0.0 < v <= 1.0) if open_low else (0.0 <= v <= 1.0)
    if not ok:
        interval = "(0, 1]" if open_low else "[0, 1]"
        raise ConfigError(f"{who}: {name} must lie in {interval}, got {value!r}.")
    return v


def valid_lengths(x: torch.Tensor) -> torch.Tensor:
    """Valid length of each series of a ``(B, C, T)`` batch, as a ``(B,)`` long tensor.

    One past the last time step at which some channel is not NaN; 0 for a row
    that is NaN everywhere.
    """
    observed = ~torch.isnan(x).all(dim=1)  # (B, T)
    steps = torch.arange(1, x.shape[-1] + 1, device=x.device)
    return (observed * steps).amax(dim=1) if x.shape[-1] > 0 else observed.sum(dim=1)


def _uniform_int(high: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Per element, an integer drawn uniformly from ``0 .. high`` (inclusive; ``high >= 0``)."""
    u = torch.rand(high.shape, generator=generator, device=high.device)
    return torch.minimum((u * (high + 1)).floor().long(), high)


def _scalar_randint(low: int, high: int, generator: torch.Generator | None, device: torch.device) -> int:
    """One integer drawn uniformly from ``low .. high`` (inclusive)."""
    return int(torch.randint(low, high + 1, (1,), generator=generator, device=device).item())


def _where_samples(mask: torch.Tensor, new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """``new`` for the samples selected by the ``(B,)`` mask, ``old`` elsewhere."""
    return torch.where(mask.view(-1, *([1] * (new.dim() - 1))), new, old)


def _knot_coordinates(lengths: torch.Tensor, n_intervals: int, t: int) -> torch.Tensor:
    """``(B, T)`` position of each time step in knot units: 0 at the first step, n at the last valid one."""
    steps = torch.arange(t, device=lengths.device, dtype=torch.float32)
    span = (lengths - 1).clamp(min=1).to(torch.float32).unsqueeze(1)
    return (steps.unsqueeze(0) * (n_intervals / span)).clamp(0.0, float(n_intervals))


def natural_cubic_spline(values: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Natural cubic spline through equally spaced knots, evaluated at ``u``.

    ``values`` has shape ``(..., n + 1)``: the curve's value at knots ``0, 1, …,
    n``; ``u`` has shape ``(..., T)`` with entries in ``[0, n]`` (same leading
    dimensions).  Returns ``(..., T)``.  The knot spacing is the same for every
    curve, so the tridiagonal system for the second derivatives is solved once
    and applied to the whole batch.
    """
    n = values.shape[-1] - 1
    if n < 1:
        raise ConfigError(f"a spline needs at least 2 knots, got {n + 1}.")
    curv = torch.zeros_like(values)  # second derivatives, 0 at both ends (natural spline)
    if n >= 2:
        m = n - 1
        a = 4.0 * torch.eye(m, dtype=values.dtype, device=values.device)
        if m > 1:
            off = torch.ones(m - 1, dtype=values.dtype, device=values.device)
            a = a + torch.diag(off, 1) + torch.diag(off, -1)
        rhs = 6.0 * (values[..., 2:] - 2.0 * values[..., 1:-1] + values[..., :-2])
        curv[..., 1:-1] = rhs @ torch.linalg.inv(a)  # a is symmetric
    i = u.floor().long().clamp(0, n - 1)
    s = u - i.to(u.dtype)
    y0, y1 = values.gather(-1, i), values.gather(-1, i + 1)
    m0, m1 = curv.gather(-1, i), curv.gather(-1, i + 1)
    r = 1.0 - s
    return m0 * r**3 / 6.0 + m1 * s**3 / 6.0 + (y0 - m0 / 6.0) * r + (y1 - m1 / 6.0) * s


def _random_curves(
    x: torch.Tensor, rows: int, sigma: float, knots: int, lengths: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """``(B, rows, T)`` smooth curves through ``knots + 2`` values ~ N(1, sigma²) spread over each valid prefix."""
    b, _, t = x.shape
    values = 1.0 + sigma * torch.randn(b, rows, knots + 2, generator=generator, device=x.device)
    u = _knot_coordinates(lengths, knots + 1, t).unsqueeze(1).expand(b, rows, t)
    return natural_cubic_spline(values, u.contiguous())


# --------------------------------------------------------------------------- point-wise


class Jitter(Augmentation):
    """Add Gaussian noise: ``x + ε`` with ``ε ~ N(0, sigma²)`` drawn per value.

    Um et al., ICMI 2017.  NaN (padding and missing values) stays NaN.

    >>> Jitter(sigma=0.03)(torch.zeros(2, 3, 50), make_generator(0)).shape   # doctest: +SKIP
    torch.Size([2, 3, 50])
    """

    def __init__(self, sigma: float = 0.03, p: float = 1.0) -> None:
        super().__init__(p)
        self.sigma = _check_nonneg(type(self).__name__, "sigma", sigma)

    def apply(self, batch: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        x = _check_batch(batch, type(self).__name__)
        mask = self.sample_mask(x.shape[0], generator, x.device)
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return _where_samples(mask, x + self.sigma * noise, x)


class Scaling(Augmentation):
    """Multiply each (sample, channel) by one factor ``a ~ N(1, sigma²)``.

    Um et al., ICMI 2017.  The factor is constant along time.
    """

    def __init__(self, sigma: float = 0.1, p: float = 1.0) -> None:
        super().__init__(p)
        self.sigma = _check_nonneg(type(self).__name__, "sigma", sigma)

    def apply(self, batch: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        x = _check_batch(batch, type(self).__name__)
        b, c, _ = x.shape
        mask = self.sample_mask(b, generator, x.device)
        factor = 1.0 + self.sigma * torch.randn(b, c, 1, generator=generator, device=x.device, dtype=x.dtype)
        return _where_samples(mask, x * factor, x)


class MagnitudeWarp(Augmentation):
    """Multiply by a smooth random curve along time, one per (sample, channel).

    Um et al., ICMI 2017.  The curve is the natural cubic spline through
    ``knots + 2`` values ~ N(1, sigma²), placed at equal distances from the
    first to the last valid time step of each series.
    """

    def __init__(self, sigma: float = 0.2, knots: int = 4, p: float = 1.0) -> None:
        super().__init__(p)
        who = type(self).__name__
        self.sigma = _check_nonneg(who, "sigma", sigma)
        self.knots = check_int(who, "knots", knots, 1)

    def apply(self, batch: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        x = _check_batch(batch, type(self).__name__)
        b, c, _ = x.shape
        mask = self.sample_mask(b, generator, x.device)
        curves = _random_curves(x, c, self.sigma, self.knots, valid_lengths(x), generator)
        return _where_samples(mask, x * curves.to(x.dtype), x)


# --------------------------------------------------------------------------- time axis


class TimeWarp(Augmentation):
    """Smooth random monotone distortion of the time axis.

    Um et al., ICMI 2017.  For each sample a random speed curve (natural cubic
    spline through ``knots + 2`` values ~ N(1, sigma²), clamped to at least
    ``1e-3`` so the warp stays increasing) is integrated into warped times
    ``w(0) = 0 < w(1) < … < w(L-1) = L-1`` over the series' valid length L; the
    output at step t is the input linearly interpolated at ``w(t)``.  One warp
    per sample, shared by its channels (they keep their alignment).

    Padding: only the valid prefix of each series is warped; the padding stays
    where it was, so the output has the same valid length.  The first and last
    valid values are kept, outputs lie between neighbouring inputs, and a
    missing value (NaN) contaminates only the outputs interpolated from it.
    """

    min_speed = 1e-3

    def __init__(self, sigma: float = 0.2, knots: int = 4, p: float = 1.0) -> None:
        super().__init__(p)
        who = type(self).__name__
        self.sigma = _check_nonneg(who, "sigma", sigma)
        self.knots = check_int(who, "knots", knots, 1)

    def apply(self, batch: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        x = _check_batch(batch, type(self).__name__)
        b, c, t = x.shape
        mask = self.sample_mask(b, generator, x.device)
        if t == 0:
            return x.clone()
        lengths = valid_lengths(x)
        speed = _random_curves(x, 1, self.sigma, self.knots, lengths, generator)[:, 0]  # (B, T)
        steps = torch.arange(t, device=x.device)
        inside = steps.unsqueeze(0) < lengths.unsqueeze(1)  # (B, T)
        step_len = torch.where(inside, speed.clamp(min=self.min_speed), torch.zeros_like(speed))
        step_len[:, 0] = 0.0
        warped = step_len.cumsum(dim=1)
        total = warped.gather(1, (lengths - 1).clamp(min=0).unsqueeze(1))
        last = (lengths - 1).clamp(min=0).unsqueeze(1).to(warped.dtype)
        warped = (warped / total.clamp(min=torch.finfo(warped.dtype).tiny) * last).clamp(min=0.0)
        warped = torch.minimum(warped, last)

        lo = warped.floor().long().clamp(min=0)
        lo = torch.minimum(lo, (lengths - 2).clamp(min=0).unsqueeze(1))
        hi = (lo + 1).clamp(max=t - 1)
        frac = (warped - lo.to(warped.dtype)).clamp(0.0, 1.0).unsqueeze(1).to(x.dtype)
        x0 = x.gather(2, lo.unsqueeze(1).expand(b, c, t))
        x1 = x.gather(2, hi.unsqueeze(1).expand(b, c, t))
        # Exact positions take the exact value, so a NaN neighbour with weight 0 does not leak.
        out = torch.where(frac == 0, x0, torch.where(frac == 1, x1, x0 + frac * (x1 - x0)))
        out = torch.where(inside.unsqueeze(1), out, x)
        return _where_samples(mask, out, x)


class Permutation(Augmentation):
    """Cut each series into random segments and shuffle them.

    Um et al., ICMI 2017.  Per sample, a number of segments is drawn uniformly
    from ``2 .. max_segments`` (at most the valid length), with cut points drawn
    uniformly without replacement inside the valid region; the segments are
    put in a random order that is never the original one.  All channels move
    together; padding stays at the end.  Series with fewer than 2 valid steps
    are left as they are.
    """

    def __init__(self, max_segments: int = 5, p: float = 1.0) -> None:
        super().__init__(p)
        self.max_segments = check_int(type(self).__name__, "max_segments", max_segments, 2)

    def apply(self, batch: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        x = _check_batch(batch, type(self).__name__)
        b, c, t = x.shape
        dev = x.device
        mask = self.sample_mask(b, generator, dev)
        if t < 2:
            return x.clone()
        s_max = self.max_segments
        lengths = valid_lengths(x)
        n_seg = torch.randint(2, s_max + 1, (b,), generator=generator, device=dev)
        n_seg = torch.minimum(n_seg, lengths.clamp(min=1))
        active = mask & (lengths >= 2)

        # Cut points: the (n_seg - 1) candidates 1..L-1 with the smallest random scores.
        cand = torch.arange(1, t, device=dev).unsqueeze(0)
        scores = torch.rand(b, t - 1, generator=generator, device=dev)
        scores = torch.where(cand < lengths.unsqueeze(1), scores, torch.full_like(scores, 2.0))
        rank = scores.argsort(dim=1).argsort(dim=1)
        cuts = rank < (n_seg - 1).unsqueeze(1)
        segment = torch.cat([torch.zeros(b, 1, dtype=torch.long, device=dev), cuts.long().cumsum(dim=1)], dim=1)

        # Random order of the segments, never the identity (then rotate by one).
        k = torch.arange(s_max, device=dev).unsqueeze(0)
        used = k < n_seg.unsqueeze(1)
        keys = torch.where(used, torch.rand(b, s_max, generator=generator, device=dev), 2.0 + k.float())
        order = keys.argsort(dim=1)  # new position -> segment
        identity = (order == k).all(dim=1, keepdim=True)
        rotated = torch.where(used, (k + 1) % n_seg.unsqueeze(1), k)
        order = torch.where(identity, rotated, order)
        position = order.argsort(dim=1)  # segment -> new position

        steps = torch.arange(t, device=dev).unsqueeze(0)
        inside = steps < lengths.unsqueeze(1)
        key = torch.where(inside, position.gather(1, segment) * t + steps, (s_max + 1) * t + steps)
        key = torch.where(active.unsqueeze(1), key, steps.expand(b, t))
        source = key.argsort(dim=1)
        return x.gather(2, source.unsqueeze(1).expand(b, c, t))


class RandomCrop(Augmentation):
    """A random window of ``length`` time steps from each series.

    Um et al., ICMI 2017 (cropping); the random-crop view of contrastive time
    series learning.  ``length`` is a number of time steps (int >= 1) or a
    fraction of the batch length ``T`` (float in (0, 1], rounded, at least 1).
    The window lies inside each series' valid region, at an offset drawn per
    sample; the output is ``(B, C, length)``.  Every sample is cropped (the
    views must share one length), so ``p`` must be 1.
    """

    keeps_shape = False

    def __init__(self, length: int | float, p: float = 1.0) -> None:
        super().__init__(p)
        who = type(self).__name__
        if self.p != 1.0:
            raise ConfigError(f"{who} crops every sample so that the batch keeps one length; p must be 1, got {p}.")
        if isinstance(length, bool) or not isinstance(length, (int, float)):
            raise ConfigError(f"{who}: length must be an int (time steps) or a float in (0, 1], got {length!r}.")
        if isinstance(length, int):
            self.length: int | float = check_int(who, "length", length, 1)
        else:
            self.length = _check_fraction(who, "length (as a fraction of the batch length)", length, open_low=True)

    def crop_length(self, t: int) -> int:
        """The window length for a batch of length ``t``."""
        if isinstance(self.length, int):
            return self.length
        return max(1, int(round(self.length * t)))

    def apply(self, batch: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        x = _check_batch(batch, type(self).__name__)
        b, c, t = x.shape
        n = self.crop_length(t)
        lengths = valid_lengths(x)
        short = (lengths < n).nonzero()
        if short.numel():
            row = int(short[0, 0])
            raise DataError(
                f"series at batch row {row} has {int(lengths[row])} valid time steps, "
                f"shorter than the crop length {n}."
            )
        start = _uniform_int(lengths - n, generator)
        index = start.unsqueeze(1) + torch.arange(n, device=x.device).unsqueeze(0)
        return x.gather(2, index.unsqueeze(1).expand(b, c, n))


# --------------------------------------------------------------------------- masking


class TimestampMask(Augmentation):
    """Set random time steps to 0 in every channel.

    Yue et al., TS2Vec, AAAI 2022 (timestamp masking; TS2Vec masks the latent
    input, here the raw input).  Each valid time step of a sample is masked
    independently with probability ``ratio``; a masked step becomes 0 (not NaN)
    in all channels, including a missing value there.  Padding stays NaN.
    """

    def __init__(self, ratio: float = 0.1, p: float = 1.0) -> None:
        super().__init__(p)
        self.ratio = _check_fraction(type(self).__name__, "ratio", ratio)

    def apply(self, batch: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        x = _check_batch(batch, type(self).__name__)
        b, _, t = x.shape
        mask = self.sample_mask(b, generator, x.device)
        hit = torch.rand(b, t, generator=generator, device=x.device) < self.ratio
        inside = torch.arange(t, device=x.device).unsqueeze(0) < valid_lengths(x).unsqueeze(1)
        hit = hit & inside & mask.unsqueeze(1)
        return torch.where(hit.unsqueeze(1), torch.zeros((), dtype=x.dtype, device=x.device), x)


class FrequencyMask(Augmentation):
    """Remove random frequency components of each series.

    Frequency-domain augmentation in the manner of TF-C (Zhang et al., NeurIPS
    2022), CoST (Woo et al., ICLR 2022) and BTSF (Yang & Hong, ICML 2022).  The
    valid region of each series (missing values filled with 0) goes through a
    real FFT of its own length; each frequency bin except DC is zeroed with
    probability ``ratio`` (one draw per sample and bin, shared by the
    channels); the inverse FFT gives a series of the same length, so the mean
    is preserved.  Missing values and padding are NaN again afterwards.
    Series are grouped by valid length (one FFT per distinct length).
    """

    def __init__(self, ratio: float = 0.1, p: float = 1.0) -> None:
        super().__init__(p)
        self.ratio = _check_fraction(type(self).__name__, "ratio", ratio)

    def apply(self, batch: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        x = _check_batch(batch, type(self).__name__)
        b, c, t = x.shape
        mask = self.sample_mask(b, generator, x.device)
        hit = torch.rand(b, t // 2 + 1, generator=generator, device=x.device) < self.ratio
        hit[:, 0] = False  # keep the DC bin (the mean)
        hit &= mask.unsqueeze(1)
        lengths = valid_lengths(x)
        out = x.clone()
        work = torch.promote_types(x.dtype, torch.float32)
        for n in lengths[hit.any(dim=1)].unique().tolist():
            rows = ((lengths == n) & hit.any(dim=1)).nonzero().squeeze(1)
            seg = x[rows, :, :n].to(work)
            missing = torch.isnan(seg)
            spec = torch.fft.rfft(torch.nan_to_num(seg, nan=0.0), n=n, dim=-1)
            keep = ~hit[rows, : n // 2 + 1].unsqueeze(1)
            back = torch.fft.irfft(spec * keep, n=n, dim=-1)
            out[rows, :, :n] = torch.where(missing, seg, back).to(x.dtype)
        return out


# --------------------------------------------------------------------------- joint

#: Rows × time steps that one training batch of crops may hold under the "auto" cap: 16,384 is a
#: batch of 8 series × 2 views × 1,024 steps, about 0.45 GB of saved activations with the default
#: TS2Vec encoder (64 wide, 10 blocks; measured 0.8 GB for 16 × 2,000 steps on CPU).
STEP_BUDGET = 16_384
#: TS2Vec's max_train_length: longer series are trained on windows of at most this many steps.
MAX_CROP = 3_000
#: The "auto" cap never goes below this many steps (a larger batch then costs memory instead).
MIN_CROP = 512


def crop_cap(batch: int, views: int, step_budget: int = STEP_BUDGET) -> int:
    """The "auto" crop cap of :class:`ContextualCrop`: ``min(3000, max(512, step_budget // (batch·views)))``.

    E.g. batch 8, 2 views, the default budget 16,384: 1,024 steps; batch 2: 3,000 (TS2Vec's
    ``max_train_length``); batch 64: 512 (the floor).
    """
    return min(MAX_CROP, max(MIN_CROP, step_budget // max(1, batch * views)))



class ContextualCrop(JointAugmentation):
    """K overlapping crops of each series (TS2Vec's contextual consistency).

    Yue et al., TS2Vec, AAAI 2022, generalised from 2 to K views.  Per call,
    with ``L`` the shortest valid length in the batch:

    1. a common segment of length ``l ~ U{ceil(min_overlap·L) .. L}`` is placed
       at position ``s ~ U{0 .. L-l}`` of a window of length ``L``;
    2. view j is that segment extended by ``a_j ~ U{0 .. s}`` steps to the left
       and ``b_j ~ U{0 .. L-l-s}`` to the right, so its length is
       ``l + a_j + b_j`` (views may differ in length from each other, but each
       view has one length for the whole batch, so it stacks);
    3. per sample, the union of the views is shifted by a random offset that
       keeps it inside that series' valid region.

    All K views therefore contain the same ``l`` time steps of each series,
    starting at index ``a_j`` of view j (see :meth:`crops`).

    Long series (bounded memory): ``L`` is at most the crop cap, so that a
    training batch holds at most about ``step_budget`` rows × steps (the
    activations a step keeps grow with B·K·L).  With ``max_length="auto"``
    (the default) the cap for a batch of B series and K views is
    :func:`crop_cap` = ``min(3000, max(512, step_budget // (B·K)))`` — 3000 is
    TS2Vec's ``max_train_length``; the floor of 512 steps keeps crops of long
    series long enough to mean something (lower the batch size if it binds).
    An integer ``max_length`` is a fixed cap and ``None`` none.  Series no
    longer than the cap (every shipped data set) are cropped exactly as
    without it.

    With ``same_length=True`` (the default) every view gets one length
    ``n ~ U{l .. L}`` and view j starts ``a_j`` steps before the common segment,
    ``a_j ~ U{max(0, s+n-L) .. min(s, n-l)}``: the views still share the same
    ``l`` steps, and the encoder can process all K views in one batched pass.
    """

    def __init__(self, min_overlap: float = 0.5, same_length: bool = True, max_length: int | str | None = "auto",
                 step_budget: int = STEP_BUDGET) -> None:
        who = type(self).__name__
        self.min_overlap = _check_fraction(who, "min_overlap", min_overlap, open_low=True)
        if not isinstance(same_length, bool):
            raise ConfigError(f"{who}: same_length must be true or false, got {same_length!r}.")
        self.same_length = same_length
        if max_length is None or max_length == "none":
            max_length = None
        elif max_length != "auto":
            max_length = check_int(who, "max_length (or \"auto\", \"none\")", max_length, 2)
        self.max_length = max_length
        self.step_budget = check_int(who, "step_budget", step_budget, 1)

    def cap(self, b: int, k: int) -> int | None:
        """The longest window the K crops of a batch of ``b`` series are drawn from (None: no cap)."""
        if self.max_length == "auto":
            return crop_cap(b, k, self.step_budget)
        return self.max_length

    def crops(
        self, batch: torch.Tensor, k: int, generator: torch.Generator | None
    ) -> tuple[list[torch.Tensor], list[int], int]:
        """The K views, the start of the common segment in each view, and its length."""
        who = type(self).__name__
        x = _check_batch(batch, who)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"{who}: the number of views must be an integer >= 1, got {k!r}.")
        b, c, _ = x.shape
        dev = x.device
        lengths = valid_lengths(x)
        if b == 0:
            raise DataError(f"{who} got an empty batch.")
        shortest = int(lengths.argmin())
        span = int(lengths[shortest])
        if span == 0:
            raise DataError(f"{who}: series at batch row {shortest} has no valid time steps.")
        cap = self.cap(b, k)
        if cap is not None and span > cap:  # long series: a window of `cap` steps, placed per sample below
            span = cap
        common = _scalar_randint(max(1, math.ceil(self.min_overlap * span)), span, generator, dev)
        place = _scalar_randint(0, span - common, generator, dev)
        if self.same_length:
            n = _scalar_randint(common, span, generator, dev)
            lo, hi = max(0, place + n - span), min(place, n - common)
            left = [_scalar_randint(lo, hi, generator, dev) for _ in range(k)]
            right = [n - common - a for a in left]
        else:
            left = [_scalar_randint(0, place, generator, dev) for _ in range(k)]
            right = [_scalar_randint(0, span - common - place, generator, dev) for _ in range(k)]
        first = place - max(left)  # union of the views within the window: [first, last)
        last = place + common + max(right)
        # Per sample, shift the union so that it stays inside [0, length).
        shift = _uniform_int(lengths - (last - first), generator) - first
        views = []
        for a, r in zip(left, right):
            n = a + common + r
            index = (shift + place - a).unsqueeze(1) + torch.arange(n, device=dev).unsqueeze(0)
            views.append(x.gather(2, index.unsqueeze(1).expand(b, c, n)))
        return views, left, common

    def views(self, batch: torch.Tensor, k: int, generator: torch.Generator | None) -> AlignedViews:
        """The K crops, aligned on their common segment (for dense, per-time-step losses)."""
        views, starts, common = self.crops(batch, k, generator)
        return AlignedViews(views, [slice(s, s + common) for s in starts])


#: The time-series augmentations by the name that configs use; the plugin's hook registers them.
AUGMENTATIONS: dict[str, type] = {
    "jitter": Jitter,
    "scaling": Scaling,
    "magnitude_warp": MagnitudeWarp,
    "time_warp": TimeWarp,
    "permutation": Permutation,
    "random_crop": RandomCrop,
    "timestamp_mask": TimestampMask,
    "frequency_mask": FrequencyMask,
    "contextual_crop": ContextualCrop,
}
