"""The base class of encoders."""

from __future__ import annotations

from typing import Any, Callable

from torch import nn


class Encoder(nn.Module):
    """Base class of an encoder: ``forward(batch) -> h``, the pooled representation (B × ``out_dim``).

    A plugin's encoder subclasses it (a plain ``nn.Module`` with an ``out_dim`` attribute is still
    accepted from third parties; see :mod:`contrastkit.core.capabilities`).  The constructor takes
    the config's ``[encoder]`` parameters and, where it names them, keys of the data's ``meta``
    (e.g. ``in_channels``).  Its capabilities are these attributes:
    """

    #: The size D of the representation h.  Required: set it (an int) in the constructor; a
    #: registered encoder without an integer ``out_dim`` is refused when the model is built.
    out_dim: int | None = None

    #: Optional method ``forward_views(views: list) -> list[Tensor]``: encode the K views of a step
    #: together (e.g. one pass over K·B variable-length sequences).  ``None`` (the default): core
    #: runs one pass over the concatenated views when they are tensors of one shape, else one pass
    #: per view.
    forward_views: Callable[[list[Any]], list[Any]] | None = None

    #: Optional method ``forward_timesteps(x) -> (dense, valid)``: per-position representations
    #: (B × T × D) and their validity mask, for dense losses (``ContrastiveLoss.dense``).  ``None``
    #: (the default): the encoder has no dense outputs and a dense loss is refused with one sentence.
    forward_timesteps: Callable[[Any], tuple[Any, Any]] | None = None
