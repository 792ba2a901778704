"""The volumes plugin end to end: conformance kit, CLI pretrain/embed/evaluate/views, bad input."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import torch

from contrastkit.core.testkit import conformance_tests
from contrastkit.plugins.volumes.evaluators import intensity_features
from contrastkit.plugins.volumes.modality import orthogonal_slices

test_conformance = conformance_tests("volumes")


def test_intensity_features_describe_a_patch():
    x = torch.zeros(2, 1, 8, 8, 8)
    x[1] = 1.0
    f = intensity_features(x, grid=2, bins=4)
    assert f.shape == (2, 8 + 4 + 2)
    assert torch.allclose(f[1, :8], torch.ones(8)) and torch.allclose(f[:, 8:12].sum(1), torch.ones(2))
    assert float(f[1, -2]) == 1.0 and float(f[1, -1]) == 0.0


def test_orthogonal_slices_shows_three_planes():
    v = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    img = orthogonal_slices(v)
    assert img.shape == (5, 6 + 1 + 6 + 1 + 5)
    assert np.array_equal(img[:5, :6], v[2])


@pytest.mark.slow
def test_cli_pretrain_embed_evaluate_views(cli, tmp_path, labelled_volume, tiny_volumes_recipe):
    image, labels = labelled_volume
    cfg = tiny_volumes_recipe.read_text().replace("[data_options]", f"[data_options]\nlabels = \"{labels}\"")
    tiny_volumes_recipe.write_text(cfg)
    run = tmp_path / "run"
    r = cli("pretrain", "volumes", "--data", image, "--config", tiny_volumes_recipe, "--out", run, "--no-progress")
    assert r.code == 0, r
    out = tmp_path / "emb.parquet"
    r = cli("embed", run, "--out", out)
    assert r.code == 0, r
    frame = pl.read_parquet(out)
    assert {"id", "volume", "x", "y", "z", "embedding", "label", "split"} <= set(frame.columns)
    first = frame.row(0, named=True)
    assert first["id"] == f"{first['volume']}/{first['x']}/{first['y']}/{first['z']}"
    meta = pl.read_parquet_metadata(out)
    assert json.loads(meta["contrastkit.id_columns"]) == ["volume", "x", "y", "z"]
    assert meta["contrastkit.granularity"] == "patch"
    r = cli("evaluate", run, "--baseline", "--json")
    assert r.code == 0, r
    metrics = json.loads(r.out)["metrics"]
    # the baseline's row runs the comparison's evaluators (here: linear) on its features
    for key in ("linear.accuracy", "random_init.linear.accuracy", "raw_intensity.linear.accuracy"):
        assert 0.0 <= metrics[key] <= 1.0, key
    # the raw-intensity baseline does not use the encoder: not repeated for the random-init one
    assert not any(k.startswith("random_init.raw_intensity") for k in metrics)
    png = tmp_path / "views.png"
    r = cli("views", "volumes", "--data", image, "--config", tiny_volumes_recipe, "--out", png, "-n", "2")
    assert r.code == 0 and png.stat().st_size > 1000, r


def test_cli_bad_volume_leaves_nothing(cli, tmp_path, tiny_volumes_recipe):
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 40)
    run = tmp_path / "run"
    r = cli("pretrain", "volumes", "--data", bad, "--config", tiny_volumes_recipe, "--out", run, "--no-progress")
    assert r.code != 0 and "broken.nii.gz" in r.err and "Traceback" not in r.err
    assert not run.exists() or not any(run.iterdir())


def test_cli_4d_volume_names_the_option(cli, tmp_path, tiny_volumes_recipe):
    from tests.plugins.volumes.volume_data import save_nifti, tissue_volume

    img, _, _ = tissue_volume(shape=(16, 16, 16))
    path = save_nifti(tmp_path / "four.nii.gz", np.stack([img, img], -1))
    r = cli("pretrain", "volumes", "--data", path, "--config", tiny_volumes_recipe, "--out", tmp_path / "run",
            "--no-progress")
    assert r.code != 0 and "volume_index" in r.err and len(r.err.strip().splitlines()) == 1


def _retrieval(run, items, views) -> float:
    import torch.nn.functional as F

    from contrastkit.core.views import make_generator

    batch = run.modality.collate(items)
    v1, v2 = views(batch, make_generator(123))
    with torch.no_grad():
        h1 = F.normalize(run.encoder(v1), dim=1)
        h2 = F.normalize(run.encoder(v2), dim=1)
    return float(((h1 @ h2.T).argmax(1) == torch.arange(len(items))).float().mean())


@pytest.mark.slow
def test_pretrained_encoder_beats_random_on_held_out_patches(cli, tmp_path, tiny_volumes_recipe):
    """Instance discrimination of fresh views of test patches (never trained on): pretrained vs random init."""
    from contrastkit.core.components import build_views
    from contrastkit.core.data import TEST
    from contrastkit.core.plugins import get_host
    from contrastkit.core.runs import load_run
    from contrastkit.core.sources import read_source

    from tests.plugins.volumes.volume_data import save_nifti, tissue_volume

    img, lab, aff = tissue_volume(shape=(48, 48, 48), seed=5)
    image, labels = save_nifti(tmp_path / "big.nii.gz", img, aff), save_nifti(tmp_path / "big_lab.nii.gz", lab, aff)
    tiny_volumes_recipe.write_text(tiny_volumes_recipe.read_text().replace("epochs = 2", "epochs = 6")
                                   .replace("patches_per_volume = 200", "patches_per_volume = 1500\nsplit_block = 16")
                                   .replace("[data_options]", f"[data_options]\nlabels = \"{labels}\""))
    run_dir = tmp_path / "run"
    r = cli("pretrain", "volumes", "--data", image, "--config", tiny_volumes_recipe, "--out", run_dir, "--no-progress")
    assert r.code == 0, r
    host = get_host()
    run = load_run(run_dir, host)
    samples = run.prepare(read_source(host.registry, "volumes", str(image), run.config["data_options"]).with_split())
    held_out = samples.part(TEST)
    assert len(held_out) >= 20
    items = list(held_out.items)
    views = build_views(host.registry, "volumes", run.config)
    random = run.random_init(host, seed=run.config["seed"])
    pre, rnd = _retrieval(run, items, views), _retrieval(random, items, views)
    print(f"held-out view retrieval over {len(items)} patches: pretrained {pre:.3f}, random init {rnd:.3f}")
    assert pre > 2 * rnd and pre > rnd + 0.04, (pre, rnd)
