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

import importlib
import sys
import textwrap
import time

import pytest
import torch
import torch.multiprocessing as tmp

from contrastkit.core.losses.coles import LOSSES as COLES_LOSSES
from contrastkit.core.losses.multiview import LOSSES as MV_LOSSES
from contrastkit.core.losses.noncontrastive import LOSSES as NC_LOSSES

WORLD, B, D = 2, 6, 8
TIMEOUT_S = 60

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

WORKER = '''
import datetime
import os
import sys

import torch
import torch.distributed as dist


def run(rank, world, store_path, data_path, out_dir, b, cases):
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method="file://" + store_path,
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=30),
    )
    try:
        from contrastkit.core.losses.coles import LOSSES as C
        from contrastkit.core.losses.multiview import LOSSES as M
        from contrastkit.core.losses.noncontrastive import LOSSES as N

        losses = {**M, **N, **C}
        data = torch.load(data_path)
        results = {}
        for case, name, kwargs, k in cases:
            views = [v[rank * b:(rank + 1) * b].clone().requires_grad_(True) for v in data[k]]
            out = losses[name](**kwargs)(views)
            grads = torch.autograd.grad(out.loss, views)
            results[case] = {
                "loss": out.loss.detach(),
                "grads": [g.detach() for g in grads],
                "parts": {key: val.detach() for key, val in out.parts.items()},
            }
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()
    # Leave without interpreter finalisation (gloo may abort there with torch 2.13; see test_distributed.py).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
'''

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


def run_ranks(worker, args: tuple) -> None:
    ctx = tmp.start_processes(worker.run, args=args, nprocs=WORLD, join=False, start_method="spawn")
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while not ctx.join(timeout=max(0.1, deadline - time.monotonic())):
            if time.monotonic() > deadline:
                pytest.fail(f"the {WORLD} gloo processes did not finish within {TIMEOUT_S} s")
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.terminate()
                p.join(5)


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """Run every case once on two gloo processes; return (data, per-rank results)."""
    tmp_path = tmp_path_factory.mktemp("ddp_losses")
    data = make_data()
    torch.save(data, tmp_path / "batch.pt")
    (tmp_path / "ck_dist_more_worker.py").write_text(textwrap.dedent(WORKER))
    sys.path.insert(0, str(tmp_path))  # spawned children inherit sys.path
    importlib.invalidate_caches()
    try:
        worker = importlib.import_module("ck_dist_more_worker")
        run_ranks(worker, (WORLD, str(tmp_path / "store"), str(tmp_path / "batch.pt"), str(tmp_path), B, CASES))
    finally:
        sys.modules.pop("ck_dist_more_worker", None)
        sys.path.remove(str(tmp_path))
    return data, [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]


def test_every_registered_loss_is_covered():
    assert {case[1] for case in CASES} == set(ALL)


@pytest.mark.parametrize("case,name,kwargs,k", CASES, ids=[c[0] for c in CASES])
def test_two_processes_equal_one(ranks, case, name, kwargs, k):
    data, results = ranks
    res = [r[case] for r in results]

    views = [v.clone().requires_grad_(True) for v in data[k]]
    full = ALL[name](**kwargs)(views)
    full_grads = torch.autograd.grad(full.loss, views)

    losses = torch.stack([r["loss"] for r in res])
    torch.testing.assert_close(losses.mean(), full.loss.detach(), atol=1e-10, rtol=1e-10)
    if name in SAME_ON_EVERY_RANK:
        torch.testing.assert_close(losses[0], losses[1], atol=1e-12, rtol=1e-12)
    else:
        assert not torch.allclose(losses[0], losses[1])  # the ranks really saw different anchors
    for key, value in full.parts.items():  # logged parts average to the single-process ones too
        torch.testing.assert_close(torch.stack([r["parts"][key] for r in res]).mean(), value, atol=1e-10, rtol=1e-8)

    loss_fn = ALL[name](**kwargs)
    for r, out in enumerate(res):
        rows = slice(r * B, (r + 1) * B)
        for v in range(k):
            assert out["grads"][v].shape == (B, D)
            torch.testing.assert_close(out["grads"][v] / WORLD, full_grads[v][rows], atol=1e-10, rtol=1e-8)
        # the rank's half alone (no gather) gives another loss: the gather matters
        half = [x[rows].clone() for x in data[k]]
        assert abs(loss_fn(half).loss.item() - out["loss"].item()) > 1e-4
