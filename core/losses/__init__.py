"""The loss library.

Every loss is a ``torch.nn.Module`` subclass of :class:`ContrastiveLoss`: it
takes the K view embeddings of a batch (a list of K tensors of shape B × D,
K ≥ 2), optionally labels, and returns a :class:`LossOutput` (the scalar to
minimise and named parts for the metrics log).  Losses are registered through
the ``register_losses`` hook like every other component.
"""

from .base import ContrastiveLoss, LossOutput
from .hierarchical import HierarchicalContrastive
from .infonce import InfoNCE

__all__ = ["ContrastiveLoss", "HierarchicalContrastive", "InfoNCE", "LossOutput"]
