"""Graph encoders from torch-geometric's message-passing layers.

Each encoder computes node representations and returns, for a batch, one
row per ``target`` node (node-level items) or one pooled row per graph
(graph-level items) — so a GIN can serve InfoGraph's node-to-graph contrast
and a GCN can embed whole graphs.  Only layers that run on ``edge_index``
without torch-scatter / torch-sparse / pyg-lib are used (GINConv, GCNConv,
GATConv).

- :class:`GIN` — Xu et al., "How Powerful are Graph Neural Networks?", ICLR
  2019, as GraphCL (You et al. 2020) and InfoGraph (Sun et al. 2020) use it:
  GINConv(MLP) → ReLU → BatchNorm per layer, the node representation is the
  concatenation of all layers' outputs, pooled by sum (or mean) per graph.
- :class:`GCN` — Kipf & Welling, ICLR 2017; GRACE's 2-layer encoder (hidden
  2·out, an activation after every layer); uses ``edge_weight``.
- :class:`GAT` — Veličković et al., ICLR 2018: multi-head GATConv layers (ELU),
  the last with one head.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from contrastkit.core import ConfigError, DataError, Encoder, check_int

from .batch import check_batch, is_node_batch, to_device

POOLING = ("sum", "mean", "max")


def _activation(name: str) -> nn.Module:
    acts = {"relu": nn.ReLU, "prelu": nn.PReLU, "elu": nn.ELU, "gelu": nn.GELU}
    if name not in acts:
        raise ConfigError(f"activation must be one of {', '.join(acts)}, got {name!r}.")
    return acts[name]()


class GraphEncoder(Encoder):
    """Base class: :meth:`nodes` gives node representations; ``forward`` selects targets or pools graphs."""

    out_dim: int
    in_channels: int
    pooling: str = "sum"

    def nodes(self, batch: Any) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def forward(self, batch: Any) -> torch.Tensor:
        from torch_geometric.nn import global_add_pool, global_max_pool, global_mean_pool

        batch = check_batch(batch, type(self).__name__)
        if batch.x.shape[1] != self.in_channels:
            raise DataError(f"{type(self).__name__}: the nodes have {batch.x.shape[1]} feature(s); the encoder was "
                            f"built for {self.in_channels}.")
        batch = to_device(batch, next(self.parameters()).device)
        h = self.nodes(batch)
        if is_node_batch(batch):
            return h[batch.target]
        pool = {"sum": global_add_pool, "mean": global_mean_pool, "max": global_max_pool}[self.pooling]
        return pool(h, batch.batch, size=int(batch.num_graphs))


def _check_pooling(pooling: str) -> str:
    if pooling not in POOLING:
        raise ConfigError(f"pooling must be one of {', '.join(POOLING)}, got {pooling!r}.")
    return pooling


class GIN(GraphEncoder):
    """GIN with layer-wise concatenation (GraphCL / InfoGraph): out_dim = hidden · layers (or hidden)."""

    def __init__(self, in_channels: int, hidden: int = 32, layers: int = 5, pooling: str = "sum",
                 concat: bool = True, batch_norm: bool = True) -> None:
        super().__init__()
        from torch_geometric.nn import GINConv

        self.in_channels = check_int("gin", "in_channels", in_channels, 1)
        self.hidden = check_int("gin", "hidden", hidden, 1)
        self.layers = check_int("gin", "layers", layers, 1)
        self.pooling = _check_pooling(pooling)
        self.concat = bool(concat)
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        dim = in_channels
        for _ in range(layers):
            mlp = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
            self.convs.append(GINConv(mlp))
            self.norms.append(nn.BatchNorm1d(hidden) if batch_norm else nn.Identity())
            dim = hidden
        self.out_dim = hidden * layers if self.concat else hidden

    def nodes(self, batch):
        x, outs = batch.x, []
        for conv, norm in zip(self.convs, self.norms):
            x = norm(torch.relu(conv(x, batch.edge_index)))
            outs.append(x)
        return torch.cat(outs, dim=1) if self.concat else x


class GCN(GraphEncoder):
    """GRACE's GCN: ``layers`` GCNConv layers (hidden width 2·out_dim), an activation after each."""

    def __init__(self, in_channels: int, out_dim: int = 128, hidden: int | None = None, layers: int = 2,
                 activation: str = "relu", pooling: str = "mean") -> None:
        super().__init__()
        from torch_geometric.nn import GCNConv

        self.in_channels = check_int("gcn", "in_channels", in_channels, 1)
        self.out_dim = check_int("gcn", "out_dim", out_dim, 1)
        self.hidden = check_int("gcn", "hidden", hidden if hidden is not None else 2 * out_dim, 1)
        self.layers = check_int("gcn", "layers", layers, 1)
        self.activation = activation
        self.pooling = _check_pooling(pooling)
        dims = [in_channels] + [self.hidden] * (layers - 1) + [out_dim]
        self.convs = nn.ModuleList(GCNConv(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.acts = nn.ModuleList(_activation(activation) for _ in range(layers))

    def nodes(self, batch):
        x = batch.x
        w = batch.edge_weight if "edge_weight" in batch else None
        for conv, act in zip(self.convs, self.acts):
            x = act(conv(x, batch.edge_index, w))
        return x


class GAT(GraphEncoder):
    """GAT: ``layers`` GATConv layers with ``heads`` heads (concatenated, ELU), the last with one head."""

    def __init__(self, in_channels: int, out_dim: int = 128, hidden: int = 64, heads: int = 4, layers: int = 2,
                 pooling: str = "mean") -> None:
        super().__init__()
        from torch_geometric.nn import GATConv

        self.in_channels = check_int("gat", "in_channels", in_channels, 1)
        self.out_dim = check_int("gat", "out_dim", out_dim, 1)
        self.hidden = check_int("gat", "hidden", hidden, 1)
        self.heads = check_int("gat", "heads", heads, 1)
        self.layers = check_int("gat", "layers", layers, 1)
        self.pooling = _check_pooling(pooling)
        self.convs = nn.ModuleList()
        dim = in_channels
        for i in range(layers):
            last = i == layers - 1
            self.convs.append(GATConv(dim, out_dim if last else hidden, heads=1 if last else heads))
            dim = hidden * heads
        self.act = nn.ELU()

    def nodes(self, batch):
        x = batch.x
        for conv in self.convs:
            x = self.act(conv(x, batch.edge_index))
        return x


ENCODERS: dict[str, type] = {"gin": GIN, "gcn": GCN, "gat": GAT}
