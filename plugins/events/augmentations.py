"""Views of event sequences: CoLES random slices, event dropout, time-window crops.

All of them act on a whole padded batch (see :mod:`.batch`) with index
arithmetic — no loop over entities — draw their random numbers per entity
from the ``torch.Generator`` they are given (so the views change at every
step and a seeded generator reproduces them), and return a new batch.  They
change the number of events, so ``keeps_shape = False``.
"""

from __future__ import annotations

import math

import torch

from contrastkit.core import Augmentation, ConfigError, JointAugmentation, check_int

from .batch import ViewGroup, ViewSlice, check_batch, compact, gather_events, positions
from .messages import note

__all__ = ["RandomSlices", "EventDropout", "TimeCrop", "AUGMENTATIONS"]


def _fraction(name: str, cls: str, value, low: float = 0.0, high: float = 1.0, open_low: bool = False) -> float:
    bad = isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
    if bad or value > high or value < low or (open_low and value == low):
        bound = "(" if open_low else "["
        raise ConfigError(f"{cls}: {name} must lie in {bound}{low}, {high}], got {value!r}.")
    return float(value)


def auto_slice_lengths(quantiles) -> tuple[int, int]:
    """Slice lengths for ``"auto"``, from the training entities' length percentiles (10, 50, 90):
    ``min_length`` = 15 % of the median (1 to 25 events), ``max_length`` = the 90th percentile (2 to
    200).  On CoLES-like data (sequences of 50–300 events) this gives CoLES' own 25–200; on short
    purchase histories (CDNOW: median 1, 90th percentile 4) it gives 1–4."""
    if quantiles is None:
        return 25, 200  # CoLES' defaults, when no data were seen (e.g. a slicer built by hand)
    _, p50, p90 = (float(q) for q in quantiles)
    lo = int(min(max(round(0.15 * p50), 1), 25))
    hi = int(min(max(round(p90), 2, lo), 200))
    return lo, hi


def resolve_slice_lengths(min_length: int | str, max_length: int | str,
                          quantiles=None) -> tuple[int, int]:
    """(min_length, max_length) of :class:`RandomSlices`: given integers as they are, ``"auto"`` ones by
    :func:`auto_slice_lengths` and kept consistent with the given one."""
    for name, v in (("min_length", min_length), ("max_length", max_length)):
        if isinstance(v, str) and v != "auto":
            raise ConfigError(f"RandomSlices: {name} must be an integer ≥ 1 or \"auto\", got {v!r}.")
    auto_lo, auto_hi = auto_slice_lengths(quantiles)
    lo = None if min_length == "auto" else check_int("RandomSlices", "min_length", min_length, 1)
    hi = None if max_length == "auto" else check_int("RandomSlices", "max_length", max_length, 1)
    if lo is not None and hi is not None and hi < lo:
        raise ConfigError(f"RandomSlices: max_length ({hi}) must be ≥ min_length ({lo}).")
    lo = lo if lo is not None else (min(auto_lo, hi) if hi is not None else auto_lo)
    return lo, hi if hi is not None else max(auto_hi, lo)


class RandomSlices(JointAugmentation):
    r"""CoLES' views: K random contiguous sub-sequences of every entity (Babaev et al., SIGMOD 2022, §3.2).

    For every entity of length L and every view, a slice length
    ℓ ~ U{min(min_length, L), …, min(max_length, L)} and a start
    s ~ U{0, …, L − ℓ} are drawn; the view holds events s … s+ℓ−1.  An entity
    shorter than ``min_length`` gives its whole sequence to every view
    (pretraining can skip such entities with ``data_options.min_events``).
    pytorch-lifestream calls this ``SampleSlices(split_count, cnt_min, cnt_max)``;
    the split count is the number of views K.

    Args:
        min_length: the shortest slice, ≥ 1, or "auto" (default; see :func:`auto_slice_lengths`).
        max_length: the longest slice, ≥ min_length, or "auto" (default).
        length_percentiles: filled from the prepared data's meta (10th, 50th and 90th percentile of
            the training entities' lengths); used by "auto".
    """

    keeps_shape = False
    from_meta = ("length_percentiles",)

    def __init__(self, min_length: int | str = "auto", max_length: int | str = "auto",
                 length_percentiles: tuple[float, float, float] | None = None) -> None:
        self.min_length, self.max_length = resolve_slice_lengths(min_length, max_length, length_percentiles)
        self.length_percentiles = length_percentiles
        if "auto" in (min_length, max_length) and length_percentiles is not None:
            _, p50, p90 = (float(q) for q in length_percentiles)
            note(f"random_slices: slices of {self.min_length}–{self.max_length} events (\"auto\": the training "
                 f"entities have a median of {p50:g} and a 90th percentile of {p90:g} events; set "
                 "joint_view.min_length/max_length to choose).")

    def views(self, batch, k: int, generator=None):
        check_batch(batch, "random_slices")
        lengths = batch["lengths"]
        b = lengths.shape[0]
        lo = lengths.clamp(max=self.min_length)
        hi = lengths.clamp(max=self.max_length)
        u = torch.rand((2, k, b), generator=generator, device=lengths.device, dtype=torch.float64)
        size = lo + (u[0] * (hi - lo + 1).to(torch.float64)).floor().long().clamp_max(hi - lo)
        start = (u[1] * (lengths - size + 1).to(torch.float64)).floor().long().clamp_max(lengths - size)
        width = max(int(size.max()), 1) if b else 1  # one host sync for all views
        # All K views in one gather over K·B rows (view-major); each view is a slice of it that
        # remembers the group, so an encoder can run the K·B sequences in one pass.
        rows = torch.arange(b, device=lengths.device).repeat(k)
        index = start.reshape(-1)[:, None] + positions(batch, width)
        group = ViewGroup(gather_events(batch, index, size.reshape(-1), rows=rows))
        return [ViewSlice({key: v[j * b:(j + 1) * b] for key, v in group.batch.items()}, group,
                          slice(j * b, (j + 1) * b)) for j in range(k)]


