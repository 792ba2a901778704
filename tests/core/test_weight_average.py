"""Stochastic weight averaging of the encoder (``weight_average = "swa"``, TS2Vec's AveragedModel)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from contrastkit.core.config import BASE_CONFIG, config_hash
from contrastkit.core.heads import ProjectionHead
from contrastkit.core.losses.infonce import InfoNCE
from contrastkit.core.runs import Pretrainer


def test_update_average_is_the_running_mean_of_every_step():
    torch.manual_seed(0)
    enc = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).double()
    model = Pretrainer(enc, ProjectionHead(4, out_dim=2), InfoNCE(), average=True)
    assert all(not p.requires_grad for p in model.average_encoder.parameters())
    seen = []
    for _ in range(3):
        with torch.no_grad():
            for p in enc.parameters():
                p.add_(torch.randn_like(p))
        enc.train()(torch.randn(5, 3, dtype=torch.float64))  # moves the batch-norm statistics
        seen.append({k: v.detach().clone() for k, v in enc.named_parameters()})
        model.update_average()
    assert int(model.n_averaged) == 3
    avg = dict(model.average_encoder.named_parameters())
    for name in seen[0]:
        expected = (seen[0][name] + seen[1][name] + seen[2][name]) / 3
        torch.testing.assert_close(avg[name], expected, rtol=0, atol=1e-12)
    for name, buf in model.average_encoder.named_buffers():  # buffers are the online encoder's, not averaged
        assert torch.equal(buf, dict(enc.named_buffers())[name]), name


def test_without_average_nothing_is_added():
    model = Pretrainer(nn.Linear(3, 4), ProjectionHead(4, out_dim=2), InfoNCE())
    assert not model.has_average and not hasattr(model, "average_encoder")
    model.update_average()  # a no-op
    assert "n_averaged" not in model.state_dict()


def test_the_default_leaves_the_config_hash_of_older_runs_unchanged():
    cfg = {**BASE_CONFIG, "plugin": "timeseries", "encoder": {"name": "dilated_conv"}}
    old = {k: v for k, v in cfg.items() if k != "weight_average"}  # a run saved before the key existed
    assert config_hash(cfg) == config_hash(old)
    assert config_hash({**cfg, "weight_average": "swa"}) != config_hash(old)


@pytest.mark.slow
def test_a_run_with_weight_average_exports_the_averaged_encoder(cli, tmp_path, tiny_data, tiny_recipe):
    from contrastkit.core.plugins import get_host
    from contrastkit.core.runs import load_run

    swa = tmp_path / "swa.toml"
    swa.write_text('weight_average = "swa"\n' + tiny_recipe.read_text())
    r = cli("pretrain", "timeseries", "--data", tiny_data, "--config", swa, "--out", tmp_path / "run", "--no-progress")
    assert r.code == 0, r
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["model"]
    assert int(state["n_averaged"]) > 1
    run = load_run(tmp_path / "run", get_host())
    loaded = run.encoder.state_dict()
    for k, v in loaded.items():
        torch.testing.assert_close(v.cpu(), state[f"average_encoder.{k}"], rtol=0, atol=0)
    assert any(not torch.equal(state[f"average_encoder.{k}"], state[f"encoder.{k}"])
               for k in loaded if loaded[k].is_floating_point())
