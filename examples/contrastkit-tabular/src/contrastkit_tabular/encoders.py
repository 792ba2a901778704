"""Encoders for tables."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from contrastkit.core import ConfigError, DataError

__all__ = ["ENCODERS", "MLPEncoder"]

NORMS = ("layer", "batch", "none")


def _int(owner: str, name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{owner}: {name} must be an integer >= {minimum}, got {value!r}.")
    return value


class MLPEncoder(nn.Module):
    """A multi-layer perceptron over the feature vector, as in SCARF (Bahri et al., ICLR 2022).

    ``depth`` hidden layers ``Linear → norm → ReLU → dropout`` of width
    ``hidden``, then a linear map to ``out_dim`` (the representation h).
    SCARF's encoder has 4 layers of 256 units.  ``norm`` is ``"layer"``
    (default; independent of the other rows of the batch), ``"batch"`` or
    ``"none"``.

    Shapes: ``B × in_features → B × out_dim``.  ``in_features`` is filled
    from the data's ``meta``.
    """

    def __init__(self, in_features: int, hidden: int = 256, out_dim: int = 128, depth: int = 3,
                 dropout: float = 0.0, norm: str = "layer") -> None:
        super().__init__()
        owner = type(self).__name__
        self.in_features = _int(owner, "in_features", in_features, 1)
        self.hidden = _int(owner, "hidden", hidden, 1)
        self.out_dim = _int(owner, "out_dim", out_dim, 1)
        self.depth = _int(owner, "depth", depth, 0)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ConfigError(f"{owner}: dropout must be a number in [0, 1), got {dropout!r}.")
        self.dropout = float(dropout)
        if norm not in NORMS:
            raise ConfigError(f"{owner}: norm must be one of {', '.join(NORMS)}, got {norm!r}.")
        self.norm = norm
        layers: list[nn.Module] = []
        width = self.in_features
        for _ in range(self.depth):
            layers.append(nn.Linear(width, self.hidden))
            if norm == "layer":
                layers.append(nn.LayerNorm(self.hidden))
            elif norm == "batch":
                layers.append(nn.BatchNorm1d(self.hidden))
            layers += [nn.ReLU(), nn.Dropout(self.dropout)]
            width = self.hidden
        layers.append(nn.Linear(width, self.out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Representation ``B × out_dim`` of a ``B × in_features`` batch."""
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != self.in_features \
                or not x.is_floating_point():
            got = f"shape {tuple(x.shape)} ({x.dtype})" if isinstance(x, torch.Tensor) else type(x).__name__
            raise DataError(f"{type(self).__name__}: expected a float batch of shape B × {self.in_features} "
                            f"(in_features={self.in_features}), got {got}.")
        return self.net(x)


#: The tabular encoders by the name configs use.
ENCODERS: dict[str, type[nn.Module]] = {"mlp": MLPEncoder}
