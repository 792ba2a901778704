"""Every loss of contrastkit.core.losses.contrastive under two gloo processes equals one process.

One spawn of W = 2 ranks runs every loss (K = 2 and K = 3 views, B = 6
samples a rank, D = 8), each rank on its half of a fixed batch.  As in
tests/core/test_distributed.py: with DDP averaging gradients over ranks,

- the mean of the per-rank losses must equal the single-process loss on the
  whole batch (and so must the mean of every logged part, all means over
  anchors);
- each rank's gradient for its own inputs, divided by W, must equal the
  single-process gradient of those rows;
- a rank's loss really uses the other rank's samples: computed on its half
  alone (no gather), loss and gradients differ.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
import time

import pytest
import torch
import torch.multiprocessing as tmp

from contrastkit.core.losses.contrastive import LOSSES

WORLD, B, D = 2, 6, 8
TIMEOUT_S = 60

# (name, constructor arguments, use labels); each runs with K = 2 and K = 3
CASES = [
    ("dcl", {"temperature": 0.2}, False),
    ("dclw", {"temperature": 0.2, "sigma": 0.5}, False),
    ("debiased", {"temperature": 0.5, "tau_plus": 0.1}, False),
    ("debiased", {"temperature": 0.5, "tau_plus": 0.2}, False),  # the clamp is active for some anchors
    ("hard_negative", {"temperature": 0.5, "tau_plus": 0.1, "beta": 1.0}, False),
    ("supcon", {"temperature": 0.2}, False),
    ("supcon", {"temperature": 0.2}, True),
    ("per_sample_temperature", {"rho": 0.2, "tau_min": 0.05, "tau_max": 1.0}, False),
]
# labels shared across the two ranks' halves, with unknown (-1) entries
LABELS = torch.tensor([0, 1, 2, -1, 0, 3, 1, 2, -1, 0, 4, 3])

WORKER = '''
import datetime
import os
import sys

import torch
import torch.distributed as dist


def run(rank, world, store_path, data_path, out_dir, b, cases):
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
        from contrastkit.core.losses.contrastive import LOSSES

        blob = torch.load(data_path)
        data, labels = blob["data"], blob["labels"][rank * b:(rank + 1) * b]
        results = []
        for name, kwargs, use_labels in cases:
            for k in (2, 3):
                views = [v[rank * b:(rank + 1) * b].clone().requires_grad_(True) for v in data[:k]]
                out = LOSSES[name](**kwargs).double()(views, labels if use_labels else None)
                grads = torch.autograd.grad(out.loss, views)
                results.append({
                    "loss": out.loss.detach(),
                    "grads": [g.detach() for g in grads],
                    "parts": {key: val.detach() for key, val in out.parts.items()},
                })
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()
    # The results are on disk.  Leave without interpreter finalisation: a gloo
    # rank aborts there now and then (SIGABRT) even after destroy_process_group
    # (see tests/core/test_distributed.py).
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


def test_every_loss_gathered_equals_single_process(tmp_path, monkeypatch):
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(4321)
    base = torch.randn(WORLD * B, D, generator=g, dtype=torch.float64)
    data = torch.stack([base + 0.7 * torch.randn(WORLD * B, D, generator=g, dtype=torch.float64) for _ in range(3)])
    assert LABELS.shape == (WORLD * B,)
    data_path = tmp_path / "batch.pt"
    torch.save({"data": data, "labels": LABELS}, data_path)

    (tmp_path / "ck_dist_contrastive_worker.py").write_text(textwrap.dedent(WORKER))
    monkeypatch.syspath_prepend(str(tmp_path))  # spawned children inherit sys.path
    importlib.invalidate_caches()
    worker = importlib.import_module("ck_dist_contrastive_worker")
    try:
        run_ranks(worker, (WORLD, str(tmp_path / "store"), str(data_path), str(tmp_path), B, CASES))
    finally:
        sys.modules.pop("ck_dist_contrastive_worker", None)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]

    i = 0
    for name, kwargs, use_labels in CASES:
        for k in (2, 3):
            where = f"{name} {kwargs} labels={use_labels} K={k}"
            res = [ranks[r][i] for r in range(WORLD)]
            i += 1
            loss_fn = LOSSES[name](**kwargs).double()
            views = [v.clone().requires_grad_(True) for v in data[:k]]
            full = loss_fn(views, LABELS if use_labels else None)
            full_grads = torch.autograd.grad(full.loss, views)
            # the cases exercise what they are meant to: the debiasing clamp on some anchors
            # only, individual temperatures inside their interval
            if name == "debiased" and kwargs["tau_plus"] == 0.2:
                assert 0 < float(full.parts["clamped"]) < 1, where
            if name == "per_sample_temperature":
                assert float(full.parts["tau_at_bound"]) < 1, where

            losses = torch.stack([r_["loss"] for r_ in res])
            assert not torch.allclose(losses[0], losses[1]), where  # the ranks saw different anchors
            torch.testing.assert_close(losses.mean(), full.loss.detach(), atol=1e-10, rtol=1e-10, msg=where)
            assert res[0]["parts"].keys() == full.parts.keys(), where
            for key, value in full.parts.items():
                mean = torch.stack([r_["parts"][key].double() for r_ in res]).mean()
                torch.testing.assert_close(mean, value.double(), atol=1e-6, rtol=1e-6, msg=f"{where} part {key}")

            for r in range(WORLD):
                rows = slice(r * B, (r + 1) * B)
                for v in range(k):
                    local = res[r]["grads"][v]
                    assert local.shape == (B, D)
                    # DDP divides the summed gradients by W
                    torch.testing.assert_close(local / WORLD, full_grads[v][rows], atol=1e-10, rtol=1e-8, msg=where)
                # the rank's half alone (no gather) gives another loss and other gradients
                half = [x[rows].clone().requires_grad_(True) for x in data[:k]]
                alone = loss_fn(half, LABELS[rows] if use_labels else None)
                assert abs(alone.loss.item() - res[r]["loss"].item()) > 1e-4, where
                alone_grads = torch.autograd.grad(alone.loss, half)
                assert not torch.allclose(alone_grads[0], res[r]["grads"][0], atol=1e-5), where
    assert i == len(ranks[0]) == 2 * len(CASES)
