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

import importlib
import sys
import textwrap
import time

import pytest
import torch
import torch.multiprocessing as tmp

from contrastkit.core.distributed import gather_with_grad, is_distributed, rank, world_size
from contrastkit.core.losses import InfoNCE

WORLD, B, K, D = 2, 8, 2, 16
TEMPERATURE = 0.2
TIMEOUT_S = 60

WORKER = '''
import datetime
import os
import sys

import torch
import torch.distributed as dist


def run(rank, world, store_path, data_path, out_dir, b, temperature):
    torch.set_num_threads(1)
    # A FileStore rather than MASTER_ADDR/MASTER_PORT: no free-port race.
    dist.init_process_group(
        "gloo",
        init_method="file://" + store_path,
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=30),
    )
    try:
        from contrastkit.core.distributed import is_distributed, rank as get_rank, world_size
        from contrastkit.core.losses import InfoNCE

        assert is_distributed() and world_size() == world and get_rank() == rank
        data = torch.load(data_path)
        views = [v[rank * b:(rank + 1) * b].clone().requires_grad_(True) for v in data]
        out = InfoNCE(temperature=temperature).double()(views)
        grads = torch.autograd.grad(out.loss, views)
        torch.save(
            {"loss": out.loss.detach(), "grads": [g.detach() for g in grads], "top1": out.parts["top1"]},
            os.path.join(out_dir, f"rank{rank}.pt"),
        )
    finally:
        dist.destroy_process_group()
    # The results are on disk.  Leave without interpreter finalisation: with
    # torch 2.13 a gloo rank aborts there now and then ("terminate called
    # without an active exception", SIGABRT) even after destroy_process_group,
    # which would fail this test for no fault of the code under test.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
'''


def run_ranks(worker, args: tuple) -> None:
    """Start WORLD spawned processes and wait for them, killing them after TIMEOUT_S."""
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


def test_single_process_helpers():
    x = torch.randn(3, 2)
    assert not is_distributed() and world_size() == 1 and rank() == 0
    assert gather_with_grad(x) is x


def test_gathered_infonce_equals_single_process(tmp_path, monkeypatch):
    g = torch.Generator().manual_seed(1234)
    base = torch.randn(WORLD * B, D, generator=g, dtype=torch.float64)
    data = torch.stack([base + 0.6 * torch.randn(WORLD * B, D, generator=g, dtype=torch.float64) for _ in range(K)])
    data_path = tmp_path / "batch.pt"
    torch.save(data, data_path)

    (tmp_path / "ck_dist_worker.py").write_text(textwrap.dedent(WORKER))
    monkeypatch.syspath_prepend(str(tmp_path))  # spawned children inherit sys.path
    importlib.invalidate_caches()
    worker = importlib.import_module("ck_dist_worker")
    try:
        run_ranks(worker, (WORLD, str(tmp_path / "store"), str(data_path), str(tmp_path), B, TEMPERATURE))
    finally:
        sys.modules.pop("ck_dist_worker", None)
    results = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]

    # one process, the whole batch
    views = [v.clone().requires_grad_(True) for v in data]
    full = InfoNCE(temperature=TEMPERATURE).double()(views)
    full_grads = torch.autograd.grad(full.loss, views)

    losses = torch.stack([res["loss"] for res in results])
    assert not torch.allclose(losses[0], losses[1])  # the ranks really saw different anchors
    torch.testing.assert_close(losses.mean(), full.loss.detach(), atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(
        torch.stack([res["top1"] for res in results]).mean(), full.parts["top1"], atol=1e-12, rtol=0
    )

    for r, res in enumerate(results):
        rows = slice(r * B, (r + 1) * B)
        for k in range(K):
            local = res["grads"][k]
            expected = full_grads[k][rows]
            assert local.shape == (B, D)
            # DDP divides the summed gradients by W
            torch.testing.assert_close(local / WORLD, expected, atol=1e-10, rtol=1e-8)
        # each rank's loss really contrasts with the other rank's samples: a loss on
        # the rank's half alone (no gather) has another value and other gradients
        half = [v[rows].clone().requires_grad_(True) for v in data]
        alone = InfoNCE(temperature=TEMPERATURE).double()(half)
        assert abs(alone.loss.item() - res["loss"].item()) > 1e-3
        alone_grads = torch.autograd.grad(alone.loss, half)
        assert not torch.allclose(alone_grads[0], res["grads"][0], atol=1e-4)
