r"""Momentum (EMA) target networks and a queue of negatives.

A *target network* is a copy of the online encoder and head that is not
trained by gradients but follows the online weights as an exponential moving
average after every optimiser step (MoCo, He et al. 2020, "Momentum Contrast
for Unsupervised Visual Representation Learning"; BYOL, Grill et al. 2020):

.. math::
    \theta_t \leftarrow m\,\theta_t + (1 - m)\,\theta ,

with ``m`` constant or following BYOL's cosine schedule from the base value
to 1, :math:`m_k = 1 - (1 - m_0)\,(\cos(\pi k / K) + 1) / 2` at step k of K.
Buffers (batch-norm running statistics) are copied, not averaged.

The *negatives queue* (MoCo; MoCo v2, Chen et al. 2020, "Improved Baselines
with Momentum Contrastive Learning") keeps the L2-normalised target keys of the
last few steps as extra negatives, decoupling their number from the batch size.

Distributed: the keys of a step are gathered from every rank (without
gradient) before they are enqueued, in rank order, so the queue is identical on
every rank; the EMA update runs on each rank after DDP has averaged the
gradients, so the target weights are identical too.
"""

from __future__ import annotations

import copy
import inspect
import math

import torch
import torch.nn.functional as F
from torch import nn

from .distributed import gather_with_grad, is_distributed
from .errors import ConfigError

SCHEDULES = ("constant", "cosine")


def concat_all_gather(x: torch.Tensor) -> torch.Tensor:
    """``x`` of every rank concatenated along dim 0 in rank order, detached (no gradient).

    Shapes must be equal on all ranks.  On one process: ``x`` detached.
    """
    if not is_distributed():
        return x.detach()
    with torch.no_grad():
        return gather_with_grad(x.detach())


def momentum_at(base: float, step: int, total_steps: int, schedule: str = "constant") -> float:
    """The EMA coefficient m for the update after optimiser step ``step`` (0-based) of ``total_steps``.

    ``constant``: ``base``.  ``cosine`` (BYOL): ``1 - (1 - base)(cos(π·step/total) + 1)/2``,
    ``base`` at the first step, rising to 1 at the last.
    """
    if schedule == "constant":
        return float(base)
    if schedule == "cosine":
        frac = min(1.0, max(0.0, step / max(1, total_steps)))
        return 1.0 - (1.0 - float(base)) * (math.cos(math.pi * frac) + 1.0) / 2.0
    raise ConfigError(f"momentum schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}.")


def make_target(online: nn.Module) -> nn.Module:
    """A deep copy of ``online`` whose parameters take no gradient (the EMA target)."""
    target = copy.deepcopy(online)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


@torch.no_grad()
def ema_update_(target: nn.Module, online: nn.Module, m: float) -> None:
    """In place: every parameter θ_t of ``target`` ← m·θ_t + (1 − m)·θ; every buffer copied from ``online``.

    ``target`` must be a copy of ``online`` (same parameter and buffer names).
    """
    tp, op = dict(target.named_parameters()), dict(online.named_parameters())
    tb, ob = dict(target.named_buffers()), dict(online.named_buffers())
    if tp.keys() != op.keys() or tb.keys() != ob.keys():
        raise ConfigError("the momentum target does not have the online network's parameters and buffers.")
    for name, t in tp.items():
        t.lerp_(op[name].detach().to(t.dtype), 1.0 - float(m))  # exact at m = 0 and m = 1
    for name, t in tb.items():
        t.copy_(ob[name])


def accepts_targets(loss: nn.Module) -> bool:
    """Whether ``loss.forward`` takes the ``targets`` and ``queue`` keyword arguments of momentum training."""
    try:
        names = inspect.signature(loss.forward).parameters
    except (TypeError, ValueError):
        return False
    return "targets" in names and "queue" in names


class NegativeQueue(nn.Module):
    """A first-in-first-out ring buffer of the last ``size`` L2-normalised keys (MoCo's dictionary).

    ``keys`` (size × dim) is a registered buffer and the write position and
    fill level are the module's extra state, so all of it is saved with the
    model's ``state_dict`` and a resumed run continues with the same queue.
    Nothing here syncs the host with the device.

    ``push(keys)`` gathers the keys of every rank (``gather``, by default
    :func:`concat_all_gather`: rank order, no gradient), normalises them and
    writes them at the write position, wrapping around; when more than
    ``size`` keys arrive at once only the last ``size`` are kept.
    ``get()`` returns a snapshot (a copy, safe to use in a loss whose backward
    runs after the next ``push``) of the valid rows: the first ``filled``
    rows until the buffer has wrapped, then all ``size``.

    Example::

        q = NegativeQueue(4096, 128)
        negatives = q.get()           # filled × 128
        q.push(torch.cat(keys))       # after the loss
    """

    def __init__(self, size: int, dim: int, gather=concat_all_gather) -> None:
        super().__init__()
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ConfigError(f"the negatives queue size must be a positive integer, got {size!r}.")
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
            raise ConfigError(f"the negatives queue needs a positive key dimension, got {dim!r}.")
        self.size, self.dim, self.gather = size, dim, gather
        self.register_buffer("keys", torch.zeros(size, dim))
        self.ptr = 0  # next row to write
        self.filled = 0  # valid rows

    def get_extra_state(self) -> dict:
        return {"ptr": self.ptr, "filled": self.filled}

    def set_extra_state(self, state: dict) -> None:
        self.ptr, self.filled = int(state["ptr"]), int(state["filled"])

    def __len__(self) -> int:
        return self.filled

    def get(self) -> torch.Tensor:
        """A copy of the valid keys (filled × dim)."""
        return self.keys[: self.filled].clone()

    @torch.no_grad()
    def push(self, keys: torch.Tensor) -> None:
        """Enqueue ``keys`` (n × dim) of this rank, together with those of every other rank."""
        if keys.dim() != 2 or keys.shape[1] != self.dim:
            raise ConfigError(f"keys for the negatives queue must be n × {self.dim}, got shape {tuple(keys.shape)}.")
        every = F.normalize(self.gather(keys.detach()).to(self.keys.dtype), dim=1)
        if every.shape[0] > self.size:
            every = every[-self.size:]
        n = every.shape[0]
        rows = (self.ptr + torch.arange(n, device=self.keys.device)) % self.size
        self.keys[rows] = every
        self.ptr = (self.ptr + n) % self.size
        self.filled = min(self.size, self.filled + n)

    def extra_repr(self) -> str:
        return f"size={self.size}, dim={self.dim}, filled={self.filled}"
