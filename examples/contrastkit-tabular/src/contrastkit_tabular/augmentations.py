"""View transforms for tables.

Every transform takes a batch ``x`` of shape ``B × F`` (float; one row per
entity, standardised features) and returns a NEW tensor of the same shape,
dtype and device.  Random choices are drawn per row from the
``torch.Generator`` passed at each call, so views change at every step and a
seeded generator reproduces them.  No Python loop over rows; nothing names a
device.

References
----------
- D. Bahri, H. Jiang, Y. Tay, D. Metzler, "SCARF: Self-Supervised Contrastive
  Learning using Random Feature Corruption", ICLR 2022 — feature corruption
  from the empirical marginals.
- J. Yoon, Y. Zhang, J. Jordon, M. van der Schaar, "VIME: Extending the
  Success of Self- and Semi-supervised Learning to Tabular Domain", NeurIPS
  2020 — feature masking.
"""

from __future__ import annotations

from typing import Any

import torch

from contrastkit.core import Augmentation, ConfigError, DataError

__all__ = ["AUGMENTATIONS", "FeatureCorruption", "FeatureMask", "GaussianNoise", "check_table"]


def check_table(x: Any, who: str) -> torch.Tensor:
    """``x`` if it is a floating ``B × F`` tensor, else a DataError."""
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or not x.is_floating_point():
        what = f"a {x.dim()}-D {x.dtype} tensor of shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) \
            else type(x).__name__
        raise DataError(f"{who} expects a float table batch of shape (B, F), got {what}.")
    return x


def _fraction(who: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < float(value) <= 1.0:
        raise ConfigError(f"{who}: {name} must be a number in (0, 1], got {value!r}.")
    return float(value)


class FeatureCorruption(Augmentation):
    """SCARF's view: replace a random fraction of each row's features by draws from their marginals.

    Bahri et al., ICLR 2022.  For each row, ``q = max(1, round(ratio · F))``
    features are chosen uniformly at random (exactly q per row), and each is
    replaced by the value the same feature takes in a row drawn uniformly from
    the batch — a draw from the feature's empirical marginal distribution, as
    in SCARF (which draws from the training set; the batch is a uniform
    sample of it).  Rows keep their own values elsewhere.  SCARF's default
    corruption rate is 0.6.

    >>> FeatureCorruption(ratio=0.6)(torch.randn(8, 30), make_generator(0)).shape   # doctest: +SKIP
    torch.Size([8, 30])
    """

    def __init__(self, ratio: float = 0.6, p: float = 1.0) -> None:
        super().__init__(p)
        self.ratio = _fraction(type(self).__name__, "ratio", ratio)

    def apply(self, batch: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        x = check_table(batch, type(self).__name__)
        b, f = x.shape
        if b == 0 or f == 0:
            return x.clone()
        q = min(f, max(1, round(self.ratio * f)))
        rank = torch.rand(b, f, generator=generator, device=x.device).argsort(dim=1).argsort(dim=1)
        chosen = (rank < q) & self.sample_mask(b, generator, x.device).unsqueeze(1)
        donors = torch.randint(0, b, (b, f), generator=generator, device=x.device)
        return torch.where(chosen, x.gather(0, donors), x)


class GaussianNoise(Augmentation):
    """Add Gaussian noise ``N(0, sigma²)`` to every feature (standardised features: sigma is in units of std)."""

    def __init__(self, sigma: float = 0.1, p: float = 1.0) -> None:
        super().__init__(p)
        if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or sigma < 0:
            raise ConfigError(f"GaussianNoise: sigma must be a number >= 0, got {sigma!r}.")
        self.sigma = float(sigma)

    def apply(self, batch: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        x = check_table(batch, type(self).__name__)
        mask = self.sample_mask(x.shape[0], generator, x.device).unsqueeze(1)
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return torch.where(mask, x + self.sigma * noise, x)


class FeatureMask(Augmentation):
    """Set each feature to 0 (its training mean, after standardisation) with probability ``ratio``.

    The masking corruption of VIME (Yoon et al., NeurIPS 2020), with mean
    imputation as the replacement.
    """

    def __init__(self, ratio: float = 0.2, p: float = 1.0) -> None:
        super().__init__(p)
        self.ratio = _fraction(type(self).__name__, "ratio", ratio)

    def apply(self, batch: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        x = check_table(batch, type(self).__name__)
        b, f = x.shape
        hit = torch.rand(b, f, generator=generator, device=x.device) < self.ratio
        hit &= self.sample_mask(b, generator, x.device).unsqueeze(1)
        return torch.where(hit, torch.zeros((), dtype=x.dtype, device=x.device), x)


#: The tabular augmentations by the name configs use; the plugin's hook registers them.
AUGMENTATIONS: dict[str, type[Augmentation]] = {
    "feature_corruption": FeatureCorruption,
    "gaussian_noise": GaussianNoise,
    "feature_mask": FeatureMask,
}
