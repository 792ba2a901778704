"""View transforms for 3-D volumes, vectorised over a batch ``B × C × D × H × W``.

Every transform draws its random parameters per sample from the generator it
is given, returns a new tensor (never writes into its input), keeps dtype and
device, and honours ``p`` (the probability that a sample is transformed).
Resampling uses ``affine_grid``/``grid_sample`` (trilinear), blurs a separable
``conv3d`` with one kernel per sample (grouped convolution), so one call
transforms the whole batch on any device.

The set follows the 3-D self-supervised literature: crops, flips and 90°
rotations (Taleb et al., "3D Self-Supervised Methods for Medical Imaging",
NeurIPS 2020); intensity scale/shift, gamma, noise, blur, small affine and
elastic deformation (nnU-Net's augmentation, Isensee et al. 2021); coarse
dropout / in-painting, local voxel shuffling and non-linear intensity
remapping (Models Genesis, Zhou et al., MedIA 2021); the random monotone
remapping also simulates another MRI contrast.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from contrastkit.core import Augmentation, ConfigError, DataError, JointAugmentation, check_number


# --------------------------------------------------------------------------- helpers
def _check_batch(x: Any, who: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim != 5:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise DataError(f"{who}: expected a batch of shape B × C × D × H × W, got {shape}.")
    if not x.is_floating_point():
        raise DataError(f"{who}: expected floating-point voxels, got {x.dtype}.")
    return x


def _uniform(lo: float, hi: float, shape: Sequence[int], g: torch.Generator | None, x: torch.Tensor) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(tuple(shape), generator=g, device=x.device, dtype=x.dtype)


def _per_sample(v: torch.Tensor) -> torch.Tensor:
    """A per-sample vector (B,) shaped to broadcast over B × C × D × H × W."""
    return v.view(-1, 1, 1, 1, 1)


def _select(mask: torch.Tensor, new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    return torch.where(_per_sample(mask), new, old)


def _minmax(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    flat = x.flatten(1)
    return _per_sample(flat.min(1).values), _per_sample(flat.max(1).values)


def _resample(x: torch.Tensor, theta: torch.Tensor, padding: str = "border") -> torch.Tensor:
    """Trilinear resampling of x through per-sample affine maps theta (B × 3 × 4, output -> input)."""
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding, align_corners=False)


# --------------------------------------------------------------------------- crops
def crop_theta(centre: torch.Tensor, half: torch.Tensor) -> torch.Tensor:
    """Affine maps (B × 3 × 4) sampling the boxes ``centre ± half`` (normalised coords, order D, H, W)."""
    b = centre.shape[0]
    theta = torch.zeros(b, 3, 4, dtype=centre.dtype, device=centre.device)
    # affine_grid's coordinates are (x, y, z) = (W, H, D): reverse the axis order.
    for i, axis in enumerate((2, 1, 0)):
        theta[:, i, i] = half[:, axis]
        theta[:, i, 3] = centre[:, axis]
    return theta


def box_overlap(c1: torch.Tensor, a1: torch.Tensor, c2: torch.Tensor, a2: torch.Tensor) -> torch.Tensor:
    """Intersection volume of two boxes divided by the smaller box's volume (per sample)."""
    inter = (torch.minimum(c1 + a1, c2 + a2) - torch.maximum(c1 - a1, c2 - a2)).clamp(min=0).prod(-1)
    return inter / torch.minimum((2 * a1).prod(-1), (2 * a2).prod(-1))


