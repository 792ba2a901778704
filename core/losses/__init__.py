"""The loss library.

Every loss is a ``torch.nn.Module`` subclass of :class:`ContrastiveLoss`: it
takes the K view embeddings of a batch (a list of K tensors of shape B × D,
K ≥ 2), optionally labels, and returns a :class:`LossOutput` (the scalar to
minimise and named parts for the metrics log).  Losses are registered through
the ``register_losses`` hook like every other component; :data:`LOSSES` maps
the registered names to the classes.
"""

from . import coles, contrastive, multiview, noncontrastive
from .base import ContrastiveLoss, LossOutput
from .coles import CoLESLoss
from .contrastive import DCL, DCLW, DebiasedInfoNCE, HardNegativeInfoNCE, PerSampleTemperatureInfoNCE, SupCon
from .hierarchical import HierarchicalContrastive
from .infonce import InfoNCE, MoCHi
from .multiview import MVDHEL, AlignUniform, MVInfoNCE, PolyViewInfoNCE
from .noncontrastive import VICReg, BarlowTwins

#: Registered name -> loss class (core registers them all through ``register_losses``).
LOSSES: dict[str, type[ContrastiveLoss]] = {
    "infonce": InfoNCE,
    "hierarchical": HierarchicalContrastive,
    "mochi": MoCHi,
    **contrastive.LOSSES,
    **multiview.LOSSES,
    **noncontrastive.LOSSES,
    **coles.LOSSES,
}

DESCRIPTIONS: dict[str, str] = {
    "infonce": "InfoNCE / NT-Xent over K views (SimCLR, CPC)",
    "hierarchical": "TS2Vec's hierarchical (instance + temporal) loss over aligned dense views",
    "mochi": "InfoNCE with hard negatives mixed from the momentum queue (MoCHi, Kalantidis et al. 2020)",
    **contrastive.DESCRIPTIONS,
}

__all__ = [
    "AlignUniform", "BarlowTwins", "CoLESLoss", "ContrastiveLoss", "DCL", "DCLW", "DebiasedInfoNCE",
    "HardNegativeInfoNCE", "HierarchicalContrastive", "InfoNCE", "LOSSES", "LossOutput", "MVDHEL", "MVInfoNCE", "MoCHi",
    "PerSampleTemperatureInfoNCE", "PolyViewInfoNCE", "SupCon", "VICReg",
]
