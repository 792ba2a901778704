"""Time-series encoders: a TS2Vec dilated CNN and a Transformer.

Both take a batch ``x`` of shape ``B × C × T`` (float32) in which a time step
with a NaN in any channel is *missing*; series shorter than ``T`` are padded at
the end with NaN.  Missing steps are zeroed at the input and excluded from
pooling, so a series padded with NaN gets the same embedding as the same series
alone.  A series with no valid step gets a zero embedding.  Both return
``B × out_dim`` and expose ``out_dim``.

Masks are built on ``x.device``; nothing here names a device.
"""

from __future__ import annotations

import math
from numbers import Real

import torch
import torch.nn.functional as F
from torch import nn

from contrastkit.core import ConfigError, Encoder, check_int

__all__ = [
    "DilatedConvEncoder",
    "TransformerEncoder",
    "ENCODERS",
    "step_masks",
    "masked_pool",
    "sinusoidal_encoding",
]


# --------------------------------------------------------------------------- checks


def _check_dropout(owner: str, value: object, name: str = "dropout") -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not 0.0 <= float(value) < 1.0:
        raise ConfigError(f"{owner}: {name} must be a number in [0, 1), got {value!r}.")
    return float(value)


def _check_choice(owner: str, name: str, value: object, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"{owner}: {name} must be one of {', '.join(choices)}, got {value!r}.")
    return str(value)


def _check_input(owner: str, x: torch.Tensor, in_channels: int) -> None:
    if x.dim() != 3 or x.shape[1] != in_channels:
        raise ConfigError(
            f"{owner}: expected a batch of shape B × {in_channels} × T (in_channels={in_channels}), "
            f"got shape {tuple(x.shape)}."
        )


# --------------------------------------------------------------------------- masks and pooling


