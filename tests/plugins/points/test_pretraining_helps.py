"""A pretrained PointNet beats a randomly initialised one of the same shape on held-out shapes.

Tiny budget (a few seconds): small clouds, a narrow PointNet, a few dozen steps on the synthetic
shapes.  Measured on the test split, which pretraining never saw: how often the nearest clean
cloud of an augmented copy is the same object, and of the same class (the retrieval evaluator).
"""

from __future__ import annotations

import pytest

from contrastkit.core.evaluation import EvalContext
from contrastkit.core.plugins import get_host
from contrastkit.core.runs import load_run
from contrastkit.core.sources import read_source
from contrastkit.plugins.points.evaluators import RetrievalEvaluator

RECIPE = """
epochs = 30
max_steps = 120
batch_size = 16
lr = 0.003
[data_options]
num_points = 128
train_per_class = 8
test_per_class = 6
[encoder]
name = "pointnet"
widths = [32, 64]
[head]
out_dim = 32
"""


@pytest.mark.slow
def test_pretrained_pointnet_beats_random_init_on_held_out_shapes(cli, tmp_path):
    cfg = tmp_path / "recipe.toml"
    cfg.write_text(RECIPE)
    run_dir = tmp_path / "run"
    r = cli("pretrain", "points", "--config", cfg, "--out", run_dir, "--no-progress")
    assert r.code == 0, r
    host = get_host()
    run = load_run(run_dir, host)
    samples = run.prepare(read_source(host.registry, "points", "synthetic_shapes",
                                      run.config["data_options"]).with_split())
    rand = run.random_init(host, seed=0)
    evaluator = RetrievalEvaluator(copies=2)
    seeds = [0, 1]
    ours = evaluator(EvalContext(samples=samples, embed=run.embed, seeds=seeds))["metrics"]
    base = evaluator(EvalContext(samples=samples, embed=rand.embed, seeds=seeds))["metrics"]
    assert ours["gallery_size"] == 60
    # measured: class 0.82 vs 0.70, instance 0.43 vs 0.33 (240 queries among 60 held-out shapes)
    assert ours["class_top1"] > base["class_top1"] + 0.03
    assert ours["instance_top1"] > base["instance_top1"] + 0.03
