"""Shared kernels of the InfoNCE-type losses: masked fills, a lean row log-sum-exp, the fused self-contrast.

Used by :mod:`.infonce`, :mod:`.contrastive` and :mod:`.multiview`; this module imports none of them.
"""

from __future__ import annotations

from typing import Sequence

import torch

from ..distributed import world_size

# ---- lean building blocks for the large logits matrix (used by .infonce, .contrastive and .multiview) -----
#
# Forward + backward of a softmax-type loss over N × N' logits costs three matrix products of
# N·N'·D multiply-adds; with D ~ 128, every extra N × N' temporary costs about as much again —
# on the CPU above all, where glibc maps every block over 32 MiB afresh, so that each new large
# temporary pays a page fault per 4 KiB.  The two helpers below keep the large temporaries of a
# loss to the logits matrix itself (bench/bench_losses.py measures it).

#: On the CPU, the rows of the logits are processed in blocks of about this size, so that the
#: temporaries stay small enough for the allocator to reuse them.
_BLOCK_BYTES = 2**20


def _block_rows(x: torch.Tensor) -> int:
    if x.device.type != "cpu":
        return max(1, x.shape[0])
    return max(1, _BLOCK_BYTES // max(1, x.shape[1] * x.element_size()))


class _FillNegInf(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        x[rows, cols] = float("-inf")
        ctx.mark_dirty(x)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad, None, None


def fill_neg_inf_(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """``x[rows, cols] = −inf`` in place (x: the output of a matmul, or any tensor whose backward
    does not need its own value); returns ``x``.

    The backward passes the incoming gradient through unchanged instead of
    copying it with zeros at the filled entries.  That is exact for what the
    losses feed it into — log-sum-exp, log-softmax, softmax, or a positive
    multiple of them — which give the −inf entries a gradient of exactly 0
    already (exp(−inf) = 0), and saves one N × N' temporary.  Do not use it
    where the filled entries could receive a nonzero gradient.
    """
    return _FillNegInf.apply(x, rows, cols)


class _RowLogSumExp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        dtype = torch.promote_types(x.dtype, torch.float32)
        lse = torch.cat([torch.logsumexp(block.to(dtype), dim=1) for block in x.split(_block_rows(x))])
        ctx.save_for_backward(x, lse)
        return lse

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, lse = ctx.saved_tensors  # a second backward fails here: x was modified in place
        step = _block_rows(x)
        for xb, lb, gb in zip(x.split(step), lse.split(step), grad.split(step)):
            if xb.dtype == lb.dtype:
                xb.sub_(lb[:, None]).exp_().mul_(gb[:, None])
            else:  # half precision: the softmax in float32, the gradient in x's dtype
                xb.copy_(torch.exp(xb.to(lb.dtype) - lb[:, None]) * gb[:, None])
        return x


def row_logsumexp(x: torch.Tensor) -> torch.Tensor:
    r""":math:`\log\sum_j e^{x_{ij}}` for every row of the N × N' matrix ``x`` (in at least float32).

    Same value and gradient as ``torch.logsumexp(x, dim=1)``, with two
    differences that make it lean: on the CPU it works through blocks of rows
    (no N × N' temporary), and its backward writes the gradient,
    softmax(x)·g, into ``x``'s own storage.  So ``x`` is consumed by the
    backward: it must be a temporary of the loss that nothing else
    differentiates through or reads afterwards (autograd refuses a second
    backward through it, since ``x`` has been modified).
    """
    return _RowLogSumExp.apply(x)


# ---- one-process fast path: the whole loss in one autograd node ------------------------------------------
#
# Without other ranks, a queue or a learnable temperature, the anchors are their own candidates and
# the loss's gradient with respect to the logits has a closed form, softmax − positives/(K−1).  One
# autograd node then does the loss in one matrix product forward and two backward, with a single
# M × M buffer (logits → softmax → gradient, in place) and about a dozen elementwise passes and
# reductions — at small batches, where the products are cheap, the autograd graph of the general
# path (some thirty nodes) would otherwise cost as much as they do.

_POS_COLS: dict[tuple, torch.Tensor] = {}


def positive_columns(k: int, b: int, device: torch.device) -> torch.Tensor:
    """(K·B) × (K−1): the columns of each anchor's positives in the view-major (K·B) layout (cached)."""
    key = (k, b, str(device))
    cols = _POS_COLS.get(key)
    if cols is None:
        rows = torch.arange(k * b, device=device)
        views_idx = torch.arange(k, device=device).expand(k * b, k)
        cols = (views_idx[views_idx != (rows // b)[:, None]].view(k * b, k - 1) * b + (rows % b)[:, None])
        if len(_POS_COLS) > 64:
            _POS_COLS.clear()
        _POS_COLS[key] = cols
    return cols


class _SelfContrast(torch.autograd.Function):
    """(lse, pos, row max) of the M × M logits of M normalised anchors with themselves."""

    @staticmethod
    def forward(ctx, local: torch.Tensor, pos_cols: torch.Tensor, inv_t: float, decoupled: bool):
        s = torch.mm(local, local.t()).mul_(inv_t)
        s.fill_diagonal_(float("-inf"))
        pos = s.gather(1, pos_cols)  # M × (K−1) positive logits
        if decoupled:  # DCL: the positives leave the denominator
            s.scatter_(1, pos_cols, float("-inf"))
        row_max = s.amax(dim=1, keepdim=True)
        s.sub_(row_max).exp_()
        total = s.sum(dim=1, keepdim=True)
        lse = (total.log() + row_max).squeeze(1)
        s.div_(total)  # the softmax over each row's candidates, kept for the backward
        ctx.save_for_backward(local, s, pos_cols)
        ctx.inv_t = inv_t
        row_max = row_max.squeeze(1)
        ctx.mark_non_differentiable(row_max)
        return lse, pos, row_max

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_lse, grad_pos, _grad_max):
        local, g, pos_cols = ctx.saved_tensors
        g.mul_(grad_lse[:, None])  # d lse_i / d logit_ij = softmax_ij
        g.scatter_add_(1, pos_cols, grad_pos.to(g.dtype))
        grad = torch.mm(g, local)
        grad.addmm_(g.t(), local)  # the anchors are their own candidates: both roles
        return grad.mul_(ctx.inv_t), None, None, None


def fused_applies(views: Sequence[torch.Tensor], temperature: torch.Tensor | float) -> bool:
    """Whether :func:`self_contrast` may replace the general path (one process, fixed τ, float32/64)."""
    return (world_size() == 1 and views[0].dtype in (torch.float32, torch.float64)
            and not (isinstance(temperature, torch.Tensor) and temperature.requires_grad))


def self_contrast(normed: Sequence[torch.Tensor], temperature: float, decoupled: bool = False):
    """The K normalised views (B × D each) of one process contrasted with themselves, in one autograd node.

    Returns ``lse`` (K·B: log-sum-exp of each anchor's row of logits s/τ, its
    own column left out, and with ``decoupled`` its positives too), ``pos``
    ((K·B) × (K−1): its positive logits) and ``row_max`` (K·B, no gradient:
    the largest logit in the denominator).  Anchors are view-major (row
    v·B + b).  A loss is then any function of ``lse`` and ``pos``.
    """
    k, b = len(normed), normed[0].shape[0]
    local = torch.cat(list(normed), dim=0)
    return _SelfContrast.apply(local, positive_columns(k, b, local.device), 1.0 / float(temperature), decoupled)
