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
        local = F.normalize(torch.cat(list(views), dim=0), dim=1)  # (K·B) × D, view-major
        # Global layout: view k, rank r, sample b  ->  k·(W·B) + r·B + b
        every = torch.cat([gather_with_grad(F.normalize(v, dim=1)) for v in views], dim=0)
        logits = local @ every.T / self.temperature  # (K·B) × (K·W·B)

        dev = local.device
        anchor_view = torch.arange(k, device=dev).repeat_interleave(b)
        anchor_sample = torch.arange(b, device=dev).repeat(k) + r * b
        anchor_global = anchor_view * (w * b) + anchor_sample
        cand_sample = torch.arange(w * b, device=dev).repeat(k)

        self_mask = torch.zeros_like(logits, dtype=torch.bool)
        self_mask[torch.arange(k * b, device=dev), anchor_global] = True
        pos_mask = (anchor_sample[:, None] == cand_sample[None, :]) & ~self_mask

        logits = logits.masked_fill(self_mask, float("-inf"))
        log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        pos_log_prob = log_prob.masked_fill(~pos_mask, 0.0).sum(1) / (k - 1)
        loss = -pos_log_prob.mean()

        with torch.no_grad():
            pos_sim = (logits.masked_fill(~pos_mask, 0.0).sum(1) / (k - 1)).mean() * self.temperature
            top = logits.argmax(dim=1)
            acc = pos_mask[torch.arange(k * b, device=dev), top].float().mean()
        return LossOutput(loss, {"pos_sim": pos_sim, "top1": acc, "temperature": self.temperature.detach()})
