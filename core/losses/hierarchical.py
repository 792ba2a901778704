"""Hierarchical contrastive loss over aligned dense representations (TS2Vec)."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .base import ContrastiveLoss, LossOutput


def _multi_positive_nce(sim: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
    """Mean over anchors of −log softmax at the anchor's positives.

    ``sim``: (..., N, N) similarities; ``group``: (N,) ids — entries with the
    same id (other than the anchor itself) are positives, all others negatives.
    """
    n = sim.shape[-1]
    eye = torch.eye(n, dtype=torch.bool, device=sim.device)
    logits = sim.masked_fill(eye, float("-inf"))
    log_prob = F.log_softmax(logits, dim=-1)
    pos = (group[:, None] == group[None, :]) & ~eye
    n_pos = pos.sum(-1).clamp_min(1)
    return -(log_prob.masked_fill(~pos, 0.0).sum(-1) / n_pos).mean()


class HierarchicalContrastive(ContrastiveLoss):
    r"""TS2Vec's hierarchical contrastive loss (Yue et al., AAAI 2022), for K aligned views.

    Takes *dense* views: K tensors of shape B × T × D whose position t holds
    the same time step (the common segment of overlapping crops).  At scale
    s = 0, 1, … (max-pooling by 2 along time between scales, until T = 1):

    - **instance-wise** term: at every time step, the K·B representations are
      contrasted; positives are the other views of the same sample;
    - **temporal** term: within every sample, the K·T representations are
      contrasted; positives are the other views of the same time step
      (only while T > 1 and from scale ``temporal_unit`` on);

    .. math:: L = \frac{1}{S}\sum_s \big[\alpha L^{inst}_s + (1-\alpha) L^{temp}_s\big]

    with similarities :math:`z_i^\top z_j / \tau` (TS2Vec uses raw dot products,
    τ = 1, no normalisation; ``normalize=True`` uses cosine similarity).

    Shapes: ``views`` K × (B × T × D); returns a scalar.

    Distributed: local — each rank contrasts its own batch; DDP averages.

    Example::

        loss = HierarchicalContrastive(alpha=0.5)
        out = loss([h1, h2])        # h1, h2: B × T × D, aligned in time
    """

    dense = True
    distributed = "local"

    def __init__(self, alpha: float = 0.5, temporal_unit: int = 0, temperature: float = 1.0,
                 normalize: bool = False) -> None:
        super().__init__()
        if not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
            raise ConfigError(f"HierarchicalContrastive: alpha must lie in [0, 1], got {alpha!r}.")
        if not isinstance(temporal_unit, int) or temporal_unit < 0:
            raise ConfigError(f"HierarchicalContrastive: temporal_unit must be an integer ≥ 0, got {temporal_unit!r}.")
        if not isinstance(temperature, (int, float)) or temperature <= 0:
            raise ConfigError(f"HierarchicalContrastive: temperature must be positive, got {temperature!r}.")
        self.alpha, self.temporal_unit = float(alpha), temporal_unit
        self.temperature, self.normalize = float(temperature), bool(normalize)

    def _sim(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalize:
            x = F.normalize(x, dim=-1)
        return x @ x.transpose(-1, -2) / self.temperature

    def forward(self, views: Sequence[torch.Tensor], labels: torch.Tensor | None = None) -> LossOutput:
        if len(views) < 2:
            raise ConfigError(f"a contrastive loss needs at least 2 views, got {len(views)}.")
        if views[0].dim() != 3 or any(v.shape != views[0].shape for v in views):
            raise ConfigError("HierarchicalContrastive needs K aligned views of equal shape B × T × D, got "
                              f"{[tuple(v.shape) for v in views]}.")
        k, b = len(views), views[0].shape[0]
        z = torch.stack(list(views), dim=0)  # K × B × T × D
        inst_group = torch.arange(b, device=z.device).repeat(k)
        total = z.new_zeros(())
        inst_sum, temp_sum, scales = z.new_zeros(()), z.new_zeros(()), 0
        while True:
            t = z.shape[2]
            # instance-wise: per time step, (K·B) × (K·B)
            per_step = z.permute(2, 0, 1, 3).reshape(t, k * b, -1)
            inst = _multi_positive_nce(self._sim(per_step), inst_group) if b > 1 else z.new_zeros(())
            term = self.alpha * inst
            if t > 1 and scales >= self.temporal_unit:
                per_sample = z.permute(1, 0, 2, 3).reshape(b, k * t, -1)
                temp = _multi_positive_nce(self._sim(per_sample), torch.arange(t, device=z.device).repeat(k))
                term = term + (1 - self.alpha) * temp
                temp_sum = temp_sum + temp.detach()
            total = total + term
            inst_sum = inst_sum + inst.detach()
            scales += 1
            if t == 1:
                break
            z = F.max_pool1d(z.reshape(k * b, t, -1).transpose(1, 2), kernel_size=2).transpose(1, 2)
            z = z.reshape(k, b, z.shape[1], -1)
        return LossOutput(total / scales, {"instance": inst_sum / scales, "temporal": temp_sum / scales})