class OverlappingCrops(JointAugmentation):
    """K random 3-D crops of each sample that overlap, each resized back to the sample's size.

    Each view's box has side ``scale`` × the sample's side (the same fraction
    on every axis, ``scale`` uniform in ``[min_scale, max_scale]``), lies inside
    the sample, and overlaps view 1's box by at least ``min_overlap`` of the
    smaller box's volume (per axis, the centres are at most
    ``a₁ + a₂ − 2·min_overlap^{1/3}·min(a₁, a₂)`` apart, for half-sides a).
    The crops are resampled trilinearly to the input size, so the views batch
    together (the SimCLR random-resized crop, made 3-D and joint; cf. the two
    overlapping crops of PCRL/SwinUNETR pretraining).
    """

    def __init__(self, min_scale: float = 0.5, max_scale: float = 1.0, min_overlap: float = 0.5) -> None:
        who = type(self).__name__
        self.min_scale = check_number(who, "min_scale", min_scale, 0.0, 1.0, open_lo=True)
        self.max_scale = check_number(who, "max_scale", max_scale, 0.0, 1.0, open_lo=True)
        if self.min_scale > self.max_scale:
            raise ConfigError(f"{who}: min_scale {min_scale} exceeds max_scale {max_scale}.")
        self.min_overlap = check_number(who, "min_overlap", min_overlap, 0.0, 1.0)

    def draw_boxes(self, b: int, k: int, generator: torch.Generator | None, like: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """Centres and half-sides (B × K × 3, normalised coordinates) of the K boxes of each sample."""
        scale = _uniform(self.min_scale, self.max_scale, (b, k, 1), generator, like).expand(b, k, 3)
        half = scale.contiguous()
        room = 1.0 - half
        c1 = _uniform(-1.0, 1.0, (b, 3), generator, like) * room[:, 0]
        centres = [c1]
        r = self.min_overlap ** (1.0 / 3.0)
        for j in range(1, k):
            a1, a2 = half[:, 0], half[:, j]
            reach = (a1 + a2 - 2 * r * torch.minimum(a1, a2)).clamp(min=0)
            cj = c1 + _uniform(-1.0, 1.0, (b, 3), generator, like) * reach
            centres.append(torch.maximum(torch.minimum(cj, room[:, j]), -room[:, j]))
        return torch.stack(centres, 1), half

    def views(self, batch: torch.Tensor, k: int, generator: torch.Generator | None) -> list[torch.Tensor]:
        x = _check_batch(batch, type(self).__name__)
        centres, half = self.draw_boxes(x.shape[0], k, generator, x)
        return [_resample(x, crop_theta(centres[:, j], half[:, j])) for j in range(k)]


class RandomResizedCrop(Augmentation):
    """One random 3-D crop per sample (side fraction in ``[min_scale, max_scale]``), resized to the input size."""

    def __init__(self, min_scale: float = 0.5, max_scale: float = 1.0, p: float = 1.0) -> None:
        super().__init__(p)
        who = type(self).__name__
        self.min_scale = check_number(who, "min_scale", min_scale, 0.0, 1.0, open_lo=True)
        self.max_scale = check_number(who, "max_scale", max_scale, 0.0, 1.0, open_lo=True)
        if self.min_scale > self.max_scale:
            raise ConfigError(f"{who}: min_scale {min_scale} exceeds max_scale {max_scale}.")

    def apply(self, batch, generator):
        x = _check_batch(batch, type(self).__name__)
        b = x.shape[0]
        mask = self.sample_mask(b, generator, x.device)
        half = _uniform(self.min_scale, self.max_scale, (b, 1), generator, x).expand(b, 3)
        centre = _uniform(-1.0, 1.0, (b, 3), generator, x) * (1 - half)
        return _select(mask, _resample(x, crop_theta(centre, half)), x)


# --------------------------------------------------------------------------- geometry
class Flip(Augmentation):
    """Mirror each sample along each of ``axes`` (0 = D, 1 = H, 2 = W), each with probability ``p``."""

    def __init__(self, axes: Sequence[int] = (0, 1, 2), p: float = 0.5) -> None:
        super().__init__(p)
        axes = [axes] if isinstance(axes, int) else list(axes)
        if not axes or any(isinstance(a, bool) or a not in (0, 1, 2) for a in axes):
            raise ConfigError(f"Flip: axes must be a non-empty list of 0, 1, 2 (D, H, W), got {axes!r}.")
        self.axes = tuple(int(a) for a in axes)

    def apply(self, batch, generator):
        out = _check_batch(batch, "Flip")
        for a in self.axes:
            mask = self.sample_mask(out.shape[0], generator, out.device)
            out = _select(mask, out.flip(2 + a), out)
        return out if out is not batch else batch.clone()


class Rot90(Augmentation):
    """Rotate each sample by k·90° (k uniform in 0..3) in a random plane of two equal-sized spatial axes."""

    def __init__(self, p: float = 1.0) -> None:
        super().__init__(p)

    def apply(self, batch, generator):
        x = _check_batch(batch, "Rot90")
        b = x.shape[0]
        sizes = x.shape[2:]
        planes = [(i, j) for i in range(3) for j in range(i + 1, 3) if sizes[i] == sizes[j]]
        mask = self.sample_mask(b, generator, x.device)
        plane = torch.randint(0, max(1, len(planes)), (b,), generator=generator, device=x.device)
        k = torch.randint(0, 4, (b,), generator=generator, device=x.device)
        out = x.clone()
        if not planes:
            return out
        k = torch.where(mask, k, torch.zeros_like(k))
        for pi, (i, j) in enumerate(planes):
            for turns in (1, 2, 3):
                sel = (plane == pi) & (k == turns)
                if bool(sel.any()):
                    out[sel] = torch.rot90(x[sel], turns, dims=(2 + i, 2 + j))
        return out


def rotation_matrices(angles: torch.Tensor) -> torch.Tensor:
    """B × 3 × 3 rotations from Euler angles (B × 3, radians) about the three axes."""
    cx, cy, cz = torch.cos(angles).unbind(-1)
    sx, sy, sz = torch.sin(angles).unbind(-1)
    one, zero = torch.ones_like(cx), torch.zeros_like(cx)
    rx = torch.stack([one, zero, zero, zero, cx, -sx, zero, sx, cx], -1).view(-1, 3, 3)
    ry = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).view(-1, 3, 3)
    rz = torch.stack([cz, -sz, zero, sz, cz, zero, zero, zero, one], -1).view(-1, 3, 3)
    return rz @ ry @ rx


