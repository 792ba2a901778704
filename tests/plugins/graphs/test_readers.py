"""Readers: TU text format, named sets, edge lists, saved PyG data; bad input is one-sentence DataError."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from contrastkit.core.errors import DataError
from contrastkit.plugins.graphs.batch import NodeRef
from contrastkit.plugins.graphs.modality import prepare
from contrastkit.plugins.graphs.readers import (EdgeListReader, NetworkxReader, PyGReader, SBMReader, TUReader,
                                               generate_sbm)


def write_tu(folder: Path, name: str = "TOY", a: str | None = None, node_labels: bool = True) -> Path:
    """Two graphs: a triangle (nodes 1-3, one self-loop, one duplicate) and an edgeless pair (nodes 4-5)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}_A.txt").write_text(a if a is not None else "1, 2\n2, 1\n2, 3\n3, 2\n1, 3\n3, 1\n1, 1\n1, 2\n")
    (folder / f"{name}_graph_indicator.txt").write_text("1\n1\n1\n2\n2\n")
    (folder / f"{name}_graph_labels.txt").write_text("1\n-1\n")
    if node_labels:
        (folder / f"{name}_node_labels.txt").write_text("0\n2\n0\n2\n5\n")
    return folder


def one_sentence(exc) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and msg.endswith(".")
    return msg


def test_tu_reads_graphs_labels_and_one_hot_node_labels(tmp_path):
    s = TUReader().read(str(write_tu(tmp_path / "toy")), {})
    assert s.ids == [1, 2] and s.labels == [1, -1]
    tri, pair = s.items
    assert tri.x.tolist() == [[1, 0, 0], [0, 1, 0], [1, 0, 0]]  # labels {0, 2, 5} one-hot
    assert pair.x.tolist() == [[0, 1, 0], [0, 0, 1]]
    assert tri.edge_index.shape[1] == 6  # self-loop removed, duplicate (1, 2) merged
    assert pair.edge_index.shape[1] == 0  # a graph without edges is kept
    kept = TUReader().read(str(tmp_path / "toy"), {"self_loops": "keep"})
    assert kept.items[0].edge_index.shape[1] == 7


def test_tu_reads_mutag_and_cuneiform():
    s = TUReader().read("MUTAG", {})
    assert len(s) == 188 and sorted(set(s.labels)) == [-1, 1]
    assert s.items[0].x.shape[1] == 7 and s.items[0].edge_attr.shape[1] == 4
    assert sum(g.num_nodes for g in s.items) == 3371
    c = TUReader().read("Cuneiform", {})
    assert len(c) == 267 and len(set(c.labels)) == 30
    assert c.items[0].x.shape[1] > 3  # attributes and one-hot labels


@pytest.mark.parametrize("a, words", [
    ("1, 2\n2, 9\n", "line 2 names node 9"),
    ("1, 4\n", "joins node 1 of graph 1 with node 4 of graph 2"),
    ("", "is empty"),
    ("1, 2\nx, 3\n", "line 2"),
])
def test_tu_bad_input(tmp_path, a, words):
    with pytest.raises(DataError) as exc:
        TUReader().read(str(write_tu(tmp_path / "bad", a=a)), {})
    assert words in one_sentence(exc)


def test_tu_label_count_mismatch(tmp_path):
    folder = write_tu(tmp_path / "bad")
    (folder / "TOY_node_labels.txt").write_text("0\n1\n")
    with pytest.raises(DataError) as exc:
        TUReader().read(str(folder), {})
    assert "2 lines for 5 nodes" in one_sentence(exc)


def test_networkx_karate_is_node_level():
    s = NetworkxReader().read("karate_club", {})
    assert len(s) == 34 and s.ids[0] == ("karate_club", 0) and s.meta["granularity"] == "node"
    assert set(s.labels) == {"Mr. Hi", "Officer"}
    assert isinstance(s.items[0], NodeRef) and s.items[0].graph.edge_index.shape[1] == 2 * 78


def test_sbm_is_deterministic_and_homophilous():
    x1, e1, y1 = generate_sbm(300, 3, 8, 16, seed=1)
    x2, e2, y2 = generate_sbm(300, 3, 8, 16, seed=1)
    assert np.array_equal(x1, x2) and np.array_equal(e1, e2) and np.array_equal(y1, y2)
    same = (y1[e1[0]] == y1[e1[1]]).mean()
    assert same > 0.55  # 60% of the edges inside blocks (plus chance)
    s = SBMReader().read("sbm", {"sbm_nodes": 100})
    assert len(s) == 100 and s.meta["id_columns"] == ["graph_id", "node_id"]


def test_edge_list_with_node_table(tmp_path):
    edges = tmp_path / "e.csv"
    pl.DataFrame({"source": ["a", "b", "c", "c", "a"], "target": ["b", "c", "a", "c", "b"],
                  "weight": [1.0, 2.0, 3.0, 4.0, 5.0]}).write_csv(edges)
    pl.DataFrame({"node": ["a", "b", "c", "d"], "f1": [1.0, 2.0, 3.0, 4.0],
                  "label": [0, 1, 0, 1]}).write_csv(tmp_path / "e.nodes.csv")
    s = EdgeListReader().read(str(edges), {})
    assert [i[1] for i in s.ids] == ["a", "b", "c", "d"] and s.labels == [0, 1, 0, 1]
    g = s.items[0].graph
    assert g.x.tolist() == [[1.0], [2.0], [3.0], [4.0]]
    # self-loop c-c dropped, duplicate a-b merged (first weight kept), both directions present
    pairs = {tuple(p): w for p, w in zip(g.edge_index.t().tolist(), g.edge_weight.tolist())}
    assert pairs == {(0, 1): 1.0, (1, 0): 1.0, (1, 2): 2.0, (2, 1): 2.0, (2, 0): 3.0, (0, 2): 3.0}


