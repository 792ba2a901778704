"""Multi-view contrastive losses: poly-view InfoNCE, MV-InfoNCE, MV-DHEL and alignment–uniformity.

All of them take K ≥ 2 views of a batch and treat the K views of a sample
jointly, instead of summing pairwise two-view losses.  Embeddings are
L2-normalised; the similarity of two embeddings is their cosine.

Layout used throughout: this rank holds B samples; the K·W·B candidates of
a batch spread over W ranks are gathered per view, so candidate (view β,
sample j) has the same global sample index j = rank·B + b on every rank as in
one process holding the whole batch.  The only large tensor is the
(K·B) × (K·W·B) similarity matrix of this rank's anchors with all candidates.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from ..distributed import gather_with_grad, rank, world_size
from ..errors import ConfigError, check_positive
from .base import ContrastiveLoss, LossOutput
from .kernels import fill_neg_inf_, fused_applies, row_logsumexp, self_contrast


def _non_negative(owner: str, name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{owner}: {name} must be a number ≥ 0, got {value!r}.")
    return float(value)


def _normalised(views: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's normalised views (K × B × D) and every rank's (K × W·B × D), gathered with gradient."""
    normed = [F.normalize(v, dim=1) for v in views]
    return torch.stack(normed), torch.stack([gather_with_grad(v) for v in normed])


def _own_index(b: int, device: torch.device) -> torch.Tensor:
    """Global sample index of this rank's B samples."""
    return rank() * b + torch.arange(b, device=device)


def _need_two_samples(owner: str, b: int) -> None:
    if b * world_size() < 2:
        raise ConfigError(f"{owner}: needs at least 2 samples in the (global) batch, got {b * world_size()}.")


def _positive_pair_similarity(local: torch.Tensor) -> torch.Tensor:
    """Mean cosine similarity of the K(K−1)/2 view pairs of every sample (for logging)."""
    k = local.shape[0]
    li, mi = torch.triu_indices(k, k, 1, device=local.device)
    return (local[li] * local[mi]).sum(-1).mean()


class PolyViewInfoNCE(ContrastiveLoss):
    r"""Poly-view contrastive loss (Shidani, Hjelm, Ramapuram, Webb, Dhekane, Busbridge, ICLR 2024,
    "Poly-View Contrastive Learning"), arithmetic or geometric aggregation.

    Poly-view contrastive learning maximises the one-vs-rest information
    :math:`I(x_\alpha; x_{\neq\alpha})` between one view and the set of the
    other K−1 views of the same sample, with an InfoNCE bound whose critic
    aggregates the pairwise critics :math:`f(u, v) = \exp(s(u, v)/\tau)` over the
    rest set.  For anchor view α of sample i, the candidate rest sets are those
    of every sample j of the batch, :math:`R_j = \{x_{j\beta} : \beta\neq\alpha\}`
    (j = i is the positive):

    .. math::
        \ell_{i\alpha} = -\log\frac{\bar f(x_{i\alpha}, R_i)}{\sum_j \bar f(x_{i\alpha}, R_j)},
        \qquad L = \frac{1}{KB}\sum_{i,\alpha}\ell_{i\alpha},

    with the *arithmetic* aggregation (Arithmetic PVC)
    :math:`\log\bar f(x_{i\alpha}, R_j) = \log\frac{1}{K-1}\sum_{\beta\neq\alpha} e^{s_{i\alpha,j\beta}/\tau}`
    or the *geometric* one (Geometric PVC)
    :math:`\log\bar f(x_{i\alpha}, R_j) = \frac{1}{K-1}\sum_{\beta\neq\alpha} s_{i\alpha,j\beta}/\tau`
    (the geometric mean of the critics: the anchor is contrasted with the mean
    of the other views' embeddings).  The 1/(K−1) factors cancel.  Each term
    holds all K−1 positives of the anchor in one log, so positives do not
    compete with each other as in multi-crop InfoNCE (:class:`InfoNCE`).

    Reading of the paper: negatives are the *rest sets* of the other samples,
    so same-view embeddings of other samples (x_{jα}) are not candidates; for
    K = 2 both aggregations reduce to the symmetric two-view (CLIP-style)
    InfoNCE without intra-view negatives.

    Shapes: ``views`` is a list of K tensors B × D; returns a scalar.

    Distributed: gather — each rank's anchors are contrasted with the rest sets
    of all ranks' samples, gathered with gradient; with DDP's gradient
    averaging, loss and gradients equal one process on the whole batch.

    Example::

        loss = PolyViewInfoNCE(temperature=0.1, aggregation="geometric")
        out = loss([z1, z2, z3, z4])          # each B × D

    Args:
        temperature: τ > 0.
        aggregation: ``"arithmetic"`` or ``"geometric"``.
    """

    distributed = "gather"
    AGGREGATIONS = ("arithmetic", "geometric")

    def __init__(self, temperature: float = 0.1, aggregation: str = "arithmetic") -> None:
        super().__init__()
        self.temperature = check_positive("PolyViewInfoNCE", "temperature", temperature)
        if aggregation not in self.AGGREGATIONS:
            raise ConfigError(
                f"PolyViewInfoNCE: aggregation must be one of {', '.join(self.AGGREGATIONS)}, got {aggregation!r}."
            )
        self.aggregation = aggregation

    def forward(self, views: Sequence[torch.Tensor], labels: torch.Tensor | None = None) -> LossOutput:
        self.check_views(views)
        k, b = len(views), views[0].shape[0]
        _need_two_samples("PolyViewInfoNCE", b)
        local, every = _normalised(views)
        # [anchor view α, local sample i, candidate view β, global sample j]
        logits = torch.einsum("aid,bjd->aibj", local, every) / self.temperature
        same_view = torch.eye(k, dtype=torch.bool, device=logits.device)[:, None, :, None]
        if self.aggregation == "arithmetic":
            agg = logits.masked_fill(same_view, float("-inf")).logsumexp(dim=2)
        else:
            agg = logits.masked_fill(same_view, 0.0).sum(dim=2) / (k - 1)
        own = _own_index(b, logits.device)
        rows = torch.arange(b, device=logits.device)
        loss = -agg.log_softmax(dim=-1)[:, rows, own].mean()  # agg: K × B × (W·B)
        with torch.no_grad():
            top1 = (agg.argmax(dim=-1) == own).to(agg.dtype).mean()
            pos_sim = _positive_pair_similarity(local)
        return LossOutput(loss, {"pos_sim": pos_sim, "top1": top1})


