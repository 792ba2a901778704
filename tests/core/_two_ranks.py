"""The harness of the two-process tests: run a function on two gloo processes on CPU.

A test hands ``run_on_two_ranks`` a worker and a payload (its batch).  WORLD = 2
spawned processes each join a gloo process group, call ``worker(rank, payload)``
and save what it returns; the test gets the per-rank results back and compares
them with one process on the whole batch (``loss_and_grads``,
``assert_matches_one_process``).  ``rank_half`` is the part of a batch a rank holds.

Import it as ``from tests.core._two_ranks import ...``.  The worker reaches the
children pickled by reference (module and name), so it must be a module-level
function of an importable module.  A test module qualifies: pytest
(``--import-mode=importlib``, rootdir = the repository root) names it
``tests.core.test_...``, and ``run_on_two_ranks`` puts the repository root at
the front of sys.path while it spawns (children inherit sys.path), so the
children import ``tests.core._two_ranks`` and the test module under those names
even when pytest runs as the ``pytest`` script or from another directory, where
the root is not on sys.path.  A child imports the worker's module afresh: keep
its top level to imports and constants.
"""

from __future__ import annotations

import datetime
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as tmp

WORLD = 2
TIMEOUT_S = 60

# the directory that holds tests/
_ROOT = str(Path(__file__).resolve().parents[2])


def rank_half(x: torch.Tensor, rank: int) -> torch.Tensor:
    """The rows of the batch ``x`` (dim 0, WORLD equal parts) that rank ``rank`` holds."""
    n = x.shape[0]
    assert n % WORLD == 0, f"a batch of {n} rows does not split into {WORLD} ranks"
    b = n // WORLD
    return x[rank * b:(rank + 1) * b]


def loss_and_grads(loss_fn: Callable[..., Any], views: Sequence[torch.Tensor], *args: Any, **kwargs: Any):
    """``loss_fn`` on leaf copies of ``views``, and the gradient of its loss for each view.

    Returns (the loss output, a tuple with one gradient per view); further
    arguments go to ``loss_fn`` after the views.
    """
    leaves = [v.clone().requires_grad_(True) for v in views]
    out = loss_fn(leaves, *args, **kwargs)
    return out, torch.autograd.grad(out.loss, leaves)


def rank_result(out: Any, grads: Sequence[torch.Tensor], **extra: Any) -> dict:
    """What a worker returns for one loss: loss, input gradients and logged parts, detached."""
    return {
        "loss": out.loss.detach(),
        "grads": [g.detach() for g in grads],
        "parts": {key: val.detach() for key, val in out.parts.items()},
        **extra,
    }


def assert_matches_one_process(results: Sequence[dict], full: Any, full_grads: Sequence[torch.Tensor], *,
                               loss_atol: float, loss_rtol: float, grad_atol: float, grad_rtol: float,
                               msg: str | None = None) -> torch.Tensor:
    """The per-rank results (``rank_result``) against one process on the whole batch.

    With DDP averaging parameter gradients over ranks, the objective optimised
    is the mean of the per-rank losses, so:

    - the mean over ranks of the loss equals the single-process loss ``full.loss``;
    - each rank's gradient for its own inputs, divided by WORLD (DDP divides the
      summed gradients by W), equals the single-process gradient of those rows.

    Returns the per-rank losses, stacked.
    """
    losses = torch.stack([res["loss"] for res in results])
    torch.testing.assert_close(losses.mean(), full.loss.detach(), atol=loss_atol, rtol=loss_rtol, msg=msg)
    for r, res in enumerate(results):
        assert len(res["grads"]) == len(full_grads), msg
        for local, whole in zip(res["grads"], full_grads):
            expected = rank_half(whole, r)
            assert local.shape == expected.shape, msg
            torch.testing.assert_close(local / WORLD, expected, atol=grad_atol, rtol=grad_rtol, msg=msg)
    return losses


def run_on_two_ranks(worker: Callable[[int, Any], Any], payload: Any, tmp_path: Path,
                     timeout: float = TIMEOUT_S) -> list:
    """Call ``worker(rank, payload)`` on WORLD spawned gloo processes; return its results, by rank.

    ``payload`` and the results travel through files (torch.save / torch.load)
    in a fresh directory under ``tmp_path``; the processes are killed, and the
    test fails, after ``timeout`` seconds.
    """
    run_dir = Path(tempfile.mkdtemp(prefix="two_ranks_", dir=tmp_path))
    torch.save(payload, run_dir / "payload.pt")
    args = (worker, str(run_dir / "store"), str(run_dir))
    sys.path.insert(0, _ROOT)  # spawned children inherit sys.path: see the module docstring
    try:
        ctx = tmp.start_processes(_rank_main, args=args, nprocs=WORLD, join=False, start_method="spawn")
    finally:
        sys.path.remove(_ROOT)
    deadline = time.monotonic() + timeout
    try:
        while not ctx.join(timeout=max(0.1, deadline - time.monotonic())):
            if time.monotonic() > deadline:
                pytest.fail(f"the {WORLD} gloo processes did not finish within {timeout} s")
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.terminate()
                p.join(5)
    return [torch.load(run_dir / f"rank{r}.pt") for r in range(WORLD)]


def _rank_main(rank: int, worker: Callable[[int, Any], Any], store_path: str, run_dir: str) -> None:
    """One spawned process: join the gloo group, run the worker, save its result."""
    torch.set_num_threads(1)
    # A FileStore rather than MASTER_ADDR/MASTER_PORT: no free-port race.
    dist.init_process_group(
        "gloo",
        init_method="file://" + store_path,
        rank=rank,
        world_size=WORLD,
        timeout=datetime.timedelta(seconds=30),
    )
    try:
        result = worker(rank, torch.load(os.path.join(run_dir, "payload.pt")))
        torch.save(result, os.path.join(run_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()
    # The results are on disk.  Leave without interpreter finalisation: with
    # torch 2.13 a gloo rank aborts there now and then ("terminate called
    # without an active exception", SIGABRT) even after destroy_process_group,
    # which would fail the test for no fault of the code under test.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