class EventDropout(Augmentation):
    """Drop each event independently with probability ``rate`` (every entity keeps at least one).

    Applied to an entity with probability ``p``.
    """

    keeps_shape = False

    def __init__(self, rate: float = 0.1, p: float = 1.0) -> None:
        super().__init__(p)
        self.rate = _fraction("rate", "EventDropout", rate, 0.0, 1.0)
        if self.rate >= 1.0:
            raise ConfigError(f"EventDropout: rate must be below 1, got {rate!r}.")

    def apply(self, batch, generator=None):
        check_batch(batch, "event_dropout")
        b, t = batch["time"].shape
        dev = batch["time"].device
        chosen = self.sample_mask(b, generator, dev)
        keep = (torch.rand((b, t), generator=generator, device=dev) >= self.rate) | ~chosen[:, None]
        keep = keep & (positions(batch) < batch["lengths"][:, None])
        none = ~keep.any(1)
        keep[:, 0] |= none  # an entity that lost every event keeps its first
        return compact(batch, keep)


class TimeCrop(Augmentation):
    """Keep the events inside a random time window covering a fraction f ~ U[min_fraction, max_fraction]
    of the entity's time span (at least one event: the first at or after the window's start).

    Applied to an entity with probability ``p``.
    """

    keeps_shape = False

    def __init__(self, min_fraction: float = 0.5, max_fraction: float = 1.0, p: float = 1.0) -> None:
        super().__init__(p)
        self.min_fraction = _fraction("min_fraction", "TimeCrop", min_fraction, 0.0, 1.0, open_low=True)
        self.max_fraction = _fraction("max_fraction", "TimeCrop", max_fraction, 0.0, 1.0, open_low=True)
        if self.max_fraction < self.min_fraction:
            raise ConfigError(f"TimeCrop: max_fraction ({max_fraction}) must be ≥ min_fraction ({min_fraction}).")

    def apply(self, batch, generator=None):
        check_batch(batch, "time_crop")
        time, lengths = batch["time"], batch["lengths"]
        b = time.shape[0]
        dev = time.device
        valid = positions(batch) < lengths[:, None]
        first = time[:, 0]
        last = time.gather(1, (lengths - 1).clamp_min(0)[:, None])[:, 0]
        span = (last - first).clamp_min(0)
        u = torch.rand((2, b), generator=generator, device=dev, dtype=torch.float64)
        frac = self.min_fraction + (self.max_fraction - self.min_fraction) * u[0]
        width = frac.to(time.dtype) * span
        begin = first + u[1].to(time.dtype) * (span - width)
        keep = valid & (time >= begin[:, None]) & (time <= (begin + width)[:, None])
        chosen = self.sample_mask(b, generator, dev)
        keep = torch.where(chosen[:, None], keep, valid)
        none = ~keep.any(1)
        after = (valid & (time >= begin[:, None])).long().argmax(1)
        keep[torch.arange(b, device=dev), after] |= none
        return compact(batch, keep)


AUGMENTATIONS = {"random_slices": RandomSlices, "event_dropout": EventDropout, "time_crop": TimeCrop}
