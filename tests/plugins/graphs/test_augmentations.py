"""Each graph view does exactly what it claims, and nothing else."""

from __future__ import annotations

import pytest
import torch

from contrastkit.core.errors import ConfigError, DataError
from contrastkit.core.views import make_generator
from contrastkit.plugins.graphs.augmentations import (Diffusion, EdgeAdd, EdgeAttrMask, EdgePerturb, EdgeRemove,
                                                      FeatureDropout, FeatureMask, LocalGlobal, NodeDrop,
                                                      RandomChoice, RandomWalkSubgraph)
from contrastkit.plugins.graphs.batch import graph_sizes


def _edge_set(b):
    return {tuple(e) for e in b.edge_index.t().tolist()}


def _feature_rows(b):
    return {tuple(r) for r in b.x.tolist()}


def test_node_drop_removes_nodes_and_their_edges(batch):
    out = NodeDrop(ratio=0.34)(batch, make_generator(0))
    sizes_in, sizes_out = graph_sizes(batch), graph_sizes(out)
    assert (sizes_in - sizes_out).tolist() == [int(0.34 * n) for n in sizes_in.tolist()]  # floor(ratio * n) per graph
    # surviving nodes keep their features (rows are unique: ring features are distinct)
    kept_rows = _feature_rows(out)
    assert kept_rows <= _feature_rows(batch)
    # every surviving edge joins surviving nodes: map back via the (unique) feature rows
    row_of = {tuple(r): i for i, r in enumerate(batch.x.tolist())}
    old = [row_of[tuple(r)] for r in out.x.tolist()]
    back = {(old[s], old[d]) for s, d in out.edge_index.t().tolist()}
    expected = {(s, d) for s, d in _edge_set(batch) if s in set(old) and d in set(old)}
    assert back == expected  # exactly the edges among kept nodes, no edge of a dropped node
    assert out.edge_weight.shape[0] == out.edge_attr.shape[0] == out.edge_index.shape[1]
    assert out.batch.tolist() == sorted(out.batch.tolist())
    assert batch.x.shape[0] == 32  # input untouched


def test_node_drop_never_drops_target_nodes(node_batch):
    out = NodeDrop(ratio=0.9)(node_batch, make_generator(1))
    assert out.num_nodes == 20 - int(0.9 * 20) or out.num_nodes == 3
    assert torch.equal(out.x[out.target], node_batch.x[node_batch.target])


def test_edge_remove_removes_exact_count_per_graph(batch):
    out = EdgeRemove(ratio=0.25)(batch, make_generator(0))
    eg_in = torch.bincount(batch.batch[batch.edge_index[0]])
    eg_out = torch.bincount(out.batch[out.edge_index[0]], minlength=4)
    assert (eg_in - eg_out).tolist() == [int(0.25 * e) for e in eg_in.tolist()]
    assert _edge_set(out) <= _edge_set(batch)
    assert torch.equal(out.x, batch.x)


def test_edge_add_adds_edges_inside_graphs_without_self_loops(batch):
    out = EdgeAdd(ratio=0.5)(batch, make_generator(0))
    new = out.edge_index[:, batch.edge_index.shape[1]:]
    eg_in = torch.bincount(batch.batch[batch.edge_index[0]])
    assert new.shape[1] == sum(int(0.5 * e) for e in eg_in.tolist())
    assert torch.equal(out.edge_index[:, :batch.edge_index.shape[1]], batch.edge_index)
    assert bool((out.batch[new[0]] == out.batch[new[1]]).all()) and bool((new[0] != new[1]).all())
    assert bool((out.edge_attr[batch.edge_index.shape[1]:] == 0).all())
    assert bool((out.edge_weight[batch.edge_index.shape[1]:] == 1).all())


def test_edge_perturb_keeps_edge_count(batch):
    out = EdgePerturb(ratio=0.2)(batch, make_generator(3))
    assert out.edge_index.shape[1] == batch.edge_index.shape[1]
    assert _edge_set(out) != _edge_set(batch)


def test_feature_mask_masks_same_dimensions_on_every_node_of_a_graph(batch):
    out = FeatureMask(ratio=0.5)(batch, make_generator(0))
    assert out.edge_index is batch.edge_index or torch.equal(out.edge_index, batch.edge_index)
    zero = out.x == 0
    masked_any = False
    for g in range(batch.num_graphs):
        rows = zero[batch.batch == g]
        assert bool((rows == rows[0]).all())  # the same columns on every node of graph g
        masked_any |= bool(rows[0].any())
        keep = ~rows[0]
        assert torch.equal(out.x[batch.batch == g][:, keep], batch.x[batch.batch == g][:, keep])
    assert masked_any
    assert bool((batch.x != 0).all())  # input untouched


