"""InfoNCE under two gloo processes equals one process on the whole batch.

Each of W = 2 ranks holds B = 8 samples (K = 2 views, D = 16) of a fixed
batch of W·B = 16 samples and computes InfoNCE, which contrasts its anchors
with the embeddings of all ranks gathered with gradient.

What must hold, with DDP averaging parameter gradients over ranks (so that the
objective actually optimised is the mean of the per-rank losses):

- mean_r L_r equals the single-process loss L on the whole batch (each L_r is
  the mean over its K·B anchors, and all ranks hold equally many anchors);
- the gradient that rank r computes for its own inputs z_r is
  d(sum_r' L_r')/dz_r: its local part plus, through the all-gather's backward,
  the contributions of every other rank's loss.  After DDP's division by W this
  is d(mean_r' L_r')/dz_r = dL/dz_r, so rank-local input gradients / W must equal
  the single-process gradients of the corresponding rows.
"""

from __future__ import annotations

import torch

from contrastkit.core.distributed import gather_with_grad, is_distributed, rank, world_size
from contrastkit.core.losses import InfoNCE

from tests.core._two_ranks import (WORLD, assert_matches_one_process, loss_and_grads, rank_half, rank_result,
                                   run_on_two_ranks)

B, K, D = 8, 2, 16
TEMPERATURE = 0.2


def infonce_on_rank(r: int, data: torch.Tensor) -> dict:
    """Rank r of the two gloo processes: InfoNCE on its half of the batch, gathering the other half."""
    assert is_distributed() and world_size() == WORLD and rank() == r
    return rank_result(*loss_and_grads(InfoNCE(temperature=TEMPERATURE).double(), [rank_half(v, r) for v in data]))


def test_single_process_helpers():
    x = torch.randn(3, 2)
    assert not is_distributed() and world_size() == 1 and rank() == 0
    assert gather_with_grad(x) is x


def test_gathered_infonce_equals_single_process(tmp_path):
    g = torch.Generator().manual_seed(1234)
    base = torch.randn(WORLD * B, D, generator=g, dtype=torch.float64)
    data = torch.stack([base + 0.6 * torch.randn(WORLD * B, D, generator=g, dtype=torch.float64) for _ in range(K)])
    results = run_on_two_ranks(infonce_on_rank, data, tmp_path)

    # one process, the whole batch
    full, full_grads = loss_and_grads(InfoNCE(temperature=TEMPERATURE).double(), data)

    losses = assert_matches_one_process(results, full, full_grads,
                                        loss_atol=1e-10, loss_rtol=1e-10, grad_atol=1e-10, grad_rtol=1e-8)
    assert not torch.allclose(losses[0], losses[1])  # the ranks really saw different anchors
    torch.testing.assert_close(
        torch.stack([res["parts"]["top1"] for res in results]).mean(), full.parts["top1"], atol=1e-12, rtol=0
    )

    for r, res in enumerate(results):
        assert [g.shape for g in res["grads"]] == [(B, D)] * K
        # each rank's loss really contrasts with the other rank's samples: a loss on
        # the rank's half alone (no gather) has another value and other gradients
        alone, alone_grads = loss_and_grads(InfoNCE(temperature=TEMPERATURE).double(), [rank_half(v, r) for v in data])
        assert abs(alone.loss.item() - res["loss"].item()) > 1e-3
        assert not torch.allclose(alone_grads[0], res["grads"][0], atol=1e-4)
