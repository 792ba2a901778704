"""TS2Vec's hierarchical loss against a naive loop reference, and the dense (aligned-views) path."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.core.errors import ConfigError
from contrastkit.core.losses import HierarchicalContrastive
from contrastkit.core.views import AlignedViews, ViewGenerator


def _nce_loop(reps: list[torch.Tensor], positive: callable) -> torch.Tensor:
    """−log(exp(s_ip) / Σ_{j≠i} exp(s_ij)) averaged over anchors, with explicit loops."""
    total, n = 0.0, len(reps)
    for i in range(n):
        sims = [reps[i] @ reps[j] for j in range(n) if j != i]
        denom = sum(torch.exp(s) for s in sims)
        total = total - torch.log(torch.exp(reps[i] @ reps[positive(i)]) / denom)
    return total / n


def naive(z1: torch.Tensor, z2: torch.Tensor, alpha: float) -> torch.Tensor:
    total, scales = 0.0, 0
    while True:
        b, t, _ = z1.shape
        inst = sum(_nce_loop([z1[s, step] for s in range(b)] + [z2[s, step] for s in range(b)],
                             lambda i: (i + b) % (2 * b)) for step in range(t)) / t
        term = alpha * inst
        if t > 1:
            temp = sum(_nce_loop([z1[s, step] for step in range(t)] + [z2[s, step] for step in range(t)],
                                 lambda i: (i + t) % (2 * t)) for s in range(b)) / b
            term = term + (1 - alpha) * temp
        total, scales = total + term, scales + 1
        if t == 1:
            return total / scales
        half = t // 2
        z1 = torch.stack([torch.maximum(z1[:, 2 * i], z1[:, 2 * i + 1]) for i in range(half)], dim=1)
        z2 = torch.stack([torch.maximum(z2[:, 2 * i], z2[:, 2 * i + 1]) for i in range(half)], dim=1)


@pytest.mark.parametrize("t,alpha", [(5, 0.5), (8, 0.3), (1, 0.5)])
def test_matches_naive_reference_values_and_gradients(t, alpha):
    torch.manual_seed(0)
    z1 = torch.randn(3, t, 4, dtype=torch.float64, requires_grad=True)
    z2 = torch.randn(3, t, 4, dtype=torch.float64, requires_grad=True)
    ours = HierarchicalContrastive(alpha=alpha)([z1, z2]).loss
    ref = naive(z1, z2, alpha)
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-9)
    g_ours = torch.autograd.grad(ours, (z1, z2))
    g_ref = torch.autograd.grad(ref, (z1, z2))
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-9)


def test_collapsed_representations_give_log_of_candidates():
    # All representations equal: every term is log(number of candidates) = log(N − 1).
    b, t = 4, 4
    z = torch.ones(b, t, 3)
    out = HierarchicalContrastive(alpha=1.0)([z, z.clone()])
    assert out.loss.item() == pytest.approx(math.log(2 * b - 1), rel=1e-6)


def test_rejects_bad_arguments():
    for kwargs in ({"alpha": 1.5}, {"temporal_unit": -1}, {"temperature": 0}):
        with pytest.raises(ConfigError):
            HierarchicalContrastive(**kwargs)
    with pytest.raises(ConfigError, match="B × T × D"):
        HierarchicalContrastive()([torch.randn(2, 4), torch.randn(2, 4)])


def test_aligned_views_survive_shape_preserving_pipeline_only():
    from contrastkit.core.views import Augmentation, JointAugmentation

    class Halves(JointAugmentation):
        def views(self, batch, k, generator):
            return AlignedViews([batch[..., :6], batch[..., 2:8]], [slice(2, 6), slice(0, 4)])

    class Noise(Augmentation):
        def apply(self, batch, generator):
            return batch + torch.randn(batch.shape, generator=generator)

    class Shorten(Augmentation):
        def apply(self, batch, generator):
            return batch[..., :-1]

    x = torch.arange(16.0).view(2, 1, 8)
    views = ViewGenerator([Noise()], k=2, joint=Halves())(x, torch.Generator().manual_seed(0))
    assert isinstance(views, AlignedViews) and views.aligned == [slice(2, 6), slice(0, 4)]
    views = ViewGenerator([Shorten()], k=2, joint=Halves())(x, torch.Generator().manual_seed(0))
    assert not hasattr(views, "aligned")


def test_contextual_crop_alignment_points_at_the_same_time_steps():
    from contrastkit.plugins.timeseries.augmentations import ContextualCrop

    ramp = torch.arange(60.0).repeat(5, 1, 1)
    views = ContextualCrop(0.5).views(ramp, 3, torch.Generator().manual_seed(1))
    shared = [v[..., sl] for v, sl in zip(views, views.aligned)]
    for s in shared[1:]:
        assert torch.equal(s, shared[0])