def test_feature_dropout_zeroes_entries_independently_without_rescaling(batch):
    out = FeatureDropout(ratio=0.5)(batch, make_generator(0))
    zero = out.x == 0
    assert 0.3 < zero.float().mean() < 0.7
    assert torch.equal(out.x[~zero], batch.x[~zero])  # kept entries unchanged (no 1/(1-p) scaling)
    assert not all(bool((zero[batch.batch == g] == zero[batch.batch == g][0]).all()) for g in range(4))


def test_edge_attr_mask_masks_edge_feature_dimensions(batch):
    out = EdgeAttrMask(ratio=0.5)(batch, make_generator(2))
    assert torch.equal(out.x, batch.x) and torch.equal(out.edge_index, batch.edge_index)
    eg = batch.batch[batch.edge_index[0]]
    zero = out.edge_attr == 0
    assert zero.any()
    for g in range(4):
        rows = zero[eg == g]
        assert bool((rows == rows[0]).all())


def test_subgraph_keeps_a_connected_walk_region(batch):
    out = RandomWalkSubgraph(walk_length=2, root_ratio=0.01)(batch, make_generator(0))
    # one root per graph, two steps along a ring: at most 5 nodes, at least 1, per graph
    sizes = graph_sizes(out).tolist()
    assert all(1 <= s <= 5 for s in sizes)
    assert _feature_rows(out) <= _feature_rows(batch)


def test_diffusion_ppr_gives_weighted_dense_neighbourhoods(batch):
    out = Diffusion(kind="ppr", alpha=0.2, eps=1e-3)(batch, make_generator(0))
    assert torch.equal(out.x, batch.x)
    assert out.edge_index.shape[1] > batch.edge_index.shape[1]
    assert bool((out.batch[out.edge_index[0]] == out.batch[out.edge_index[1]]).all())
    assert bool((out.edge_weight > 0).all()) and bool((out.edge_index[0] != out.edge_index[1]).all())
    heat = Diffusion(kind="heat", t=1.0, eps=1e-3)(batch, make_generator(0))
    assert heat.edge_index.shape[1] > batch.edge_index.shape[1]
    with pytest.raises(ConfigError):
        Diffusion(max_nodes=5)(batch, make_generator(0))


def test_p_zero_leaves_graphs_unchanged(batch):
    for aug in (NodeDrop(0.5, p=0.0), EdgeRemove(0.5, p=0.0), FeatureMask(0.5, p=0.0)):
        out = aug(batch, make_generator(0))
        assert torch.equal(out.x, batch.x) and torch.equal(out.edge_index, batch.edge_index)


def test_random_choice_applies_one_transform_per_graph(batch):
    aug = RandomChoice([{"name": "node_drop", "ratio": 0.5}, {"name": "feature_mask", "ratio": 1.0}])
    out = aug(batch, make_generator(0))
    dropped = graph_sizes(out) < graph_sizes(batch)
    masked = torch.stack([(out.x[out.batch == g] == 0).all() for g in range(4)])
    assert bool((dropped ^ masked).all())  # exactly one of the two on every graph
    with pytest.raises(ConfigError):
        RandomChoice([{"name": "nope"}])
    with pytest.raises(ConfigError):
        RandomChoice([])


def test_local_global_pairs_graphs_with_one_of_their_nodes(batch):
    g_view, n_view = LocalGlobal().views(batch, 2, make_generator(0))
    assert g_view.target.numel() == 0
    assert n_view.target.numel() == batch.num_graphs
    assert n_view.batch[n_view.target].tolist() == list(range(batch.num_graphs))


def test_views_are_reproducible_and_redrawn(batch):
    aug = NodeDrop(0.3)
    a = aug(batch, make_generator(5))
    b = aug(batch, make_generator(5))
    assert torch.equal(a.x, b.x)
    g = make_generator(6)
    assert any(not torch.equal(aug(batch, g).x, aug(batch, g).x) for _ in range(3))


def test_bad_arguments_and_input():
    with pytest.raises(ConfigError):
        NodeDrop(ratio=1.5)
    with pytest.raises(ConfigError):
        FeatureMask(ratio="x")
    with pytest.raises(ConfigError):
        RandomWalkSubgraph(walk_length=-1)
    with pytest.raises(DataError):
        NodeDrop()(torch.zeros(3, 4), make_generator(0))
