"""Projection heads: the small network between representation h and loss input z."""

from __future__ import annotations

from torch import nn

from .errors import ConfigError


class ProjectionHead(nn.Module):
    """MLP projection head (SimCLR, Chen et al. 2020): ``layers`` linear maps,
    each but the last followed by batch norm (optional) and ReLU.

    Shapes: B × in_dim → B × out_dim.  ``layers=0`` is the identity (z = h).
    """

    def __init__(self, in_dim: int, out_dim: int = 128, hidden_dim: int | None = None, layers: int = 2,
                 batch_norm: bool = True) -> None:
        super().__init__()
        if not isinstance(layers, int) or layers < 0:
            raise ConfigError(f"head 'layers' must be an integer ≥ 0, got {layers!r}.")
        if layers and (not isinstance(out_dim, int) or out_dim < 1):
            raise ConfigError(f"head 'out_dim' must be a positive integer, got {out_dim!r}.")
        hidden_dim = hidden_dim or in_dim
        self.in_dim, self.layers = in_dim, layers
        self.out_dim = out_dim if layers else in_dim
        mods: list[nn.Module] = []
        d = in_dim
        for i in range(layers):
            last = i == layers - 1
            nxt = out_dim if last else hidden_dim
            mods.append(nn.Linear(d, nxt, bias=last or not batch_norm))
            if not last:
                if batch_norm:
                    mods.append(nn.BatchNorm1d(nxt))
                mods.append(nn.ReLU(inplace=True))
            d = nxt
        self.net = nn.Sequential(*mods) if mods else nn.Identity()

    def forward(self, h):
        return self.net(h)


HEADS = {"mlp": ProjectionHead}


def build_head(cfg: dict, in_dim: int) -> nn.Module:
    name = cfg.get("name", "mlp")
    if name == "none":
        return ProjectionHead(in_dim, layers=0)
    if name not in HEADS:
        raise ConfigError(f"unknown head '{name}'; valid heads: {', '.join(sorted([*HEADS, 'none']))}.")
    kwargs = {k: v for k, v in cfg.items() if k != "name"}
    try:
        return HEADS[name](in_dim, **kwargs)
    except TypeError as exc:
        raise ConfigError(f"head '{name}': {exc}.") from None
