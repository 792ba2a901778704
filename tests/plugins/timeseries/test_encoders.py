"""Tests of the time-series encoders (shapes, NaN padding and missing steps, gradients, arguments)."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from contrastkit.core.errors import ConfigError
from contrastkit.plugins.timeseries.encoders import (
    ENCODERS,
    DilatedConvEncoder,
    TransformerEncoder,
    _same_conv,
    masked_pool,
    sinusoidal_encoding,
)

@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These models are tiny: one intra-op thread is fastest, and avoids thread contention on a busy 2-core box."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# Small but structurally complete configurations keep the file fast.
SMALL = {
    "dilated_max": (DilatedConvEncoder, {"hidden": 16, "out_dim": 24, "depth": 4, "pooling": "max"}),
    "dilated_mean": (DilatedConvEncoder, {"hidden": 16, "out_dim": 24, "depth": 4, "pooling": "mean"}),
    "transformer_mean": (TransformerEncoder, {"d_model": 16, "nhead": 2, "depth": 2, "dim_feedforward": 32, "out_dim": 24}),
    "transformer_max": (
        TransformerEncoder,
        {"d_model": 16, "nhead": 2, "depth": 2, "dim_feedforward": 32, "out_dim": 24, "pooling": "max"},
    ),
    "transformer_cls": (
        TransformerEncoder,
        {"d_model": 16, "nhead": 2, "depth": 2, "dim_feedforward": 32, "out_dim": 24, "pooling": "cls"},
    ),
}


def make(name: str, in_channels: int, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    cls, kwargs = SMALL[name]
    return cls(in_channels=in_channels, **kwargs)


def pad_end(x: torch.Tensor, length: int) -> torch.Tensor:
    """Pad a C × T series at the end with NaN to ``length`` steps."""
    pad = torch.full((x.shape[0], length - x.shape[1]), float("nan"))
    return torch.cat((x, pad), dim=1)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("channels", [1, 3])
def test_default_output_shapes(channels):
    x = torch.randn(4, channels, 37, generator=gen(1))
    conv = DilatedConvEncoder(in_channels=channels)
    assert conv.out_dim == 320
    assert conv(x).shape == (4, 320)
    steps, valid = conv.forward_timesteps(x)
    assert steps.shape == (4, 37, 320) and valid.shape == (4, 37) and valid.dtype == torch.bool
    trans = TransformerEncoder(in_channels=channels)
    assert trans.out_dim == 128
    assert trans(x).shape == (4, 128)


@pytest.mark.parametrize("name", list(SMALL))
@pytest.mark.parametrize("channels", [1, 3])
def test_small_output_shapes_and_batch_of_one(name, channels):
    enc = make(name, channels).eval()
    assert enc(torch.randn(5, channels, 20, generator=gen(2))).shape == (5, enc.out_dim)
    one = enc(torch.randn(1, channels, 9, generator=gen(3)))
    assert one.shape == (1, 24) and torch.isfinite(one).all()
    enc.train()
    assert enc(torch.randn(1, channels, 9, generator=gen(3))).shape == (1, 24)


def test_registry_dict():
    assert ENCODERS == {"dilated_conv": DilatedConvEncoder, "transformer": TransformerEncoder}


# --------------------------------------------------------------------------- padding and missing steps


@pytest.mark.parametrize("name", list(SMALL))
def test_nan_padding_gives_same_embedding_as_unpadded(name):
    enc = make(name, 2).eval()
    short = torch.randn(2, 30, generator=gen(4))
    long = torch.randn(2, 50, generator=gen(5))
    batch = torch.stack((pad_end(short, 50), long))
    with torch.no_grad():
        out = enc(batch)
        alone_short = enc(short.unsqueeze(0))[0]
        alone_long = enc(long.unsqueeze(0))[0]
        # The same series padded with zeros instead of NaN is a different series.
        zero_padded = enc(torch.nan_to_num(batch[:1], nan=0.0))[0]
    torch.testing.assert_close(out[0], alone_short, atol=1e-5, rtol=0)
    torch.testing.assert_close(out[1], alone_long, atol=1e-5, rtol=0)
    assert (zero_padded - alone_short).abs().max() > 1e-4


def test_dilated_timesteps_padding_equivalence_and_zero_at_padding():
    enc = make("dilated_max", 2).eval()
    short = torch.randn(2, 30, generator=gen(6))
    with torch.no_grad():
        steps, valid = enc.forward_timesteps(pad_end(short, 45).unsqueeze(0))
        alone, valid_alone = enc.forward_timesteps(short.unsqueeze(0))
    assert valid[0, :30].all() and not valid[0, 30:].any() and valid_alone.all()
    torch.testing.assert_close(steps[:, :30], alone, atol=1e-5, rtol=0)
    assert (steps[:, 30:] == 0).all()


@pytest.mark.parametrize("name", list(SMALL))
def test_step_with_one_nan_channel_is_missing(name):
    """A NaN in any channel makes the whole step missing: its other channels cannot matter."""
    enc = make(name, 3).eval()
    x = torch.randn(1, 3, 25, generator=gen(7))
    x[0, 0, 10] = float("nan")
    y = x.clone()
    y[0, 1:, 10] = torch.tensor([100.0, -50.0])
    with torch.no_grad():
        a, b = enc(x), enc(y)
    assert torch.isfinite(a).all()
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", list(SMALL))
def test_all_nan_series_gives_finite_zero_output(name):
    enc = make(name, 2).eval()
    ok = torch.randn(2, 16, generator=gen(8))
    batch = torch.stack((torch.full((2, 16), float("nan")), ok))
    with torch.no_grad():
        out = enc(batch)
        alone = enc(ok.unsqueeze(0))[0]
    assert torch.isfinite(out).all()
    assert (out[0] == 0).all()
    torch.testing.assert_close(out[1], alone, atol=1e-5, rtol=0)


def test_masked_pool_values():
    h = torch.tensor([[[1.0, -2.0], [5.0, 0.0], [100.0, 100.0]], [[3.0, 3.0], [0.0, 0.0], [0.0, 0.0]]])
    valid = torch.tensor([[True, True, False], [False, False, False]])
    torch.testing.assert_close(masked_pool(h, valid, "max"), torch.tensor([[5.0, 0.0], [0.0, 0.0]]))
    torch.testing.assert_close(masked_pool(h, valid, "mean"), torch.tensor([[3.0, -1.0], [0.0, 0.0]]))


def test_sinusoidal_encoding_values_and_odd_dim():
    pe = sinusoidal_encoding(4, 5, torch.device("cpu"), torch.float32)
    assert pe.shape == (4, 5)
    torch.testing.assert_close(pe[0], torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0]))
    torch.testing.assert_close(pe[2, :2], torch.tensor([math.sin(2.0), math.cos(2.0)]))


# --------------------------------------------------------------------------- training behaviour


@pytest.mark.parametrize("name", list(SMALL))
def test_gradients_reach_every_parameter_with_nan_padding(name):
    enc = make(name, 2).train()
    batch = torch.stack(
        (
            pad_end(torch.randn(2, 12, generator=gen(9)), 20),
            torch.randn(2, 20, generator=gen(10)),
            torch.full((2, 20), float("nan")),
        )
    )
    batch[1, 1, 5] = float("nan")  # a missing step inside a series
    out = enc(batch)
    assert torch.isfinite(out).all()
    (out**2).sum().backward()
    for pname, p in enc.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", list(SMALL))
def test_eval_is_deterministic_and_train_uses_dropout(name):
    enc = make(name, 2)
    x = torch.randn(3, 2, 18, generator=gen(11))
    enc.eval()
    with torch.no_grad():
        torch.testing.assert_close(enc(x), enc(x), atol=0, rtol=0)
    enc.train()
    torch.manual_seed(0)
    a = enc(x)
    b = enc(x)
    assert not torch.equal(a, b)


# --------------------------------------------------------------------------- receptive field


def test_dilated_receptive_field_covers_sequence():
    torch.manual_seed(0)
    enc = DilatedConvEncoder(in_channels=1, hidden=8, out_dim=8, depth=10).eval()
    assert enc.receptive_field >= 150
    x = torch.randn(1, 1, 150, generator=gen(12))
    y = x.clone()
    y[0, 0, 0] += 3.0
    with torch.no_grad():
        a, _ = enc.forward_timesteps(x)
        b, _ = enc.forward_timesteps(y)
    assert (a[0, -1] - b[0, -1]).abs().max() > 1e-6


def test_shallow_dilated_encoder_is_local():
    torch.manual_seed(0)
    enc = DilatedConvEncoder(in_channels=1, hidden=8, out_dim=8, depth=1).eval()
    assert enc.receptive_field == 1 + 2 * 2 * (1 + 2)
    x = torch.randn(1, 1, 40, generator=gen(13))
    y = x.clone()
    y[0, 0, 0] += 3.0
    with torch.no_grad():
        a, _ = enc.forward_timesteps(x)
        b, _ = enc.forward_timesteps(y)
    reach = enc.receptive_field // 2
    torch.testing.assert_close(a[0, reach + 1 :], b[0, reach + 1 :], atol=0, rtol=0)
    assert (a[0, reach] - b[0, reach]).abs().max() > 0


# --------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    "cls, kwargs",
    [
        (DilatedConvEncoder, {"in_channels": 0}),
        (DilatedConvEncoder, {"in_channels": 1.5}),
        (DilatedConvEncoder, {"in_channels": True}),
        (DilatedConvEncoder, {"in_channels": 1, "hidden": 0}),
        (DilatedConvEncoder, {"in_channels": 1, "out_dim": -3}),
        (DilatedConvEncoder, {"in_channels": 1, "depth": -1}),
        (DilatedConvEncoder, {"in_channels": 1, "kernel_size": 0}),
        (DilatedConvEncoder, {"in_channels": 1, "dropout": 1.0}),
        (DilatedConvEncoder, {"in_channels": 1, "dropout": -0.1}),
        (DilatedConvEncoder, {"in_channels": 1, "pooling": "cls"}),
        (DilatedConvEncoder, {"in_channels": 1, "mask_ratio": 1.0}),
        (TransformerEncoder, {"in_channels": 1, "d_model": 30, "nhead": 4}),
        (TransformerEncoder, {"in_channels": 1, "nhead": 0}),
        (TransformerEncoder, {"in_channels": 1, "depth": 0}),
        (TransformerEncoder, {"in_channels": 1, "dim_feedforward": 0}),
        (TransformerEncoder, {"in_channels": 1, "dropout": "0.1"}),
        (TransformerEncoder, {"in_channels": 1, "out_dim": 0}),
        (TransformerEncoder, {"in_channels": 1, "pooling": "sum"}),
    ],
)
def test_bad_arguments_raise_config_error(cls, kwargs):
    with pytest.raises(ConfigError) as info:
        cls(**kwargs)
    message = str(info.value)
    assert message.startswith(cls.__name__) and message.endswith(".") and "\n" not in message


@pytest.mark.parametrize("cls", [DilatedConvEncoder, TransformerEncoder])
def test_wrong_input_shape_raises_config_error(cls):
    enc = cls(in_channels=2)
    with pytest.raises(ConfigError, match="in_channels=2"):
        enc(torch.randn(4, 3, 10))
    with pytest.raises(ConfigError):
        enc(torch.randn(2, 10))


@pytest.mark.parametrize("kernel_size, dilation, length", [(3, 1, 7), (3, 8, 5), (3, 64, 20), (2, 4, 1), (4, 3, 9), (5, 16, 40)])
def test_same_conv_matches_torch_same_padding(kernel_size, dilation, length):
    """Skipping taps that only read padding changes nothing."""
    torch.manual_seed(0)
    conv = torch.nn.Conv1d(3, 4, kernel_size, dilation=dilation)
    x = torch.randn(2, 3, length, generator=gen(14))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about even kernels with 'same'
        ref = torch.nn.functional.conv1d(x, conv.weight, conv.bias, dilation=dilation, padding="same")
    torch.testing.assert_close(_same_conv(conv, x), ref, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", ["dilated_max", "transformer_mean", "transformer_cls"])
def test_runs_on_another_device(name):
    """On the 'meta' device any tensor made on the CPU by the encoder would raise: masks follow x.device."""
    enc = make(name, 2).to("meta")
    x = torch.empty(3, 2, 20, device="meta")
    for train in (False, True):
        enc.train(train)
        out = enc(x)
        assert out.device.type == "meta" and out.shape == (3, 24)


def test_latent_mask_zeroes_projected_steps_in_training_only():
    """TS2Vec's latent timestamp masking: with mask_ratio 1 - ε nearly every step's projected input is 0,
    so the per-step output no longer depends on the input; eval mode and no-grad embedding are unmasked."""
    torch.manual_seed(0)
    enc = DilatedConvEncoder(in_channels=2, hidden=8, out_dim=6, depth=2, dropout=0.0, mask_ratio=0.999999)
    x, y = torch.randn(3, 2, 20), torch.randn(3, 2, 20)
    enc.train()
    hx, valid = enc.forward_timesteps(x)
    hy, _ = enc.forward_timesteps(y)
    assert valid.all()  # masked steps stay valid: pooled and contrasted
    torch.testing.assert_close(hx, hy)  # every step masked: the input does not matter
    plain = DilatedConvEncoder(in_channels=2, hidden=8, out_dim=6, depth=2, dropout=0.0)
    plain.load_state_dict(enc.state_dict())
    enc.eval()
    torch.testing.assert_close(enc(x), plain.eval()(x), rtol=0, atol=0)
    enc.train()
    with torch.no_grad():
        torch.testing.assert_close(enc(x), plain.train()(x), rtol=0, atol=0)
    half = DilatedConvEncoder(in_channels=2, hidden=8, out_dim=6, depth=0, dropout=0.0, mask_ratio=0.5).train()
    seen = []
    half.blocks[0].register_forward_pre_hook(lambda module, args: seen.append(args[0].detach()))
    for _ in range(20):
        half.forward_timesteps(torch.randn(4, 2, 50))
    zero = torch.cat([(h.abs().sum(1) == 0).float().flatten() for h in seen])  # steps whose projection is 0
    assert abs(float(zero.mean()) - 0.5) < 0.05
