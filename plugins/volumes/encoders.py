"""Encoders for batches of volumes ``B × C × D × H × W``; each returns ``B × out_dim``.

* :class:`ResNet3d` — a small 3-D ResNet (He et al., CVPR 2016; the 3-D
  form of Hara et al., CVPR 2018) with GroupNorm (Wu & He, ECCV 2018) instead
  of batch norm, so an item's representation never depends on its batch.
* :class:`ViT3d` — a patch-based 3-D vision transformer (Dosovitskiy et al.,
  ICLR 2021; 3-D as in UNETR, Hatamizadeh et al., WACV 2022): a strided
  conv3d patch embedding, learned position embeddings (interpolated when the
  input size differs from the one it was built for), pre-norm transformer
  blocks, mean pooling over tokens.

``pool`` (ResNet3d): ``"mean"`` averages the last feature map; ``"mean+centre"``
concatenates that average with the features of the central cell of the map —
for patch-level tasks whose label belongs to the patch centre (a voxel's
tissue) while the rest of the patch is context.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from contrastkit.core import ConfigError, DataError, Encoder, check_int

POOLS = ("mean", "mean+centre", "max")


def _check_input(owner: str, x: object, in_channels: int) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim != 5:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise DataError(f"{owner}: expected a batch of shape B × {in_channels} × D × H × W, got {shape}.")
    if x.shape[1] != in_channels:
        raise DataError(f"{owner}: the batch has {x.shape[1]} channel(s); the encoder was built for {in_channels}.")
    return x


def _groups(channels: int, wanted: int = 8) -> int:
    g = min(wanted, channels)
    while channels % g:
        g -= 1
    return g


class BasicBlock3d(nn.Module):
    """Two 3×3×3 convolutions with GroupNorm and a residual connection (1×1×1 projection when shapes change)."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.norm1 = nn.GroupNorm(_groups(cout), cout)
        self.conv2 = nn.Conv3d(cout, cout, 3, padding=1, bias=False)
        self.norm2 = nn.GroupNorm(_groups(cout), cout)
        self.skip = None
        if stride != 1 or cin != cout:
            self.skip = nn.Sequential(nn.Conv3d(cin, cout, 1, stride=stride, bias=False),
                                      nn.GroupNorm(_groups(cout), cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return F.relu(out + (x if self.skip is None else self.skip(x)))


class ResNet3d(Encoder):
    """Small 3-D ResNet: a 3×3×3 stem (stride ``stem_stride``: 2 keeps a CPU fast on 16³–24³ patches), then ``len(blocks)`` stages of basic blocks whose width doubles while the
    resolution halves (stride 2 from the second stage), then pooling.

    ``width`` channels in the first stage; ``out_dim`` = last width (× 2 with ``pool = "mean+centre"``).
    """

    def __init__(self, in_channels: int = 1, width: int = 16, blocks: Sequence[int] = (1, 1),
                 pool: str = "mean+centre", stem_stride: int = 2) -> None:
        super().__init__()
        owner = "ResNet3d"
        self.in_channels = check_int(owner, "in_channels", in_channels, 1)
        self.width = check_int(owner, "width", width, 1)
        if isinstance(blocks, int) or not blocks or any(isinstance(b, bool) or not isinstance(b, int) or b < 1
                                                        for b in blocks):
            raise ConfigError(f"{owner}: blocks must be a non-empty list of integers ≥ 1, got {blocks!r}.")
        self.blocks = [int(b) for b in blocks]
        if pool not in POOLS:
            raise ConfigError(f"{owner}: pool must be one of {', '.join(POOLS)}, got {pool!r}.")
        self.pool = pool
        self.stem_stride = check_int(owner, "stem_stride", stem_stride, 1)
        self.stem = nn.Sequential(nn.Conv3d(self.in_channels, self.width, 3, stride=self.stem_stride, padding=1,
                                            bias=False),
                                  nn.GroupNorm(_groups(self.width), self.width), nn.ReLU())
        layers, cin = [], self.width
        for stage, n in enumerate(self.blocks):
            cout = self.width * 2 ** stage
            for i in range(n):
                layers.append(BasicBlock3d(cin, cout, stride=2 if (stage > 0 and i == 0) else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.channels = cin
        self.out_dim = cin * (2 if pool == "mean+centre" else 1)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map, B × channels × d × h × w."""
        x = _check_input("ResNet3d", x, self.in_channels)
        return self.layers(self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fmap = self.feature_map(x)
        if self.pool == "max":
            return fmap.amax(dim=(2, 3, 4))
        mean = fmap.mean(dim=(2, 3, 4))
        if self.pool == "mean":
            return mean
        # central cell(s): the middle one of an odd side, the middle two of an even side
        sl = [slice((n - 1) // 2, n // 2 + 1) for n in fmap.shape[2:]]
        centre = fmap[:, :, sl[0], sl[1], sl[2]].mean(dim=(2, 3, 4))
        return torch.cat([mean, centre], dim=1)


class ViT3d(Encoder):
    """Patch-based 3-D transformer: conv3d patch embedding (kernel = stride = ``patch``), learned position
    embeddings for an input of ``input_shape`` (interpolated for other sizes), ``depth`` pre-norm blocks of
    ``heads`` heads, a final LayerNorm and mean pooling over tokens; ``out_dim`` = ``dim``."""

    def __init__(self, in_channels: int = 1, patch: int = 4, dim: int = 64, depth: int = 2, heads: int = 4,
                 mlp_ratio: float = 2.0, input_shape: Sequence[int] = (16, 16, 16)) -> None:
        super().__init__()
        owner = "ViT3d"
        self.in_channels = check_int(owner, "in_channels", in_channels, 1)
        self.patch = check_int(owner, "patch", patch, 1)
        self.dim = check_int(owner, "dim", dim, 1)
        self.depth = check_int(owner, "depth", depth, 1)
        self.heads = check_int(owner, "heads", heads, 1)
        if self.dim % self.heads:
            raise ConfigError(f"{owner}: dim {dim} must be a multiple of heads {heads}.")
        if isinstance(mlp_ratio, bool) or not isinstance(mlp_ratio, (int, float)) or mlp_ratio <= 0:
            raise ConfigError(f"{owner}: mlp_ratio must be a positive number, got {mlp_ratio!r}.")
        self.mlp_ratio = float(mlp_ratio)
        shape = [int(s) for s in input_shape]
        if len(shape) != 3 or any(s < self.patch for s in shape):
            raise ConfigError(f"{owner}: input_shape {list(input_shape)} must be three sides of at least patch "
                              f"{self.patch} voxels.")
        self.input_shape = shape
        self.grid = [s // self.patch for s in shape]
        self.embed = nn.Conv3d(self.in_channels, self.dim, self.patch, stride=self.patch)
        self.pos = nn.Parameter(torch.zeros(1, self.dim, *self.grid))
        nn.init.trunc_normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(self.dim, self.heads, int(self.dim * self.mlp_ratio), dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, self.depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(self.dim)
        self.out_dim = self.dim

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """B × N × dim token embeddings after the transformer blocks."""
        x = _check_input("ViT3d", x, self.in_channels)
        if any(s < self.patch for s in x.shape[2:]):
            raise DataError(f"ViT3d: the input {tuple(x.shape[2:])} is smaller than one patch of {self.patch} voxels.")
        t = self.embed(x)
        pos = self.pos if list(t.shape[2:]) == self.grid else \
            F.interpolate(self.pos, size=t.shape[2:], mode="trilinear", align_corners=False)
        t = (t + pos).flatten(2).transpose(1, 2)
        return self.norm(self.blocks(t))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tokens(x).mean(dim=1)


#: Registered encoders, by name.
ENCODERS: dict[str, type[nn.Module]] = {"resnet3d": ResNet3d, "vit3d": ViT3d}
