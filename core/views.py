"""View generation: augmentations, composition and the K-view generator.

An :class:`Augmentation` maps a *batch* (in the form the modality's collate
produces) to a new batch of the same form.  It draws its random parameters
per sample from the ``torch.Generator`` it is given at every call, so the views
change at every step and a seeded generator reproduces them exactly.  It never
modifies its input in place.

A :class:`JointAugmentation` produces all K views of a batch together, for
transforms whose views depend on each other (TS2Vec's overlapping contextual
crops, two overlapping 3-D crops, CoLES' sub-sequences of one entity).

:class:`ViewGenerator` runs an optional joint augmentation and then an
independent draw of the composed per-view pipeline for each of the K views.
"""

from __future__ import annotations

import inspect
from typing import Any, Sequence

import torch

from .errors import ConfigError


def make_generator(seed: int, device: torch.device | str | None = None) -> torch.Generator:
    """A torch.Generator on ``device`` seeded with ``seed``."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    g = torch.Generator(device=device)
    g.manual_seed(int(seed) % (2**63))
    return g


class _ReprMixin:
    """repr showing the constructor arguments, like torch_geometric's transforms."""

    def __repr__(self) -> str:
        params = []
        for name in inspect.signature(type(self).__init__).parameters:
            if name in ("self", "args", "kwargs") or not hasattr(self, name):
                continue
            params.append(f"{name}={getattr(self, name)!r}")
        return f"{type(self).__name__}({', '.join(params)})"


class Augmentation(_ReprMixin):
    """Base class of a view transform.

    Subclasses implement :meth:`apply`.  ``p`` is the probability that a sample
    is transformed; subclasses use :meth:`sample_mask` to honour it.
    Constructor arguments are checked and stored under their own names (the
    repr shows them).
    """

    #: False for transforms that change a sample's size (crops); the conformance kit then only checks
    #: the number of dimensions.
    keeps_shape: bool = True
    #: True for transforms with no randomness at p = 1 (e.g. a normalisation, a diffusion view): the
    #: conformance kit then checks that repeated calls agree instead of that they differ.
    deterministic: bool = False
    #: Keys of the training data's ``meta`` that fill constructor parameters of the same names when
    #: the config does not set them (e.g. slice lengths derived from the data); other ``meta`` keys
    #: never do.  Default: none.
    from_meta: tuple[str, ...] = ()

    def __init__(self, p: float = 1.0) -> None:
        if not 0.0 <= float(p) <= 1.0:
            raise ConfigError(f"{type(self).__name__}: p must lie in [0, 1], got {p}.")
        self.p = float(p)

    def __call__(self, batch: Any, generator: torch.Generator | None = None) -> Any:
        return self.apply(batch, generator)

    def apply(self, batch: Any, generator: torch.Generator | None) -> Any:  # pragma: no cover
        raise NotImplementedError

    def sample_mask(self, n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
        """Boolean mask of the n samples that this call transforms (probability p)."""
        if self.p >= 1.0:
            return torch.ones(n, dtype=torch.bool, device=device)
        return torch.rand(n, generator=generator, device=device) < self.p


class AlignedViews(list):
    """K views that share a stretch of positions: ``aligned[j]`` is the slice of view j
    (along its last axis) that holds the same positions in every view.

    Joint augmentations such as overlapping crops return it, so dense losses
    (per time step, per voxel) can contrast the shared positions.
    """

    def __init__(self, views: Sequence[Any], aligned: Sequence[slice]) -> None:
        super().__init__(views)
        if len(aligned) != len(self):
            raise ConfigError(f"{len(aligned)} alignment slices for {len(self)} views.")
        self.aligned = list(aligned)


class JointAugmentation(_ReprMixin):
    """Base class of a transform that draws the K views of a batch together.

    ``views`` returns a list of K views, or :class:`AlignedViews` when the views
    share positions that a dense loss can use.
    """

    #: Keys of the training data's ``meta`` that fill constructor parameters of the same names when
    #: the config does not set them (e.g. slice lengths derived from the data); other ``meta`` keys
    #: never do.  Default: none.
    from_meta: tuple[str, ...] = ()

    def views(self, batch: Any, k: int, generator: torch.Generator | None) -> list[Any]:  # pragma: no cover
        raise NotImplementedError


class Compose(Augmentation):
    """Apply augmentations one after the other."""

    def __init__(self, transforms: Sequence[Augmentation]) -> None:
        super().__init__(1.0)
        self.transforms = list(transforms)

    def apply(self, batch: Any, generator: torch.Generator | None) -> Any:
        for t in self.transforms:
            batch = t(batch, generator)
        return batch

    def __repr__(self) -> str:
        inner = ",\n".join(f"  {t!r}" for t in self.transforms)
        return f"Compose([\n{inner}\n])" if self.transforms else "Compose([])"


def _shape(x: Any) -> Any:
    return tuple(x.shape) if hasattr(x, "shape") else None


class ViewGenerator:
    """K views of every sample of a batch, re-drawn at every call.

    >>> gen = ViewGenerator([Jitter(0.03), Scaling(0.1)], k=2)   # doctest: +SKIP
    >>> v1, v2 = gen(batch, make_generator(0))                  # doctest: +SKIP
    """

    def __init__(
        self,
        transforms: Sequence[Augmentation] | Augmentation = (),
        k: int = 2,
        joint: JointAugmentation | None = None,
    ) -> None:
        if int(k) < 2:
            raise ConfigError(f"the number of views must be at least 2, got {k}.")
        self.k = int(k)
        self.joint = joint
        self.pipeline = transforms if isinstance(transforms, Augmentation) else Compose(list(transforms))

    def __call__(self, batch: Any, generator: torch.Generator | None = None) -> list[Any]:
        bases = self.joint.views(batch, self.k, generator) if self.joint is not None else [batch] * self.k
        if len(bases) != self.k:
            raise ConfigError(f"{self.joint!r} returned {len(bases)} views, expected {self.k}.")
        views = [self.pipeline(b, generator) for b in bases]
        aligned = getattr(bases, "aligned", None)
        if aligned is not None and all(_shape(v) == _shape(b) for v, b in zip(views, bases)):
            # The per-view pipeline kept every position where it was: the alignment still holds.
            return AlignedViews(views, aligned)
        return views

    def __repr__(self) -> str:
        return f"ViewGenerator(k={self.k}, joint={self.joint!r}, pipeline={self.pipeline!r})"
