"""View transforms for point clouds, on batched tensors.

Every transform takes a batch ``x`` of shape ``B × N × C`` (float, C ≥ 3:
columns 0–2 are x, y, z; further columns are per-point features, carried
along unchanged by geometric transforms) and returns a NEW tensor of the same
shape, dtype and device.  Random parameters are drawn per sample from the
``torch.Generator`` passed at each call; everything is vectorised over the
batch (patch masking's farthest-point sampling loops over its centres, not
over samples) and nothing names a device.  Transforms that remove points keep
N by filling the freed slots with copies of kept points, so a batch stays a
dense tensor.

References
----------
- C. R. Qi et al., "PointNet" (CVPR 2017) and "PointNet++" (NeurIPS 2017):
  rotation about the up axis, jitter (clipped), scaling, point dropout,
  farthest-point sampling.
- S. Xie et al., "PointContrast" (ECCV 2020); M. Afham et al., "CrossPoint"
  (CVPR 2022): rotation, scaling, translation and crops as contrastive views.
- Y. Pang et al., "Masked Autoencoders for Point Cloud Self-supervised
  Learning" (Point-MAE, ECCV 2022); X. Yu et al., "Point-BERT" (CVPR 2022):
  patches from FPS centres and kNN groups, masked at random.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from contrastkit.core import Augmentation, ConfigError, DataError, check_number

from .geometry import farthest_point_sampling, knn, resample_kept

__all__ = [
    "AUGMENTATIONS",
    "RotateUp",
    "RotateSO3",
    "Scale",
    "Translate",
    "Jitter",
    "PointDropout",
    "Crop",
    "PatchMask",
    "NormalizeSphere",
    "random_rotations",
    "normalize_sphere",
]


def _check_batch(owner: str, x: Any) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] < 3 or not x.is_floating_point():
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise DataError(f"{owner}: expected a float batch of point clouds of shape B × N × C (C >= 3: x, y, z, "
                        f"features), got {shape}.")


def _range(owner: str, name: str, value: object, lo: float, hi: float) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ConfigError(f"{owner}: {name} must be a pair [low, high], got {value!r}.")
    a = check_number(owner, f"{name}[0]", value[0], lo, hi)
    b = check_number(owner, f"{name}[1]", value[1], lo, hi)
    if a > b:
        raise ConfigError(f"{owner}: {name} must have low <= high, got {list(value)!r}.")
    return a, b


def _uniform(lo: float, hi: float, shape: tuple[int, ...], generator, x: torch.Tensor) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(shape, generator=generator, device=x.device, dtype=x.dtype)


def _where(mask: torch.Tensor, new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    return torch.where(mask.view(-1, *([1] * (old.dim() - 1))), new, old)


def _with_xyz(x: torch.Tensor, xyz: torch.Tensor) -> torch.Tensor:
    return torch.cat([xyz, x[..., 3:]], dim=-1) if x.shape[-1] > 3 else xyz


# --------------------------------------------------------------------------- rotations


def _axis_rotation(angle: torch.Tensor, axis: int) -> torch.Tensor:
    """B rotation matrices (B × 3 × 3) by ``angle`` about coordinate axis ``axis``."""
    c, s = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(angle), torch.zeros_like(angle)
    i, j = [a for a in range(3) if a != axis]
    rows = [[None] * 3 for _ in range(3)]
    rows[axis][axis] = one
    rows[axis][i] = rows[axis][j] = rows[i][axis] = rows[j][axis] = zero
    rows[i][i], rows[i][j], rows[j][i], rows[j][j] = c, -s, s, c
    return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)


def random_rotations(n: int, generator: torch.Generator | None, device, dtype=torch.float32) -> torch.Tensor:
    """n rotation matrices drawn uniformly from SO(3) (normalised Gaussian quaternions; Shoemake 1992)."""
    q = torch.randn(n, 4, generator=generator, device=device, dtype=torch.float64)
    q = q / q.norm(dim=1, keepdim=True).clamp_min(1e-12)
    w, x, y, z = q.unbind(1)
    r = torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
    ], dim=1).view(n, 3, 3)
    return r.to(dtype)


class RotateUp(Augmentation):
    """Rotate each cloud about the up axis (``axis``, default z = 2) by an angle uniform in
    [-max_angle, max_angle] (degrees; 180 = any angle), about the origin (PointNet's augmentation)."""

    def __init__(self, max_angle: float = 180.0, axis: int = 2, p: float = 1.0) -> None:
        super().__init__(p)
        self.max_angle = check_number("rotate_up", "max_angle", max_angle, 0.0, 180.0)
        if axis not in (0, 1, 2) or isinstance(axis, bool):
            raise ConfigError(f"rotate_up: axis must be 0, 1 or 2 (x, y, z), got {axis!r}.")
        self.axis = int(axis)

    def apply(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        _check_batch("rotate_up", x)
        b = x.shape[0]
        limit = math.radians(self.max_angle)
        angle = _uniform(-limit, limit, (b,), generator, x)
        angle = torch.where(self.sample_mask(b, generator, x.device), angle, torch.zeros_like(angle))
        rot = _axis_rotation(angle, self.axis)
        return _with_xyz(x, x[..., :3] @ rot.transpose(1, 2))


class RotateSO3(Augmentation):
    """Rotate each cloud about the origin by a rotation drawn uniformly from SO(3)."""

    def __init__(self, p: float = 1.0) -> None:
        super().__init__(p)

    def apply(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        _check_batch("rotate_so3", x)
        b = x.shape[0]
        rot = random_rotations(b, generator, x.device, x.dtype)
        eye = torch.eye(3, device=x.device, dtype=x.dtype).expand(b, 3, 3)
        rot = _where(self.sample_mask(b, generator, x.device), rot, eye)
        return _with_xyz(x, x[..., :3] @ rot.transpose(1, 2))


# --------------------------------------------------------------------------- affine


class Scale(Augmentation):
    """Multiply coordinates by factors uniform in ``[low, high]`` (one per axis when
    ``anisotropic``, else one per cloud), about the origin."""

    def __init__(self, low: float = 0.8, high: float = 1.25, anisotropic: bool = True, p: float = 1.0) -> None:
        super().__init__(p)
        self.low = check_number("scale", "low", low, 0.0, open_lo=True)
        self.high = check_number("scale", "high", high, 0.0, open_lo=True)
        if self.low > self.high:
            raise ConfigError(f"scale: low must be <= high, got low={low} and high={high}.")
        self.anisotropic = bool(anisotropic)

    def factors(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """The B × 3 factors of one call (1 for samples left alone)."""
        b = x.shape[0]
        f = _uniform(self.low, self.high, (b, 3 if self.anisotropic else 1), generator, x).expand(b, 3)
        return _where(self.sample_mask(b, generator, x.device), f, torch.ones_like(f))

    def apply(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        _check_batch("scale", x)
        return _with_xyz(x, x[..., :3] * self.factors(x, generator)[:, None, :])


class Translate(Augmentation):
    """Shift each cloud by an offset uniform in [-shift, shift] per axis."""

    def __init__(self, shift: float = 0.1, p: float = 1.0) -> None:
        super().__init__(p)
        self.shift = check_number("translate", "shift", shift, 0.0)

    def apply(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        _check_batch("translate", x)
        b = x.shape[0]
        t = _uniform(-self.shift, self.shift, (b, 3), generator, x)
        t = _where(self.sample_mask(b, generator, x.device), t, torch.zeros_like(t))
        return _with_xyz(x, x[..., :3] + t[:, None, :])


class Jitter(Augmentation):
    """Add Gaussian noise N(0, sigma²) to every coordinate, clipped to [-clip, clip] (PointNet: 0.01, 0.05)."""

    def __init__(self, sigma: float = 0.01, clip: float = 0.05, p: float = 1.0) -> None:
        super().__init__(p)
        self.sigma = check_number("jitter", "sigma", sigma, 0.0)
        self.clip = check_number("jitter", "clip", clip, 0.0)

    def apply(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        _check_batch("jitter", x)
        b = x.shape[0]
        noise = torch.randn(x[..., :3].shape, generator=generator, device=x.device, dtype=x.dtype)
        noise = (noise * self.sigma).clamp(-self.clip, self.clip)
        noise = _where(self.sample_mask(b, generator, x.device), noise, torch.zeros_like(noise))
        return _with_xyz(x, x[..., :3] + noise)


# --------------------------------------------------------------------------- removing points


class PointDropout(Augmentation):
    """Drop a fraction of points uniform in [0, max_ratio] per cloud; each dropped point is
    replaced by a copy of a random kept point, so N is unchanged (PointNet++'s random input dropout)."""

    def __init__(self, max_ratio: float = 0.5, p: float = 1.0) -> None:
        super().__init__(p)
        self.max_ratio = check_number("point_dropout", "max_ratio", max_ratio, 0.0, 0.99)

    def apply(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        _check_batch("point_dropout", x)
        b, n = x.shape[:2]
        ratio = self.max_ratio * torch.rand(b, generator=generator, device=x.device)
        ratio = torch.where(self.sample_mask(b, generator, x.device), ratio, torch.zeros_like(ratio))
        n_keep = (n - torch.floor(ratio * n)).long().clamp(1, n)
        score = torch.rand(b, n, generator=generator, device=x.device)
        return resample_kept(x, score, n_keep, generator)


class Crop(Augmentation):
    """Keep the points of a region around a random point of the cloud: a ball (``shape="ball"``) or
    an axis-aligned cuboid of random aspect (``"cuboid"``), sized to hold a fraction uniform in
    ``ratio`` of the points; the rest of the N slots are refilled with copies of kept points.
    Coordinates are not re-normalised (add ``normalize`` after it for that)."""

    def __init__(self, shape: str = "ball", ratio: tuple[float, float] = (0.4, 0.8), p: float = 1.0) -> None:
        super().__init__(p)
        if shape not in ("ball", "cuboid"):
            raise ConfigError(f"crop: shape must be 'ball' or 'cuboid', got {shape!r}.")
        self.shape = shape
        self.ratio = _range("crop", "ratio", ratio, 0.01, 1.0)

    def region(self, x: torch.Tensor, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(score B × N, n_keep B): a point is kept when its score is among the n_keep lowest."""
        b, n = x.shape[:2]
        xyz = x[..., :3]
        centre_idx = torch.randint(0, n, (b,), generator=generator, device=x.device)
        centre = xyz[torch.arange(b, device=x.device), centre_idx]  # B × 3
        diff = xyz - centre[:, None, :]
        if self.shape == "ball":
            score = diff.norm(dim=-1)
        else:
            aspect = _uniform(0.5, 1.5, (b, 3), generator, x)
            score = (diff.abs() / aspect[:, None, :]).amax(dim=-1)  # a cuboid of half-extents ∝ aspect
        frac = _uniform(self.ratio[0], self.ratio[1], (b,), generator, x)
        frac = torch.where(self.sample_mask(b, generator, x.device), frac, torch.ones_like(frac))
        n_keep = torch.ceil(frac * n).long().clamp(1, n)
        return score, n_keep

    def apply(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        _check_batch("crop", x)
        score, n_keep = self.region(x, generator)
        return resample_kept(x, score, n_keep, generator)


class PatchMask(Augmentation):
    """Mask random patches: ``num_patches`` centres by farthest-point sampling (random start), each
    patch the ``patch_size`` nearest points of its centre, a fraction ``ratio`` of patches masked.

    ``mode="resample"`` (default) removes the masked points and refills their slots with copies of
    unmasked points (N is kept; the cloud has holes where the patches were); ``mode="centre"``
    collapses every masked point onto its patch centre (the centre's position stays a hint, as in
    Point-MAE's visible centres).  A cloud with every point masked keeps its patch centres.
    """

    def __init__(self, num_patches: int = 32, patch_size: int = 32, ratio: float = 0.4, mode: str = "resample",
                 p: float = 1.0) -> None:
        super().__init__(p)
        for name, value in (("num_patches", num_patches), ("patch_size", patch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"patch_mask: {name} must be a positive integer, got {value!r}.")
        self.num_patches = int(num_patches)
        self.patch_size = int(patch_size)
        self.ratio = check_number("patch_mask", "ratio", ratio, 0.0, 1.0)
        if mode not in ("resample", "centre"):
            raise ConfigError(f"patch_mask: mode must be 'resample' or 'centre', got {mode!r}.")
        self.mode = mode

    def masked_points(self, x: torch.Tensor, generator: torch.Generator | None
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(masked B × N bool; owner B × N: the index of the masked patch's centre point of each masked
        point, -1 elsewhere; centres B × G: the centre point indices)."""
        b, n = x.shape[:2]
        xyz = x[..., :3]
        g = min(self.num_patches, n)
        centres = farthest_point_sampling(xyz, g, generator)  # B × G
        centre_xyz = xyz.gather(1, centres[..., None].expand(-1, -1, 3))
        groups = knn(centre_xyz, xyz, self.patch_size)  # B × G × k
        n_mask = int(round(self.ratio * g))
        chosen = torch.rand(b, g, generator=generator, device=x.device).argsort(dim=1) < n_mask  # B × G
        chosen &= self.sample_mask(b, generator, x.device)[:, None]
        k = groups.shape[-1]
        flat_groups = groups.reshape(b, -1)
        flat_chosen = chosen[..., None].expand(b, g, k).reshape(b, -1)
        hits = torch.zeros(b, n, dtype=torch.int32, device=x.device)
        hits.scatter_add_(1, flat_groups, flat_chosen.to(torch.int32))
        masked = hits > 0
        # the centre (a point index) of a masked patch holding each point; -1 where none (a point in
        # several masked patches takes the highest-numbered centre)
        centre_of = centres[..., None].expand(b, g, k).reshape(b, -1)
        owner = torch.full((b, n), -1, dtype=torch.long, device=x.device)
        owner = owner.scatter_reduce(1, torch.where(flat_chosen, flat_groups, torch.zeros_like(flat_groups)),
                                     torch.where(flat_chosen, centre_of, torch.full_like(centre_of, -1)),
                                     reduce="amax", include_self=True)
        return masked, owner, centres

    def apply(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        _check_batch("patch_mask", x)
        b, n = x.shape[:2]
        masked, owner, centres = self.masked_points(x, generator)
        if self.mode == "centre":
            centre_points = x.gather(1, owner.clamp_min(0)[..., None].expand(-1, -1, x.shape[-1]))
            return torch.where(masked[..., None], centre_points, x)
        score = masked.to(x.dtype)
        n_keep = (~masked).sum(dim=1)
        everything = n_keep == 0
        if bool(everything.any()):  # every point masked: keep the patch centres rather than nothing
            lowered = torch.zeros_like(score).scatter_(1, centres, -1.0)
            score = torch.where(everything[:, None], score + lowered, score)
            n_keep = torch.where(everything, torch.full_like(n_keep, centres.shape[1]), n_keep)
        return resample_kept(x, score, n_keep, generator)


# --------------------------------------------------------------------------- normalisation


def normalize_sphere(x: torch.Tensor) -> torch.Tensor:
    """Centre each cloud at its centroid and scale it so its farthest point lies on the unit sphere."""
    xyz = x[..., :3]
    centred = xyz - xyz.mean(dim=1, keepdim=True)
    radius = centred.norm(dim=-1).amax(dim=1).clamp_min(1e-12)
    return _with_xyz(x, centred / radius[:, None, None])


class NormalizeSphere(Augmentation):
    """Centre each cloud at its centroid and scale it into the unit sphere (deterministic; ``p`` applies)."""

    deterministic = True

    def __init__(self, p: float = 1.0) -> None:
        super().__init__(p)

    def apply(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        _check_batch("normalize", x)
        out = normalize_sphere(x)
        if self.p >= 1.0:
            return out
        return _where(self.sample_mask(x.shape[0], generator, x.device), out, x)


AUGMENTATIONS: dict[str, type[Augmentation]] = {
    "rotate_up": RotateUp,
    "rotate_so3": RotateSO3,
    "scale": Scale,
    "translate": Translate,
    "jitter": Jitter,
    "point_dropout": PointDropout,
    "crop": Crop,
    "patch_mask": PatchMask,
    "normalize": NormalizeSphere,
}
