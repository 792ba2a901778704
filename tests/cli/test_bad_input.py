"""Bad input: one clear sentence on stderr, a non-zero exit, no half-written output, no traceback."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from tests.conftest import make_long_series  # noqa: E402


def _one_sentence_error(r, *needles):
    assert r.code != 0, r
    assert "Traceback" not in r.err, r.err
    lines = [l for l in r.err.strip().splitlines() if l.startswith("error:")]
    assert len(lines) == 1, r.err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def test_missing_file(cli, tmp_path):
    run = tmp_path / "run"
    r = cli("pretrain", "timeseries", "--data", tmp_path / "nope.ts", "--out", run)
    _one_sentence_error(r, "nope.ts", "no such file")
    assert not run.exists()


def test_malformed_ts_header(cli, tmp_path):
    bad = tmp_path / "Bad_TRAIN.ts"
    bad.write_text("@problemName Bad\n@univariate true\n@classLabel true 1 2\n@bogus 3\n@data\n1,2,3:1\n")
    run = tmp_path / "run"
    r = cli("pretrain", "timeseries", "--data", bad, "--out", run)
    _one_sentence_error(r, "Bad_TRAIN.ts", "line")
    assert not run.exists()


def test_parquet_without_id_column(cli, tmp_path):
    p = tmp_path / "x.parquet"
    pl.DataFrame({"key": [1, 1], "time": [0, 1], "value": [0.1, 0.2]}).write_parquet(p)
    r = cli("pretrain", "timeseries", "--data", p, "--out", tmp_path / "run")
    _one_sentence_error(r, "x.parquet", "id")


def test_nan_values(cli, tmp_path):
    p = make_long_series(tmp_path / "nan.parquet", nan=True)
    r = cli("pretrain", "timeseries", "--data", p, "--out", tmp_path / "run")
    _one_sentence_error(r, "s003", "missing")
    assert not (tmp_path / "run").exists()


def test_series_shorter_than_crop(cli, tmp_path, tiny_data):
    cfg = tmp_path / "crop.toml"
    cfg.write_text('[[augmentations]]\nname = "random_crop"\nlength = 64\n')
    r = cli("pretrain", "timeseries", "--data", tiny_data, "--config", cfg, "--out", tmp_path / "run")
    _one_sentence_error(r, "crop length 64", "32 time steps")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("args,needles", [
    (["pretrain", "nosuchplugin"], ["unknown modality 'nosuchplugin'; valid modalities:", "timeseries"]),
    (["pretrain", "timeseries", "--loss", "nosuchloss"], ["unknown loss 'nosuchloss'", "infonce"]),
    (["pretrain", "timeseries", "--encoder", "nosuchenc"], ["unknown encoder 'nosuchenc'", "dilated_conv"]),
])
def test_unknown_names(cli, tmp_path, args, needles):
    r = cli(*args, "--out", tmp_path / "run")
    _one_sentence_error(r, *needles)
    assert not (tmp_path / "run").exists()


def test_resume_with_other_config(cli, tmp_path, tiny_data, tiny_recipe):
    run = tmp_path / "run"
    r = cli("pretrain", "timeseries", "--data", tiny_data, "--config", tiny_recipe, "--out", run,
            "--epochs", "1", "--no-progress")
    assert r.code == 0, r
    before = (run / "checkpoints" / "last.ckpt").read_bytes()
    r = cli("pretrain", "timeseries", "--data", tiny_data, "--config", tiny_recipe, "--out", run,
            "--resume", "--lr", "0.1")
    _one_sentence_error(r, "another config", "lr")
    assert (run / "checkpoints" / "last.ckpt").read_bytes() == before
    # A second run into the same directory without --resume is refused too.
    r = cli("pretrain", "timeseries", "--data", tiny_data, "--config", tiny_recipe, "--out", run)
    _one_sentence_error(r, "already holds a run")


def test_embed_of_non_run(cli, tmp_path):
    r = cli("embed", tmp_path, "--out", tmp_path / "e.parquet")
    _one_sentence_error(r, "not a contrastkit run directory")
    assert not (tmp_path / "e.parquet").exists()


def test_bad_config_value(cli, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("batch_size = 0\n")
    r = cli("pretrain", "timeseries", "--config", cfg, "--out", tmp_path / "run")
    _one_sentence_error(r, "batch_size")