class MVInfoNCE(ContrastiveLoss):
    r"""MV-InfoNCE (Koromilas, Georgiou, Bouritsas, Giannakopoulos, Nicolaou, Panagakis 2025,
    "A Principled Framework for Multi-View Contrastive Learning", arXiv:2507.06979).

    One term per sample holding all its view interactions: the numerator sums
    the K(K−1) ordered positive pairs of sample i, the denominator every pair
    (anchor view l of i, any other embedding of the batch):

    .. math::
        \ell_i = -\log\frac{\sum_{l\neq m} e^{s(u_{il}, u_{im})/\tau}}
                 {\sum_{l}\sum_{(j,m)\neq(i,l)} e^{s(u_{il}, u_{jm})/\tau}},
        \qquad L = \frac{1}{B}\sum_i \ell_i ,

    where :math:`u_{il}` is view l of sample i, normalised, and s the cosine
    similarity.  The denominator contains the positives (as in the authors'
    reference implementation); the anchor's similarity with itself is left out.

    Shapes: ``views`` is a list of K tensors B × D; returns a scalar.

    Distributed: gather — the denominators run over the embeddings of all
    ranks, gathered with gradient; with DDP's gradient averaging, loss and
    gradients equal one process on the whole batch.

    Example::

        loss = MVInfoNCE(temperature=0.2)
        out = loss([z1, z2, z3])

    Args:
        temperature: τ > 0.
    """

    distributed = "gather"

    def __init__(self, temperature: float = 0.2) -> None:
        super().__init__()
        self.temperature = check_positive("MVInfoNCE", "temperature", temperature)

    def forward(self, views: Sequence[torch.Tensor], labels: torch.Tensor | None = None) -> LossOutput:
        self.check_views(views)
        k, b = len(views), views[0].shape[0]
        if fused_applies(views, self.temperature):  # one process: one autograd node for the large matrix
            normed = [F.normalize(v, dim=1) for v in views]
            lse, pos, _ = self_contrast(normed, self.temperature)
            log_den = lse.view(k, b).logsumexp(dim=0)
            log_num = pos.view(k, b, k - 1).transpose(0, 1).reshape(b, -1).logsumexp(dim=1)
            # the mean over ordered positive pairs equals the one over unordered pairs (s is symmetric)
            return LossOutput((log_den - log_num).mean(), {"pos_sim": pos.detach().mean() * self.temperature})
        m = world_size() * b
        local, every = _normalised(views)
        dev = local.device
        scaled = (local / self.temperature).reshape(k * b, -1)  # anchors (l, i) -> row l·B + i
        logits = scaled @ every.reshape(k * m, -1).T  # (K·B) × (K·W·B); candidate (v, j) -> column v·W·B + j
        rows = torch.arange(k * b, device=dev)
        anchor_view, anchor_sample = rows // b, _own_index(b, dev).repeat(k)
        # numerator: the K−1 other views of the anchor's sample, from the embeddings (K−1 dot products per anchor)
        views_idx = torch.arange(k, device=dev).expand(k * b, k)
        pos_views = views_idx[views_idx != anchor_view[:, None]].view(k * b, k - 1)
        positives = (scaled[:, None, :] * every[pos_views, anchor_sample[:, None]]).sum(dim=-1)  # (K·B) × (K−1)
        log_num = positives.view(k, b, k - 1).transpose(0, 1).reshape(b, -1).logsumexp(dim=1)  # B
        # denominator: every candidate but the anchor itself, summed over the K anchors of a sample
        logits = fill_neg_inf_(logits, rows, anchor_view * m + anchor_sample)
        log_den = row_logsumexp(logits).view(k, b).logsumexp(dim=0)  # B, in at least float32
        loss = (log_den - log_num.to(log_den.dtype)).mean()
        with torch.no_grad():
            pos_sim = _positive_pair_similarity(local)
        return LossOutput(loss, {"pos_sim": pos_sim})


