"""A source's train/test split and label fractions: what graph_svm and node_logreg fit on."""

from __future__ import annotations

import networkx as nx
import numpy as np
import polars as pl
import pytest
import torch
from torch_geometric.data import Data

from contrastkit.core.data import Samples
from contrastkit.core.errors import ConfigError, DataError
from contrastkit.core.evaluation import EvalContext, stratified_subset
from contrastkit.plugins.graphs.evaluators import GraphSVM, NodeLogReg
from contrastkit.plugins.graphs.readers import EdgeListReader, PyGReader, TUReader, from_networkx

from .test_readers import write_tu


def ctx(h, labels, split=None, source_split=False, **kw) -> EvalContext:
    n = len(labels)
    s = Samples(ids=list(range(n)), items=[None] * n, labels=list(labels), split=split,
                meta={"source_split": True} if source_split else {})
    options = {"raw_baseline": False, **kw.pop("options", {})}
    return EvalContext(samples=s, embed=lambda _: np.asarray(h, float), seeds=kw.pop("seeds", [0]), options=options,
                       **kw)


def conflict_data(n_per_cluster: int = 10, seed: int = 0):
    """Two clusters (h = ±5); the training items' class is (h > 0), the test items at the same places carry the
    opposite class.  Fitted on the training items, the SVM gets every test item wrong (accuracy 0); 10-fold CV
    over all items sees both labels at each place (accuracy about 0.5)."""
    rng = np.random.default_rng(seed)
    h, y, split = [], [], []
    for a in (-5, 5):
        for part in ("train", "test"):
            h.append(a + 0.3 * rng.normal(size=(n_per_cluster, 1)))
            y += [int((a > 0) == (part == "train"))] * n_per_cluster
            split += [part] * n_per_cluster
    return np.concatenate(h), y, split


def test_a_source_split_changes_what_graph_svm_fits_on():
    h, y, split = conflict_data()
    ev = GraphSVM()
    on_split = ev(ctx(h, y, split, source_split=True))
    assert on_split["protocol"] == "graph-svm-split"
    m = on_split["metrics"]
    assert m["accuracy"] == 0.0 and m["n_train"] == 20 and m["n_test"] == 20 and m["n_items"] == 40
    kfold = GraphSVM()(ctx(h, y, split, source_split=True, options={"protocol": "kfold"}))
    assert kfold["protocol"] == "graphcl-svm-10fold"
    assert 0.3 < kfold["metrics"]["accuracy"] < 0.7 and kfold["metrics"]["n_train"] == 36  # 9 of 10 folds of 40
    # no source split (the hash split of pretraining): the literature's 10-fold protocol by default …
    assert GraphSVM().run(ctx(h, y, split))["n_train"] == 36
    # … and the split on request
    assert GraphSVM().run(ctx(h, y, split, options={"protocol": "split"}))["accuracy"] == 0.0
    with pytest.raises(ConfigError):
        GraphSVM().run(ctx(h, y, split, options={"protocol": "holdout"}))
    with pytest.raises(DataError):
        GraphSVM().run(ctx(h, y, None, options={"protocol": "split"}))


def spy(cls):
    class Spy(cls):
        def _fit(self, X, y, seed):
            self.fitted.append(np.bincount(y, minlength=2).tolist())
            return super()._fit(X, y, seed)

    ev = Spy()
    ev.fitted = []
    return ev


def test_graph_svm_fits_each_outer_fold_on_the_stratified_label_fraction():
    rng = np.random.default_rng(0)
    y = [0] * 90 + [1] * 10
    h = rng.normal(size=(100, 3)) + 3 * np.array(y)[:, None]
    ev = spy(GraphSVM)
    m = ev.run(ctx(h, y, label_fraction=0.1))
    # each training part of the 10 folds holds 81 + 9 items: round(8.1) = 8 and round(0.9) = 1 of them
    assert ev.fitted == [[8, 1]] * 10 and m["n_train"] == 9
    ev = spy(GraphSVM)
    assert ev.run(ctx(h, y, label_fraction=0.05))["n_train"] == 5 and ev.fitted == [[4, 1]] * 10  # ≥ 1 per class
    y2 = [i % 2 for i in range(60)]
    assert GraphSVM().run(ctx(rng.normal(size=(60, 2)), y2, label_fraction=0.1))["n_train"] == 6  # 3 + 3 of 27 + 27
    # the same subset for every encoder: a pure function of the labels, fraction and seed
    ytr = np.array([0] * 81 + [1] * 9)
    assert np.array_equal(ctx(h, y, label_fraction=0.1).label_subset(ytr), stratified_subset(ytr, 0.1, 0))


