"""Representation diagnostics that make a collapsed run visible at once.

- alignment (Wang & Isola 2020): E ||f(x) − f(x')||², over positive pairs of
  L2-normalised embeddings; 0 is perfect alignment, 4 the worst.
- uniformity (Wang & Isola 2020): log E exp(−t ||f(x) − f(y)||²) with t = 2,
  over all pairs; lower is more uniform; 0 means every embedding is the same.
- effective rank (Roy & Vetterli 2007; RankMe, Garrido et al. 2023):
  exp(entropy of the normalised singular values) of the N × D embedding
  matrix; 1 for a collapse onto one direction, up to min(N, D).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def alignment(a: torch.Tensor, b: torch.Tensor, alpha: float = 2.0) -> float:
    a, b = F.normalize(a.float(), dim=1), F.normalize(b.float(), dim=1)
    return float((a - b).norm(dim=1).pow(alpha).mean())


def uniformity(x: torch.Tensor, t: float = 2.0, max_items: int = 4096) -> float:
    x = F.normalize(x.float(), dim=1)[:max_items]
    if x.shape[0] < 2:
        return float("nan")
    sq = torch.pdist(x, p=2).pow(2)
    return float(torch.logsumexp(-t * sq, dim=0) - math.log(sq.numel()))


def effective_rank(x: torch.Tensor, eps: float = 1e-12) -> float:
    s = torch.linalg.svdvals(x.double())
    total = s.sum()
    if total <= eps:
        return 0.0
    p = s / total
    p = p[p > eps]
    return float(torch.exp(-(p * p.log()).sum()))


def report(h: torch.Tensor, h1: torch.Tensor, h2: torch.Tensor) -> dict[str, float]:
    """Diagnostics of representations h (clean) and h1, h2 (two views of the same items)."""
    return {
        "alignment": alignment(h1, h2),
        "uniformity": uniformity(h),
        "effective_rank": effective_rank(h),
        "dim": int(h.shape[1]),
    }