class RandomAffine(Augmentation):
    """Small random rotation (± ``degrees`` about each axis), isotropic scaling (± ``scale``) and translation
    (± ``translate`` of the half side), trilinear, edges replicated."""

    def __init__(self, degrees: float = 10.0, scale: float = 0.1, translate: float = 0.05, p: float = 1.0) -> None:
        super().__init__(p)
        self.degrees = check_number("RandomAffine", "degrees", degrees, 0.0, 180.0)
        self.scale = check_number("RandomAffine", "scale", scale, 0.0, 0.9)
        self.translate = check_number("RandomAffine", "translate", translate, 0.0, 1.0)

    def apply(self, batch, generator):
        x = _check_batch(batch, "RandomAffine")
        b = x.shape[0]
        mask = self.sample_mask(b, generator, x.device)
        angles = _uniform(-1, 1, (b, 3), generator, x) * math.radians(self.degrees)
        s = 1.0 + _uniform(-self.scale, self.scale, (b, 1, 1), generator, x)
        t = _uniform(-self.translate, self.translate, (b, 3, 1), generator, x)
        theta = torch.cat([rotation_matrices(angles) * s, t], dim=2)
        return _select(mask, _resample(x, theta), x)


class ElasticDeform(Augmentation):
    """Smooth random displacement field: Gaussian displacements (std ``sigma`` voxels) on a ``grid``³ lattice
    of control points, upsampled trilinearly, added to the identity sampling grid."""

    def __init__(self, sigma: float = 1.5, grid: int = 4, p: float = 1.0) -> None:
        super().__init__(p)
        self.sigma = check_number("ElasticDeform", "sigma", sigma, 0.0, None)
        if isinstance(grid, bool) or not isinstance(grid, int) or grid < 2:
            raise ConfigError(f"ElasticDeform: grid must be an integer ≥ 2, got {grid!r}.")
        self.grid = grid

    def apply(self, batch, generator):
        x = _check_batch(batch, "ElasticDeform")
        b, _, d, h, w = x.shape
        mask = self.sample_mask(b, generator, x.device)
        coarse = torch.randn((b, 3, self.grid, self.grid, self.grid), generator=generator, device=x.device,
                             dtype=x.dtype) * self.sigma
        # voxels -> normalised units, in affine_grid's (x, y, z) = (W, H, D) order
        units = torch.tensor([2.0 / w, 2.0 / h, 2.0 / d], dtype=x.dtype, device=x.device).view(1, 3, 1, 1, 1)
        field = F.interpolate(coarse * units, size=(d, h, w), mode="trilinear", align_corners=True)
        eye = torch.eye(3, 4, dtype=x.dtype, device=x.device).expand(b, 3, 4)
        grid = F.affine_grid(eye, list(x.shape), align_corners=False) + field.permute(0, 2, 3, 4, 1)
        out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return _select(mask, out, x)


