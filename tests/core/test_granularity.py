"""Core hooks for other granularities: a modality's own embed, and transductive pretraining."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from contrastkit.core.modality import Modality
from contrastkit.core.runs import embed_items


class _Mean(torch.nn.Module):
    out_dim = 1

    def forward(self, x):
        return x.mean(dim=1, keepdim=True)


def _collate(items):
    return torch.as_tensor(np.stack(items))


def test_modality_embed_replaces_chunked_batches():
    items = [np.full(3, float(i), dtype=np.float32) for i in range(5)]
    plain = Modality(name="m", collate=_collate, default_data="x")
    np.testing.assert_array_equal(embed_items(_Mean(), plain, items, torch.device("cpu"), 2)[:, 0], np.arange(5))

    calls = []

    def whole(encoder, its, device, batch_size):  # e.g. all nodes with their whole graph, in one pass
        calls.append((len(its), batch_size, encoder.training))
        return encoder(_collate(list(its)).to(device)) * 2

    enc = _Mean().train()
    custom = Modality(name="m", collate=_collate, default_data="x", embed=whole)
    h = embed_items(enc, custom, items, torch.device("cpu"), 2)
    assert h.dtype == np.float32 and h.shape == (5, 1)
    np.testing.assert_array_equal(h[:, 0], 2 * np.arange(5))
    assert calls == [(5, 2, False)]  # called once, in eval mode
    assert enc.training  # and the encoder's mode is restored


@pytest.mark.slow
@pytest.mark.parametrize("pretrain_on", ["train", "all"])
def test_pretrain_on_all_items(cli, tmp_path, tiny_data, tiny_recipe, pretrain_on):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(f'pretrain_on = "{pretrain_on}"\n' + tiny_recipe.read_text().replace("epochs = 2", "epochs = 1"))
    r = cli("pretrain", "timeseries", "--data", tiny_data, "--config", cfg, "--out", tmp_path / "run", "--no-progress")
    assert r.code == 0, r
    card = json.loads((tmp_path / "run" / "run.json").read_text())["data"]
    if pretrain_on == "all":
        assert card["n_train"] == card["n_items"] == 40
        assert "transductive" in card["split"]
    else:
        assert card["n_train"] < card["n_items"] == 40


def test_pretrain_on_is_checked(cli, tmp_path, tiny_data, tiny_recipe):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text('pretrain_on = "test"\n' + tiny_recipe.read_text())
    r = cli("pretrain", "timeseries", "--data", tiny_data, "--config", cfg, "--out", tmp_path / "run", "--no-progress")
    assert r.code == 1 and "pretrain_on: expected one of \"train\", \"all\", got 'test'" in r.err
    assert not (tmp_path / "run").exists()


def test_move_to_moves_objects_with_a_to_method():
    """A PyG Batch (not a tensor, not a collection) is moved too, without changing the caller's batch."""
    from torch_geometric.data import Batch, Data

    from contrastkit.core.runs import move_to

    graph = Batch.from_data_list([Data(x=torch.ones(2, 3), edge_index=torch.tensor([[0], [1]]))])
    meta = torch.device("meta")
    moved = move_to({"graph": graph, "x": torch.ones(2), "n": 3}, meta)
    assert moved["graph"].x.device == meta and moved["graph"].edge_index.device == meta
    assert moved["x"].device == meta and moved["n"] == 3
    assert graph.x.device == torch.device("cpu")  # the caller's batch is left as it was
    assert move_to(graph, meta).x.device == meta


def test_package_path_finds_data_without_importing():
    import sys

    from contrastkit.core.data import package_path

    sys.modules.pop("wave", None)
    assert package_path("json", "decoder.py").name == "decoder.py"  # a file inside a package
    assert package_path("json", "no_such_file") is None
    assert package_path("no_such_package_xyz") is None
    assert package_path("wave") is not None and "wave" not in sys.modules  # a module: its folder; not imported
