"""End to end through the CLI: pretrain → embed → evaluate on generated data."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from contrastkit.core.export import read_metadata


@pytest.mark.slow
def test_pretrain_embed_evaluate(cli, tmp_path, tiny_data, tiny_recipe):
    run = tmp_path / "run"
    r = cli("pretrain", "timeseries", "--data", tiny_data, "--config", tiny_recipe, "--out", run, "--no-progress")
    assert r.code == 0, r
    assert f"run: {run}" in r.out
    card = json.loads((run / "run.json").read_text())
    assert card["status"] == "finished" and card["epochs_done"] == 2
    assert card["data"]["split"].startswith("hash")  # the parquet had no split: ids are hashed
    assert set(card["diagnostics"]) >= {"alignment", "uniformity", "effective_rank"}
    assert set(card["versions"]) >= {"torch", "lightning", "polars", "contrastkit"}
    lines = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert [l["epoch"] for l in lines] == [1, 2] and all(np.isfinite(l["loss"]) for l in lines)

    out = tmp_path / "emb.parquet"
    r = cli("embed", run, "--out", out)
    assert r.code == 0, r
    frame = pl.read_parquet(out)
    assert frame.columns == ["id", "embedding", "label", "split"]
    assert frame.height == 40 and frame.schema["embedding"] == pl.Array(pl.Float32, 32)
    assert set(frame["split"]) <= {"train", "test"}
    meta = read_metadata(out)
    assert meta["encoder"] == "dilated_conv" and meta["config_hash"] == card["config_hash"]
    assert not list(tmp_path.glob(".emb.parquet*"))

    r = cli("evaluate", run, "--json", "--map", tmp_path / "map.png")
    assert r.code == 0, r
    result = json.loads(r.out)
    assert 0.0 <= result["metrics"]["svm.accuracy"] <= 1.0
    ev = {e["evaluator"]: e for e in result["evaluations"]}
    assert ev["svm"]["protocol"] == "ts2vec-svm" and ev["svm"]["protocol_version"] == "2"
    assert (tmp_path / "map.png").stat().st_size > 1000

    # the reviewer's table: pretrained beside both random baselines (and the plugin's non-learned ones),
    # and label-efficiency curves fitted on the same stratified draws for every row
    r = cli("evaluate", run, "--json", "--baseline", "--label-fractions", "0.1,0.5,1", "--curve",
            tmp_path / "curve.png")
    assert r.code == 0, r
    res = json.loads(r.out)
    rows = [row["name"] for row in res["rows"]]
    assert rows[:3] == ["pretrained", "random_init", "random_init_fitted"]
    m = res["metrics"]
    assert {"svm.accuracy", "random_init.svm.accuracy", "random_init_fitted.svm.accuracy"} <= set(m)
    entry = next(e for e in res["table"] if e["evaluator"] == "svm" and e["metric"] == "accuracy")
    assert set(entry["rows"]) == set(rows)
    cell = entry["rows"]["random_init"]
    assert cell["delta"] == pytest.approx(m["svm.accuracy"] - m["random_init.svm.accuracy"])
    le = res["label_efficiency"]
    assert le["fractions"] == [0.1, 0.5, 1.0] and le["primary_metric"]["svm"] == "accuracy"
    for row in rows:
        curve = le["curves"][row]["svm"]["accuracy"]
        assert [p["fraction"] for p in curve] == [0.1, 0.5, 1.0]
        assert curve[-1]["mean"] == pytest.approx(res["metrics"][("" if row == "pretrained" else row + ".")
                                                                 + "svm.accuracy"])
    n_labels = [p["n_labels"] for p in le["curves"]["pretrained"]["svm"]["accuracy"]]
    assert n_labels[0] < n_labels[1] < n_labels[2] == le["n_train_labels"]
    assert (tmp_path / "curve.png").stat().st_size > 5000
    r = cli("evaluate", run, "--baseline", "--label-fractions", "0.5,1")
    assert r.code == 0, r
    assert "random init, fitted norm" in r.out and "label efficiency" in r.out and "nan" not in r.out
    r = cli("evaluate", run, "--curve", tmp_path / "c.png")
    assert r.code == 1 and "--label-fractions" in r.err


def test_a_baseline_that_cannot_describe_the_data_is_left_out_with_a_note(cli, tmp_path, tiny_data, tiny_recipe,
                                                                         monkeypatch):
    from contrastkit.core.errors import DataError
    from contrastkit.plugins.timeseries.minirocket import MiniRocketBaseline

    run = tmp_path / "run"
    assert cli("pretrain", "timeseries", "--data", tiny_data, "--config", tiny_recipe, "--out", run, "--epochs", "1",
               "--no-progress").code == 0

    def refuse(self, samples):
        raise DataError("these series are not for MiniRocket.")

    monkeypatch.setattr(MiniRocketBaseline, "features", refuse)
    r = cli("evaluate", run, "--json", "--baseline", "--label-fractions", "0.5,1")
    assert r.code == 0, r
    res = json.loads(r.out)
    assert "minirocket" not in [row["name"] for row in res["rows"]]
    assert any(n.startswith("baseline 'minirocket' left out: these series are not for MiniRocket") for n in res["notes"])
    assert "random_init.svm.accuracy" in res["metrics"]


def test_views_picture(cli, tmp_path, tiny_data):
    out = tmp_path / "views.png"
    r = cli("views", "timeseries", "--data", tiny_data, "--out", out, "--samples", "3", "-k", "3")
    assert r.code == 0, r
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plugins_json_lists_timeseries(cli):
    r = cli("plugins", "--json")
    assert r.code == 0
    plugins = {p["name"]: p for p in json.loads(r.out)["plugins"]}
    ts = plugins["timeseries"]
    assert ts["distribution"] == "contrastkit" and ts["status"] == "loaded"
    kinds = {(c["kind"], c["name"]) for c in ts["registered"]}
    assert {("modality", "timeseries"), ("reader", "ts"), ("encoder", "dilated_conv"),
            ("augmentation", "jitter"), ("evaluator", "forecast")} <= kinds


def test_datasets_lists_gunpoint(cli):
    r = cli("datasets", "--json")
    assert r.code == 0
    names = {d["name"] for d in json.loads(r.out)["datasets"]}
    assert {"GunPoint", "BasicMotions", "airline"} <= names
