"""The embeddings parquet file: columns, exact values, metadata, atomic writes."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from contrastkit.core.errors import DataError
from contrastkit.core.export import embeddings_frame, read_metadata, write_embeddings

META = {"config_hash": "abc123", "encoder": "dilated_conv", "dim": 3, "granularity": "instance", "extra": {"a": [1, 2]}}


def matrix(n: int, d: int = 3) -> np.ndarray:
    rng = np.random.default_rng(0)
    # float64 input with values that float32 must round: the file holds the float32 values
    return rng.standard_normal((n, d)) / 3.0


@pytest.mark.parametrize("ids,dtype", [(["a", "b", "c", "d"], pl.String), ([10, 2, 33, 4], pl.Int64)])
def test_round_trip(tmp_path, ids, dtype):
    h = matrix(4)
    frame = embeddings_frame(ids, h, labels=["x", "y", None, "x"], split=["train", "train", "test", "test"])
    path = write_embeddings(tmp_path / "sub" / "emb.parquet", frame, META)
    assert path == tmp_path / "sub" / "emb.parquet" and path.is_file()
    assert [p.name for p in path.parent.iterdir()] == ["emb.parquet"]  # no temporary left behind

    back = pl.read_parquet(path)
    assert back.columns == ["id", "embedding", "label", "split"]
    assert back.schema["id"] == dtype
    assert back["id"].to_list() == ids
    assert back.schema["embedding"] == pl.Array(pl.Float32, 3)
    emb = back["embedding"].to_numpy()
    assert emb.dtype == np.float32 and emb.shape == (4, 3)
    np.testing.assert_array_equal(emb, h.astype(np.float32))
    assert back["label"].to_list() == ["x", "y", None, "x"]
    assert back["split"].to_list() == ["train", "train", "test", "test"]
    assert back.schema["split"] == pl.String

    meta = read_metadata(path)
    assert meta == {
        "config_hash": "abc123",
        "encoder": "dilated_conv",
        "dim": "3",
        "granularity": "instance",
        "extra": '{"a": [1, 2]}',
    }
    assert json.loads(meta["dim"]) == 3 and json.loads(meta["extra"]) == {"a": [1, 2]}


def test_optional_columns_left_out(tmp_path):
    h = matrix(2, 5)
    frame = embeddings_frame(["p", "q"], h)
    assert frame.columns == ["id", "embedding"]
    # labels that are all unknown are no column either
    assert embeddings_frame(["p", "q"], h, labels=[None, None]).columns == ["id", "embedding"]
    # numeric labels keep their type
    frame = embeddings_frame(["p", "q"], h, labels=[0, 1], split=["train", "test"])
    path = write_embeddings(tmp_path / "e.parquet", frame, {})
    back = pl.read_parquet(path)
    assert back["label"].to_list() == [0, 1] and back.schema["label"] == pl.Int64
    assert back.schema["embedding"] == pl.Array(pl.Float32, 5)
    assert read_metadata(path) == {}


def test_overwrite_replaces(tmp_path):
    path = tmp_path / "e.parquet"
    write_embeddings(path, embeddings_frame(["a"], np.zeros((1, 2))), {"run": "first"})
    write_embeddings(path, embeddings_frame(["b", "c"], np.ones((2, 2))), {"run": "second"})
    back = pl.read_parquet(path)
    assert back["id"].to_list() == ["b", "c"]
    assert read_metadata(path) == {"run": "second"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.parquet"]


def test_shape_mismatch(tmp_path):
    with pytest.raises(DataError, match="do not match 3 ids"):
        embeddings_frame(["a", "b", "c"], np.zeros((2, 4)))
    with pytest.raises(DataError, match="do not match"):
        embeddings_frame(["a", "b"], np.zeros(2))


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    frame = embeddings_frame(["a", "b"], matrix(2))

    def boom(self, file, *args, **kwargs):
        with open(file, "wb") as fh:  # a half-written temporary file
            fh.write(b"PAR1 partial")
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", boom)
    out = tmp_path / "out"
    with pytest.raises(OSError, match="disk full"):
        write_embeddings(out / "emb.parquet", frame, META)
    assert list(out.iterdir()) == []


def test_failed_overwrite_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "emb.parquet"
    write_embeddings(path, embeddings_frame(["old"], np.ones((1, 2))), {"run": "old"})
    before = path.read_bytes()

    def boom(self, file, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pl.DataFrame, "write_parquet", boom)
    with pytest.raises(KeyboardInterrupt):
        write_embeddings(path, embeddings_frame(["new"], np.zeros((1, 2))), {"run": "new"})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["emb.parquet"]


@pytest.mark.parametrize("name", ["emb.csv", "emb.parquet.tmp", "emb", "emb.pq"])
def test_wrong_suffix(tmp_path, name):
    frame = embeddings_frame(["a"], np.zeros((1, 2)))
    with pytest.raises(DataError, match="must end with .parquet"):
        write_embeddings(tmp_path / "x" / name, frame, {})
    assert not (tmp_path / "x").exists()


def test_upper_case_suffix_accepted(tmp_path):
    path = write_embeddings(tmp_path / "E.PARQUET", embeddings_frame(["a"], np.zeros((1, 2))), {"k": "v"})
    assert read_metadata(path) == {"k": "v"}


def test_multi_part_ids_get_one_column_each(tmp_path):
    """Node or patch embeddings: ids are tuples; each part is a column and `id` joins them."""
    h = matrix(3, 2)
    ids = [("g1", 0), ("g1", 1), ("g2", 0)]
    frame = embeddings_frame(ids, h, split=["train", "train", "test"], id_columns=["graph_id", "node_id"])
    path = write_embeddings(tmp_path / "nodes.parquet", frame, {"granularity": "node"})
    back = pl.read_parquet(path)
    assert back.columns == ["id", "graph_id", "node_id", "embedding", "split"]
    assert back["id"].to_list() == ["g1/0", "g1/1", "g2/0"]
    assert back["graph_id"].to_list() == ["g1", "g1", "g2"]
    assert back["node_id"].to_list() == [0, 1, 0] and back.schema["node_id"] == pl.Int64
    np.testing.assert_array_equal(back["embedding"].to_numpy(), h.astype(np.float32))
    with pytest.raises(DataError, match="not a tuple of 2 parts"):
        embeddings_frame(["g1", "g2", "g3"], h, id_columns=["graph_id", "node_id"])
