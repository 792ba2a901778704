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

import torch

from contrastkit.core.losses.contrastive import LOSSES

from tests.core._two_ranks import (WORLD, assert_matches_one_process, loss_and_grads, rank_half, rank_result,
                                   run_on_two_ranks)

B, D = 6, 8

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


def every_loss_on_rank(r: int, blob: dict) -> list[dict]:
    """Rank r of the two gloo processes: every case on its half of the batch, in the order of CASES."""
    data, labels = blob["data"], rank_half(blob["labels"], r)
    results = []
    for name, kwargs, use_labels in CASES:
        for k in (2, 3):
            out, grads = loss_and_grads(LOSSES[name](**kwargs).double(), [rank_half(v, r) for v in data[:k]],
                                        labels if use_labels else None)
            results.append(rank_result(out, grads))
    return results


def test_every_loss_gathered_equals_single_process(tmp_path):
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(4321)
    base = torch.randn(WORLD * B, D, generator=g, dtype=torch.float64)
    data = torch.stack([base + 0.7 * torch.randn(WORLD * B, D, generator=g, dtype=torch.float64) for _ in range(3)])
    assert LABELS.shape == (WORLD * B,)
    ranks = run_on_two_ranks(every_loss_on_rank, {"data": data, "labels": LABELS}, tmp_path)

    i = 0
    for name, kwargs, use_labels in CASES:
        for k in (2, 3):
            where = f"{name} {kwargs} labels={use_labels} K={k}"
            res = [ranks[r][i] for r in range(WORLD)]
            i += 1
            loss_fn = LOSSES[name](**kwargs).double()
            full, full_grads = loss_and_grads(loss_fn, data[:k], LABELS if use_labels else None)
            # the cases exercise what they are meant to: the debiasing clamp on some anchors
            # only, individual temperatures inside their interval
            if name == "debiased" and kwargs["tau_plus"] == 0.2:
                assert 0 < float(full.parts["clamped"]) < 1, where
            if name == "per_sample_temperature":
                assert float(full.parts["tau_at_bound"]) < 1, where

            losses = assert_matches_one_process(res, full, full_grads, loss_atol=1e-10, loss_rtol=1e-10,
                                                grad_atol=1e-10, grad_rtol=1e-8, msg=where)
            assert not torch.allclose(losses[0], losses[1]), where  # the ranks saw different anchors
            assert res[0]["parts"].keys() == full.parts.keys(), where
            for key, value in full.parts.items():
                mean = torch.stack([r_["parts"][key].double() for r_ in res]).mean()
                torch.testing.assert_close(mean, value.double(), atol=1e-6, rtol=1e-6, msg=f"{where} part {key}")

            for r in range(WORLD):
                assert [g.shape for g in res[r]["grads"]] == [(B, D)] * k, where
                # the rank's half alone (no gather) gives another loss and other gradients
                alone, alone_grads = loss_and_grads(loss_fn, [rank_half(x, r) for x in data[:k]],
                                                    rank_half(LABELS, r) if use_labels else None)
                assert abs(alone.loss.item() - res[r]["loss"].item()) > 1e-4, where
                assert not torch.allclose(alone_grads[0], res[r]["grads"][0], atol=1e-5), where
    assert i == len(ranks[0]) == 2 * len(CASES)
