"""Batches of event sequences: padded tensors plus lengths, built and re-indexed without per-event loops.

A batch is a dict of tensors:

* ``"cat"``: int64 (B, T, C_cat), vocabulary ids (0 is padding, 1 out of vocabulary);
* ``"num"``: float32 (B, T, C_num), transformed numeric fields (0 in padding);
* ``"time"``: float64 (B, T), event times (days since the epoch for dates);
* ``"lengths"``: int64 (B,), the number of real events of each row (≥ 1).

Events sit at the start of each row in time order; positions ``≥ lengths[b]``
are padding.  Views (slices, dropout, crops) are new batches of the same form,
made by :func:`gather_events` with index arithmetic on the whole batch.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from contrastkit.core import DataError

KEYS = ("cat", "num", "time", "lengths")
_NDIM = {"cat": 3, "num": 3, "time": 2, "lengths": 1}


def collate(items: Sequence[dict]) -> dict[str, torch.Tensor]:
    """Pad a list of entity items (dicts of ``time``, ``cat``, ``num`` arrays) into one batch."""
    if len(items) == 0:
        raise DataError("cannot make a batch of no event sequences.")
    try:
        lengths = np.fromiter((len(it["time"]) for it in items), dtype=np.int64, count=len(items))
        time = np.concatenate([it["time"] for it in items])
        cat = np.concatenate([it["cat"] for it in items])
        num = np.concatenate([it["num"] for it in items])
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"items must be dicts of 'time', 'cat' and 'num' arrays of one width each ({exc}).") from None
    if (lengths < 1).any():
        raise DataError(f"entity {int(np.argmin(lengths))} of the batch has no event.")
    b, t = len(items), int(lengths.max())
    row = np.repeat(np.arange(b), lengths)
    pos = np.arange(len(time)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    out_cat = np.zeros((b, t, cat.shape[1]), dtype=np.int64)
    out_num = np.zeros((b, t, num.shape[1]), dtype=np.float32)
    out_time = np.zeros((b, t), dtype=np.float64)
    out_cat[row, pos] = cat
    out_num[row, pos] = num
    out_time[row, pos] = time
    return {"cat": torch.from_numpy(out_cat), "num": torch.from_numpy(out_num), "time": torch.from_numpy(out_time),
            "lengths": torch.from_numpy(lengths)}


def check_batch(batch: Any, who: str) -> None:
    """Refuse anything that is not an events batch, in one sentence."""
    if not isinstance(batch, dict) or any(k not in batch for k in KEYS):
        got = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise DataError(f"{who} takes an events batch (a dict of {', '.join(KEYS)}), got {got}.")
    for key, nd in _NDIM.items():
        x = batch[key]
        if not isinstance(x, torch.Tensor) or x.ndim != nd:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise DataError(f"{who}: batch['{key}'] must be a tensor with {nd} dimension(s), got {shape}.")
    if batch["time"].shape[0] != batch["lengths"].shape[0]:
        raise DataError(f"{who}: {batch['time'].shape[0]} rows of events but {batch['lengths'].shape[0]} lengths.")


def positions(batch: dict, t: int | None = None) -> torch.Tensor:
    """(1, T) positions 0..T−1 on the batch's device."""
    t = batch["time"].shape[1] if t is None else t
    return torch.arange(t, device=batch["time"].device)[None, :]


def gather_events(batch: dict, index: torch.Tensor, lengths: torch.Tensor,
                  rows: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """A new batch whose row r holds the events ``index[r, :lengths[r]]`` of row ``rows[r]`` of ``batch``
    (row r itself when ``rows`` is None).

    ``index`` is (R, T'); entries at or past ``lengths`` are ignored (the output is zero there).
    """
    t_new = index.shape[1]
    valid = positions(batch, t_new) < lengths[:, None]
    idx = torch.where(valid, index, torch.zeros_like(index)).clamp_(0, max(batch["time"].shape[1] - 1, 0))
    if rows is None:
        rows = torch.arange(index.shape[0], device=index.device)
    out = {}
    for key in ("cat", "num", "time"):
        g = batch[key][rows[:, None], idx]
        out[key] = g * (valid[..., None] if g.ndim == 3 else valid).to(g.dtype)
    out["lengths"] = lengths.to(batch["lengths"].dtype)
    return out


def compact(batch: dict, keep: torch.Tensor) -> dict[str, torch.Tensor]:
    """Keep the events where ``keep`` (B, T) is true, in order, moved to the start of each row."""
    t = keep.shape[1]
    pos = positions(batch, t).expand_as(keep)
    keep = keep & (pos < batch["lengths"][:, None])
    key = torch.where(keep, pos, pos + t)  # kept positions first, in order
    order = key.argsort(dim=1)
    lengths = keep.sum(1)
    t_new = max(int(lengths.max()) if lengths.numel() else 1, 1)
    return gather_events(batch, order[:, :t_new], lengths)


class ViewGroup:
    """The K views of one draw, stacked into one batch of K·B rows (view-major), as
    :class:`~.augmentations.RandomSlices` builds them: an encoder's ``forward_views`` that gets all
    the views of a group runs this batch as it is, in one pass, without concatenating anything."""

    def __init__(self, batch: dict[str, torch.Tensor]) -> None:
        self.batch = batch
        self.rows = int(batch["lengths"].shape[0])


class ViewSlice(dict):
    """One view of a :class:`ViewGroup`: a plain batch dict (rows ``rows`` of the group's tensors)
    that also remembers its group."""

    def __init__(self, data: dict, group: ViewGroup, rows: slice) -> None:
        super().__init__(data)
        self.group, self.rows = group, rows


def concat_batches(batches: Sequence[dict]) -> tuple[dict[str, torch.Tensor], list[int]]:
    """One batch holding the rows of all ``batches`` (padded to the longest), and each one's row count."""
    sizes = [int(b["lengths"].shape[0]) for b in batches]
    t = max(int(b["time"].shape[1]) for b in batches)
    out = {}
    for key in ("cat", "num", "time"):
        first = batches[0][key]
        x = first.new_zeros((sum(sizes), t) + tuple(first.shape[2:]))
        at = 0
        for b, n in zip(batches, sizes):
            x[at:at + n, : b[key].shape[1]] = b[key]
            at += n
        out[key] = x
    out["lengths"] = torch.cat([b["lengths"] for b in batches])
    return out, sizes


def encode_views(encode, views: Sequence[dict]) -> list[torch.Tensor]:
    """``encode`` (a batch → B × D function) over K views in one pass: the views' own group batch when
    they are exactly the views of one :class:`ViewGroup`, in order; else their concatenation."""
    group = getattr(views[0], "group", None)
    if isinstance(group, ViewGroup) and all(getattr(v, "group", None) is group for v in views):
        spans = [(v.rows.start, v.rows.stop) for v in views]
        if spans[0][0] == 0 and spans[-1][1] == group.rows and all(a[1] == b[0] for a, b in zip(spans, spans[1:])):
            out = encode(group.batch)
            return [out[v.rows] for v in views]
    batch, sizes = concat_batches(views)
    return list(encode(batch).split(sizes))
