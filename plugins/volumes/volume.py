"""Volume handles and patch items: what a volumes ``Samples`` holds.

A :class:`Volume` is a *reference* to one 3-D image — a NIfTI file read
through nibabel, a ``.npy`` file, or an array generated in memory — that
knows its shape, affine and voxel spacing and reads any box of voxels on
demand.  Uncompressed files (``.nii``, ``.npy``) are read through memory maps
(nibabel's array proxy, ``np.load(mmap_mode="r")``), so a patch touches only
its own bytes and a large volume is never loaded whole; a gzip stream cannot
be sliced, so a ``.nii.gz`` is decompressed once and kept while the process
uses it (up to ``max_in_memory_mb``; beyond that each read goes through the
proxy again).

A :class:`Patch` is one item: a volume, a box in it (corner and extent, in
voxels) and the size the box is resampled to (equal to the extent for plain
patches; a fixed shape for whole volumes of different sizes), plus the
intensity normalisation that ``prepare`` fitted.  Patches are tiny and
picklable: the cached voxels of a volume are dropped when it is pickled or
deep-copied.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from contrastkit.core import DataError

#: File name endings of the volume formats.
NIFTI_SUFFIXES = (".nii.gz", ".nii")
NPY_SUFFIXES = (".npy",)
VOLUME_SUFFIXES = NIFTI_SUFFIXES + NPY_SUFFIXES

#: A compressed volume below this size stays in memory after its first read.
MAX_IN_MEMORY_MB = 1024


def volume_name(path: str | os.PathLike) -> str:
    """The file name without its volume suffix (``sub-01_T1w.nii.gz`` -> ``sub-01_T1w``)."""
    name = Path(path).name
    for suffix in VOLUME_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _why(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160].rstrip(".")


class Volume:
    """A 3-D image, read lazily.

    ``path``      the file (None for an in-memory array).
    ``index``     for a 4-D file, which volume along the 4th axis (``data_options.volume_index``).
    ``array``     an in-memory (or memory-mapped) 3-D array instead of a file.
    ``key``       the name used in ids (default: the file name without suffix).

    Raises :class:`DataError` naming the file for unreadable, truncated or
    non-3-D data.
    """

    def __init__(self, path: str | os.PathLike | None = None, *, index: int | None = None,
                 array: np.ndarray | None = None, key: str | None = None,
                 affine: np.ndarray | None = None) -> None:
        if (path is None) == (array is None):
            raise DataError("a volume needs either a file or an array.")
        self.path = None if path is None else str(path)
        self.index = None if index is None else int(index)
        self.key = key if key is not None else volume_name(self.path) if self.path else "volume"
        self._cache: np.ndarray | None = None
        self._proxy: Any = None
        #: replace NaN/inf voxels by 0 when read (data_options.nan = "zero")
        self.fill_nan = False
        if array is not None:
            array = np.asarray(array)
            self._check_dims(array.shape, "the array")
            self._cache = array
            self.shape = tuple(int(s) for s in array.shape[:3])
            self.affine = np.eye(4) if affine is None else np.asarray(affine, dtype=float)
        else:
            self._open()
        self.spacing = tuple(float(v) for v in np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0)))

    # ------------------------------------------------------------------ opening
    @property
    def compressed(self) -> bool:
        return bool(self.path) and self.path.lower().endswith(".gz")

    def _check_dims(self, shape: Sequence[int], where: str) -> None:
        shape = tuple(int(s) for s in shape)
        while len(shape) > 3 and shape[-1] == 1:  # trailing singleton axes (e.g. 128 × 128 × 10 × 1)
            shape = shape[:-1]
        if len(shape) == 3:
            if self.index not in (None, 0):
                raise DataError(f"{where} is 3-D {shape}; data_options.volume_index={self.index} applies to 4-D "
                                "volumes only.")
            return
        if len(shape) == 4:
            if self.index is None:
                raise DataError(f"{where} is 4-D {shape}; pick one volume along the 4th axis with "
                                f"data_options.volume_index (0 to {shape[3] - 1}).")
            if not 0 <= self.index < shape[3]:
                raise DataError(f"{where} has {shape[3]} volumes along the 4th axis; data_options.volume_index="
                                f"{self.index} is out of range (0 to {shape[3] - 1}).")
            return
        raise DataError(f"{where} has shape {shape}; expected a 3-D volume (or 4-D with data_options.volume_index).")

    def _open(self) -> None:
        path = self.path
        if not os.path.isfile(path):
            raise DataError(f"{path}: no such file.")
        if os.path.getsize(path) == 0:
            raise DataError(f"{path}: the file is empty; expected a NIfTI (.nii/.nii.gz) or .npy volume.")
        lower = path.lower()
        if lower.endswith(NPY_SUFFIXES):
            try:
                arr = np.load(path, mmap_mode="r", allow_pickle=False)
            except Exception as exc:  # noqa: BLE001 - any parse failure is a bad file
                raise DataError(f"{path}: not a readable .npy array ({_why(exc)}).") from None
            if arr.dtype.kind not in "biuf":
                raise DataError(f"{path}: holds {arr.dtype} values; expected numbers.")
            self._check_dims(arr.shape, path)
            self._proxy = arr
            self.shape = tuple(int(s) for s in arr.shape[:3])
            self.affine = np.eye(4)
            return
        import nibabel as nib

        try:
            img = nib.load(path)
        except Exception as exc:  # noqa: BLE001 - nibabel raises many types for a bad header
            raise DataError(f"{path}: not a readable NIfTI volume ({_why(exc)}).") from None
        self._check_dims(img.shape, path)
        self._proxy = img.dataobj
        self.shape = tuple(int(s) for s in img.shape[:3])
        self.affine = np.asarray(img.affine, dtype=float)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        if self.path is not None:  # drop what can be re-read
            state["_cache"] = None
            state["_proxy"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Volume):
            return NotImplemented
        if self.path is None or other.path is None:
            return self is other or (self.path == other.path and self.key == other.key
                                     and self._cache is not None and other._cache is not None
                                     and self._cache.shape == other._cache.shape
                                     and np.array_equal(self._cache, other._cache))
        return (self.path, self.index, self.key) == (other.path, other.index, other.key)

    def __hash__(self) -> int:
        return hash((self.path, self.index, self.key))

    def __repr__(self) -> str:
        src = self.path if self.path else "array"
        idx = f", index={self.index}" if self.index is not None else ""
        return f"Volume({src!r}{idx}, shape={self.shape})"

    # ------------------------------------------------------------------ reading
    def _source(self) -> Any:
        if self._cache is not None:
            return self._cache
        if self._proxy is None:
            self._open()
        if self.compressed and np.prod(self.shape) * 4 <= MAX_IN_MEMORY_MB * 2**20:
            # gzip allows no random access: decompress once, keep the (selected) 3-D volume
            self._cache = self._read_from(self._proxy, (slice(None),) * 3, fill=False)
            return self._cache
        return self._proxy

    def _read_from(self, src: Any, index: tuple, fill: bool) -> np.ndarray:
        ndim = len(getattr(src, "shape", ()))
        if ndim > 3:
            index = index + (self.index or 0,) + (0,) * (ndim - 4)
        try:
            out = np.asarray(src[index], dtype=np.float32)
        except (EOFError, OSError, zlib.error, ValueError) as exc:
            raise DataError(f"{self.path}: the voxel data cannot be read ({_why(exc)}); the file may be "
                            "truncated or corrupt.") from None
        if fill:
            out = np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)
        return out

    def _read(self, index: tuple) -> np.ndarray:
        return self._read_from(self._source(), index, self.fill_nan)

    def load(self) -> np.ndarray:
        """The whole volume as float32 (compressed files stay in memory after their first read)."""
        return self._read((slice(None),) * 3)

    @property
    def in_memory(self) -> bool:
        """Whether reads are served from memory (arrays, and compressed files after their first read)."""
        return self._cache is not None or self.compressed

    def strided(self, axes: Sequence[np.ndarray]) -> np.ndarray:
        """The voxels at the grid ``axes[0] × axes[1] × axes[2]`` (each an arithmetic progression)."""
        index = []
        for a in axes:
            step = int(a[1] - a[0]) if len(a) > 1 else 1
            index.append(slice(int(a[0]), int(a[-1]) + 1, step))
        return self._read(tuple(index))

    def scan(self, slab_voxels: int = 1 << 24) -> tuple[int, tuple[int, int, int] | None]:
        """(number of NaN/inf voxels, the first one), read slab by slab so a large file never sits in memory."""
        if self.in_memory:
            data = self.load()
            bad = ~np.isfinite(data)
            n = int(bad.sum())
            return n, (tuple(int(i) for i in np.argwhere(bad)[0]) if n else None)
        plane = max(1, self.shape[1] * self.shape[2])
        step = max(1, slab_voxels // plane)
        total, first = 0, None
        for x0 in range(0, self.shape[0], step):
            block = self._read((slice(x0, min(self.shape[0], x0 + step)), slice(None), slice(None)))
            bad = ~np.isfinite(block)
            if bad.any():
                total += int(bad.sum())
                if first is None:
                    i = np.argwhere(bad)[0]
                    first = (int(i[0]) + x0, int(i[1]), int(i[2]))
        return total, first

    def region(self, corner: Sequence[int], extent: Sequence[int]) -> np.ndarray:
        """The float32 voxels of the box ``corner : corner + extent``; outside the volume, the edge value."""
        lo = np.asarray(corner, dtype=int)
        hi = lo + np.asarray(extent, dtype=int)
        shape = np.asarray(self.shape)
        clo, chi = np.clip(lo, 0, shape), np.clip(hi, 0, shape)
        block = self._read(tuple(slice(int(a), int(b)) for a, b in zip(clo, chi)))
        if (clo != lo).any() or (chi != hi).any():
            if block.size == 0:
                raise DataError(f"{self.key}: the box at {tuple(lo)} of size {tuple(hi - lo)} lies outside the "
                                f"volume of shape {self.shape}.")
            block = np.pad(block, [(int(a), int(b)) for a, b in zip(clo - lo, hi - chi)], mode="edge")
        return block


@dataclass(frozen=True)
class Patch:
    """One item: a box of a volume, resampled to ``size``, with its intensity normalisation.

    ``norm`` is ``(lo, hi, mean, std)``: voxels are clipped to ``[lo, hi]`` then
    standardised; None leaves raw intensities.
    """

    volume: Volume
    corner: tuple[int, int, int]
    extent: tuple[int, int, int]
    size: tuple[int, int, int]
    norm: tuple[float, float, float, float] | None = None

    @property
    def centre(self) -> tuple[int, int, int]:
        return tuple(int(c + e // 2) for c, e in zip(self.corner, self.extent))

    def with_norm(self, norm: tuple[float, float, float, float] | None) -> "Patch":
        return replace(self, norm=norm)

    def raw(self) -> np.ndarray:
        return self.volume.region(self.corner, self.extent)
