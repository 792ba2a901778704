"""End to end through the CLI: graph-level (MUTAG, GraphCL and InfoGraph recipes) and node-level (karate club)."""

from __future__ import annotations

import json

import polars as pl
import pytest

from contrastkit.core.export import read_metadata

GRAPHCL_TINY = """
epochs = 2
batch_size = 32
[encoder]
hidden = 8
layers = 2
[head]
out_dim = 16
[evaluate]
seeds = [0]
[evaluate.options]
raw_baseline = false
"""

INFOGRAPH_TINY = """
epochs = 1
batch_size = 32
augmentations = []
[encoder]
name = "gin"
hidden = 8
layers = 2
[head]
out_dim = 16
[joint_view]
name = "local_global"
"""

GRACE_TINY = """
epochs = 3
batch_size = 1000
pretrain_on = "all"
[encoder]
name = "gcn"
out_dim = 8
[head]
out_dim = 8
[loss]
name = "infonce"
temperature = 0.5
[[augmentations]]
name = "edge_remove"
ratio = 0.3
[[augmentations]]
name = "feature_mask"
ratio = 0.3
[evaluate]
evaluators = ["node_logreg"]
seeds = [0, 1]
"""


@pytest.mark.slow
def test_mutag_pretrain_embed_evaluate(cli, tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(GRAPHCL_TINY)
    run = tmp_path / "run"
    r = cli("pretrain", "graphs", "--data", "MUTAG", "--config", cfg, "--out", run, "--no-progress")
    assert r.code == 0, r
    card = json.loads((run / "run.json").read_text())
    assert card["data"]["n_train"] == 188  # pretrain_on = "all": every graph, labels unused
    out = tmp_path / "emb.parquet"
    r = cli("embed", run, "--out", out)
    assert r.code == 0, r
    frame = pl.read_parquet(out)
    assert frame.height == 188 and frame.schema["embedding"] == pl.Array(pl.Float32, 16)
    assert read_metadata(out)["granularity"] == "graph"
    r = cli("evaluate", run, "--json")
    assert r.code == 0, r
    res = json.loads(r.out)
    assert 0.5 < res["metrics"]["graph_svm.accuracy"] <= 1.0
    assert res["evaluations"][0]["protocol"] == "graphcl-svm-10fold"


@pytest.mark.slow
def test_infograph_local_global_trains(cli, tmp_path):
    cfg = tmp_path / "ig.toml"
    cfg.write_text(INFOGRAPH_TINY)
    r = cli("pretrain", "graphs", "--data", "MUTAG", "--config", cfg, "--out", tmp_path / "ig", "--no-progress")
    assert r.code == 0, r


@pytest.mark.slow
def test_node_level_karate_exports_graph_and_node_ids(cli, tmp_path):
    cfg = tmp_path / "grace.toml"
    cfg.write_text(GRACE_TINY)
    run = tmp_path / "run"
    r = cli("pretrain", "graphs", "--data", "karate_club", "--config", cfg, "--out", run, "--no-progress")
    assert r.code == 0, r
    out = tmp_path / "nodes.parquet"
    r = cli("embed", run, "--out", out)
    assert r.code == 0, r
    frame = pl.read_parquet(out)
    assert frame.columns[:3] == ["id", "graph_id", "node_id"] and frame.height == 34
    assert frame["id"][0] == "karate_club/0" and set(frame["label"]) == {"Mr. Hi", "Officer"}
    meta = read_metadata(out)
    assert meta["granularity"] == "node" and json.loads(meta["id_columns"]) == ["graph_id", "node_id"]
    r = cli("evaluate", run, "--json")
    assert r.code == 0, r
    assert "node_logreg.accuracy" in json.loads(r.out)["metrics"]


def test_local_global_on_nodes_is_refused(cli, tmp_path):
    cfg = tmp_path / "ig.toml"
    cfg.write_text(INFOGRAPH_TINY)
    r = cli("pretrain", "graphs", "--data", "karate_club", "--config", cfg, "--out", tmp_path / "x", "--no-progress")
    assert r.code != 0 and "graph-level items" in r.err and "Traceback" not in r.err


def test_views_picture(cli, tmp_path):
    for data in ("MUTAG", "karate_club"):
        out = tmp_path / f"{data}.png"
        r = cli("views", "graphs", "--data", data, "--out", out, "--samples", "3")
        assert r.code == 0, r
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_check_refuses_dense_diffusion_of_large_graphs():
    from contrastkit.core.errors import DataError
    from contrastkit.plugins.graphs.modality import check
    from contrastkit.plugins.graphs.readers import SBMReader

    samples = SBMReader().read("sbm", {"sbm_nodes": 300})
    cfg = {"augmentations": [{"name": "random_choice", "transforms": [{"name": "diffusion", "max_nodes": 100}]}]}
    with pytest.raises(DataError, match="300 nodes, more than the diffusion view's max_nodes=100"):
        check(samples, cfg)
    check(samples, {"augmentations": [{"name": "diffusion", "max_nodes": 300}]})
