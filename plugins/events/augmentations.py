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

from contrastkit.core.errors import ConfigError, check_int
from contrastkit.core.views import Augmentation, JointAugmentation

from .batch import ViewGroup, ViewSlice, check_batch, compact, gather_events, positions

__all__ = ["RandomSlices", "EventDropout", "TimeCrop", "AUGMENTATIONS"]


def _fraction(name: str, cls: str, value, low: float = 0.0, high: float = 1.0, open_low: bool = False) -> float:
    bad = isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
    if bad or value > high or value < low or (open_low and value == low):
        bound = "(" if open_low else "["
        raise ConfigError(f"{cls}: {name} must lie in {bound}{low}, {high}], got {value!r}.")
    return float(value)


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
        min_length: the shortest slice, ≥ 1.
        max_length: the longest slice, ≥ min_length.
    """

    keeps_shape = False

    def __init__(self, min_length: int = 25, max_length: int = 200) -> None:
        self.min_length = check_int("RandomSlices", "min_length", min_length, 1)
        self.max_length = check_int("RandomSlices", "max_length", max_length, 1)
        if self.max_length < self.min_length:
            raise ConfigError(f"RandomSlices: max_length ({max_length}) must be ≥ min_length ({min_length}).")

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