# --------------------------------------------------------------------------- intensity
class IntensityScaleShift(Augmentation):
    """``x · a + b`` with ``a`` uniform in ``1 ± scale`` and ``b`` uniform in ``± shift`` per sample."""

    def __init__(self, scale: float = 0.1, shift: float = 0.1, p: float = 1.0) -> None:
        super().__init__(p)
        self.scale = check_number("IntensityScaleShift", "scale", scale, 0.0, 1.0)
        self.shift = check_number("IntensityScaleShift", "shift", shift, 0.0, None)

    def apply(self, batch, generator):
        x = _check_batch(batch, "IntensityScaleShift")
        b = x.shape[0]
        mask = self.sample_mask(b, generator, x.device)
        a = _per_sample(_uniform(1 - self.scale, 1 + self.scale, (b,), generator, x))
        c = _per_sample(_uniform(-self.shift, self.shift, (b,), generator, x))
        return _select(mask, x * a + c, x)


class Gamma(Augmentation):
    """Gamma correction: each sample's range mapped to [0, 1], raised to γ = exp(U(−log_gamma, log_gamma)),
    mapped back (the minimum and maximum stay where they are)."""

    def __init__(self, log_gamma: float = 0.3, p: float = 1.0) -> None:
        super().__init__(p)
        self.log_gamma = check_number("Gamma", "log_gamma", log_gamma, 0.0, 3.0)

    def apply(self, batch, generator):
        x = _check_batch(batch, "Gamma")
        b = x.shape[0]
        mask = self.sample_mask(b, generator, x.device)
        gamma = _per_sample(torch.exp(_uniform(-self.log_gamma, self.log_gamma, (b,), generator, x)))
        lo, hi = _minmax(x)
        span = (hi - lo).clamp(min=1e-8)
        u = ((x - lo) / span).clamp(0, 1)
        return _select(mask, lo + span * u.pow(gamma), x)


class GaussianNoise(Augmentation):
    """Additive Gaussian noise whose standard deviation is uniform in ``[0, sigma]`` per sample."""

    def __init__(self, sigma: float = 0.1, p: float = 1.0) -> None:
        super().__init__(p)
        self.sigma = check_number("GaussianNoise", "sigma", sigma, 0.0, None)

    def apply(self, batch, generator):
        x = _check_batch(batch, "GaussianNoise")
        b = x.shape[0]
        mask = self.sample_mask(b, generator, x.device)
        std = _per_sample(_uniform(0.0, self.sigma, (b,), generator, x) * mask.to(x.dtype))
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return x + std * noise


