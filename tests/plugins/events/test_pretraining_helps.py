"""A CoLES-pretrained GRU separates the synthetic classes better than a random-init one."""

from __future__ import annotations

import json

import pytest

RECIPE = """
epochs = 12
batch_size = 32
views = 4
lr = 0.003
[encoder]
name = "gru"
hidden = 32
[joint_view]
name = "random_slices"
min_length = 10
max_length = 40
[data_options]
n_clients = 300
seed = 5
synthetic_max_events = 120
[evaluate]
seeds = [0]
"""


@pytest.mark.slow
def test_pretrained_beats_random_init(cli, tmp_path):
    cfg = tmp_path / "coles.toml"
    cfg.write_text(RECIPE)
    run = tmp_path / "run"
    r = cli("pretrain", "events", "--data", "synthetic_transactions", "--config", cfg, "--out", run, "--no-progress")
    assert r.code == 0, r
    r = cli("evaluate", run, "--json", "--baseline")
    assert r.code == 0, r
    m = json.loads(r.out)["metrics"]
    assert m["entity.logistic.auroc"] > m["random_init.entity.logistic.auroc"] + 0.05, m
    assert m["entity.logistic.accuracy"] > m["entity.majority.accuracy"]
