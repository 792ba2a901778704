"""The Weisfeiler-Lehman subtree baseline: hand-computed counts, invariance, GraKeL's kernel, MUTAG accuracy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from contrastkit.core.data import Samples
from contrastkit.core.errors import ConfigError, DataError
from contrastkit.core.evaluation import EvalContext, FeatureBaseline
from contrastkit.plugins.graphs.batch import NodeRef, make_graph
from contrastkit.plugins.graphs.modality import prepare
from contrastkit.plugins.graphs.readers import TUReader
from contrastkit.plugins.graphs.wl import WLSubtree

A, B = [1.0, 0.0], [0.0, 1.0]  # one-hot node labels


def undirected(n: int, pairs, x) -> object:
    ei = torch.tensor([[u for u, v in pairs] + [v for u, v in pairs], [v for u, v in pairs] + [u for u, v in pairs]])
    return make_graph(torch.tensor(x, dtype=torch.float32).reshape(n, -1), ei.reshape(2, -1))


def samples(graphs, labels=None) -> Samples:
    return Samples(ids=list(range(len(graphs))), items=list(graphs), labels=labels)


PATH = undirected(3, [(0, 1), (1, 2)], [A, B, A])  # A - B - A
TRIANGLE = undirected(3, [(0, 1), (1, 2), (0, 2)], [A, A, B])  # A, A, B all joined


@pytest.fixture(scope="module")
def mutag():
    return TUReader().read("MUTAG", {})


def test_hand_computed_counts_of_two_small_graphs():
    wl = WLSubtree(iterations=1).fit(samples([PATH, TRIANGLE]))
    a, b = wl.initial[(1, 0)], wl.initial[(0, 1)]  # l0: the one-hot rows
    s1 = wl.tables[0][(a, b)]  # an A whose only neighbour is a B (path ends)
    s2 = wl.tables[0][(b, a, a)]  # a B between two A (path middle, triangle's B)
    s3 = wl.tables[0][(a, *sorted((a, b)))]  # an A next to an A and a B (triangle)
    assert len(wl.tables[0]) == 3 and wl.sizes == [3, 4]  # + one "unseen" column per iteration
    F = wl.features(samples([PATH, TRIANGLE]))
    expect = np.zeros((2, 7), np.float32)
    expect[0, a], expect[0, b] = 2, 1
    expect[1, a], expect[1, b] = 2, 1  # the same label histogram at h = 0 …
    expect[0, 3 + s1], expect[0, 3 + s2] = 2, 1
    expect[1, 3 + s2], expect[1, 3 + s3] = 1, 2  # … told apart by one WL iteration
    assert np.array_equal(F, expect)


def test_unseen_signatures_go_to_the_unseen_column():
    wl = WLSubtree(iterations=2).fit(samples([PATH, TRIANGLE]))
    star = undirected(4, [(0, 1), (0, 2), (0, 3)], [B, A, A, A])  # a B with three A neighbours: never seen
    F = wl.features(samples([star]))[0]
    a, b = wl.initial[(1, 0)], wl.initial[(0, 1)]
    sizes = wl.sizes
    it1 = F[sizes[0]:sizes[0] + sizes[1]]
    it2 = F[sizes[0] + sizes[1]:]
    assert F[a] == 3 and F[b] == 1 and F[sizes[0] - 1] == 0  # h = 0: all labels known
    assert it1[wl.tables[0][(a, b)]] == 3 and it1[-1] == 1  # the centre (B; A, A, A) is unseen
    assert it2[-1] == 4 and it2[:-1].sum() == 0  # the leaves' signatures now hold an unseen label


def test_degree_is_the_initial_label_without_features_and_counts_need_fit():
    path4 = undirected(4, [(0, 1), (1, 2), (2, 3)], [[1.0]] * 4)
    wl = WLSubtree(iterations=0)
    with pytest.raises(DataError):
        wl.features(samples([path4]))
    wl.fit(samples([path4]))
    assert wl.initial is None and wl.degrees == {(1,): 0, (2,): 1}
    assert wl.features(samples([path4])).tolist() == [[2.0, 2.0, 0.0]]


def test_continuous_attributes_are_binned_at_training_quantiles():
    rng = np.random.default_rng(0)
    g = undirected(100, [(i, i + 1) for i in range(99)], rng.normal(size=(100, 1)))
    wl = WLSubtree(iterations=0, bins=4).fit(samples([g]))
    assert len(wl.columns[0]["edges"]) == 3
    assert wl.features(samples([g])).tolist() == [[25.0, 25.0, 25.0, 25.0, 0.0]]  # quartiles: 25 nodes each


def test_isomorphic_graphs_get_identical_features(mutag):
    wl = WLSubtree().fit(mutag)
    gen = torch.Generator().manual_seed(0)
    permuted = []
    for g in mutag.items[:20]:
        perm = torch.randperm(g.num_nodes, generator=gen)  # new node i is old node perm[i]
        inv = torch.empty_like(perm)
        inv[perm] = torch.arange(g.num_nodes)
        ei = inv[g.edge_index][:, torch.randperm(g.edge_index.shape[1], generator=gen)]
        permuted.append(make_graph(g.x[perm], ei))
    assert np.array_equal(wl.features(samples(mutag.items[:20])), wl.features(samples(permuted)))


def test_gram_matrix_equals_grakel_wl_subtree_kernel_on_mutag(mutag):
    grakel = pytest.importorskip("grakel")
    from grakel.kernels import VertexHistogram, WeisfeilerLehman

    F = WLSubtree(iterations=5).fit(mutag).features(mutag).astype(np.float64)
    graphs = []
    for g in mutag.items:
        adj = {i: [] for i in range(g.num_nodes)}
        for u, v in g.edge_index.t().tolist():
            adj[u].append(v)
        graphs.append(grakel.Graph(adj, node_labels={i: int(c) for i, c in enumerate(g.x.argmax(1).tolist())}))
    K = WeisfeilerLehman(n_iter=5, base_graph_kernel=VertexHistogram, normalize=False).fit_transform(graphs)
    assert np.array_equal(F @ F.T, K)  # GraKeL's n_iter = 5: histograms of iterations 0…5


def test_node_level_items_get_their_own_labels_and_sum_to_the_graph_histogram():
    wl = WLSubtree(iterations=2).fit(samples([PATH, TRIANGLE]))
    nodes = Samples(ids=list(range(3)), items=[NodeRef(TRIANGLE, i) for i in range(3)])
    Fn = wl.features(nodes)
    assert (Fn.sum(1) == 3).all()  # one label per iteration, h = 0, 1, 2
    assert np.array_equal(Fn.sum(0), wl.features(samples([TRIANGLE]))[0])
    assert np.array_equal(Fn[0], Fn[1])  # the two A of the triangle are alike


def test_normalisations_and_arguments():
    g = samples([PATH, TRIANGLE])
    l1 = WLSubtree(iterations=1, normalize="l1").fit(g).features(g)
    assert np.allclose(l1.sum(1), 2.0)  # each of the 2 histograms sums to 1
    l2 = WLSubtree(iterations=1, normalize="l2").fit(g).features(g)
    assert np.allclose(np.linalg.norm(l2, axis=1), 1.0)
    for bad in ({"iterations": -1}, {"normalize": "max"}, {"bins": 1}):
        with pytest.raises(ConfigError):
            WLSubtree(**bad)
    assert isinstance(WLSubtree(), FeatureBaseline) and not WLSubtree.uses_encoder


def test_registered_for_graphs():
    from contrastkit.core.plugins import get_host

    comp = get_host().registry.get("evaluator", "wl_subtree", "graphs")
    assert comp.obj is WLSubtree


def test_mutag_accuracy_is_in_the_published_range(mutag):
    """WL subtree + SVM on MUTAG: published 80.72 ± 3.00 (InfoGraph, Sun et al. 2020, Table 2), 82.05 ± 0.36
    (Shervashidze et al. 2011, Table 2), 90.4 ± 5.7 (GIN, Xu et al. 2019, Table 1)."""
    s, _ = prepare(mutag.with_split(), None, {})
    ev = WLSubtree()
    res = ev(EvalContext(samples=s, embed=None, seeds=[0]))
    m = res["metrics"]
    assert 0.80 <= m["graph_svm.accuracy"] <= 0.90 and m["graph_svm.n_items"] == 188
    assert res["protocol"] == "wl-subtree-h5+graphcl-svm-10fold"


def test_run_on_node_level_data_uses_node_logreg():
    from contrastkit.plugins.graphs.readers import SBMReader

    raw = SBMReader().read("sbm", {"sbm_nodes": 200, "sbm_features": 4, "sbm_signal": 2.0})
    s, _ = prepare(raw.with_split(), None, {})
    ev = WLSubtree(iterations=1, bins=2)
    res = ev(EvalContext(samples=s, embed=None, seeds=[0]))
    m = res["metrics"]
    assert res["protocol"] == "wl-subtree-h1+node-logreg-random-splits"
    assert m["node_logreg.n_items"] == 200 and m["node_logreg.n_train"] == 20 and 0 <= m["node_logreg.accuracy"] <= 1
