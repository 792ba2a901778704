"""The raw-intensity baseline: what a probe reaches without any encoder.

:class:`RawIntensityBaseline` is the volumes' non-learned baseline (a
:class:`~contrastkit.core.evaluation.FeatureBaseline`): every item is described
by hand-made intensity features — the patch average-pooled to ``grid``³ cells
(flattened), a ``bins``-bin histogram of its normalised intensities over
``[-3, 3]``, and its mean and standard deviation — in place of the encoder's
embedding.  ``evaluate --baseline`` runs every evaluator of the comparison on
these features (one row of the table: ``raw_intensity.<evaluator>.<metric>``);
named on its own it fits core's linear and k-NN probes under the same protocol
(same split, grids chosen by CV on the training split, mean ± std over seeds;
metrics ``linear.<metric>`` and ``knn.<metric>``).  Beside the probes on the
encoder's embeddings, it shows what pretraining added beyond the intensities;
the frozen encoder is not used at all.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from contrastkit.core import ConfigError, DataError, Evaluator, FeatureBaseline, Samples

from .modality import collate


def intensity_features(batch: torch.Tensor, grid: int = 4, bins: int = 16) -> torch.Tensor:
    """B × (grid³ + bins + 2) features of a batch B × 1 × D × H × W."""
    b = batch.shape[0]
    pooled = F.adaptive_avg_pool3d(batch, grid).reshape(b, -1)
    flat = batch.reshape(b, -1)
    edges = torch.linspace(-3.0, 3.0, bins + 1, dtype=batch.dtype)
    idx = torch.bucketize(flat.clamp(-3.0, 3.0 - 1e-6), edges[1:-1])
    hist = torch.zeros(b, bins, dtype=batch.dtype).scatter_add_(1, idx, torch.ones_like(flat)) / flat.shape[1]
    return torch.cat([pooled, hist, flat.mean(1, keepdim=True), flat.std(1, keepdim=True)], dim=1)


class RawIntensityBaseline(FeatureBaseline):
    """Pooled intensities + histogram + mean/std of each item in place of embeddings (the no-encoder baseline).

    ``features(samples)`` reads the items as a batch would (the run's
    normalisation applied) and returns ``N × (grid³ + bins + 2)`` floats; any
    items of the modality work.  Nothing is fitted.
    """

    name = "raw_intensity"
    protocol = "raw-intensity-baseline"
    version = "2"
    requires = "labels"
    probes = ("linear", "knn")
    description = "Baseline: pooled-intensity + histogram features in place of embeddings (no encoder)."

    def __init__(self, grid: int = 4, bins: int = 16, batch_size: int = 256) -> None:
        for key, v in (("grid", grid), ("bins", bins), ("batch_size", batch_size)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"raw_intensity: {key} must be an integer ≥ 1, got {v!r}.")
        self.grid, self.bins, self.batch_size = grid, bins, batch_size

    def features(self, samples: Samples) -> np.ndarray:
        items = list(samples.items)
        if not items:
            raise DataError(f"{samples.source or 'the data'}: no items to describe.")
        out = []
        for s in range(0, len(items), self.batch_size):
            out.append(intensity_features(collate(items[s:s + self.batch_size]).float(), self.grid, self.bins))
        return torch.cat(out).numpy().astype(np.float32)


#: Registered evaluators, by name.
EVALUATORS: dict[str, type[Evaluator]] = {"raw_intensity": RawIntensityBaseline}