def test_graph_svm_split_protocol_with_a_label_fraction():
    h, y, split = conflict_data(n_per_cluster=20)
    ev = spy(GraphSVM)
    m = ev.run(ctx(h, y, split, source_split=True, label_fraction=0.25))
    assert ev.fitted == [[5, 5]] and m["n_train"] == 10 and m["n_test"] == 40


def test_node_logreg_label_fraction_and_split():
    rng = np.random.default_rng(0)
    y = [i % 3 for i in range(300)]
    h = rng.normal(size=(300, 5)) + 4 * np.eye(3)[y] @ rng.normal(size=(3, 5))
    m = NodeLogReg().run(ctx(h, y, seeds=[0, 1], label_fraction=0.1))
    assert m["n_train"] == 3  # 10 per class in the 10 % training part, a tenth of them: one per class
    full = NodeLogReg().run(ctx(h, y, seeds=[0]))
    assert full["n_train"] == 30 and full["accuracy"] > 0.9
    split = ["train" if i < 90 else "test" for i in range(300)]
    sm = NodeLogReg()(ctx(h, y, split, source_split=True))
    assert sm["protocol"] == "node-logreg-split"
    assert sm["metrics"]["n_train"] == 90 and sm["metrics"]["n_test"] == 210 and sm["metrics"]["accuracy"] > 0.9
    # "kfold" names the literature's resampling protocol for node_logreg too
    assert NodeLogReg()(ctx(h, y, split, source_split=True, options={"protocol": "kfold"}))["metrics"]["n_train"] == 30


# --------------------------------------------------------------------------- readers


def test_tu_graph_split_file(tmp_path):
    folder = write_tu(tmp_path / "toy")
    assert TUReader().read(str(folder), {}).split is None
    (folder / "TOY_graph_split.txt").write_text("test\nTrain\n")
    s = TUReader().read(str(folder), {})
    assert s.split == ["test", "train"] and s.meta["source_split"] is True
    assert s.with_split().split == ["test", "train"]  # kept: no hash split over it
    (folder / "TOY_graph_split.txt").write_text("test\n")
    with pytest.raises(DataError, match="1 lines for 2 graphs"):
        TUReader().read(str(folder), {})
    (folder / "TOY_graph_split.txt").write_text("test\nvalid\n")
    with pytest.raises(DataError, match="entry 2 is 'valid'"):
        TUReader().read(str(folder), {})


def test_pyg_graphs_with_a_split_attribute(tmp_path):
    def graph(i, part=None):
        d = Data(x=torch.ones(3, 2), edge_index=torch.tensor([[0, 1], [1, 2]]), y=torch.tensor([i % 2]))
        if part is not None:
            d.split = part
        return d

    torch.save([graph(i, "train" if i < 3 else "test") for i in range(5)], tmp_path / "g.pt")
    s = PyGReader().read(str(tmp_path / "g.pt"), {})
    assert s.split == ["train"] * 3 + ["test"] * 2 and s.meta["source_split"] is True
    torch.save([graph(0, "train"), graph(1)], tmp_path / "h.pt")
    with pytest.raises(DataError, match="graph 1 has no 'split'"):
        PyGReader().read(str(tmp_path / "h.pt"), {})
    node = Data(x=torch.ones(4, 2), edge_index=torch.tensor([[0, 1], [1, 2]]), y=torch.tensor([0, 1, 0, 1]),
                test_mask=torch.tensor([False, False, True, True]))
    torch.save(node, tmp_path / "n.pt")
    n = PyGReader().read(str(tmp_path / "n.pt"), {})
    assert n.split == ["train", "train", "test", "test"] and n.meta["source_split"] is True


def test_networkx_and_edge_list_splits(tmp_path):
    g = nx.path_graph(4)
    for v in g.nodes:
        g.nodes[v]["split"] = "test" if v == 3 else "train"
    s = from_networkx(g, "p", None, "p", {})
    assert s.split == ["train", "train", "train", "test"] and s.meta["source_split"] is True
    del g.nodes[0]["split"]
    with pytest.raises(DataError, match="node 0 has no 'split'"):
        from_networkx(g, "p", None, "p", {})
    pl.DataFrame({"source": [0, 1], "target": [1, 2]}).write_csv(tmp_path / "e.csv")
    pl.DataFrame({"node": [0, 1, 2], "label": [0, 1, 0], "split": ["train", "test", "train"],
                  "f": [1.0, 2.0, 3.0]}).write_csv(tmp_path / "e.nodes.csv")
    e = EdgeListReader().read(str(tmp_path / "e.csv"), {})
    assert e.split == ["train", "test", "train"] and e.meta["source_split"] is True
    assert e.items[0].graph.x.shape[1] == 1  # the split column is not a feature
