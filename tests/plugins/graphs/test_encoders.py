"""Encoders: graph rows or target-node rows, independent of the batch in eval mode; the conformance kit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from contrastkit.core.errors import ConfigError, DataError
from contrastkit.core.testkit import conformance_tests
from contrastkit.plugins.graphs.batch import NodeRef, collate
from contrastkit.plugins.graphs.encoders import GAT, GCN, GIN
from contrastkit.plugins.graphs.modality import embed

from .conftest import ring

# Diffusion declares itself deterministic: the kit checks that repeated calls agree.
test_conformance = conformance_tests("graphs")


def test_gin_graph_level_concat_and_pooling(graphs, batch):
    torch.manual_seed(0)
    enc = GIN(in_channels=4, hidden=8, layers=3).eval()
    out = enc(batch)
    assert out.shape == (4, 24) and enc.out_dim == 24
    alone = enc(collate(graphs[1:2]))
    assert torch.allclose(alone[0], out[1], atol=1e-5)  # independent of the rest of the batch
    nodes = enc.nodes(batch)
    assert torch.allclose(out[2], nodes[batch.batch == 2].sum(0), atol=1e-4)  # sum pooling of concatenated layers
    mean = GIN(in_channels=4, hidden=8, layers=3, concat=False, pooling="mean")
    assert mean(batch).shape == (4, 8)


def test_node_level_rows_are_the_target_nodes(node_batch):
    torch.manual_seed(0)
    for enc in (GCN(in_channels=4, out_dim=6), GAT(in_channels=4, out_dim=6, hidden=4, heads=2),
                GIN(in_channels=4, hidden=3, layers=2)):
        enc.eval()
        out = enc(node_batch)
        assert out.shape == (3, enc.out_dim)
        assert torch.allclose(out, enc.nodes(node_batch)[node_batch.target], atol=1e-6)


def test_gcn_uses_edge_weights(batch):
    torch.manual_seed(0)
    enc = GCN(in_channels=4, out_dim=5).eval()
    heavier = batch.clone()
    heavier.edge_weight = batch.edge_weight * torch.linspace(0.1, 3, batch.edge_weight.numel())
    assert not torch.allclose(enc(batch), enc(heavier))


def test_modality_embed_nodes_with_their_whole_graph():
    torch.manual_seed(0)
    g1, g2 = ring(7), ring(5, offset=50)
    items = [NodeRef(g2, 4), NodeRef(g1, 0), NodeRef(g1, 6)]
    enc = GCN(in_channels=4, out_dim=3).eval()
    h = embed(enc, items, torch.device("cpu"), 2)
    full1 = enc(collate([NodeRef(g1, i) for i in range(7)])).detach().numpy()
    full2 = enc(collate([NodeRef(g2, i) for i in range(5)])).detach().numpy()
    assert np.allclose(h, np.stack([full2[4], full1[0], full1[6]]), atol=1e-5)


def test_bad_encoder_arguments_and_inputs(batch):
    with pytest.raises(ConfigError):
        GIN(in_channels=4, pooling="median")
    with pytest.raises(ConfigError):
        GCN(in_channels=0)
    with pytest.raises(DataError):
        GIN(in_channels=5)(batch)
    with pytest.raises(DataError):
        GIN(in_channels=4)(torch.zeros(2, 4))
