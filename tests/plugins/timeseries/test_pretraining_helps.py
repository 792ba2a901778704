"""A pretrained encoder beats a randomly initialised one of the same shape.

Measured on items the encoder never saw (the test split): given two fresh
augmented views of each held-out series, how often is the nearest view-2
embedding of a view-1 embedding the same series (instance discrimination,
the task contrastive pretraining optimises) — and how well does a linear
probe separate the classes.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from contrastkit.core.components import build_views
from contrastkit.core.data import TEST
from contrastkit.core.plugins import get_host
from contrastkit.core.runs import load_run
from contrastkit.core.sources import read_source
from contrastkit.core.views import make_generator


def _retrieval(run, items, views) -> float:
    batch = run.modality.collate(items)
    v1, v2 = views(batch, make_generator(123))
    with torch.no_grad():
        h1 = F.normalize(run.encoder(v1), dim=1)
        h2 = F.normalize(run.encoder(v2), dim=1)
    return float(((h1 @ h2.T).argmax(1) == torch.arange(len(items))).float().mean())


@pytest.mark.slow
def test_pretrained_encoder_beats_random_on_held_out_items(cli, tmp_path):
    from tests.conftest import make_long_series

    data = make_long_series(tmp_path / "series.parquet", n=160, length=48, seed=3)
    cfg = tmp_path / "recipe.toml"
    cfg.write_text('epochs = 12\nbatch_size = 16\nlr = 0.003\n'
                   '[encoder]\nname = "dilated_conv"\nhidden = 16\nout_dim = 32\ndepth = 3\n[head]\nout_dim = 16\n')
    run_dir = tmp_path / "run"
    r = cli("pretrain", "timeseries", "--data", data, "--config", cfg, "--out", run_dir, "--no-progress")
    assert r.code == 0, r
    host = get_host()
    run = load_run(run_dir, host)
    samples = run.prepare(read_source(host.registry, "timeseries", str(data), {}).with_split())
    held_out = samples.part(TEST)
    assert len(held_out) >= 20
    views = build_views(host.registry, "timeseries", run.config)
    random = run.random_init(host, seed=run.config["seed"])
    pre, rnd = _retrieval(run, list(held_out.items), views), _retrieval(random, list(held_out.items), views)
    print(f"held-out view retrieval: pretrained {pre:.3f}, random init {rnd:.3f}")
    assert pre > rnd + 0.1, (pre, rnd)
