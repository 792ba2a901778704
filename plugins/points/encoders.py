"""Point-cloud encoders: PointNet and DGCNN, with global max / mean pooling.

Both take a batch ``x`` of shape ``B × N × C`` (C = ``in_channels`` ≥ 3:
x, y, z and per-point features) and return ``B × out_dim``.  Neighbourhoods
are built with the plain-torch kNN of :mod:`.geometry` (torch-cluster and
pyg-lib, which PyG's ``knn_graph`` / ``DynamicEdgeConv`` need, are not
required); the ``"pyg"`` backends feed torch-geometric's ``PointNetConv`` /
``EdgeConv`` with that graph as an ``edge_index``, the ``"dense"`` backend
computes the same EdgeConv on gathered ``B × N × k`` tensors (faster on CPU).

Normalisation is batch norm over points (as in both papers); in eval mode it
uses running statistics, so an item's embedding does not depend on its batch.

- C. R. Qi et al., "PointNet: Deep Learning on Point Sets for 3D Classification
  and Segmentation", CVPR 2017 — shared per-point MLP + symmetric max pooling.
- Y. Wang et al., "Dynamic Graph CNN for Learning on Point Clouds", ACM TOG
  2019 — EdgeConv ``h([x_i, x_j - x_i])`` max-aggregated over the k nearest
  neighbours, the graph recomputed in feature space at every layer.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from contrastkit.core import ConfigError, DataError, Encoder, check_int

from .geometry import gather_points, knn, to_edge_index

__all__ = ["PointNet", "DGCNN", "ENCODERS", "global_pool"]

POOLS = ("max", "mean", "max+mean")


def _widths(owner: str, widths: object) -> tuple[int, ...]:
    if not isinstance(widths, (list, tuple)) or not widths:
        raise ConfigError(f"{owner}: widths must be a non-empty list of positive integers, got {widths!r}.")
    return tuple(check_int(owner, "each width", w, 1) for w in widths)


def _choice(owner: str, name: str, value: object, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ConfigError(f"{owner}: {name} must be one of {', '.join(choices)}, got {value!r}.")
    return str(value)


def _check_input(owner: str, x: object, in_channels: int) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != in_channels or x.shape[1] < 1:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise DataError(f"{owner}: expected a batch of point clouds of shape B × N × {in_channels} "
                        f"(in_channels={in_channels}), got {shape}.")


def _knn_indices(x: torch.Tensor, k: int) -> torch.Tensor:
    """kNN indices without autograd (indices carry no gradient; saves cdist's backward)."""
    with torch.no_grad():
        return knn(x.detach(), k=k)


def global_pool(h: torch.Tensor, pool: str) -> torch.Tensor:
    """Pool per-point features B × N × D over the points: max, mean, or both concatenated (B × 2D)."""
    if pool == "max":
        return h.amax(dim=1)
    if pool == "mean":
        return h.mean(dim=1)
    return torch.cat([h.amax(dim=1), h.mean(dim=1)], dim=-1)


class _PointNorm(nn.Module):
    """BatchNorm1d over the channel axis of B × N × D (or B × N × k × D) features."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(dim)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        shape = h.shape
        return self.bn(h.reshape(-1, shape[-1])).reshape(shape)


def _mlp(dims: Sequence[int], norm: bool = True, last_act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b, bias=not norm))
        if norm:
            layers.append(_PointNorm(b))
        if last_act or i < len(dims) - 2:
            layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


class PointNet(Encoder):
    """PointNet: a shared per-point MLP, then global pooling (no input/feature transform nets).

    ``widths``: the per-point MLP (the last is the per-point feature width D);
    ``pool``: ``max`` (PointNet), ``mean`` or ``max+mean`` (out_dim = D or 2D);
    ``local_k`` > 0 makes the first layer torch-geometric's ``PointNetConv``
    (PointNet++'s set abstraction without sampling) on the kNN graph of the
    points, so each point first sees its ``local_k`` neighbours.
    """

    def __init__(self, in_channels: int = 3, widths: Sequence[int] = (64, 128, 256), pool: str = "max",
                 local_k: int = 0) -> None:
        super().__init__()
        self.in_channels = check_int("pointnet", "in_channels", in_channels, 3)
        self.widths = _widths("pointnet", widths)
        self.pool = _choice("pointnet", "pool", pool, POOLS)
        self.local_k = check_int("pointnet", "local_k", local_k, 0)
        first = self.widths[0]
        if self.local_k:
            from torch_geometric.nn import PointNetConv

            # message: local_nn([x_j, pos_j - pos_i]); max over the neighbours
            self.conv = PointNetConv(local_nn=_mlp([self.in_channels + 3, first]), global_nn=None, add_self_loops=False)
        else:
            self.conv = None
            self.first = _mlp([self.in_channels, first])
        self.mlp = _mlp([first, *self.widths[1:]]) if len(self.widths) > 1 else nn.Identity()
        self.out_dim = self.widths[-1] * (2 if self.pool == "max+mean" else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input("pointnet", x, self.in_channels)
        b, n, c = x.shape
        if self.conv is not None:
            xyz = x[..., :3]
            edge_index = to_edge_index(_knn_indices(xyz, self.local_k))
            h = self.conv(x.reshape(b * n, c), xyz.reshape(b * n, 3), edge_index).reshape(b, n, -1)
        else:
            h = self.first(x)
        return global_pool(self.mlp(h), self.pool)


class _EdgeConv(nn.Module):
    """EdgeConv: h_i = max_j MLP([x_i, x_j - x_i]) over the k nearest neighbours j of i."""

    def __init__(self, in_dim: int, out_dim: int, backend: str) -> None:
        super().__init__()
        self.mlp = _mlp([2 * in_dim, out_dim])
        self.backend = backend
        if backend == "pyg":
            from torch_geometric.nn import EdgeConv

            # not registered as a sub-module: it holds no parameters of its own (they are self.mlp's),
            # so both backends have the same state_dict
            object.__setattr__(self, "_pyg", EdgeConv(self.mlp, aggr="max"))

    def forward(self, h: torch.Tensor, neighbours: torch.Tensor) -> torch.Tensor:
        b, n, d = h.shape
        if self.backend == "pyg":
            out = self._pyg(h.reshape(b * n, d), to_edge_index(neighbours))
            return out.reshape(b, n, -1)
        # The first linear map of [x_i, x_j - x_i] is (W_a - W_b) x_i + W_b x_j: project the points once,
        # then gather, instead of multiplying every one of the N·k edge vectors.
        w = self.mlp[0].weight  # out × 2d, no bias (batch norm follows)
        w_a, w_b = w[:, :d], w[:, d:]
        centre = h @ (w_a - w_b).t()  # B × N × out
        edges = centre[:, :, None, :] + gather_points(h @ w_b.t(), neighbours)  # B × N × k × out
        return self.mlp[1:](edges).amax(dim=2)


class DGCNN(Encoder):
    """DGCNN: EdgeConv layers on a dynamic kNN graph, recomputed in feature space at every layer.

    The first graph is built on x, y, z; later ones on the previous layer's
    features.  The outputs of all EdgeConv layers are concatenated, mapped by
    a shared linear layer to ``emb_dim`` and pooled (``max+mean`` by default,
    as in the paper: out_dim = 2 · emb_dim).  ``backend``: ``dense`` (gathered
    tensors) or ``pyg`` (torch-geometric's ``EdgeConv`` on an edge_index);
    both compute the same function with the same weights.
    """

    def __init__(self, in_channels: int = 3, k: int = 16, widths: Sequence[int] = (64, 64, 128),
                 emb_dim: int = 256, pool: str = "max+mean", backend: str = "dense") -> None:
        super().__init__()
        self.in_channels = check_int("dgcnn", "in_channels", in_channels, 3)
        self.k = check_int("dgcnn", "k", k, 1)
        self.widths = _widths("dgcnn", widths)
        self.emb_dim = check_int("dgcnn", "emb_dim", emb_dim, 1)
        self.pool = _choice("dgcnn", "pool", pool, POOLS)
        self.backend = _choice("dgcnn", "backend", backend, ("dense", "pyg"))
        dims = [self.in_channels, *self.widths]
        self.convs = nn.ModuleList(_EdgeConv(a, b, self.backend) for a, b in zip(dims[:-1], dims[1:]))
        self.fuse = _mlp([sum(self.widths), self.emb_dim])
        self.out_dim = self.emb_dim * (2 if self.pool == "max+mean" else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input("dgcnn", x, self.in_channels)
        h, outs = x, []
        for i, conv in enumerate(self.convs):
            graph_on = x[..., :3] if i == 0 else h
            h = conv(h, _knn_indices(graph_on, self.k))
            outs.append(h)
        return global_pool(self.fuse(torch.cat(outs, dim=-1)), self.pool)


ENCODERS: dict[str, type[nn.Module]] = {"pointnet": PointNet, "dgcnn": DGCNN}
