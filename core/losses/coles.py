"""CoLES' margin-based contrastive loss with hard-negative pair selection."""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from ..distributed import gather_with_grad, rank, world_size
from ..errors import ConfigError
from .base import ContrastiveLoss, LossOutput


class CoLESLoss(ContrastiveLoss):
    r"""The contrastive objective of CoLES (Babaev, Ovsov, Kireev, Ivanova, Gusev, Nazarov,
    Tuzhilin, SIGMOD 2022, "CoLES: Contrastive Learning for Event Sequences with
    Self-Supervision"): a margin loss (Hadsell, Chopra & LeCun 2006) over the K·B
    embeddings of K sub-sequences of B entities, with hard-negative pair selection.

    Embeddings are L2-normalised (CoLES' encoder normalises its output).  Positive
    pairs P are the K(K−1)/2 pairs of sub-sequences of every entity; for every
    anchor a, its negative pairs N(a) are the ``neg_count`` *hardest* negatives:
    the embeddings of other entities closest to a (selected without gradient).

    .. math::
        L = \frac{1}{|P| + \sum_a |N(a)|}\Big[\sum_{(a,p)\in P} \lVert z_a - z_p\rVert^2
            + \sum_a\sum_{n\in N(a)} \max(0,\, m - \lVert z_a - z_n\rVert)^2\Big]

    i.e. the mean over the selected pairs (pytorch-lifestream's ContrastiveLoss
    with HardNegativePairSelector returns their sum; the mean keeps the scale
    independent of the batch size and makes DDP exact).  With fewer than
    ``neg_count`` negatives in the batch, all of them are used.

    Shapes: ``views`` is a list of K tensors B × D (row b of every view: the
    same entity); returns a scalar.  ``labels`` are ignored (the entity is the row).

    Distributed: gather — each rank's anchors choose their hardest negatives
    among the embeddings of all ranks, gathered with gradient; positives are
    local.  With DDP's gradient averaging, loss and gradients equal one process
    on the whole batch.

    Example::

        loss = CoLESLoss(margin=0.5, neg_count=5)
        out = loss([z1, z2, z3, z4, z5])      # 5 sub-sequences per entity

    Args:
        margin: m > 0; negatives farther than m cost nothing.
        neg_count: number of hardest negatives per anchor, an integer ≥ 1.
        normalize: L2-normalise the embeddings first (default, as in CoLES).
    """

    distributed = "gather"

    def __init__(self, margin: float = 0.5, neg_count: int = 5, normalize: bool = True) -> None:
        super().__init__()
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not math.isfinite(margin) or margin <= 0:
            raise ConfigError(f"CoLESLoss: margin must be a positive number, got {margin!r}.")
        if isinstance(neg_count, bool) or not isinstance(neg_count, int) or neg_count < 1:
            raise ConfigError(f"CoLESLoss: neg_count must be an integer ≥ 1, got {neg_count!r}.")
        self.margin, self.neg_count, self.normalize = float(margin), neg_count, bool(normalize)

    def forward(self, views: Sequence[torch.Tensor], labels: torch.Tensor | None = None) -> LossOutput:
        self.check_views(views)
        k, b = len(views), views[0].shape[0]
        w = world_size()
        if b * w < 2:
            raise ConfigError(f"CoLESLoss: needs at least 2 entities in the (global) batch, got {b * w}.")
        zs = [F.normalize(v, dim=1) if self.normalize else v for v in views]
        local = torch.stack(zs)  # K × B × D
        dev = local.device

        li, mi = torch.triu_indices(k, k, 1, device=dev)
        pos = (local[li] - local[mi]).pow(2).sum(-1).flatten()  # K(K−1)/2 · B squared distances

        anchors = local.flatten(0, 1)  # (K·B) × D, view-major
        every = torch.cat([gather_with_grad(z) for z in zs])  # (K·W·B) × D, view-major
        with torch.no_grad():  # selection only: one (K·B) × (K·W·B) matrix
            d2 = (anchors.pow(2).sum(1, keepdim=True) + every.pow(2).sum(1) - 2.0 * anchors @ every.T)
            anchor_entity = rank() * b + torch.arange(k * b, device=dev) % b
            cand_entity = torch.arange(every.shape[0], device=dev) % (w * b)
            d2.masked_fill_(anchor_entity[:, None] == cand_entity[None, :], float("inf"))
            count = min(self.neg_count, k * (w * b - 1))
            hard = d2.topk(count, dim=1, largest=False).indices  # (K·B) × count
        dist = torch.linalg.vector_norm(anchors[:, None, :] - every[hard], dim=-1)
        neg = F.relu(self.margin - dist).pow(2).flatten()

        loss = (pos.sum() + neg.sum()) / (pos.numel() + neg.numel())
        with torch.no_grad():
            parts = {
                "pos_dist": pos.sqrt().mean(),
                "neg_dist": dist.mean(),
                "neg_active": (dist < self.margin).to(dist.dtype).mean(),
            }
        return LossOutput(loss, parts)


LOSSES = {"coles": CoLESLoss}
