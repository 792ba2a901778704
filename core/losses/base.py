"""Base class of all losses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import nn

from ..errors import ConfigError


@dataclass
class LossOutput:
    """The loss to minimise and named scalar parts to log."""

    loss: torch.Tensor
    parts: dict[str, torch.Tensor] = field(default_factory=dict)


class ContrastiveLoss(nn.Module):
    """Base class: ``forward(views, labels=None) -> LossOutput``.

    ``views`` is a sequence of K ≥ 2 tensors of shape B × D (row b of every
    view comes from the same sample).  ``distributed`` documents the loss's
    behaviour under DDP.
    """

    distributed: str = "local"
    #: True for losses that use labels (the trainer then passes integer label codes, −1 = unknown).
    uses_labels: bool = False
    #: True for losses over the encoder's per-position outputs (``Encoder.forward_timesteps``) of
    #: aligned views, e.g. TS2Vec's hierarchical loss: no projection head, no momentum target.
    dense: bool = False
    #: True for losses that need the momentum encoder's queue of negatives (``[momentum]`` with
    #: ``queue_size > 0``), e.g. MoCHi; the run is refused at build time otherwise.
    needs_queue: bool = False

    @staticmethod
    def check_views(views: Sequence[torch.Tensor]) -> None:
        if len(views) < 2:
            raise ConfigError(f"a contrastive loss needs at least 2 views, got {len(views)}.")
        shape = views[0].shape
        if views[0].dim() != 2:
            raise ConfigError(f"each view must be a B × D tensor, got shape {tuple(shape)}.")
        for v in views[1:]:
            if v.shape != shape:
                raise ConfigError(f"all views must have the same shape, got {tuple(shape)} and {tuple(v.shape)}.")
