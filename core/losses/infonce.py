"""InfoNCE / NT-Xent for K views."""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from ..distributed import gather_with_grad, rank, world_size
from ..errors import ConfigError
from .base import ContrastiveLoss, LossOutput


class InfoNCE(ContrastiveLoss):
    r"""InfoNCE / NT-Xent over K views (Oord et al. 2018, CPC; Chen et al. 2020, SimCLR).

    The N = K·B embeddings are L2-normalised.  For an anchor i, its positives
    P(i) are the other K−1 views of the same sample and every other embedding
    in the batch is a negative:

    .. math::
        \ell_i = -\frac{1}{|P(i)|}\sum_{p\in P(i)}
                 \log\frac{\exp(s_{ip}/\tau)}{\sum_{j\neq i}\exp(s_{ij}/\tau)},
        \qquad L = \frac{1}{N}\sum_i \ell_i ,

    with :math:`s_{ij}` the cosine similarity.  For K = 2 this is SimCLR's
    NT-Xent.

    Shapes: ``views`` is a list of K tensors B × D; returns a scalar.

    Distributed: each rank's anchors are contrasted with the embeddings of all
    ranks, gathered with gradient; with DDP's gradient averaging, loss and
    gradients equal one process on the whole batch.

    Example::

        loss = InfoNCE(temperature=0.1)
        out = loss([z1, z2])          # z1, z2: B × D
        out.loss.backward()

    Args:
        temperature: τ > 0.
        learnable_temperature: learn log τ as a parameter (CLIP-style), started at ``temperature``.
    """

    distributed = "gather"

    def __init__(self, temperature: float = 0.1, learnable_temperature: bool = False) -> None:
        super().__init__()
        if not (isinstance(temperature, (int, float)) and temperature > 0):
            raise ConfigError(f"InfoNCE: temperature must be a positive number, got {temperature!r}.")
        self.learnable_temperature = bool(learnable_temperature)
        log_t = torch.tensor(math.log(float(temperature)))
        if self.learnable_temperature:
            self.log_temperature = torch.nn.Parameter(log_t)
        else:
            self.register_buffer("log_temperature", log_t)

    @property
    def temperature(self) -> torch.Tensor:
        return self.log_temperature.exp()

    def forward(self, views: Sequence[torch.Tensor], labels: torch.Tensor | None = None) -> LossOutput:
        self.check_views(views)
        k, b = len(views), views[0].shape[0]
        w, r = world_size(), rank()
        normed = [F.normalize(v, dim=1) for v in views]
        local = torch.cat(normed, dim=0)  # (K·B) × D, view-major
        # Global layout of the candidates: view k, rank r, sample b  ->  k·(W·B) + r·B + b
        every = torch.cat([gather_with_grad(v) for v in normed], dim=0)
        t = self.temperature
        logits = (local / t) @ every.T  # (K·B) × (K·W·B): the only N × N' tensor besides its softmax

        dev = local.device
        rows = torch.arange(k * b, device=dev)
        anchor_view, anchor_sample = rows // b, rows % b + r * b
        # The K−1 positive columns of every anchor: the same sample in the other views.
        views_idx = torch.arange(k, device=dev).expand(k * b, k)
        pos_cols = views_idx[views_idx != anchor_view[:, None]].view(k * b, k - 1) * (w * b) + anchor_sample[:, None]
        # Remove each anchor's own column (in place is safe: the matmul's backward does not use its output).
        logits[rows, anchor_view * (w * b) + anchor_sample] = float("-inf")
        loss = -F.log_softmax(logits, dim=1).gather(1, pos_cols).mean()

        with torch.no_grad():
            pos_sim = logits.gather(1, pos_cols).mean() * t
            top1 = (logits.argmax(dim=1, keepdim=True) == pos_cols).any(dim=1).float().mean()
        return LossOutput(loss, {"pos_sim": pos_sim, "top1": top1, "temperature": t.detach()})
