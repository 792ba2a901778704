"""Non-contrastive (redundancy-reduction / variance-regularised) losses: Barlow Twins and VICReg.

Both use statistics of the batch (means, variances, cross-correlations over
samples).  Under DDP those statistics must be those of the *global* batch:
every rank gathers all ranks' embeddings with gradient and computes the
same batch-statistic terms; the gather's backward sums every rank's gradient,
so after DDP's division by the world size each rank's inputs receive exactly
the gradient of one process on the whole batch.  Loops run only over the K
views or the K(K−1)/2 view pairs, never over samples or features.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from ..distributed import gather_with_grad
from ..errors import ConfigError, check_number, check_positive
from .base import ContrastiveLoss, LossOutput


def _gather_views(owner: str, views: Sequence[torch.Tensor]) -> torch.Tensor:
    """K × N × D: every view gathered over all ranks with gradient (N = global batch size)."""
    every = torch.stack([gather_with_grad(v) for v in views])
    if every.shape[1] < 2:
        raise ConfigError(f"{owner}: needs at least 2 samples in the (global) batch, got {every.shape[1]}.")
    return every


def _off_diagonal_sq_sum(m: torch.Tensor) -> torch.Tensor:
    """Sum of squares of the off-diagonal entries of the last two (square) dimensions."""
    eye = torch.eye(m.shape[-1], dtype=torch.bool, device=m.device)
    return m.masked_fill(eye, 0.0).pow(2).sum(dim=(-2, -1))


class BarlowTwins(ContrastiveLoss):
    r"""Barlow Twins' redundancy-reduction loss (Zbontar, Jing, Misra, LeCun, Deny, ICML 2021,
    "Barlow Twins: Self-Supervised Learning via Redundancy Reduction").

    Each view is normalised along the batch, :math:`\hat z = (z - \mu)/\sqrt{\sigma^2 + \epsilon}`
    (biased variance, as batch normalisation without affine parameters), and for
    two views a, b the cross-correlation matrix is
    :math:`C_{ij} = \frac{1}{N}\sum_n \hat z^a_{ni}\hat z^b_{nj}` (D × D).  Then

    .. math::
        L_{ab} = \sum_i (1 - C_{ii})^2 + \lambda \sum_i\sum_{j\neq i} C_{ij}^2 ,
        \qquad L = \binom{K}{2}^{-1}\sum_{a<b} L_{ab}

    (the mean over the view pairs; for K = 2 exactly the paper's loss, whose
    λ defaults to 5·10⁻³).  Identical, decorrelated views give 0; collapsed
    (constant) embeddings give D.

    Shapes: ``views`` is a list of K tensors N × D; returns a scalar.  ``labels`` are ignored.

    Distributed: gather — means, variances and cross-correlations are those of
    the global batch (every rank gathers all embeddings with gradient and
    computes the same loss); with DDP's gradient averaging, loss and gradients
    equal one process on the whole batch.

    Example::

        loss = BarlowTwins(lambda_offdiag=5e-3)
        out = loss([z1, z2])

    Args:
        lambda_offdiag: weight λ ≥ 0 of the redundancy (off-diagonal) term.
        eps: ε ≥ 0 added to the variance before normalising (BatchNorm's 1e-5).
    """

    distributed = "gather"

    def __init__(self, lambda_offdiag: float = 5e-3, eps: float = 1e-5) -> None:
        super().__init__()
        self.lambda_offdiag = check_number("BarlowTwins", "lambda_offdiag", lambda_offdiag, 0.0)
        self.eps = check_number("BarlowTwins", "eps", eps, 0.0)

    def forward(self, views: Sequence[torch.Tensor], labels: torch.Tensor | None = None) -> LossOutput:
        self.check_views(views)
        every = _gather_views("BarlowTwins", views)  # K × N × D
        k, n = every.shape[0], every.shape[1]
        mean = every.mean(dim=1, keepdim=True)
        var = every.var(dim=1, unbiased=False, keepdim=True)
        z = (every - mean) / torch.sqrt(var + self.eps)
        on_diag = off_diag = every.new_zeros(())
        for a in range(k):  # over view pairs only
            for b in range(a + 1, k):
                c = z[a].T @ z[b] / n
                on_diag = on_diag + (1.0 - c.diagonal()).pow(2).sum()
                off_diag = off_diag + _off_diagonal_sq_sum(c)
        pairs = k * (k - 1) // 2
        on_diag, off_diag = on_diag / pairs, off_diag / pairs
        loss = on_diag + self.lambda_offdiag * off_diag
        return LossOutput(loss, {"on_diag": on_diag.detach(), "off_diag": off_diag.detach()})


class VICReg(ContrastiveLoss):
    r"""VICReg: variance–invariance–covariance regularisation (Bardes, Ponce, LeCun, ICLR 2022,
    "VICReg: Variance-Invariance-Covariance Regularization for Self-Supervised Learning").

    For two views Z, Z' (N × D):

    - invariance :math:`s(Z, Z') = \frac{1}{ND}\sum_n \lVert z_n - z'_n\rVert^2`;
    - variance :math:`v(Z) = \frac{1}{D}\sum_j \max(0, \gamma - \sqrt{\mathrm{Var}(z_{\cdot j}) + \epsilon})`
      (unbiased variance over the batch);
    - covariance :math:`c(Z) = \frac{1}{D}\sum_{i\neq j} C(Z)_{ij}^2`,
      :math:`C(Z) = \frac{1}{N-1}\sum_n (z_n - \bar z)(z_n - \bar z)^\top`;

    .. math:: \ell(Z, Z') = \lambda s(Z,Z') + \mu[v(Z) + v(Z')] + \nu[c(Z) + c(Z')]

    (the paper's Eq. 6, λ = μ = 25, ν = 1; the authors' released code halves the
    variance term, the paper does not — we follow the paper).  For K views, the
    loss is the mean of ℓ over the K(K−1)/2 view pairs:
    :math:`L = \lambda\,\overline{s} + \tfrac{2}{K}\mu\sum_k v(Z_k) + \tfrac{2}{K}\nu\sum_k c(Z_k)`.
    The parts report :math:`\overline{s}`, :math:`\tfrac{2}{K}\sum v` and :math:`\tfrac{2}{K}\sum c`.

    Shapes: ``views`` is a list of K tensors N × D; returns a scalar.  ``labels`` are ignored.

    Distributed: gather — invariance is a per-sample mean computed locally;
    variance and covariance are statistics of the global batch, computed from
    all ranks' embeddings gathered with gradient.  With DDP's gradient
    averaging, loss and gradients equal one process on the whole batch.

    Example::

        loss = VICReg()            # 25, 25, 1
        out = loss([z1, z2])

    Args:
        sim_coeff: λ ≥ 0 (invariance).
        std_coeff: μ ≥ 0 (variance).
        cov_coeff: ν ≥ 0 (covariance).
        gamma: target standard deviation γ > 0.
        eps: ε > 0 inside the square root (numerical stability).
    """

    distributed = "gather"

    def __init__(self, sim_coeff: float = 25.0, std_coeff: float = 25.0, cov_coeff: float = 1.0,
                 gamma: float = 1.0, eps: float = 1e-4) -> None:
        super().__init__()
        self.sim_coeff = check_number("VICReg", "sim_coeff", sim_coeff, 0.0)
        self.std_coeff = check_number("VICReg", "std_coeff", std_coeff, 0.0)
        self.cov_coeff = check_number("VICReg", "cov_coeff", cov_coeff, 0.0)
        if self.sim_coeff == self.std_coeff == self.cov_coeff == 0.0:
            raise ConfigError("VICReg: at least one of sim_coeff, std_coeff and cov_coeff must be positive.")
        self.gamma = check_positive("VICReg", "gamma", gamma)
        self.eps = check_positive("VICReg", "eps", eps)

    def forward(self, views: Sequence[torch.Tensor], labels: torch.Tensor | None = None) -> LossOutput:
        self.check_views(views)
        k = len(views)
        invariance = views[0].new_zeros(())
        for a in range(k):  # over view pairs only
            for b in range(a + 1, k):
                invariance = invariance + F.mse_loss(views[a], views[b])
        invariance = invariance / (k * (k - 1) // 2)

        every = _gather_views("VICReg", views)  # K × N × D
        n, d = every.shape[1], every.shape[2]
        centred = every - every.mean(dim=1, keepdim=True)
        var = centred.pow(2).sum(dim=1) / (n - 1)  # K × D
        std = torch.sqrt(var + self.eps)
        variance = F.relu(self.gamma - std).mean(dim=1).sum() * (2.0 / k)
        cov = centred.transpose(1, 2) @ centred / (n - 1)  # K × D × D
        covariance = (_off_diagonal_sq_sum(cov) / d).sum() * (2.0 / k)
        loss = self.sim_coeff * invariance + self.std_coeff * variance + self.cov_coeff * covariance
        return LossOutput(
            loss,
            {"invariance": invariance.detach(), "variance": variance.detach(), "covariance": covariance.detach()},
        )


LOSSES = {"barlow_twins": BarlowTwins, "vicreg": VICReg}
