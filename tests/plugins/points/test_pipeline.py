"""End to end through the CLI on a tiny synthetic set: pretrain → embed → evaluate --baseline → views."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from contrastkit.core.data import Samples
from contrastkit.core.export import read_metadata
from contrastkit.plugins.points.modality import collate, prepare
from contrastkit.plugins.points.readers import real_mesh_files

TINY = """
epochs = 1
batch_size = 8
[data_options]
num_points = 64
train_per_class = 3
test_per_class = 2
[encoder]
name = "pointnet"
widths = [16, 32]
[head]
out_dim = 16
[evaluate]
evaluators = ["linear_svm", "retrieval", "raw_d2"]
seeds = [0]
"""


@pytest.mark.slow
def test_pretrain_embed_evaluate_views(cli, tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    run = tmp_path / "run"
    r = cli("pretrain", "points", "--config", cfg, "--out", run, "--no-progress")
    assert r.code == 0, r
    card = json.loads((run / "run.json").read_text())
    assert card["data"]["source"] == "synthetic_shapes" and card["data"]["n_train"] == 30
    assert card["data"]["meta"]["in_channels"] == 3 and card["data"]["meta"]["granularity"] == "cloud"

    out = tmp_path / "emb.parquet"
    r = cli("embed", run, "--out", out)
    assert r.code == 0, r
    frame = pl.read_parquet(out)
    assert frame.height == 50 and frame.schema["embedding"] == pl.Array(pl.Float32, 32)
    assert frame["id"][0] == "box/0000" and set(frame["label"]) >= {"box", "mug"}
    assert read_metadata(out)["encoder"] == "pointnet"

    r = cli("evaluate", run, "--json", "--baseline")
    assert r.code == 0, r
    m = json.loads(r.out)["metrics"]
    for key in ("linear_svm.accuracy", "retrieval.instance_top1", "raw_d2.linear_svm.accuracy",
                "random_init.linear_svm.accuracy"):
        assert 0.0 <= m[key] <= 1.0, key
    assert not any(k.startswith("random_init.raw_d2") for k in m)  # no encoder in it: not re-run

    if len(real_mesh_files()) >= 2:  # the instance-retrieval check on the real objects
        r = cli("evaluate", run, "--data", "real_meshes", "-e", "retrieval", "--json")
        assert r.code == 0, r
        result = json.loads(r.out)
        assert result["metrics"]["retrieval.gallery_size"] == len(real_mesh_files())

    pic = tmp_path / "views.png"
    r = cli("views", "points", "--config", cfg, "--out", pic, "--samples", "2")
    assert r.code == 0, r
    assert pic.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


UNLABELLED = """
epochs = 1
batch_size = 4
[data_options]
num_points = 64
[encoder]
name = "pointnet"
widths = [16, 32]
[head]
out_dim = 16
[evaluate]
seeds = [0, 1]
"""


@pytest.mark.slow
def test_retrieval_on_an_unlabelled_folder_through_the_cli(cli, tmp_path):
    """A flat folder of meshes and point arrays (no labels): `evaluate` picks retrieval and reports instances."""
    import trimesh

    folder = tmp_path / "clouds"
    folder.mkdir()
    rng = np.random.default_rng(0)
    trimesh.creation.box(extents=(2.0, 1.0, 0.5)).export(folder / "box.off")
    trimesh.creation.icosphere(subdivisions=2).export(folder / "ball.ply")
    trimesh.creation.cylinder(radius=0.3, height=2.0).export(folder / "rod.stl")
    for i in range(9):
        np.save(folder / f"blob{i}.npy", rng.normal(size=(80, 3)) * rng.uniform(0.2, 2.0, size=3))
    cfg = tmp_path / "unlabelled.toml"
    cfg.write_text(UNLABELLED)
    run = tmp_path / "run"
    r = cli("pretrain", "points", "--data", folder, "--config", cfg, "--out", run, "--epochs", "1", "--no-progress")
    assert r.code == 0, r
    r = cli("evaluate", run, "--json")  # no evaluator named: those the unlabelled data allow
    assert r.code == 0, r
    result = json.loads(r.out)
    m = result["metrics"]
    assert [ev["evaluator"] for ev in result["evaluations"]] == ["retrieval"]
    assert 0.0 <= m["retrieval.instance_top1"] <= 1.0 and m["retrieval.instance_top1_std"] >= 0.0
    assert not any("class_top1" in k for k in m)
    assert 2 <= m["retrieval.gallery_size"] <= 12


def test_bad_input_is_one_sentence_and_leaves_no_run(cli, tmp_path):
    a = np.zeros((4, 32, 3))
    a[2, 5, 0] = np.nan
    np.save(tmp_path / "bad.npy", a)
    run = tmp_path / "run"
    r = cli("pretrain", "points", "--data", tmp_path / "bad.npy", "--out", run, "--no-progress")
    assert r.code != 0 and "cloud 2" in r.err and "NaN" in r.err and "Traceback" not in r.err
    assert not (run / "checkpoints").exists()


def test_prepare_resamples_normalises_and_reuses_its_state():
    rng = np.random.default_rng(0)
    s = Samples(ids=["a", "b"], items=[rng.normal(size=(100, 4)) * 5 + 2, rng.normal(size=(30, 4))])
    out, state = prepare(s, None, {"num_points": 50})
    assert state == {"num_points": 50, "channels": 4, "normalize": "sphere"}
    assert [x.shape for x in out.items] == [(50, 4), (50, 4)]
    assert np.allclose(np.linalg.norm(out.items[0][:, :3], axis=1).max(), 1.0, atol=1e-5)
    assert np.isin(out.items[0][:, 3], s.items[0][:, 3].astype(np.float32)).all()  # features are not rescaled
    # the small cloud keeps all 30 of its points, plus repeats
    assert len(np.unique(out.items[1][:, 3])) == 30
    assert out.meta["in_channels"] == 4 and out.meta["features"] == 1
    again, _ = prepare(s, state, {"num_points": 999})  # the fitted state wins
    assert all(np.array_equal(a, b) for a, b in zip(out.items, again.items))
    with pytest.raises(Exception, match="trained on 4"):
        prepare(Samples(ids=["c"], items=[np.zeros((10, 3))]), state, {})
    batch = collate(out.items)
    assert tuple(batch.shape) == (2, 50, 4)
