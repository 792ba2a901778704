"""Every multi-view, non-contrastive and CoLES loss under two gloo processes equals one process.

One spawn of W = 2 CPU processes computes all the losses below on its half of
a fixed batch (B = 6 samples a rank, D = 8) and saves loss, parts and input
gradients.  What must hold (DDP averages parameter gradients over ranks, so the
objective optimised is the mean of the per-rank losses):

- mean_r L_r equals the single-process loss on the whole batch;
- rank-local input gradients / W equal the single-process gradients of the
  same rows (the rank's gradient is d(sum_r' L_r')/dz_r: its own loss plus,
  through the gathers' backward, every other rank's).

How each kind of loss gets there:

- contrastive losses (poly-view, MV-InfoNCE, MV-DHEL, CoLES): each rank's loss
  is the mean over its own anchors, contrasted with candidates gathered from
  all ranks; ranks have equally many anchors, so the mean of the per-rank
  means is the global mean;
- losses on batch statistics (Barlow Twins, VICReg's variance/covariance,
  AlignUniform's uniformity): the statistic is a non-linear function of the
  whole batch, so every rank computes the *global* statistic from gathered
  embeddings (or gathered per-row partial sums) — those terms are then equal
  on all ranks, and each rank's input gradient collects W identical
  contributions, which DDP's division by W undoes.  A per-rank statistic
  (no gather) would give another value: checked below for every loss.
"""

from __future__ import annotations

import pytest
import torch

from contrastkit.core.losses.coles import LOSSES as COLES_LOSSES
from contrastkit.core.losses.multiview import LOSSES as MV_LOSSES
from contrastkit.core.losses.noncontrastive import LOSSES as NC_LOSSES

from tests.core._two_ranks import (WORLD, assert_matches_one_process, loss_and_grads, rank_half, rank_result,
                                   run_on_two_ranks)

B, D = 6, 8

# (case id, registry name, constructor kwargs, K)
CASES = [
    ("poly_view_arith_k3", "poly_view", {"temperature": 0.2, "aggregation": "arithmetic"}, 3),
    ("poly_view_geom_k3", "poly_view", {"temperature": 0.2, "aggregation": "geometric"}, 3),
    ("mv_infonce_k3", "mv_infonce", {"temperature": 0.3}, 3),
    ("mv_dhel_k2", "mv_dhel", {"temperature": 0.3}, 2),
    ("mv_dhel_k3", "mv_dhel", {"temperature": 0.3}, 3),
    ("align_uniform_k3", "align_uniform", {"alpha": 2.0, "t": 2.0}, 3),
    ("align_uniform_k2", "align_uniform", {"alpha": 1.0, "t": 0.5, "unif_weight": 2.0}, 2),
    ("barlow_twins_k2", "barlow_twins", {"lambda_offdiag": 0.05}, 2),
    ("barlow_twins_k3", "barlow_twins", {"lambda_offdiag": 0.05}, 3),
    ("vicreg_k3", "vicreg", {}, 3),
    ("coles_k2", "coles", {"margin": 1.2, "neg_count": 5}, 2),
    ("coles_k3", "coles", {"margin": 1.2, "neg_count": 3}, 3),
]
# losses whose value is a global batch statistic: every rank computes the same loss
SAME_ON_EVERY_RANK = {"barlow_twins"}

ALL = {**MV_LOSSES, **NC_LOSSES, **COLES_LOSSES}


def make_data() -> dict[int, torch.Tensor]:
    g = torch.Generator().manual_seed(2024)
    data = {}
    for k in sorted({case[3] for case in CASES}):
        base = torch.randn(WORLD * B, D, generator=g, dtype=torch.float64)
        scale = torch.linspace(0.3, 2.0, D, dtype=torch.float64)  # some VICReg std hinges active, some not
        data[k] = torch.stack([(base + 0.5 * torch.randn(WORLD * B, D, generator=g, dtype=torch.float64)) * scale
                               for _ in range(k)])
    return data


def every_loss_on_rank(r: int, data: dict[int, torch.Tensor]) -> dict[str, dict]:
    """Rank r of the two gloo processes: every case on its half of the batch, by case id."""
    return {case: rank_result(*loss_and_grads(ALL[name](**kwargs), [rank_half(v, r) for v in data[k]]))
            for case, name, kwargs, k in CASES}


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """Run every case once on two gloo processes; return (data, per-rank results)."""
    data = make_data()
    return data, run_on_two_ranks(every_loss_on_rank, data, tmp_path_factory.mktemp("ddp_losses"))


def test_every_registered_loss_is_covered():
    assert {case[1] for case in CASES} == set(ALL)


@pytest.mark.parametrize("case,name,kwargs,k", CASES, ids=[c[0] for c in CASES])
def test_two_processes_equal_one(ranks, case, name, kwargs, k):
    data, results = ranks
    res = [r[case] for r in results]

    full, full_grads = loss_and_grads(ALL[name](**kwargs), data[k])

    losses = assert_matches_one_process(res, full, full_grads,
                                        loss_atol=1e-10, loss_rtol=1e-10, grad_atol=1e-10, grad_rtol=1e-8)
    if name in SAME_ON_EVERY_RANK:
        torch.testing.assert_close(losses[0], losses[1], atol=1e-12, rtol=1e-12)
    else:
        assert not torch.allclose(losses[0], losses[1])  # the ranks really saw different anchors
    for key, value in full.parts.items():  # logged parts average to the single-process ones too
        torch.testing.assert_close(torch.stack([r["parts"][key] for r in res]).mean(), value, atol=1e-10, rtol=1e-8)

    loss_fn = ALL[name](**kwargs)
    for r, out in enumerate(res):
        assert [g.shape for g in out["grads"]] == [(B, D)] * k
        # the rank's half alone (no gather) gives another loss: the gather matters
        half = [rank_half(x, r).clone() for x in data[k]]
        assert abs(loss_fn(half).loss.item() - out["loss"].item()) > 1e-4
