"""End to end through the CLI on a generated parquet of events: pretrain → embed → evaluate."""

from __future__ import annotations

import json

import polars as pl
import pytest

from contrastkit.core.export import read_metadata

RECIPE = """
epochs = 2
batch_size = 16
views = 3
[encoder]
name = "gru"
hidden = 16
[joint_view]
name = "random_slices"
min_length = 5
max_length = 20
[evaluate]
seeds = [0]
"""


@pytest.mark.slow
def test_pretrain_embed_evaluate(cli, tmp_path, events_files):
    ev, lab = events_files
    cfg = tmp_path / "small.toml"
    cfg.write_text(RECIPE + f'[data_options]\nlabels = "{lab}"\nmin_events = 5\n')
    run = tmp_path / "run"
    r = cli("pretrain", "events", "--data", ev, "--config", cfg, "--out", run, "--no-progress")
    assert r.code == 0, r
    card = json.loads((run / "run.json").read_text())
    assert card["status"] == "finished" and card["data"]["meta"]["cat_columns"] == ["category"]

    out = tmp_path / "emb.parquet"
    r = cli("embed", run, "--out", out)
    assert r.code == 0, r
    frame = pl.read_parquet(out)
    assert frame.height == 120 and frame.schema["embedding"] == pl.Array(pl.Float32, 16)
    assert read_metadata(out)["encoder"] == "gru"

    r = cli("evaluate", run, "--json", "--baseline")
    assert r.code == 0, r
    m = json.loads(r.out)["metrics"]
    assert {"entity.hgb.auroc", "aggregates.entity.hgb.auroc", "pretrained+aggregates.entity.hgb.auroc",
            "entity.majority.accuracy", "random_init.entity.logistic.auroc",
            "random_init_fitted.entity.logistic.auroc"} <= set(m)
    # the GRU keeps no normalisation statistics: the fitted random encoder is the random one, said so
    res = json.loads(r.out)
    assert m["random_init_fitted.entity.logistic.auroc"] == m["random_init.entity.logistic.auroc"]
    assert any("keeps no normalisation statistics" in n for n in res["notes"])
    names = [row["name"] for row in res["rows"]]
    assert names == ["pretrained", "random_init", "random_init_fitted", "aggregates", "pretrained+aggregates"]

    r = cli("pretrain", "events", "--data", ev, "--config", cfg, "--loss", "infonce", "--out", tmp_path / "r2",
            "--epochs", "1", "--no-progress")
    assert r.code == 0, r


def test_bad_column_is_one_sentence(cli, tmp_path, events_files):
    ev, _ = events_files
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[data_options]\ntime_column = "when"\n')
    r = cli("pretrain", "events", "--data", ev, "--config", cfg, "--out", tmp_path / "run", "--no-progress")
    assert r.code != 0 and "no time column 'when'" in r.err and "client_id, event_time" in r.err
    assert "Traceback" not in r.err and not (tmp_path / "run" / "checkpoints").exists()


def test_unseen_category_at_embed_time_warns(cli, tmp_path, events_files):
    ev, lab = events_files
    cfg = tmp_path / "small.toml"
    cfg.write_text(RECIPE.replace("epochs = 2", "epochs = 1"))
    run = tmp_path / "run"
    assert cli("pretrain", "events", "--data", ev, "--config", cfg, "--out", run, "--no-progress").code == 0
    frame = pl.read_parquet(ev).with_columns(pl.lit(999).alias("category"))
    new = tmp_path / "new.parquet"
    frame.write_parquet(new)
    r = cli("embed", run, "--data", new, "--out", tmp_path / "e.parquet")
    assert r.code == 0, r
    assert "never seen in training" in r.err and "'999'" in r.err


def test_encoder_option_at_embed_time(cli, tmp_path, events_files):
    """`embed -E inference_matmul=bfloat16`: the same weights, the hidden product in bfloat16 —
    embeddings within cosine 0.999 of the float32 ones, recorded in the file's metadata."""
    import numpy as np

    ev, lab = events_files
    cfg = tmp_path / "small.toml"
    cfg.write_text(RECIPE.replace("epochs = 2", "epochs = 1"))
    run = tmp_path / "run"
    assert cli("pretrain", "events", "--data", ev, "--config", cfg, "--out", run, "--no-progress").code == 0
    a, b = tmp_path / "f32.parquet", tmp_path / "bf16.parquet"
    assert cli("embed", run, "--out", a).code == 0
    r = cli("embed", run, "--out", b, "-E", "inference_matmul=bfloat16")
    assert r.code == 0, r
    x = np.stack(pl.read_parquet(a)["embedding"].to_list())
    y = np.stack(pl.read_parquet(b)["embedding"].to_list())
    cos = (x * y).sum(1) / np.linalg.norm(x, axis=1) / np.linalg.norm(y, axis=1)
    assert cos.min() > 0.999 and not np.array_equal(x, y)
    assert json.loads(read_metadata(b)["encoder_options"]) == {"inference_matmul": "bfloat16"}
    r = cli("embed", run, "--out", tmp_path / "c.parquet", "-E", "inference_matmul=half")
    assert r.code != 0 and "inference_matmul" in r.err and "Traceback" not in r.err
    r = cli("embed", run, "--out", tmp_path / "d.parquet", "-E", "hidden")
    assert r.code != 0 and "KEY=VALUE" in r.err
    r = cli("embed", run, "--out", tmp_path / "e.parquet", "-E", "hidden=32")
    assert r.code != 0 and "weights do not fit" in r.err and not (tmp_path / "e.parquet").exists()
