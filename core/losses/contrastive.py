r"""Variants of InfoNCE: decoupled, debiased, hard-negative, supervised, per-sample temperature.

All losses here share InfoNCE's layout (see :mod:`.infonce`): the K views are
L2-normalised; the K·B local embeddings are the *anchors* and the K·W·B
embeddings of all W ranks (gathered with gradient) are the *candidates*, in the
global order view k, rank r, sample b → column k·(W·B) + r·B + b.  For an
anchor i (view k of sample g):

- ``P(i)``: its K−1 positives, the other views of sample g;
- ``N(i)``: its negatives, every view of every other sample — n = K·(W·B − 1)
  of them (SupCon alone redefines positives from labels).

Each loss builds one (K·B) × (K·W·B) similarity matrix and finds positives,
negatives and the anchor itself by index arithmetic; nothing loops over pairs.
The returned loss is the mean of the per-anchor losses :math:`\ell_i` over the
K·B anchors, so under DDP the mean of the per-rank losses equals the loss of
one process on the whole batch, and the per-rank input gradients (after DDP's
division by W) equal that process's gradients.

Every ``parts`` entry is a mean over anchors as well (so averaging it over
ranks gives the whole batch's value): ``pos_sim`` is the mean cosine
similarity of an anchor with its positives and ``top1`` the fraction of
anchors whose most similar candidate (other than itself) is a positive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F

from ..distributed import gather_with_grad, is_distributed, rank, world_size
from ..errors import ConfigError, check_positive
from .base import ContrastiveLoss, LossOutput
from .kernels import fill_neg_inf_, fused_applies, row_logsumexp, self_contrast

__all__ = [
    "DCL",
    "DCLW",
    "DebiasedInfoNCE",
    "HardNegativeInfoNCE",
    "LOSSES",
    "DESCRIPTIONS",
    "PerSampleTemperatureInfoNCE",
    "SupCon",
]


# ---- argument checks ------------------------------------------------------------------------------

def _number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _tau_plus(owner: str, value: object) -> float:
    if not (_number(value) and 0 <= value < 1):
        raise ConfigError(f"{owner}: tau_plus (the class prior) must lie in [0, 1), got {value!r}.")
    return float(value)


# ---- the shared layout ----------------------------------------------------------------------------

@dataclass
class _Layout:
    """Normalised anchors and candidates of one batch, and the index arithmetic on them."""

    k: int                     # views
    b: int                     # samples on this rank
    w: int                     # ranks
    local: torch.Tensor        # (K·B) × D normalised anchors, view-major
    every: torch.Tensor        # (K·W·B) × D normalised candidates of all ranks
    rows: torch.Tensor         # (K·B,) anchor row indices
    anchor_view: torch.Tensor  # (K·B,) view of each anchor
    anchor_sample: torch.Tensor  # (K·B,) global sample index of each anchor
    self_col: torch.Tensor     # (K·B,) the anchor's own column
    pos_cols: torch.Tensor     # (K·B) × (K−1) columns of its positives
    own_cols: torch.Tensor     # (K·B) × K columns of its sample (itself and its positives)

    @property
    def n_negatives(self) -> int:
        return self.k * (self.w * self.b - 1)

    def positive_sims(self) -> torch.Tensor:
        """(K·B) × (K−1) cosine similarities of each anchor with its positives (with gradient)."""
        return (self.local[:, None, :] * self.every[self.pos_cols]).sum(-1)

    def similarities(self, scale: float = 1.0) -> torch.Tensor:
        """The (K·B) × (K·W·B) cosine similarities of anchors and candidates, times ``scale``.

        The scale (1/τ) is applied to the K·B anchors before the product,
        not to the large matrix after it.
        """
        return (self.local if scale == 1.0 else self.local * scale) @ self.every.T

    def mask_own_(self, sims: torch.Tensor) -> torch.Tensor:
        """Set the K columns of each anchor's own sample to −inf, in place, leaving negatives only.

        In place is safe on the output of a matmul or a division by a
        constant: their backward does not use their output.  The result must
        only feed log-sum-exp/softmax-type terms (see :func:`.infonce.fill_neg_inf_`):
        the backward passes the gradient through unchanged.
        """
        return fill_neg_inf_(sims, self.rows[:, None], self.own_cols)

    @staticmethod
    def top1(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
        """Fraction of anchors whose best positive beats every negative (``neg`` holds −inf off negatives)."""
        return (pos.max(dim=1).values > neg.max(dim=1).values).float().mean()


def _layout(views: Sequence[torch.Tensor], need_negatives: bool, owner: str) -> _Layout:
    ContrastiveLoss.check_views(views)
    k, b = len(views), views[0].shape[0]
    w, r = world_size(), rank()
    if need_negatives and w * b < 2:
        raise ConfigError(f"{owner} needs at least 2 samples in a batch (negatives come from other samples), "
                          f"got {w * b}.")
    normed = [F.normalize(v, dim=1) for v in views]
    local = torch.cat(normed, dim=0)
    every = torch.cat([gather_with_grad(v) for v in normed], dim=0)
    dev = local.device
    rows = torch.arange(k * b, device=dev)
    anchor_view, anchor_sample = rows // b, rows % b + r * b
    views_idx = torch.arange(k, device=dev).expand(k * b, k)
    own_cols = views_idx * (w * b) + anchor_sample[:, None]
    pos_cols = own_cols[views_idx != anchor_view[:, None]].view(k * b, k - 1)
    return _Layout(k, b, w, local, every, rows, anchor_view, anchor_sample,
                   anchor_view * (w * b) + anchor_sample, pos_cols, own_cols)


# ---- Decoupled contrastive learning ----------------------------------------------------------------

class DCL(ContrastiveLoss):
    r"""Decoupled contrastive loss (Yeh et al., ECCV 2022, "Decoupled Contrastive Learning").

    InfoNCE without the positive in the denominator, which removes the
    negative–positive coupling that makes InfoNCE need large batches:

    .. math::
        \ell_i = \frac{1}{|P(i)|}\sum_{p\in P(i)} \Big(-w_{ip}\,\frac{s_{ip}}{\tau}\Big)
                 + \log\sum_{j\in N(i)} \exp(s_{ij}/\tau),
        \qquad L = \frac{1}{K B}\sum_i \ell_i ,

    with cosine similarities :math:`s`, :math:`w_{ip} = 1` (DCLW changes it) and
    N(i) all views of all other samples (for K = 2: the 2(B−1) negatives of the
    paper).  The paper's code sums the two directions z1→z2 and z2→z1; this is
    their mean, so the value is half of it.  The loss is not bounded below by 0:
    for perfectly aligned, orthogonal embeddings it is :math:`-1/\tau + \log n`.

    Shapes: ``views`` is a list of K ≥ 2 tensors B × D; ``labels`` is ignored;
    returns a scalar.

    Distributed: ``"gather"`` — each rank's anchors are contrasted with the
    candidates of all ranks, gathered with gradient; with DDP's gradient
    averaging, loss and gradients equal one process on the whole batch.

    Example::

        loss = DCL(temperature=0.1)
        out = loss([z1, z2])          # z1, z2: B × D
        out.loss.backward()

    Args:
        temperature: τ > 0.
    """

    distributed = "gather"

    def __init__(self, temperature: float = 0.1) -> None:
        super().__init__()
        self.temperature = check_positive(type(self).__name__, "temperature", temperature)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"

    def positive_weights(self, lay: _Layout) -> torch.Tensor | None:
        """(K·B) × (K−1) weights of the positive terms; ``None`` means all 1."""
        return None

    def forward(self, views: Sequence[torch.Tensor], labels: torch.Tensor | None = None) -> LossOutput:
        t = self.temperature
        if type(self).positive_weights is DCL.positive_weights and views and fused_applies(views, t) \
                and len(views) >= 2 and views[0].dim() == 2 and views[0].shape[0] >= 2:
            self.check_views(views)
            lse, pos, neg_max = self_contrast([F.normalize(v, dim=1) for v in views], t, decoupled=True)
            loss = (lse - pos.mean(dim=1)).mean()
            with torch.no_grad():
                parts = {"pos_sim": pos.mean() * t, "top1": (pos.amax(dim=1) > neg_max).float().mean()}
            return LossOutput(loss, parts)
        lay = _layout(views, need_negatives=True, owner=type(self).__name__)
        neg = lay.mask_own_(lay.similarities(1 / t))  # logits, −inf except at the negatives
        pos_sim = lay.positive_sims()
        weights = self.positive_weights(lay)
        pos_term = pos_sim / t if weights is None else weights * pos_sim / t
        with torch.no_grad():  # before the loss: its backward reuses the storage of `neg`
            parts = {"pos_sim": pos_sim.mean(), "top1": lay.top1(pos_sim / t, neg)}
        lse = row_logsumexp(neg)  # in at least float32
        loss = (lse - pos_term.mean(dim=1).to(lse.dtype)).mean()
        return LossOutput(loss, parts)


class DCLW(DCL):
    r"""Weighted decoupled contrastive loss, DCLW (Yeh et al., ECCV 2022).

    DCL whose positive term is weighted with a von Mises–Fisher weighting
    that puts more weight on the *hard* positive pairs (those far apart):

    .. math::
        w_{ip} = 2 - M\,\frac{\exp(s_{ip}/\sigma)}{\sum_{g=1}^{M}\exp(s^{kl}_{g}/\sigma)},

    where anchor i is view k of a sample and p its view l, and the sum runs
    over the M = W·B positive pairs (view k, view l) of the whole (global)
    batch, :math:`s^{kl}_g` the similarity of views k and l of sample g; the
    weights of one view pair average 1.  As in the authors' code, the weight
    is not detached: the gradient also flows through it.  Everything else is
    :class:`DCL`.

    Shapes: ``views`` is a list of K ≥ 2 tensors B × D; ``labels`` is ignored;
    returns a scalar.

    Distributed: ``"gather"`` — as DCL; the weights' normaliser is computed over
    the positive pairs of all ranks (gathered with gradient), so loss and
    gradients equal one process on the whole batch.

    Example::

        loss = DCLW(temperature=0.1, sigma=0.5)
        out = loss([z1, z2])

    Args:
        temperature: τ > 0.
        sigma: σ > 0, the concentration of the weighting (the paper uses 0.5).
    """

    def __init__(self, temperature: float = 0.1, sigma: float = 0.5) -> None:
        super().__init__(temperature)
        self.sigma = check_positive("DCLW", "sigma", sigma)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, sigma={self.sigma}"

    def positive_weights(self, lay: _Layout) -> torch.Tensor:
        m = lay.w * lay.b
        ev = lay.every.view(lay.k, m, -1)
        pair_sims = torch.einsum("kgd,lgd->klg", ev, ev)  # K × K × M, the positive pairs of every view pair
        weights = 2 - m * torch.softmax(pair_sims / self.sigma, dim=-1)
        pos_views = lay.pos_cols // m
        return weights[lay.anchor_view[:, None], pos_views, lay.anchor_sample[:, None]]


# ---- Debiased and hard-negative InfoNCE ------------------------------------------------------------

class DebiasedInfoNCE(ContrastiveLoss):
    r"""Debiased contrastive loss (Chuang et al., NeurIPS 2020, "Debiased Contrastive Learning").

    Some "negatives" of an anchor share its latent class (probability τ⁺, the
    class prior).  The loss corrects the negative term for them with the
    positives, and clamps it at its theoretical minimum:

    .. math::
        \ell_i = \frac{1}{|P(i)|}\sum_{p\in P(i)}
                 -\log\frac{e^{s_{ip}/t}}{e^{s_{ip}/t} + N_g(i)},\qquad
        N_g(i) = \max\Big\{\frac{\sum_{j\in N(i)} e^{s_{ij}/t}
                    - \tau^+ n\,\frac{1}{|P(i)|}\sum_{p\in P(i)} e^{s_{ip}/t}}{1-\tau^+},\;
                    n\,e^{-1/t}\Big\},

    with n = |N(i)| negatives and the K−1 positives used as the paper's M
    positive samples.  τ⁺ = 0 gives :math:`\ell = \log(1 + e^{d})` per positive,
    with :math:`d = \log\sum_{N(i)} e^{s/t} - s_{ip}/t` the DCL term; for K = 2
    that is InfoNCE exactly.  Computed in log space (no overflow at small t).

    Shapes: ``views`` is a list of K ≥ 2 tensors B × D; ``labels`` is ignored;
    returns a scalar.  ``parts["clamped"]`` is the fraction of anchors whose
    N_g hit the clamp.

    Distributed: ``"gather"`` — each rank's anchors are contrasted with the
    candidates of all ranks, gathered with gradient; loss and gradients equal
    one process on the whole batch.

    Example::

        loss = DebiasedInfoNCE(temperature=0.5, tau_plus=0.1)
        out = loss([z1, z2])

    Args:
        temperature: t > 0 (the paper uses 0.5).
        tau_plus: the class prior τ⁺ ∈ [0, 1) (the paper uses 0.1).
    """

    distributed = "gather"
    beta: float = 0.0

    def __init__(self, temperature: float = 0.5, tau_plus: float = 0.1) -> None:
        super().__init__()
        name = type(self).__name__
        self.temperature = check_positive(name, "temperature", temperature)
        self.tau_plus = _tau_plus(name, tau_plus)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, tau_plus={self.tau_plus}"

    def forward(self, views: Sequence[torch.Tensor], labels: torch.Tensor | None = None) -> LossOutput:
        lay = _layout(views, need_negatives=True, owner=type(self).__name__)
        t, tau_plus, beta = self.temperature, self.tau_plus, self.beta
        n = lay.n_negatives
        neg = lay.mask_own_(lay.similarities() / t)  # logits, −inf except at the negatives
        pos_sim = lay.positive_sims()
        pos = pos_sim / t
        # log of the (reweighted) negative sum: sum_j e^{l_j}, or n·sum_j e^{(1+β) l_j} / sum_j e^{β l_j}
        if beta == 0:
            log_neg = torch.logsumexp(neg, dim=1)
        else:
            log_neg = math.log(n) + torch.logsumexp((1 + beta) * neg, dim=1) - torch.logsumexp(beta * neg, dim=1)
        if tau_plus == 0:
            log_a = log_neg
        else:
            # A = (e^{log_neg} - τ⁺·n·mean_p e^{l_p}) / (1 − τ⁺) = e^{log_neg}(1 − u)/(1 − τ⁺)
            log_pos_mean = torch.logsumexp(pos, dim=1) - math.log(lay.k - 1)
            # u ≥ 1 means A ≤ 0 (the clamp decides); clamping the exponent keeps exp finite for the backward
            u = tau_plus * torch.exp((math.log(n) + log_pos_mean - log_neg).clamp(max=-math.log(tau_plus)))
            valid = u < 1
            log_a = torch.where(valid, log_neg + torch.log1p(-torch.where(valid, u, 0.0)) - math.log1p(-tau_plus),
                                float("-inf"))
        log_floor = math.log(n) - 1 / t
        log_ng = torch.clamp(log_a, min=log_floor)
        # −log(e^{l_p} / (e^{l_p} + N_g)) = softplus(log N_g − l_p)
        loss = F.softplus(log_ng[:, None] - pos).mean()
        with torch.no_grad():
            parts = {
                "pos_sim": pos_sim.mean(),
                "top1": lay.top1(pos, neg),
                "clamped": (log_a < log_floor).float().mean(),
            }
        return LossOutput(loss, parts)


class HardNegativeInfoNCE(DebiasedInfoNCE):
    r"""Contrastive loss with hard negative sampling (Robinson et al., ICLR 2021,
    "Contrastive Learning with Hard Negative Samples").

    :class:`DebiasedInfoNCE` whose negatives are importance-weighted towards
    the hard ones (those most similar to the anchor), with concentration β:

    .. math::
        \sum_{j\in N(i)} e^{s_{ij}/t}\;\longrightarrow\;
        n\,\frac{\sum_{j\in N(i)} e^{\beta s_{ij}/t}\,e^{s_{ij}/t}}{\sum_{j\in N(i)} e^{\beta s_{ij}/t}}

    inside :math:`N_g(i)` (debiasing with τ⁺ and the clamp at :math:`n e^{-1/t}`
    unchanged).  β = 0 is the debiased loss; β → ∞ replaces every negative by
    the hardest one.  As in the authors' code, the importance weights are not
    detached.

    Shapes: ``views`` is a list of K ≥ 2 tensors B × D; ``labels`` is ignored;
    returns a scalar.

    Distributed: ``"gather"`` — as :class:`DebiasedInfoNCE`; the weights of an
    anchor's negatives are normalised over the negatives of all ranks, so loss
    and gradients equal one process on the whole batch.

    Example::

        loss = HardNegativeInfoNCE(temperature=0.5, tau_plus=0.1, beta=1.0)
        out = loss([z1, z2])

    Args:
        temperature: t > 0 (the paper uses 0.5).
        tau_plus: the class prior τ⁺ ∈ [0, 1); 0 turns debiasing off.
        beta: the concentration β ≥ 0 (the paper uses 0.5 to 1).
    """

    def __init__(self, temperature: float = 0.5, tau_plus: float = 0.1, beta: float = 1.0) -> None:
        super().__init__(temperature, tau_plus)
        if not (_number(beta) and beta >= 0):
            raise ConfigError(f"HardNegativeInfoNCE: beta must be a number ≥ 0, got {beta!r}.")
        self.beta = float(beta)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, tau_plus={self.tau_plus}, beta={self.beta}"


# ---- Supervised contrastive ------------------------------------------------------------------------

def _gather_labels(labels: torch.Tensor) -> torch.Tensor:
    """The labels of all ranks, in rank order (no gradient)."""
    if not is_distributed():
        return labels
    parts = [torch.empty_like(labels) for _ in range(world_size())]
    dist.all_gather(parts, labels.contiguous())
    return torch.cat(parts)


class SupCon(ContrastiveLoss):
    r"""Supervised contrastive loss (Khosla et al., NeurIPS 2020), the :math:`L^{sup}_{out}` form.

    With labels, the positives of an anchor are all other embeddings of the
    batch (any view) whose sample has the same label, plus the other views of
    its own sample:

    .. math::
        \ell_i = -\frac{1}{|P(i)|}\sum_{p\in P(i)}
                 \log\frac{\exp(s_{ip}/\tau)}{\sum_{a\neq i}\exp(s_{ia}/\tau)},
        \qquad L = \frac{1}{K B}\sum_i \ell_i .

    A label < 0 means "unknown": such a sample's positives are its own other
    views only.  Without labels (or with all labels distinct or unknown) this
    is :class:`InfoNCE`.  The paper's code also multiplies by τ/τ_base; this
    does not (so that the loss equals InfoNCE without labels).

    Shapes: ``views`` is a list of K ≥ 2 tensors B × D; ``labels`` an integer
    tensor (B,) or ``None``; returns a scalar.  ``parts["positives"]`` is the
    mean number of positives per anchor.

    Distributed: ``"gather"`` — anchors are contrasted with the candidates of
    all ranks, gathered with gradient, and labels are gathered too (every rank
    must pass labels, or none); loss and gradients equal one process on the
    whole batch.

    Example::

        loss = SupCon(temperature=0.1)
        out = loss([z1, z2], labels=y)    # y: (B,) int64, −1 where unknown

    Args:
        temperature: τ > 0 (the paper uses 0.1).
    """

    distributed = "gather"

    uses_labels = True

    def __init__(self, temperature: float = 0.1) -> None:
        super().__init__()
        self.temperature = check_positive("SupCon", "temperature", temperature)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"

    def forward(self, views: Sequence[torch.Tensor], labels: torch.Tensor | None = None) -> LossOutput:
        lay = _layout(views, need_negatives=False, owner="SupCon")
        t = self.temperature
        if labels is not None:
            if not isinstance(labels, torch.Tensor) or labels.shape != (lay.b,) or labels.is_floating_point() \
                    or labels.is_complex() or labels.dtype == torch.bool:
                shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
                raise ConfigError(f"SupCon: labels must be an integer tensor of shape ({lay.b},), got {shape}"
                                  f"{' of ' + str(labels.dtype) if isinstance(labels, torch.Tensor) else ''}.")
            labels = _gather_labels(labels.to(device=lay.local.device, dtype=torch.long))
        sims = lay.similarities()
        logits = sims / t
        logits[lay.rows, lay.self_col] = float("-inf")
        log_prob = F.log_softmax(logits, dim=1)
        if labels is None:
            # only the other views of the same sample: InfoNCE
            loss = -log_prob.gather(1, lay.pos_cols).mean()
            with torch.no_grad():
                pos_sim = sims.gather(1, lay.pos_cols).mean()
                top1 = (logits.argmax(dim=1, keepdim=True) == lay.pos_cols).any(dim=1).float().mean()
                n_pos = torch.full((), float(lay.k - 1), dtype=sims.dtype, device=sims.device)
        else:
            m = lay.w * lay.b
            col_sample = torch.arange(lay.k * m, device=sims.device) % m
            la, lc = labels[lay.anchor_sample], labels[col_sample]
            same_label = (la[:, None] == lc[None, :]) & (la[:, None] >= 0)
            pos = same_label | (lay.anchor_sample[:, None] == col_sample[None, :])
            pos[lay.rows, lay.self_col] = False
            count = pos.sum(dim=1)  # ≥ K − 1 ≥ 1
            loss = -(log_prob.masked_fill(~pos, 0.0).sum(dim=1) / count).mean()
            with torch.no_grad():
                pos_sim = (sims.masked_fill(~pos, 0.0).sum(dim=1) / count).mean()
                top1 = pos.gather(1, logits.argmax(dim=1, keepdim=True)).float().mean()
                n_pos = count.to(sims.dtype).mean()
        return LossOutput(loss, {"pos_sim": pos_sim, "top1": top1, "positives": n_pos})


# ---- Per-sample temperature ------------------------------------------------------------------------

def _individual_temperatures(sims: torch.Tensor, n: int, rho: float, tau_min: float, tau_max: float,
                             iterations: int) -> torch.Tensor:
    r"""Per row, the τ ∈ [τ_min, τ_max] with KL(softmax(s/τ) ‖ uniform over the n negatives) = ρ.

    ``sims``: R × C similarities, −inf off the negatives (no gradient).  That τ
    minimises :math:`\tau\log\frac1n\sum_j e^{s_j/\tau} + \rho\tau` over the interval
    (the derivative in τ is ρ − KL, and KL decreases in τ with
    dKL/dlog τ = −Var_p(s/τ)).  Solved by Newton's method on log τ, safeguarded
    by bisection, a fixed number of steps (no host synchronisation).  Each
    step is one softmax over the matrix; the log-sum-exp comes from the
    softmax at the row's maximum, which does not move with τ.
    """
    log_n = math.log(n)
    finite = sims.masked_fill(sims.isneginf(), 0.0)
    squared = finite * finite
    s_max, arg_max = sims.max(dim=1, keepdim=True)
    s_max = s_max.squeeze(1)

    def excess(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """KL − ρ at τ = e^u and Var_p(s/τ), per row."""
        inv = torch.exp(-u)
        p = torch.softmax(sims * inv[:, None], dim=1)  # 0 off the negatives
        m1 = torch.einsum("rc,rc->r", p, finite)
        m2 = torch.einsum("rc,rc->r", p, squared)
        lse = s_max * inv - torch.log(p.gather(1, arg_max).squeeze(1))
        return m1 * inv - lse + log_n - rho, (m2 - m1 * m1).clamp_min(0) * inv * inv

    r = sims.shape[0]
    lo = torch.full((r,), math.log(tau_min), dtype=sims.dtype, device=sims.device)
    hi = torch.full((r,), math.log(tau_max), dtype=sims.dtype, device=sims.device)
    at_max = excess(hi)[0] >= 0  # KL(τ_max) ≥ ρ: the optimum is τ_max
    at_min = excess(lo)[0] <= 0  # KL(τ_min) ≤ ρ: the optimum is τ_min
    u = (lo + hi) / 2
    for _ in range(iterations):
        g, var = excess(u)
        above = g > 0  # KL too large: the root lies at a larger τ
        lo, hi = torch.where(above, u, lo), torch.where(above, hi, u)
        step = u + g / var
        u = torch.where((step >= lo) & (step <= hi), step, (lo + hi) / 2)
    u = torch.where(at_max, math.log(tau_max), torch.where(at_min, math.log(tau_min), u))
    return u.exp()


class PerSampleTemperatureInfoNCE(ContrastiveLoss):
    r"""Contrastive loss with an individual temperature per anchor, after iSogCLR (Qiu et al.,
    ICML 2023, "Not All Semantics are Created Equal: Contrastive Self-supervised Learning
    with Automatic Temperature Individualization").

    iSogCLR replaces InfoNCE by a distributionally robust objective (a KL ball
    of radius ρ around the uniform distribution over the negatives) whose
    dual gives each anchor i its own temperature τ_i:

    .. math::
        \ell_i = \min_{\tau_{\min}\le\tau_i\le\tau_{\max}}\;
                 \tau_i\log\frac{1}{n}\sum_{j\in N(i)}
                 \exp\Big(\frac{s_{ij}-\bar s_{i}^{+}}{\tau_i}\Big) + \rho\,\tau_i ,
        \qquad L = \frac{1}{K B}\sum_i \ell_i ,

    with :math:`\bar s_i^{+}` the mean similarity of i with its K−1 positives
    (for K = 2 the single positive, as in the paper) and n = |N(i)|.  The
    optimal τ_i solves KL(softmax_j(s_ij/τ_i) ‖ uniform) = ρ: anchors whose
    negatives are spread out (an anchor among many semantically close
    samples) get a larger temperature than anchors with a few clear hard
    negatives.

    What this implements, honestly: the *in-batch* version.  τ_i is solved
    exactly (under ``no_grad``) from the anchor's similarities to the
    negatives of the current global batch, every step; the gradient is the
    exact gradient of the min (Danskin's theorem: at the minimiser the
    derivative in τ vanishes or τ sits at a bound).  The paper instead keeps
    a τ_i per *data-set item*, updated across epochs by a momentum gradient
    step with moving-average estimates of the negative sum over the whole
    data set (SogCLR); that needs item indices and per-item state, which this
    loss interface does not have.  No dimension and no learned parameter are
    needed.  The loss's scale is about τ times InfoNCE's (its gradient has no
    1/τ factor), as in the paper.  ``parts`` adds ``tau_mean`` (mean τ_i) and
    ``tau_at_bound`` (fraction of anchors with τ_i at τ_min or τ_max).

    Shapes: ``views`` is a list of K ≥ 2 tensors B × D; ``labels`` is ignored;
    returns a scalar.

    Distributed: ``"gather"`` — each rank's anchors are contrasted with the
    candidates of all ranks, gathered with gradient, and each τ_i depends only
    on its anchor's row; loss and gradients equal one process on the whole
    batch.

    Example::

        loss = PerSampleTemperatureInfoNCE(rho=0.3, tau_min=0.05, tau_max=0.7)
        out = loss([z1, z2])
        out.parts["tau_mean"]

    Args:
        rho: ρ ≥ 0, the KL radius (LibAUC recommends 0.1–0.5 for unimodal data;
            ρ ≥ log n pins every τ_i at τ_min, ρ = 0 at τ_max).
        tau_min: the smallest temperature, > 0.
        tau_max: the largest temperature, ≥ tau_min (equal: a fixed temperature).
        iterations: Newton/bisection steps of the per-anchor solve (16 reach float64
            precision on every case tried, τ_max/τ_min up to 10⁵).
    """

    distributed = "gather"

    def __init__(self, rho: float = 0.3, tau_min: float = 0.05, tau_max: float = 0.7, iterations: int = 16) -> None:
        super().__init__()
        name = "PerSampleTemperatureInfoNCE"
        if not (_number(rho) and rho >= 0):
            raise ConfigError(f"{name}: rho must be a number ≥ 0, got {rho!r}.")
        self.rho = float(rho)
        self.tau_min = check_positive(name, "tau_min", tau_min)
        self.tau_max = check_positive(name, "tau_max", tau_max)
        if self.tau_max < self.tau_min:
            raise ConfigError(f"{name}: tau_max must be ≥ tau_min, got tau_min={tau_min!r} and tau_max={tau_max!r}.")
        if not (isinstance(iterations, int) and not isinstance(iterations, bool) and iterations >= 1):
            raise ConfigError(f"{name}: iterations must be an integer ≥ 1, got {iterations!r}.")
        self.iterations = iterations

    def extra_repr(self) -> str:
        return f"rho={self.rho}, tau_min={self.tau_min}, tau_max={self.tau_max}"

    def forward(self, views: Sequence[torch.Tensor], labels: torch.Tensor | None = None) -> LossOutput:
        lay = _layout(views, need_negatives=True, owner="PerSampleTemperatureInfoNCE")
        n = lay.n_negatives
        sims = lay.mask_own_(lay.similarities())  # −inf except at the negatives
        with torch.no_grad():
            # solved in at least float32 (under autocast the similarities may be half precision)
            solve_in = sims.detach().to(torch.promote_types(sims.dtype, torch.float32))
            tau = _individual_temperatures(solve_in, n, self.rho, self.tau_min, self.tau_max, self.iterations)
            tau = tau.to(sims.dtype)
        pos_sim = lay.positive_sims()
        log_mean_neg = torch.logsumexp(sims / tau[:, None], dim=1) - math.log(n)
        loss = (tau * log_mean_neg - pos_sim.mean(dim=1) + self.rho * tau).mean()
        with torch.no_grad():
            bound = (tau <= self.tau_min * (1 + 1e-6)) | (tau >= self.tau_max * (1 - 1e-6))
            parts = {
                "pos_sim": pos_sim.mean(),
                "top1": lay.top1(pos_sim, sims),
                "tau_mean": tau.mean(),
                "tau_at_bound": bound.to(tau.dtype).mean(),
            }
        return LossOutput(loss, parts)


LOSSES: dict[str, type[ContrastiveLoss]] = {
    "dcl": DCL,
    "dclw": DCLW,
    "debiased": DebiasedInfoNCE,
    "hard_negative": HardNegativeInfoNCE,
    "supcon": SupCon,
    "per_sample_temperature": PerSampleTemperatureInfoNCE,
}

DESCRIPTIONS: dict[str, str] = {
    "dcl": "decoupled contrastive loss: the positive left out of the denominator (Yeh et al. 2022)",
    "dclw": "DCL with von Mises-Fisher weighting of the positive pairs (Yeh et al. 2022)",
    "debiased": "debiased InfoNCE: class-prior correction of the negatives (Chuang et al. 2020)",
    "hard_negative": "InfoNCE with importance-weighted hard negatives, optionally debiased (Robinson et al. 2021)",
    "supcon": "supervised contrastive loss: same-label items are positives; InfoNCE without labels "
              "(Khosla et al. 2020)",
    "per_sample_temperature": "in-batch iSogCLR: an individual temperature per anchor from a KL-DRO objective "
                              "(Qiu et al. 2023)",
}
