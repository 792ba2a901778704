"""Point-cloud encoders and the plain-torch graph operations they use."""

from __future__ import annotations

import pytest
import torch

from contrastkit.core.errors import ConfigError, DataError
from contrastkit.plugins.points.encoders import DGCNN, ENCODERS, PointNet, global_pool
from contrastkit.plugins.points.geometry import farthest_point_sampling, knn, knn_loop, to_edge_index


def clouds(b=3, n=64, c=3, seed=0):
    return torch.randn(b, n, c, generator=torch.Generator().manual_seed(seed))


# -- geometry -------------------------------------------------------------------------------------
def test_knn_matches_brute_force_and_the_per_sample_loop():
    x = clouds(b=2, n=50)
    idx = knn(x, k=5)
    assert idx.shape == (2, 50, 5) and torch.equal(idx[:, :, 0], torch.arange(50).expand(2, 50))  # self first
    d = ((x[:, :, None] - x[:, None]) ** 2).sum(-1)
    expected = d.topk(5, dim=-1, largest=False).indices
    assert torch.equal(idx.sort(-1).values, expected.sort(-1).values)
    assert torch.equal(knn_loop(x, k=5).sort(-1).values, expected.sort(-1).values)
    q = clouds(b=2, n=7, seed=1)
    assert knn(q, x, k=3).shape == (2, 7, 3) and knn(x, k=500).shape == (2, 50, 50)


def test_farthest_point_sampling_picks_one_point_per_cluster():
    centres = torch.tensor([[0.0, 0, 0], [10, 0, 0], [0, 10, 0], [0, 0, 10]])
    pts = (centres[:, None, :] + 0.01 * torch.randn(4, 25, 3)).reshape(1, 100, 3).repeat(2, 1, 1)
    idx = farthest_point_sampling(pts, 4, torch.Generator().manual_seed(0))
    assert idx.shape == (2, 4)
    for b in range(2):
        assert sorted((idx[b] // 25).tolist()) == [0, 1, 2, 3]
    assert farthest_point_sampling(pts, 4)[:, 0].tolist() == [0, 0]  # no generator: starts at index 0


def test_edge_index_numbers_nodes_per_sample():
    nb = torch.tensor([[[0, 1], [1, 0]], [[1, 0], [0, 1]]])  # B=2, N=2, k=2
    ei = to_edge_index(nb)
    assert ei.tolist() == [[0, 1, 1, 0, 3, 2, 2, 3], [0, 0, 1, 1, 2, 2, 3, 3]]


# -- encoders -------------------------------------------------------------------------------------
def test_registry():
    assert ENCODERS == {"pointnet": PointNet, "dgcnn": DGCNN}


@pytest.mark.parametrize("enc, out_dim", [
    (lambda: PointNet(widths=(16, 32)), 32),
    (lambda: PointNet(widths=(16, 32), pool="max+mean"), 64),
    (lambda: PointNet(in_channels=5, widths=(16,), local_k=8), 16),
    (lambda: DGCNN(k=8, widths=(8, 16), emb_dim=24), 48),
    (lambda: DGCNN(in_channels=4, k=4, widths=(8,), emb_dim=8, pool="max", backend="pyg"), 8),
])
def test_shapes_gradients_and_permutation_invariance(enc, out_dim):
    model = enc()
    x = clouds(c=model.in_channels)
    h = model(x)
    assert h.shape == (3, out_dim) and model.out_dim == out_dim and torch.isfinite(h).all()
    h.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    perm = torch.randperm(64, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(model(x), model(x[:, perm]), atol=1e-5)
    # in eval mode an item's embedding does not depend on its batch
    assert torch.allclose(model(x)[1:2], model(x[1:2]), atol=1e-5)


def test_dgcnn_dense_and_pyg_backends_compute_the_same_function():
    torch.manual_seed(0)
    dense = DGCNN(k=6, widths=(8, 8), emb_dim=16)
    pyg = DGCNN(k=6, widths=(8, 8), emb_dim=16, backend="pyg")
    pyg.load_state_dict(dense.state_dict())
    x = clouds(n=40)
    assert torch.allclose(dense(x), pyg(x), atol=1e-5)
    dense.eval(), pyg.eval()
    assert torch.allclose(dense(x), pyg(x), atol=1e-5)


def test_dgcnn_rebuilds_its_graph_in_feature_space():
    """Layer 2's neighbours come from layer-1 features, so moving one point changes other points' graphs."""
    torch.manual_seed(0)
    model = DGCNN(k=4, widths=(8, 8), emb_dim=8).eval()
    seen = []
    import contrastkit.plugins.points.encoders as mod

    original = mod._knn_indices
    try:
        mod._knn_indices = lambda x, k: (seen.append(x.shape[-1]), original(x, k))[1]
        model(clouds())
    finally:
        mod._knn_indices = original
    assert seen == [3, 8]


def test_global_pool():
    h = torch.tensor([[[1.0, 2.0], [3.0, 0.0]]])
    assert global_pool(h, "max").tolist() == [[3.0, 2.0]]
    assert global_pool(h, "mean").tolist() == [[2.0, 1.0]]
    assert global_pool(h, "max+mean").tolist() == [[3.0, 2.0, 2.0, 1.0]]


def test_bad_arguments_and_inputs():
    with pytest.raises(ConfigError, match="pool"):
        PointNet(pool="sum")
    with pytest.raises(ConfigError, match="backend"):
        DGCNN(backend="sparse")
    with pytest.raises(ConfigError, match="in_channels"):
        PointNet(in_channels=2)
    with pytest.raises(DataError, match="B × N × 3"):
        PointNet()(torch.zeros(2, 10, 4))
    with pytest.raises(DataError, match="B × N × 3"):
        DGCNN()(torch.zeros(10, 3))