def test_edge_list_errors(tmp_path):
    edges = tmp_path / "e.parquet"
    pl.DataFrame({"source": [1, 2], "target": [2, 7]}).write_parquet(edges)
    pl.DataFrame({"node": [1, 2, 3]}).write_parquet(tmp_path / "e.nodes.parquet")
    with pytest.raises(DataError) as exc:
        EdgeListReader().read(str(edges), {})
    assert "row 2 names node 7" in one_sentence(exc)
    bad = tmp_path / "b.csv"
    pl.DataFrame({"from": [1], "to": [2]}).write_csv(bad)
    with pytest.raises(DataError) as exc:
        EdgeListReader().read(str(bad), {})
    assert "'source'" in one_sentence(exc)


def test_edge_list_without_node_table_uses_identity_features(tmp_path):
    edges = tmp_path / "e.csv"
    pl.DataFrame({"source": [0, 1, 2], "target": [1, 2, 0]}).write_csv(edges)
    s = EdgeListReader().read(str(edges), {})
    assert s.labels is None and s.items[0].graph.x.shape == (3, 3)


def test_pyg_list_round_trip_and_unsafe_pickles_refused(tmp_path):
    from torch_geometric.data import Data

    data = [Data(x=torch.randn(4, 3), edge_index=torch.tensor([[0, 1, 2], [1, 2, 3]]), y=torch.tensor([i % 2]))
            for i in range(6)]
    path = tmp_path / "graphs.pt"
    torch.save(data, path)
    s = PyGReader().read(str(path), {})
    assert len(s) == 6 and s.labels == [0, 1, 0, 1, 0, 1] and s.meta["granularity"] == "graph"
    assert s.items[0].x.shape == (4, 3)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    evil = tmp_path / "evil.pt"
    torch.save({"x": Evil()}, evil)
    with pytest.raises(DataError) as exc:
        PyGReader().read(str(evil), {})
    assert "weights-only" in one_sentence(exc)


def test_pyg_edges_naming_missing_nodes(tmp_path):
    from torch_geometric.data import Data

    path = tmp_path / "bad.pt"
    torch.save([Data(x=torch.randn(2, 3), edge_index=torch.tensor([[0], [5]]))], path)
    with pytest.raises(DataError) as exc:
        PyGReader().read(str(path), {})
    assert "names node 5" in one_sentence(exc)


def test_prepare_refuses_mismatched_feature_widths(tmp_path):
    from torch_geometric.data import Data

    path = tmp_path / "mixed.pt"
    torch.save([Data(x=torch.randn(3, 3), edge_index=torch.tensor([[0], [1]])),
                Data(x=torch.randn(3, 5), edge_index=torch.tensor([[0], [1]]))], path)
    s = PyGReader().read(str(path), {})
    with pytest.raises(DataError) as exc:
        prepare(s, None, {})
    assert "graph 1 has 5 node feature(s)" in one_sentence(exc)
    _, state = prepare(s.subset([0]), None, {})
    with pytest.raises(DataError):
        prepare(s.subset([1]), state, {})


def test_pyg_in_memory_dataset_folder(tmp_path):
    from torch_geometric.data import Data, InMemoryDataset

    class Toy(InMemoryDataset):
        def __init__(self, root):
            super().__init__(root)

        @property
        def processed_file_names(self):
            return ["data.pt"]

        def process(self):
            self.save([Data(x=torch.randn(3, 2), edge_index=torch.tensor([[0, 1], [1, 2]]), y=torch.tensor([i % 2]))
                       for i in range(5)], self.processed_paths[0])

    Toy(str(tmp_path / "toy"))
    reader = PyGReader()
    assert reader.accepts(tmp_path / "toy")
    s = reader.read(str(tmp_path / "toy"), {})
    assert len(s) == 5 and s.labels == [0, 1, 0, 1, 0] and s.items[0].edge_index.shape == (2, 2)


def test_prepare_standardises_continuous_features_only(tmp_path):
    from torch_geometric.data import Data

    path = tmp_path / "attrs.pt"
    graphs = [Data(x=torch.tensor([[10.0 + i, 1.0], [20.0 - i, 0.0]]), edge_index=torch.tensor([[0], [1]]))
              for i in range(4)]
    torch.save(graphs, path)
    s = PyGReader().read(str(path), {})
    out, state = prepare(s, None, {})
    x = torch.cat([g.x for g in out.items])
    assert abs(float(x[:, 0].mean())) < 1e-6 and abs(float(x[:, 0].std(unbiased=False)) - 1) < 1e-5
    assert torch.equal(x[:, 1], torch.tensor([1.0, 0.0] * 4))  # one-hot column untouched
    assert s.items[0].x[0, 0] == 10.0  # the input graphs are left as they were
    again, _ = prepare(s.subset([2]), state, {})
    assert torch.allclose(again.items[0].x, out.items[2].x)  # the fitted state is reused, not refitted
    raw, state_none = prepare(s, None, {"normalize": "none"})
    assert "mean" not in state_none and torch.equal(raw.items[0].x, s.items[0].x)
