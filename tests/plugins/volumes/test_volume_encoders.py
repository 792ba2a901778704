"""The 3-D encoders: shapes, batch independence in eval mode, argument checks."""

from __future__ import annotations

import pytest
import torch

from contrastkit.core.errors import ConfigError, DataError
from contrastkit.plugins.volumes.encoders import ResNet3d, ViT3d


@pytest.mark.parametrize("make", [
    lambda: ResNet3d(width=8),
    lambda: ResNet3d(width=8, blocks=[1, 1, 1], pool="mean", stem_stride=1),
    lambda: ViT3d(patch=4, dim=32, depth=1, heads=2, input_shape=(12, 12, 12)),
], ids=["resnet-centre", "resnet-mean", "vit"])
def test_shape_and_batch_independence(make):
    torch.manual_seed(0)
    enc = make().eval()
    x = torch.randn(5, 1, 12, 12, 12)
    with torch.no_grad():
        h = enc(x)
        one = enc(x[2:3])
    assert h.shape == (5, enc.out_dim) and torch.isfinite(h).all()
    assert torch.allclose(h[2:3], one, atol=1e-5)


def test_resnet_out_dim_follows_pooling():
    assert ResNet3d(width=8, blocks=[1, 1]).out_dim == 32  # 16 channels, mean + centre
    assert ResNet3d(width=8, blocks=[1, 1], pool="mean").out_dim == 16


def test_centre_pooling_is_mean_then_central_cells():
    torch.manual_seed(0)
    enc = ResNet3d(width=8, blocks=[1, 1]).eval()
    x = torch.randn(2, 1, 16, 16, 16)
    with torch.no_grad():
        fmap, h = enc.feature_map(x), enc(x)
    assert fmap.shape[2:] == (4, 4, 4)
    assert torch.allclose(h[:, :enc.channels], fmap.mean(dim=(2, 3, 4)), atol=1e-6)
    assert torch.allclose(h[:, enc.channels:], fmap[:, :, 1:3, 1:3, 1:3].mean(dim=(2, 3, 4)), atol=1e-6)


def test_vit_interpolates_positions_for_other_sizes():
    enc = ViT3d(patch=4, dim=16, depth=1, heads=2, input_shape=(16, 16, 16)).eval()
    with torch.no_grad():
        assert enc(torch.randn(2, 1, 24, 20, 16)).shape == (2, 16)
    with pytest.raises(DataError):
        enc(torch.randn(2, 1, 2, 2, 2))


def test_gradients_reach_every_parameter():
    for enc in (ResNet3d(width=4), ViT3d(patch=4, dim=8, depth=1, heads=2, input_shape=(8, 8, 8))):
        enc(torch.randn(3, 1, 8, 8, 8)).sum().backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in enc.parameters())


@pytest.mark.parametrize("cls,kwargs", [
    (ResNet3d, {"width": 0}), (ResNet3d, {"blocks": []}), (ResNet3d, {"pool": "cls"}),
    (ViT3d, {"dim": 30, "heads": 4}), (ViT3d, {"patch": 8, "input_shape": (4, 4, 4)}),
])
def test_bad_arguments(cls, kwargs):
    with pytest.raises(ConfigError):
        cls(**kwargs)


def test_wrong_channels_or_rank_is_a_data_error():
    enc = ResNet3d(width=4)
    with pytest.raises(DataError):
        enc(torch.randn(2, 2, 8, 8, 8))
    with pytest.raises(DataError):
        enc(torch.randn(2, 8, 8, 8))