class MVDHEL(ContrastiveLoss):
    r"""MV-DHEL, multi-view decoupled hyperspherical energy loss (Koromilas et al. 2025,
    "A Principled Framework for Multi-View Contrastive Learning", arXiv:2507.06979),
    extending DHEL (Koromilas, Bouritsas, Giannakopoulos, Nicolaou, Panagakis, ICML 2024,
    "Bridging Mini-Batch and Asymptotic Analysis in Contrastive Learning: From
    InfoNCE to Kernel-Based Losses").

    Alignment and uniformity are decoupled: one alignment term over all view
    pairs of a sample, and a uniformity (energy) term computed *within each
    view* separately — an anchor is never contrasted with another view:

    .. math::
        \ell_i = -\log\sum_{l<m} e^{s(u_{il}, u_{im})/\tau}
                 + \sum_{l=1}^{K}\log\sum_{j\neq i} e^{s(u_{il}, u_{jl})/\tau},
        \qquad L = \frac{1}{B}\sum_i \ell_i .

    This is our reading of the paper (and of the authors' reference code):
    the uniformity terms of the K views are summed; for K = 2 the loss is the
    symmetric DHEL, :math:`-s(u_i, v_i)/\tau + \log\sum_{j\neq i}e^{s(u_i,u_j)/\tau}
    + \log\sum_{j\neq i}e^{s(v_i,v_j)/\tau}`.

    Shapes: ``views`` is a list of K tensors B × D; returns a scalar.

    Distributed: gather — each view's uniformity term runs over that view's
    embeddings from all ranks, gathered with gradient; alignment is local.
    With DDP's gradient averaging, loss and gradients equal one process on the
    whole batch.

    Example::

        loss = MVDHEL(temperature=0.2)
        out = loss([z1, z2, z3, z4])

    Args:
        temperature: τ > 0.
    """

    distributed = "gather"

    def __init__(self, temperature: float = 0.2) -> None:
        super().__init__()
        self.temperature = check_positive("MVDHEL", "temperature", temperature)

    def forward(self, views: Sequence[torch.Tensor], labels: torch.Tensor | None = None) -> LossOutput:
        self.check_views(views)
        k, b = len(views), views[0].shape[0]
        _need_two_samples("MVDHEL", b)
        local, every = _normalised(views)
        dev = local.device
        own = _own_index(b, dev)
        within = torch.einsum("kid,kjd->kij", local, every) / self.temperature  # K × B × W·B
        is_self = torch.arange(within.shape[-1], device=dev) == own[:, None]
        uniformity = within.masked_fill(is_self, float("-inf")).logsumexp(dim=-1).sum(dim=0)  # B
        li, mi = torch.triu_indices(k, k, 1, device=dev)
        pair_logits = (local[li] * local[mi]).sum(-1) / self.temperature  # K(K−1)/2 × B
        alignment = -pair_logits.logsumexp(dim=0)  # B
        loss = (alignment + uniformity).mean()
        with torch.no_grad():
            pos_sim = _positive_pair_similarity(local)
        return LossOutput(
            loss, {"alignment": alignment.detach().mean(), "uniformity": uniformity.detach().mean(), "pos_sim": pos_sim}
        )


