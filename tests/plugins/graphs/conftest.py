"""Small graphs for the graphs plugin's tests."""

from __future__ import annotations

import pytest
import torch

from contrastkit.plugins.graphs.batch import NodeRef, collate, make_graph


def ring(n: int, features: int = 4, offset: float = 0.0, edge_dim: int | None = None):
    """An undirected ring of n nodes (both directions), features arange + offset."""
    src = torch.arange(n)
    dst = (src + 1) % n
    ei = torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], 1)
    x = torch.arange(n * features, dtype=torch.float32).reshape(n, features) + 1 + offset
    ea = torch.rand(ei.shape[1], edge_dim) + 0.5 if edge_dim else None
    return make_graph(x, ei, edge_attr=ea)


@pytest.fixture
def graphs():
    torch.manual_seed(0)
    return [ring(n, offset=100 * i, edge_dim=3) for i, n in enumerate((6, 9, 12, 5))]


@pytest.fixture
def batch(graphs):
    return collate(graphs)


@pytest.fixture
def node_batch():
    g = ring(20)
    return collate([NodeRef(g, i) for i in (3, 7, 11)])