def gaussian_kernels(sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """Normalised 1-D Gaussian kernels (N × (2·radius + 1)) for per-row ``sigma``."""
    t = torch.arange(-radius, radius + 1, dtype=sigma.dtype, device=sigma.device)
    k = torch.exp(-0.5 * (t[None] / sigma[:, None].clamp(min=1e-3)) ** 2)
    return k / k.sum(1, keepdim=True)


def blur3d(x: torch.Tensor, sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """Separable Gaussian blur with one σ per sample (B,): three grouped 1-D conv3d passes, edges replicated."""
    b, c = x.shape[:2]
    kern = gaussian_kernels(sigma, radius).repeat_interleave(c, 0)  # (B·C, K)
    y = x.reshape(1, b * c, *x.shape[2:])
    for axis in range(3):
        shape = [1, 1, 1]
        shape[axis] = 2 * radius + 1
        weight = kern.view(b * c, 1, *shape)
        pad = [0, 0, 0, 0, 0, 0]
        pad[2 * (2 - axis)] = pad[2 * (2 - axis) + 1] = radius
        y = F.conv3d(F.pad(y, pad, mode="replicate"), weight, groups=b * c)
    return y.view_as(x)


class GaussianBlur(Augmentation):
    """Gaussian blur with σ uniform in ``[sigma_min, sigma_max]`` voxels per sample (separable conv3d)."""

    def __init__(self, sigma_min: float = 0.5, sigma_max: float = 1.5, p: float = 1.0) -> None:
        super().__init__(p)
        self.sigma_min = check_number("GaussianBlur", "sigma_min", sigma_min, 0.0, None, open_lo=True)
        self.sigma_max = check_number("GaussianBlur", "sigma_max", sigma_max, 0.0, 10.0, open_lo=True)
        if self.sigma_min > self.sigma_max:
            raise ConfigError(f"GaussianBlur: sigma_min {sigma_min} exceeds sigma_max {sigma_max}.")

    def apply(self, batch, generator):
        x = _check_batch(batch, "GaussianBlur")
        b = x.shape[0]
        mask = self.sample_mask(b, generator, x.device)
        sigma = _uniform(self.sigma_min, self.sigma_max, (b,), generator, x)
        radius = max(1, min(int(math.ceil(3 * self.sigma_max)), (min(x.shape[2:]) - 1) // 2 or 1))
        return _select(mask, blur3d(x, sigma, radius), x)


class ContrastRemap(Augmentation):
    """MRI contrast simulation: a random monotone piecewise-linear intensity curve per sample.

    Each sample's range is mapped to [0, 1], passed through a curve with
    ``knots`` equally spaced knots whose values are cumulative sums of random
    positive steps (increasing; decreasing — an inverted contrast, like T1 vs
    T2 — with probability ``invert``), and mapped back to the sample's range.
    The order of intensities is kept (or exactly reversed): anatomy stays,
    contrast changes (cf. the non-linear transformation of Models Genesis).
    """

    def __init__(self, knots: int = 4, invert: float = 0.0, p: float = 1.0) -> None:
        super().__init__(p)
        if isinstance(knots, bool) or not isinstance(knots, int) or knots < 1:
            raise ConfigError(f"ContrastRemap: knots must be an integer ≥ 1, got {knots!r}.")
        self.knots = knots
        self.invert = check_number("ContrastRemap", "invert", invert, 0.0, 1.0)

    def curves(self, b: int, generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
        """B × (knots + 1) curve values at the knots, from 0 to 1 (or 1 to 0 where inverted)."""
        steps = _uniform(0.1, 1.0, (b, self.knots), generator, like)
        y = torch.cat([torch.zeros(b, 1, dtype=like.dtype, device=like.device), steps.cumsum(1)], 1)
        y = y / y[:, -1:]
        flip = torch.rand(b, generator=generator, device=like.device) < self.invert
        return torch.where(flip[:, None], 1 - y, y)

    def apply(self, batch, generator):
        x = _check_batch(batch, "ContrastRemap")
        b = x.shape[0]
        mask = self.sample_mask(b, generator, x.device)
        y = self.curves(b, generator, x)
        lo, hi = _minmax(x)
        span = (hi - lo).clamp(min=1e-8)
        u = ((x - lo) / span).clamp(0, 1).flatten(1) * self.knots
        idx = u.floor().clamp(max=self.knots - 1).long()
        frac = u - idx.to(u.dtype)
        left, right = y.gather(1, idx), y.gather(1, idx + 1)
        out = (lo.flatten(1) + span.flatten(1) * (left + frac * (right - left))).view_as(x)
        return _select(mask, out, x)


# --------------------------------------------------------------------------- occlusion and shuffling
class CoarseDropout(Augmentation):
    """Cut ``holes`` random boxes (sides uniform in ``[size/2, size]`` of the sample's side) out of each
    sample, filled with ``fill``: "min" (the sample's minimum, i.e. background), "zero", "mean" or "noise"
    (the in-painting views of Pathak et al. 2016 / Models Genesis)."""

    FILLS = ("min", "zero", "mean", "noise")

    def __init__(self, holes: int = 3, size: float = 0.3, fill: str = "min", p: float = 1.0) -> None:
        super().__init__(p)
        if isinstance(holes, bool) or not isinstance(holes, int) or holes < 1:
            raise ConfigError(f"CoarseDropout: holes must be an integer ≥ 1, got {holes!r}.")
        self.holes = holes
        self.size = check_number("CoarseDropout", "size", size, 0.0, 1.0, open_lo=True)
        if fill not in self.FILLS:
            raise ConfigError(f"CoarseDropout: fill must be one of {', '.join(self.FILLS)}, got {fill!r}.")
        self.fill = fill

    def hole_mask(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """B × 1 × D × H × W boolean mask of the voxels to drop."""
        b = x.shape[0]
        mask = self.sample_mask(b, generator, x.device)
        per_axis = []
        for axis, n in enumerate(x.shape[2:]):
            side = _uniform(self.size / 2, self.size, (b, self.holes), generator, x) * n
            start = _uniform(0, 1, (b, self.holes), generator, x) * (n - side)
            pos = torch.arange(n, device=x.device, dtype=x.dtype) + 0.5
            per_axis.append((pos >= start[..., None]) & (pos < (start + side)[..., None]))  # B × holes × n
        md, mh, mw = per_axis
        full = md[..., :, None, None] & mh[..., None, :, None] & mw[..., None, None, :]
        return (full.any(1) & mask.view(-1, 1, 1, 1))[:, None]

    def apply(self, batch, generator):
        x = _check_batch(batch, "CoarseDropout")
        holes = self.hole_mask(x, generator)
        if self.fill == "zero":
            value = torch.zeros_like(x)
        elif self.fill == "min":
            value = _minmax(x)[0].expand_as(x)
        elif self.fill == "mean":
            value = x.mean(dim=(1, 2, 3, 4), keepdim=True).expand_as(x)
        else:
            value = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype) * \
                x.std(dim=(1, 2, 3, 4), keepdim=True) + x.mean(dim=(1, 2, 3, 4), keepdim=True)
        return torch.where(holes, value, x)


class LocalShuffle(Augmentation):
    """Local voxel shuffling (Models Genesis): the sample is cut into cubes of ``block`` voxels and the voxels
    inside a random ``fraction`` of the cubes are permuted; each cube keeps its own voxels."""

    def __init__(self, block: int = 4, fraction: float = 0.3, p: float = 1.0) -> None:
        super().__init__(p)
        if isinstance(block, bool) or not isinstance(block, int) or block < 2:
            raise ConfigError(f"LocalShuffle: block must be an integer ≥ 2, got {block!r}.")
        self.block = block
        self.fraction = check_number("LocalShuffle", "fraction", fraction, 0.0, 1.0)

    def apply(self, batch, generator):
        x = _check_batch(batch, "LocalShuffle")
        b, c, d, h, w = x.shape
        k = self.block
        nd, nh, nw = d // k, h // k, w // k
        out = x.clone()
        if min(nd, nh, nw) == 0:
            return out
        mask = self.sample_mask(b, generator, x.device)
        core = x[:, :, : nd * k, : nh * k, : nw * k]
        cells = core.reshape(b, c, nd, k, nh, k, nw, k).permute(0, 2, 4, 6, 1, 3, 5, 7).reshape(b, nd * nh * nw, c,
                                                                                                   k ** 3)
        n_cells = cells.shape[1]
        order = torch.rand((b, n_cells, k ** 3), generator=generator, device=x.device).argsort(-1)
        chosen = (torch.rand((b, n_cells), generator=generator, device=x.device) < self.fraction) & mask[:, None]
        ident = torch.arange(k ** 3, device=x.device).expand(b, n_cells, k ** 3)
        order = torch.where(chosen[..., None], order, ident)
        shuffled = cells.gather(3, order[:, :, None, :].expand(b, n_cells, c, k ** 3))
        back = shuffled.reshape(b, nd, nh, nw, c, k, k, k).permute(0, 4, 1, 5, 2, 6, 3, 7).reshape(b, c, nd * k,
                                                                                                    nh * k, nw * k)
        out[:, :, : nd * k, : nh * k, : nw * k] = back
        return out


#: Registered per-view augmentations, by name.
AUGMENTATIONS: dict[str, type] = {
    "random_resized_crop": RandomResizedCrop,
    "flip": Flip,
    "rot90": Rot90,
    "affine": RandomAffine,
    "elastic": ElasticDeform,
    "intensity_scale_shift": IntensityScaleShift,
    "gamma": Gamma,
    "gaussian_noise": GaussianNoise,
    "gaussian_blur": GaussianBlur,
    "contrast_remap": ContrastRemap,
    "coarse_dropout": CoarseDropout,
    "local_shuffle": LocalShuffle,
    # a joint augmentation: configure it under joint_view
    "overlapping_crops": OverlappingCrops,
}