class AlignUniform(ContrastiveLoss):
    r"""Alignment and uniformity on the hypersphere as a loss (Wang & Isola, ICML 2020,
    "Understanding Contrastive Representation Learning through Alignment and
    Uniformity on the Hypersphere").

    With normalised embeddings :math:`z_{il}` (view l of sample i):

    .. math::
        L_{align} = \mathbb{E}_{i,\, l<m}\, \lVert z_{il} - z_{im}\rVert_2^{\alpha},
        \qquad
        L_{unif} = \frac{1}{K}\sum_l \log \mathbb{E}_{i\neq j}\, e^{-t\lVert z_{il} - z_{jl}\rVert_2^2},

    .. math:: L = w_{align} L_{align} + w_{unif} L_{unif} .

    The expectations are means over all view pairs of every sample (alignment)
    and over all ordered pairs of distinct samples of the whole batch within a
    view (uniformity), as in the paper's reference code for K = 2.

    Shapes: ``views`` is a list of K tensors B × D; returns a scalar.

    Distributed: gather — uniformity is a statistic of the whole batch: each
    rank sums the kernel over its rows against all ranks' embeddings (gathered
    with gradient), the per-row sums are gathered with gradient too, and every
    rank takes the log of the global mean.  Alignment is local.  With DDP's
    gradient averaging, loss and gradients equal one process on the whole batch.

    Example::

        loss = AlignUniform(alpha=2, t=2)
        out = loss([z1, z2])
        out.parts["align"], out.parts["uniform"]

    Args:
        align_weight: :math:`w_{align}` ≥ 0.
        unif_weight: :math:`w_{unif}` ≥ 0.
        alpha: exponent α > 0 of the alignment distance.
        t: kernel scale t > 0 of the uniformity term.
    """

    distributed = "gather"

    def __init__(self, align_weight: float = 1.0, unif_weight: float = 1.0, alpha: float = 2.0, t: float = 2.0) -> None:
        super().__init__()
        self.align_weight = _non_negative("AlignUniform", "align_weight", align_weight)
        self.unif_weight = _non_negative("AlignUniform", "unif_weight", unif_weight)
        self.alpha = check_positive("AlignUniform", "alpha", alpha)
        self.t = check_positive("AlignUniform", "t", t)

    def forward(self, views: Sequence[torch.Tensor], labels: torch.Tensor | None = None) -> LossOutput:
        self.check_views(views)
        k, b = len(views), views[0].shape[0]
        _need_two_samples("AlignUniform", b)
        local, every = _normalised(views)
        dev = local.device
        li, mi = torch.triu_indices(k, k, 1, device=dev)
        align = torch.linalg.vector_norm(local[li] - local[mi], dim=-1).pow(self.alpha).mean()

        n = every.shape[1]
        # squared distances of unit vectors: 2 − 2 cos
        sq = (2.0 - 2.0 * torch.einsum("kid,kjd->kij", local, every)).clamp_min(0.0)  # K × B × W·B
        is_self = torch.arange(n, device=dev) == _own_index(b, dev)[:, None]
        row_sums = torch.exp(-self.t * sq).masked_fill(is_self, 0.0).sum(dim=-1)  # K × B
        totals = gather_with_grad(row_sums.T.contiguous()).sum(dim=0)  # K: sums over the whole batch
        uniform = (totals / (n * (n - 1))).log().mean()
        loss = self.align_weight * align + self.unif_weight * uniform
        return LossOutput(loss, {"align": align.detach(), "uniform": uniform.detach()})


LOSSES = {
    "mv_infonce": MVInfoNCE,
    "poly_view": PolyViewInfoNCE,
    "mv_dhel": MVDHEL,
    "align_uniform": AlignUniform,
}
