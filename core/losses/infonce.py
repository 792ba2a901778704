"""InfoNCE / NT-Xent for K views, with optional momentum targets and a negatives queue; MoCHi."""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from ..distributed import gather_with_grad, rank, world_size
from ..errors import ConfigError
from ..momentum import concat_all_gather
from .base import ContrastiveLoss, LossOutput
from .contrastive import PerSampleTemperatureInfoNCE
from .kernels import fill_neg_inf_, fused_applies, row_logsumexp, self_contrast


class InfoNCE(ContrastiveLoss):
    r"""InfoNCE / NT-Xent over K views (Oord et al. 2018, CPC; Chen et al. 2020, SimCLR),
    optionally against momentum targets and a queue of negatives (MoCo v2, Chen et al. 2020).

    The N = K·B embeddings are L2-normalised.  For an anchor i, its positives
    P(i) are the other K−1 views of the same sample and every other embedding
    in the batch is a negative:

    .. math::
        \ell_i = -\frac{1}{|P(i)|}\sum_{p\in P(i)}
                 \log\frac{\exp(s_{ip}/\tau)}{\sum_{j\neq i}\exp(s_{ij}/\tau)},
        \qquad L = \frac{1}{N}\sum_i \ell_i ,

    with :math:`s_{ij}` the cosine similarity.  For K = 2 this is SimCLR's
    NT-Xent.

    **Momentum targets** (``targets``, K tensors B × D from an EMA target
    network, no gradient): the anchors are still the online views :math:`q_{v,b}`,
    the candidates are the target views :math:`k_{w,c}` instead — as MoCo v2's
    symmetric loss, the query of view v is contrasted with the keys of the other
    views w ≠ v of the same sample (the positives), the keys of the other
    samples (in-batch negatives, all views) and the ``queue`` rows (Q × D
    extra negatives); only the key of the anchor's own view and sample is left
    out:

    .. math::
        \ell_{v,b} = -\frac{1}{K-1}\sum_{w\neq v}
            \log\frac{\exp(q_{v,b}\cdot k_{w,b}/\tau)}
                     {\sum_{(w',c)\neq(v,b)}\exp(q_{v,b}\cdot k_{w',c}/\tau)
                      + \sum_{n\in\text{queue}}\exp(q_{v,b}\cdot n/\tau)} .

    With targets equal to the views this is the loss above, plus the queue.

    Shapes: ``views`` (and ``targets``) are lists of K tensors B × D, ``queue``
    is Q × D (normalised here again); returns a scalar.  Parts: ``pos_sim``
    (mean positive cosine), ``top1`` (share of anchors whose most similar
    candidate is a positive), ``temperature``.

    Distributed: without targets, each rank's anchors are contrasted with the
    embeddings of all ranks, gathered with gradient; with DDP's gradient
    averaging, loss and gradients equal one process on the whole batch.  With
    targets, the keys of all ranks are gathered without gradient (they take
    none) and the queue is identical on every rank; each rank's loss depends
    on its own anchors only, so DDP's averaging again gives the gradient of one
    process on the whole batch.

    Example::

        loss = InfoNCE(temperature=0.1)
        out = loss([z1, z2])          # z1, z2: B × D
        out.loss.backward()
        # MoCo v2 style, with an EMA target network and a NegativeQueue:
        out = loss([q1, q2], targets=[k1, k2], queue=queue.get())

    Args:
        temperature: τ > 0.
        learnable_temperature: learn log τ as a parameter (CLIP-style), started at ``temperature``.
    """

    distributed = "gather"

    def __init__(self, temperature: float = 0.1, learnable_temperature: bool = False,
                 per_sample_temperature: bool | dict = False) -> None:
        super().__init__()
        if not (isinstance(temperature, (int, float)) and temperature > 0):
            raise ConfigError(f"{type(self).__name__}: temperature must be a positive number, got {temperature!r}.")
        self.learnable_temperature = bool(learnable_temperature)
        log_t = torch.tensor(math.log(float(temperature)))
        if self.learnable_temperature:
            self.log_temperature = torch.nn.Parameter(log_t)
        else:
            self.register_buffer("log_temperature", log_t)
        # Per-sample temperature (an option of InfoNCE): the anchors' individual temperatures of
        # :class:`~contrastkit.core.losses.contrastive.PerSampleTemperatureInfoNCE`; ``true`` or a
        # table of its parameters (rho, tau_min, tau_max, iterations).
        self.per_sample = None
        if per_sample_temperature is not False:
            if per_sample_temperature is not True and not isinstance(per_sample_temperature, dict):
                raise ConfigError(f"{type(self).__name__}: per_sample_temperature must be true, false or a table "
                                  f"of its parameters, got {per_sample_temperature!r}.")
            if self.learnable_temperature:
                raise ConfigError(f"{type(self).__name__}: per_sample_temperature and learnable_temperature "
                                  "exclude each other.")
            params = per_sample_temperature if isinstance(per_sample_temperature, dict) else {}
            try:
                self.per_sample = PerSampleTemperatureInfoNCE(**params)
            except TypeError as exc:
                raise ConfigError(f"{type(self).__name__}: per_sample_temperature: {exc}.") from None

    @property
    def temperature(self) -> torch.Tensor:
        return self.log_temperature.exp()

    def forward(self, views: Sequence[torch.Tensor], labels: torch.Tensor | None = None, *,
                targets: Sequence[torch.Tensor] | None = None, queue: torch.Tensor | None = None) -> LossOutput:
        if self.per_sample is not None:
            if targets is not None or queue is not None:
                raise ConfigError("InfoNCE with per_sample_temperature does not support a momentum target or "
                                  "a queue; switch one of them off.")
            return self.per_sample(views, labels)
        self.check_views(views)
        normed = [F.normalize(v, dim=1) for v in views]
        if targets is None and queue is None and fused_applies(views, self.log_temperature):
            t = self.temperature
            lse, pos, row_max = self_contrast(normed, float(t))
            loss = (lse - pos.mean(dim=1)).mean()
            with torch.no_grad():
                top1 = (pos.amax(dim=1) >= row_max).float().mean()
            return LossOutput(loss, {"pos_sim": pos.detach().mean() * t, "top1": top1, "temperature": t.detach()})
        if targets is None:
            if queue is not None:
                raise ConfigError(f"{type(self).__name__}: a queue of negatives needs momentum targets "
                                  "(set [momentum] enabled = true).")
            # Global layout of the candidates: view k, rank r, sample b  ->  k·(W·B) + r·B + b
            every = torch.cat([gather_with_grad(v) for v in normed], dim=0)
        else:
            self.check_targets(views, targets)
            with torch.no_grad():  # same layout, keys of all ranks, no gradient
                every = torch.cat([concat_all_gather(F.normalize(t.detach(), dim=1)) for t in targets], dim=0)
            if queue is not None:
                if queue.dim() != 2 or queue.shape[1] != views[0].shape[1]:
                    raise ConfigError(f"{type(self).__name__}: the queue must be Q × {views[0].shape[1]}, "
                                      f"got shape {tuple(queue.shape)}.")
                queue = F.normalize(queue.detach().to(every.dtype), dim=1)
        return self._contrast(normed, every, queue)

    @staticmethod
    def check_targets(views: Sequence[torch.Tensor], targets: Sequence[torch.Tensor]) -> None:
        if len(targets) != len(views):
            raise ConfigError(f"momentum targets: expected {len(views)} target views, got {len(targets)}.")
        for t in targets:
            if t.shape != views[0].shape:
                raise ConfigError(f"momentum targets must have the views' shape {tuple(views[0].shape)}, "
                                  f"got {tuple(t.shape)}.")

    def _contrast(self, normed: list[torch.Tensor], every: torch.Tensor, queue: torch.Tensor | None) -> LossOutput:
        k, b = len(normed), normed[0].shape[0]
        w, r = world_size(), rank()
        local = torch.cat(normed, dim=0)  # (K·B) × D, view-major
        t = self.temperature
        scaled = local / t
        logits = scaled @ every.T  # (K·B) × (K·W·B): the only N × N' tensor

        dev = local.device
        rows = torch.arange(k * b, device=dev)
        anchor_view, anchor_sample = rows // b, rows % b + r * b
        # The K−1 positive columns of every anchor: the same sample in the other views.
        views_idx = torch.arange(k, device=dev).expand(k * b, k)
        pos_cols = views_idx[views_idx != anchor_view[:, None]].view(k * b, k - 1) * (w * b) + anchor_sample[:, None]
        # The positive logits from the embeddings (K−1 dot products per anchor), so that only the
        # log-sum-exp differentiates through the large matrix.
        pos = (scaled[:, None, :] * every[pos_cols]).sum(dim=-1)  # (K·B) × (K−1)
        # Remove each anchor's own column (in place: the matmul's backward does not use its output).
        logits = fill_neg_inf_(logits, rows, anchor_view * (w * b) + anchor_sample)
        n_real = logits.shape[1]
        parts: dict[str, torch.Tensor] = {}
        if queue is not None and queue.shape[0]:
            extra, parts = self.negative_logits(local, queue, t)
            n_real += queue.shape[0]
            logits = torch.cat([logits, extra], dim=1)
        # −log softmax at a positive = log-sum-exp of the row − the positive logit
        lse = row_logsumexp(logits)  # in at least float32
        loss = (lse - pos.mean(dim=1).to(lse.dtype)).mean()

        with torch.no_grad():
            pos_sim = pos.mean() * t
            # the best candidate is a positive (an amax is far cheaper than an argmax on the CPU)
            real = logits[:, :n_real]
            top1 = (real.gather(1, pos_cols).amax(dim=1) >= real.amax(dim=1)).float().mean()
        return LossOutput(loss, {"pos_sim": pos_sim, "top1": top1, "temperature": t.detach(), **parts})

    def negative_logits(self, local: torch.Tensor, queue: torch.Tensor,
                        t: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Logits (A × M) of the A anchors against extra negatives, and extra parts to log.

        Here the queue itself (M = Q); :class:`MoCHi` adds synthetic negatives.
        The first Q columns must be the queue's.
        """
        return (local / t) @ queue.T, {}


class MoCHi(InfoNCE):
    r"""InfoNCE with a momentum queue and hard negative mixing (Kalantidis et al., NeurIPS 2020,
    "Hard Negative Mixing for Contrastive Learning").

    For every anchor (query) q, the queue's negatives are ranked by their
    similarity to q and the N = ``n_hard`` most similar kept, :math:`\tilde Q^N`
    (all of them if the queue is shorter).  Two kinds of synthetic negatives
    are added to that anchor's denominator only:

    - ``s1`` mixtures of two hard negatives,
      :math:`h = \frac{\alpha n_i + (1-\alpha) n_j}{\lVert\cdot\rVert}`,
      :math:`n_i, n_j` drawn uniformly from :math:`\tilde Q^N`, :math:`\alpha \sim U(0, 1)`;
    - ``s2`` harder ones mixing the query itself with a hard negative,
      :math:`h' = \frac{\beta q + (1-\beta) n_j}{\lVert\cdot\rVert}`, :math:`\beta \sim U(0, 0.5)`,
      so the negative stays the larger part.

    They are L2-normalised and constant: no gradient flows into them (the
    query enters :math:`h'` detached), only through the anchor's similarity to
    them.  Otherwise the loss is :class:`InfoNCE` with momentum targets and the
    queue.  The random draws use torch's global generator on the anchors'
    device (re-seeded per epoch by the trainer, so a resumed run repeats them).

    Shapes: as :class:`InfoNCE`; the synthetic negatives are A × (s1 + s2) × D
    for the A = K·B local anchors (memory A·(s1+s2)·D, kept for the backward).
    Parts: InfoNCE's, plus ``synthetic_sim`` (mean cosine of the anchors with
    their synthetic negatives; 0 while the queue is empty).

    Distributed: as InfoNCE with targets; the queue is identical on every
    rank and each rank mixes negatives for its own anchors.

    Needs the negatives queue: configure ``[momentum] enabled = true`` with
    ``queue_size > 0``.  While the queue is still empty (the first step) no
    negatives are synthesised.

    Example::

        loss = MoCHi(temperature=0.2, n_hard=1024, s1=512, s2=256)
        out = loss([q1, q2], targets=[k1, k2], queue=queue.get())

    Args:
        temperature: τ > 0 (MoCo v2 uses 0.2).
        learnable_temperature: learn log τ.
        n_hard: N ≥ 1, the hardest queue negatives to mix from.
        s1: number (≥ 0) of mixtures of two hard negatives.
        s2: number (≥ 0) of mixtures of the query with a hard negative.
    """

    needs_queue = True

    def __init__(self, temperature: float = 0.1, learnable_temperature: bool = False, n_hard: int = 1024,
                 s1: int = 512, s2: int = 256) -> None:
        super().__init__(temperature, learnable_temperature)
        for name, value, low in (("n_hard", n_hard, 1), ("s1", s1, 0), ("s2", s2, 0)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ConfigError(f"MoCHi: {name} must be an integer ≥ {low}, got {value!r}.")
        self.n_hard, self.s1, self.s2 = n_hard, s1, s2

    def forward(self, views: Sequence[torch.Tensor], labels: torch.Tensor | None = None, *,
                targets: Sequence[torch.Tensor] | None = None, queue: torch.Tensor | None = None) -> LossOutput:
        if targets is None or queue is None:
            raise ConfigError("loss 'mochi' mixes negatives from the momentum queue: set [momentum] "
                              "enabled = true and queue_size > 0.")
        out = super().forward(views, labels, targets=targets, queue=queue)
        out.parts.setdefault("synthetic_sim", out.loss.detach().new_zeros(()))  # the same parts every step
        return out

    @torch.no_grad()
    def synthesize(self, q: torch.Tensor, queue: torch.Tensor, sim: torch.Tensor | None = None) -> torch.Tensor:
        """Synthetic hard negatives (A × (s1 + s2) × D, unit norm, no gradient) for the A queries ``q``.

        ``q`` (A × D) and ``queue`` (Q × D, Q ≥ 1) are L2-normalised; ``sim``
        (A × Q), if given, ranks the queue for each query in place of ``q @ queue.T``
        (any positive multiple of it works).  The first ``s1`` per query mix
        two hard negatives, the last ``s2`` mix the query with one.
        """
        q = q.detach()
        a, dev = q.shape[0], q.device
        if sim is None:
            sim = q @ queue.T
        n = min(self.n_hard, queue.shape[0])
        hard = sim.detach().topk(n, dim=1).indices  # A × N rows of the queue
        out = []
        if self.s1:
            ni = queue[hard.gather(1, torch.randint(n, (a, self.s1), device=dev))]  # A × s1 × D
            nj = queue[hard.gather(1, torch.randint(n, (a, self.s1), device=dev))]
            alpha = torch.rand(a, self.s1, 1, device=dev, dtype=q.dtype)
            out.append(F.normalize(alpha * ni + (1 - alpha) * nj, dim=2))
        if self.s2:
            nj = queue[hard.gather(1, torch.randint(n, (a, self.s2), device=dev))]  # A × s2 × D
            beta = 0.5 * torch.rand(a, self.s2, 1, device=dev, dtype=q.dtype)
            out.append(F.normalize(beta * q[:, None, :] + (1 - beta) * nj, dim=2))
        if not out:
            return q.new_zeros(a, 0, q.shape[1])
        return torch.cat(out, dim=1)

    def negative_logits(self, local: torch.Tensor, queue: torch.Tensor,
                        t: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        queue_logits, parts = super().negative_logits(local, queue, t)
        synthetic = self.synthesize(local, queue, sim=queue_logits.detach())
        syn_logits = torch.einsum("ad,asd->as", local / t, synthetic)
        if syn_logits.numel():
            with torch.no_grad():
                parts = {**parts, "synthetic_sim": (syn_logits * t).mean()}
        return torch.cat([queue_logits, syn_logits], dim=1), parts