def step_masks(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Masks of a ``B × C × T`` batch, both ``B × T`` bool on ``x.device``.

    Returns ``(valid, in_series)``: ``valid`` is True where no channel is NaN;
    ``in_series`` is True up to and including the last valid step of each
    series (the rest is end padding).  An all-NaN series has both all False.
    """
    valid = ~torch.isnan(x).any(dim=1)
    if x.shape[-1] == 0:
        return valid, valid
    t = torch.arange(x.shape[-1], device=x.device)
    last = torch.where(valid, t, torch.full_like(t, -1)).amax(dim=1, keepdim=True)  # B × 1, -1 if none
    return valid, t.unsqueeze(0) <= last


def masked_pool(h: torch.Tensor, valid: torch.Tensor, mode: str) -> torch.Tensor:
    """Pool ``h`` (``B × T × D``) over the steps where ``valid`` (``B × T``) is True.

    ``mode`` is ``'max'`` or ``'mean'``.  A row with no valid step pools to zeros.
    """
    has_valid = valid.any(dim=1, keepdim=True)  # B × 1
    m = valid.unsqueeze(-1)
    if mode == "max":
        pooled = h.masked_fill(~m, float("-inf")).amax(dim=1)
    elif mode == "mean":
        count = valid.sum(dim=1, keepdim=True).clamp_min(1).to(h.dtype)
        pooled = (h * m.to(h.dtype)).sum(dim=1) / count
    else:  # pragma: no cover - constructors check the mode
        raise ConfigError(f"unknown pooling '{mode}'; expected max or mean.")
    return torch.where(has_valid, pooled, torch.zeros_like(pooled))


# --------------------------------------------------------------------------- dilated CNN (TS2Vec)

#: Rows × time steps of one no-gradient forward pass of the dilated CNN (larger batches run in
#: chunks): 32,768 is 16 series of 2,048 steps, about 0.4 GB with the default widths on CPU.  Rows are
#: independent, so chunks give the same embeddings (bit for bit on CPU, checked on 200 × 275 steps).
INFERENCE_STEPS = 32_768


def _same_conv(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """``conv`` (stride 1) with "same" zero padding, skipping taps that only ever see padding.

    With dilation ``d`` and kernel ``k``, tap ``j`` reads ``x[t + j·d − left]``
    (``left = d(k−1)//2``, as PyTorch's ``padding='same'``).  A tap whose
    offset is at least the sequence length in size reads zeros at every ``t``;
    dropping it gives the same result for less work, which matters for the deep
    blocks of a TS2Vec stack on sequences shorter than their dilation.
    """
    k, d, T = conv.kernel_size[0], conv.dilation[0], x.shape[-1]
    left = d * (k - 1) // 2
    taps = [j for j in range(k) if abs(j * d - left) < T]
    if not taps:  # every tap reads padding (T == 0, or an even kernel on a very short input)
        out = x.new_zeros(x.shape[0], conv.out_channels, T)
        return out if conv.bias is None else out + conv.bias[:, None]
    j0, j1 = taps[0], taps[-1]  # the taps kept are contiguous around the centre
    padded = F.pad(x, (left - j0 * d, j1 * d - left))
    return F.conv1d(padded, conv.weight[:, :, j0 : j1 + 1], conv.bias, dilation=d)


class _DilatedBlock(nn.Module):
    """Residual block: GELU → dilated conv → GELU → dilated conv, plus the residual.

    The inputs of both convolutions are multiplied by ``mask`` (``B × 1 × T``)
    so that steps past the end of a series act as the convolution's own zero
    padding.  The residual goes through a 1×1 convolution when the channel
    count changes.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(in_ch, out_ch, kernel_size, dilation=dilation)
        self.conv2 = nn.Conv1d(out_ch, out_ch, kernel_size, dilation=dilation)
        self.projector = nn.Conv1d(in_ch, out_ch, 1) if in_ch != out_ch else None

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        residual = x if self.projector is None else self.projector(x)
        h = _same_conv(self.conv1, F.gelu(x) * mask)
        h = _same_conv(self.conv2, F.gelu(h) * mask)
        return h + residual


class DilatedConvEncoder(Encoder):
    """TS2Vec's dilated convolutional encoder (Yue et al., "TS2Vec: Towards
    Universal Representation of Time Series", AAAI 2022).

    Per time step, a linear input projection ``in_channels → hidden``; then
    ``depth`` residual blocks of width ``hidden`` and one final block to
    ``out_dim`` (as in TS2Vec, ``depth + 1`` blocks in all), block ``i`` with
    two Conv1d of kernel ``kernel_size``, dilation ``2**i``, GELU and "same"
    padding.  With the defaults (kernel 3, depth 10) the receptive field is
    ``1 + 2(k-1)(2^{depth+1}-1)`` = 8189 steps.  Dropout (``dropout``, TS2Vec's
    repr dropout of 0.1) acts on the per-timestep representation in training
    only; that representation is then max- (or mean-) pooled over the valid steps.

    Missing steps (NaN in any channel) are zeroed at the input and after the
    input projection, and excluded from pooling; steps after the last valid
    step of a series (end padding) are held at zero before every convolution,
    so they behave exactly like the end of the sequence.  Missing steps inside
    a series do carry context from their neighbours after the first layer, as
    in TS2Vec; a series whose final steps are missing is thus the same as a
    shorter one.

    Shapes: ``x`` is ``B × in_channels × T``; :meth:`forward` returns
    ``B × out_dim``; :meth:`forward_timesteps` returns the per-step
    representation ``B × T × out_dim`` (zero at missing steps) and the
    ``B × T`` valid mask, for timestamp-level losses.

    Example::

        enc = DilatedConvEncoder(in_channels=3)
        h = enc(torch.randn(8, 3, 100))        # 8 × 320

    Args:
        in_channels: channels C of the input.
        hidden: width of the hidden blocks.
        out_dim: size of the representation.
        depth: number of hidden residual blocks (the output block comes on top).
        kernel_size: convolution kernel size.
        dropout: dropout probability on the per-timestep representation.
        pooling: ``'max'`` (TS2Vec) or ``'mean'`` over the valid steps.
        mask_ratio: TS2Vec's timestamp masking in latent space: in training only, each step's
            projected input (after the input projection, before the first block) is set to 0 with
            this probability, independently per series and step; the step stays in pooling and in
            the loss, so the encoder must infer it from its context.  0 (the default) turns it off;
            TS2Vec uses 0.5.  Not applied without gradients or in eval mode.
    """

    POOLINGS = ("max", "mean")

    def __init__(
        self,
        in_channels: int,
        hidden: int = 64,
        out_dim: int = 320,
        depth: int = 10,
        kernel_size: int = 3,
        dropout: float = 0.1,
        pooling: str = "max",
        mask_ratio: float = 0.0,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        self.in_channels = check_int(owner, "in_channels", in_channels, 1)
        self.mask_ratio = _check_dropout(owner, mask_ratio, "mask_ratio")
        self.hidden = check_int(owner, "hidden", hidden, 1)
        self.out_dim = check_int(owner, "out_dim", out_dim, 1)
        self.depth = check_int(owner, "depth", depth, 0)
        self.kernel_size = check_int(owner, "kernel_size", kernel_size, 1)
        self.dropout = _check_dropout(owner, dropout)
        self.pooling = _check_choice(owner, "pooling", pooling, self.POOLINGS)

        self.input_fc = nn.Linear(self.in_channels, self.hidden)
        widths = [self.hidden] * self.depth + [self.out_dim]
        blocks = []
        prev = self.hidden
        for i, width in enumerate(widths):
            blocks.append(_DilatedBlock(prev, width, self.kernel_size, dilation=2**i))
            prev = width
        self.blocks = nn.ModuleList(blocks)
        self.repr_dropout = nn.Dropout(self.dropout)

    @property
    def receptive_field(self) -> int:
        """Number of input steps that one output step can see."""
        return 1 + 2 * (self.kernel_size - 1) * (2 ** len(self.blocks) - 1)

    def forward_timesteps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-step representation ``B × T × out_dim`` and the ``B × T`` valid mask."""
        _check_input(type(self).__name__, x, self.in_channels)
        valid, in_series = step_masks(x)
        x = x.masked_fill(~valid.unsqueeze(1), 0.0)  # zero missing steps (all channels)
        h = self.input_fc(x.transpose(1, 2))  # B × T × hidden
        keep = valid
        if self.mask_ratio > 0 and self.training and torch.is_grad_enabled():
            keep = valid & (torch.rand(valid.shape, device=x.device) >= self.mask_ratio)
        h = h * keep.unsqueeze(-1).to(h.dtype)
        h = h.transpose(1, 2)  # B × hidden × T
        mask = in_series.unsqueeze(1).to(h.dtype)  # B × 1 × T
        for block in self.blocks:
            h = block(h, mask)
        h = h.transpose(1, 2) * valid.unsqueeze(-1).to(h.dtype)  # B × T × out_dim
        return self.repr_dropout(h), valid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled representation ``B × out_dim``.

        Without gradients (embedding, evaluation, diagnostics), a batch of more than
        :data:`INFERENCE_STEPS` rows × time steps runs in row chunks of at most that many, so
        embedding long series takes bounded memory; rows are independent, so the result is the same.
        """
        rows = max(1, INFERENCE_STEPS // max(1, x.shape[-1]))
        if not torch.is_grad_enabled() and x.shape[0] > rows:
            return torch.cat([self._pooled(x[s:s + rows]) for s in range(0, x.shape[0], rows)])
        return self._pooled(x)

    def _pooled(self, x: torch.Tensor) -> torch.Tensor:
        h, valid = self.forward_timesteps(x)
        return masked_pool(h, valid, self.pooling)


# --------------------------------------------------------------------------- Transformer


def sinusoidal_encoding(length: int, dim: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Sinusoidal positional encoding ``length × dim`` (Vaswani et al. 2017); any length, any dim."""
    pos = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    half = (dim + 1) // 2
    freq = torch.exp(torch.arange(half, device=device, dtype=torch.float32) * (-2.0 * math.log(10000.0) / dim))
    angles = pos * freq  # length × half
    pe = torch.stack((torch.sin(angles), torch.cos(angles)), dim=-1).reshape(length, 2 * half)
    return pe[:, :dim].to(dtype)


class TransformerEncoder(Encoder):
    """Transformer encoder over time steps (Vaswani et al. 2017; for time series
    e.g. Zerveas et al., "A Transformer-based Framework for Multivariate Time
    Series Representation Learning", KDD 2021).

    Per time step, a linear projection ``in_channels → d_model`` plus a
    sinusoidal positional encoding (so any length works); ``depth`` pre-norm
    layers of ``torch.nn.TransformerEncoder`` (batch first, GELU) and a final
    LayerNorm; pooling (``'mean'`` or ``'max'`` over the valid steps, or
    ``'cls'``: the output at a learned token prepended to the sequence); then a
    linear map to ``out_dim``.

    Missing steps (NaN in any channel) are zeroed at the input, masked as keys
    in every attention layer, and excluded from pooling, so end padding changes
    nothing.  A series with no valid step gets a zero embedding.

    Shapes: ``x`` is ``B × in_channels × T``; returns ``B × out_dim``.

    Example::

        enc = TransformerEncoder(in_channels=3, pooling="cls")
        h = enc(torch.randn(8, 3, 100))        # 8 × 128

    Args:
        in_channels: channels C of the input.
        d_model: width of the Transformer; a multiple of ``nhead``.
        nhead: attention heads.
        depth: Transformer layers.
        dim_feedforward: width of each layer's feed-forward network.
        dropout: dropout inside the layers.
        out_dim: size of the representation.
        pooling: ``'mean'``, ``'max'`` or ``'cls'``.
    """

    POOLINGS = ("mean", "max", "cls")

    def __init__(
        self,
        in_channels: int,
        d_model: int = 64,
        nhead: int = 4,
        depth: int = 3,
        dim_feedforward: int = 128,
        dropout: float = 0.1,
        out_dim: int = 128,
        pooling: str = "mean",
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        self.in_channels = check_int(owner, "in_channels", in_channels, 1)
        self.d_model = check_int(owner, "d_model", d_model, 1)
        self.nhead = check_int(owner, "nhead", nhead, 1)
        if self.d_model % self.nhead:
            raise ConfigError(f"{owner}: d_model ({d_model}) must be divisible by nhead ({nhead}).")
        self.depth = check_int(owner, "depth", depth, 1)
        self.dim_feedforward = check_int(owner, "dim_feedforward", dim_feedforward, 1)
        self.dropout = _check_dropout(owner, dropout)
        self.out_dim = check_int(owner, "out_dim", out_dim, 1)
        self.pooling = _check_choice(owner, "pooling", pooling, self.POOLINGS)

        self.input_fc = nn.Linear(self.in_channels, self.d_model)
        layer = nn.TransformerEncoderLayer(
            d_model=self.d_model,
            nhead=self.nhead,
            dim_feedforward=self.dim_feedforward,
            dropout=self.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.transformer = nn.TransformerEncoder(
            layer, num_layers=self.depth, norm=nn.LayerNorm(self.d_model), enable_nested_tensor=False
        )
        self.cls_token = nn.Parameter(torch.randn(1, 1, self.d_model) * 0.02) if self.pooling == "cls" else None
        self.output_fc = nn.Linear(self.d_model, self.out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled representation ``B × out_dim``."""
        _check_input(type(self).__name__, x, self.in_channels)
        B, _, T = x.shape
        valid, _ = step_masks(x)
        has_valid = valid.any(dim=1, keepdim=True)  # B × 1
        x = x.masked_fill(~valid.unsqueeze(1), 0.0)
        h = self.input_fc(x.transpose(1, 2)) + sinusoidal_encoding(T, self.d_model, x.device, x.dtype)
        # True = ignore this key.  A row with no valid step attends to all its
        # (zeroed) steps instead, which keeps softmax finite; its output is zeroed below.
        pad = ~valid & has_valid
        if self.cls_token is not None:
            h = torch.cat((self.cls_token.expand(B, -1, -1).to(h.dtype), h), dim=1)
            pad = torch.cat((torch.zeros_like(pad[:, :1]), pad), dim=1)
        h = self.transformer(h, src_key_padding_mask=pad)
        if self.cls_token is not None:
            pooled = h[:, 0]
        else:
            pooled = masked_pool(h, valid, self.pooling)
        out = self.output_fc(pooled)
        return torch.where(has_valid, out, torch.zeros_like(out))


ENCODERS: dict[str, type[nn.Module]] = {
    "dilated_conv": DilatedConvEncoder,
    "transformer": TransformerEncoder,
}
