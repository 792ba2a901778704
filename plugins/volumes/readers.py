"""Readers for 3-D volumes: NIfTI and .npy files, folders of them, and named data sets that ship offline.

Both readers return :class:`~contrastkit.core.data.Samples` whose items are
:class:`~contrastkit.plugins.volumes.volume.Patch` references (a volume, a box
in it, its output size), never copies of the voxels.

**Granularity.**  ``data_options.granularity = "patch"`` (the default unless
labels are given per volume) cuts every volume into cubes of
``patch_size`` voxels whose centres lie on a grid of step ``stride`` inside
the volume's foreground; ids are ``(volume, x, y, z)`` (the centre voxel) and
``meta["id_columns"] = ["volume", "x", "y", "z"]``.  ``"volume"`` makes one
item per volume, resampled to ``volume_size`` voxels a side.

**Labels** (optional, for evaluation only):

* per voxel — a label volume of the image's shape (``data_options.labels`` =
  a file for a one-volume source or a folder of label volumes named like the
  images, or a folder with ``images/`` and ``labels/`` sub-folders): a patch's
  label is the label voxel at its centre, except values listed in
  ``data_options.ignore_label`` (e.g. 0 = background / outside the atlas),
  which leave the patch unlabelled (pretraining only; a ``note:`` line counts
  them);
* per volume — a CSV (``data_options.labels`` = ``x.csv`` or a ``labels.csv``
  in the folder) with columns ``volume`` and ``label`` (and optionally
  ``split``: train/test), or a folder of
  class sub-folders (``folder/<class>/<volume>.nii.gz``).

**Split.**  A split the source gives is used as it is: a folder with exactly
``train/`` and ``test/`` sub-folders (each in any of the layouts above, both
labelled the same way), or a ``split`` column in the labels CSV; all patches of
a volume go to its side.  Otherwise: overlapping patches of one volume must not
fall on both sides of a train/test split, or a probe is tested on voxels it
was fitted on.  For labelled
data with fewer than five volumes (``split = "auto"``) the space is cut into cubic blocks
of ``split_block`` voxels, each block goes to train or test by a hash of its
index (20% test), and a patch whose box touches blocks of both sides is
dropped; with five volumes or more, whole volumes go to one side (a hash of
the volume's name).  Unlabelled patches get core's hash-of-id split (they
feed pretraining only).

**Foreground.**  Voxels above ``min + 0.1 · (p99 − min)`` of the volume; patch
centres are drawn there only.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from contrastkit.core import (
    TEST, TRAIN, ConfigError, DataError, Reader, Samples, file_fingerprint, hash_split, package_path,
)

from .volume import VOLUME_SUFFIXES, Patch, Volume, volume_name

__all__ = ["VolumeReader", "VolumeDatasets", "READERS", "OPTION_DEFAULTS", "foreground_threshold"]

#: data_options understood by both readers, with their defaults.
OPTION_DEFAULTS: dict[str, Any] = {
    "granularity": "auto",     # "patch" | "volume" | "auto" (volume when labels are per volume)
    "patch_size": 16,
    "stride": None,            # default: patch_size // 2
    "patches_per_volume": 2000,
    "volume_size": 32,
    "volume_index": None,
    "labels": None,
    "split": "auto",           # "auto" | "block" | "volume"
    "split_block": None,       # default: 3 * patch_size
    "nan": "error",            # "error" | "zero"
    "ignore_label": None,      # label value(s) of a label volume that mean "no label" (e.g. 0 = background)
}
GRANULARITIES = ("auto", "patch", "volume")
SPLITS = ("auto", "block", "volume")
ID_COLUMNS = ["volume", "x", "y", "z"]
#: Fewer volumes than this are split by blocks of space (auto).
MIN_VOLUMES_FOR_VOLUME_SPLIT = 5


# --------------------------------------------------------------------------- options
def _int_option(opts: dict, key: str, minimum: int = 1) -> int:
    v = opts[key]
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
        raise ConfigError(f"data_options.{key} must be an integer ≥ {minimum}, got {v!r}.")
    return int(v)


def resolve_options(options: dict | None) -> dict:
    """``data_options`` merged over :data:`OPTION_DEFAULTS`, checked; unknown keys are kept for prepare."""
    opts = {**OPTION_DEFAULTS, **{k: v for k, v in (options or {}).items() if v is not None or k in OPTION_DEFAULTS}}
    for key, valid in (("granularity", GRANULARITIES), ("split", SPLITS), ("nan", ("error", "zero"))):
        if opts[key] not in valid:
            raise ConfigError(f"data_options.{key} must be one of {', '.join(valid)}, got {opts[key]!r}.")
    opts["patch_size"] = _int_option(opts, "patch_size", 2)
    opts["stride"] = opts["patch_size"] // 2 if opts["stride"] is None else _int_option(opts, "stride")
    opts["stride"] = max(1, opts["stride"])
    opts["patches_per_volume"] = _int_option(opts, "patches_per_volume")
    opts["volume_size"] = _int_option(opts, "volume_size", 2)
    opts["split_block"] = 3 * opts["patch_size"] if opts["split_block"] is None else _int_option(opts, "split_block")
    if opts["volume_index"] is not None:
        opts["volume_index"] = _int_option(opts, "volume_index", 0)
    opts["ignore_label"] = _ignore_option(opts["ignore_label"])
    return opts


def _ignore_option(value: Any) -> tuple[int, ...]:
    """``data_options.ignore_label`` (None, an int or a list of ints) as a sorted tuple of ints."""
    values = [] if value is None else list(value) if isinstance(value, (list, tuple)) else [value]
    if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in values):
        raise ConfigError(f"data_options.ignore_label must be an integer label or a list of them (e.g. 0 for "
                          f"background), got {value!r}.")
    return tuple(sorted({int(v) for v in values}))


# --------------------------------------------------------------------------- helpers
def foreground_threshold(data: np.ndarray) -> float:
    """``min + 0.1 · (p99 − min)``: above it a voxel is foreground (head, not air)."""
    lo = float(np.min(data))
    p99 = float(np.percentile(data, 99))
    return lo + 0.1 * (p99 - lo)


def _check_finite(vol: Volume, nan: str) -> None:
    """Refuse NaN/inf voxels (or zero them when reading, with ``nan = "zero"``)."""
    if nan == "zero":
        vol.fill_nan = True
        return
    count, first = vol.scan()
    if count:
        raise DataError(f"{vol.path or vol.key}: {count} voxel(s) are NaN or infinite, the first at {first}; fix the "
                        "file or set data_options.nan = \"zero\".")


def _grid_axes(shape: Sequence[int], patch: int, stride: int) -> list[np.ndarray] | None:
    """Per axis, the centres of step ``stride`` whose whole box fits in the volume (None if none fits)."""
    half = patch // 2
    axes = []
    for dim in shape:
        first, last = half, dim - (patch - half)  # corner = centre - half in [0, dim - patch]
        if last < first:
            return None
        start = first + ((last - first) % stride) // 2
        axes.append(np.arange(start, last + 1, stride))
    return axes


def _grid_centres(vol: Volume, patch: int, stride: int, mask: np.ndarray | None = None) -> np.ndarray:
    """Grid centres whose voxel is foreground: ``mask`` if given, else above :func:`foreground_threshold`.

    Only the grid voxels are read (a strided read through the proxy), and the
    threshold comes from a strided sample of at most ~4 M voxels.
    """
    axes = _grid_axes(vol.shape, patch, stride)
    if axes is None:
        return np.zeros((0, 3), dtype=int)
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    if mask is not None:
        keep = mask[grid[:, 0], grid[:, 1], grid[:, 2]]
    else:
        step = max(1, int(np.ceil((np.prod(vol.shape) / 4e6) ** (1 / 3))))
        sample = vol.strided([np.arange(0, n, step) for n in vol.shape])
        keep = (vol.strided(axes) > foreground_threshold(sample)).reshape(-1)
    return grid[keep]


def _block_split_of(key: str, block: tuple[int, int, int]) -> str:
    return hash_split(f"{key}/block/{block[0]}/{block[1]}/{block[2]}")


def _block_split(key: str, centres: np.ndarray, patch: int, size: int) -> tuple[np.ndarray, list[str]]:
    """Keep the centres whose box lies in blocks of one side only; their split."""
    half = patch // 2
    lo = (centres - half) // size
    hi = (centres - half + patch - 1) // size
    cache: dict[tuple, str] = {}

    def side(b: tuple) -> str:
        if b not in cache:
            cache[b] = _block_split_of(key, b)
        return cache[b]

    keep, split = [], []
    for i in range(len(centres)):
        sides = {side((x, y, z)) for x in {lo[i, 0], hi[i, 0]} for y in {lo[i, 1], hi[i, 1]}
                 for z in {lo[i, 2], hi[i, 2]}}
        if len(sides) == 1:
            keep.append(i)
            split.append(sides.pop())
    return np.asarray(keep, dtype=int), split


def _fingerprint(paths: Sequence[str], opts: dict) -> str:
    import hashlib

    h = hashlib.sha256(file_fingerprint(*paths).encode() if paths else b"")
    keys = ("granularity", "patch_size", "stride", "patches_per_volume", "volume_size", "volume_index", "split",
            "split_block")
    h.update(repr([(k, opts[k]) for k in keys]).encode())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- building Samples
def patch_samples(volumes: Sequence[Volume], label_maps: Sequence[np.ndarray | None] | None, opts: dict,
                  source: str, fingerprint: str, volume_labels: Sequence[Any] | None = None,
                  masks: Sequence[np.ndarray | None] | None = None,
                  volume_split: Sequence[str] | None = None) -> Samples:
    """Patches of every volume: grid centres in the foreground, capped per volume, split by blocks or volumes
    (or by ``volume_split``, the side of each volume given by the source: train/test folders, a split column)."""
    patch, stride, cap = opts["patch_size"], opts["stride"], opts["patches_per_volume"]
    split_mode = opts["split"]
    if volume_split is not None:
        split_mode = "given"
    elif split_mode == "auto":
        split_mode = "volume" if len(volumes) >= MIN_VOLUMES_FOR_VOLUME_SPLIT else "block"
    ids, items, labels, split = [], [], [], []
    labelled = label_maps is not None and any(m is not None for m in label_maps) or volume_labels is not None
    ignore = set(opts.get("ignore_label") or ())
    ignored = 0
    rng = np.random.default_rng(0)
    for v, vol in enumerate(volumes):
        where = vol.path or vol.key
        if min(vol.shape) < patch:
            raise DataError(f"{where}: the volume of shape {vol.shape} is smaller than data_options.patch_size="
                            f"{patch}; lower patch_size.")
        _check_finite(vol, opts["nan"])
        lmap = label_maps[v] if label_maps is not None else None
        centres = _grid_centres(vol, patch, stride, masks[v] if masks is not None else None)
        if split_mode == "block":
            keep, sides = _block_split(vol.key, centres, patch, opts["split_block"])
            centres = centres[keep]
        elif split_mode == "given":
            sides = [volume_split[v]] * len(centres)
        else:
            sides = [hash_split(vol.key)] * len(centres)
        if len(centres) > cap:
            pick = np.sort(rng.choice(len(centres), size=cap, replace=False))
            centres, sides = centres[pick], [sides[i] for i in pick]
        if len(centres) == 0:
            raise DataError(f"{where}: no patch of {patch} voxels fits inside the foreground; lower "
                            "data_options.patch_size or data_options.stride.")
        half = patch // 2
        for c, s in zip(centres, sides):
            x, y, z = (int(t) for t in c)
            ids.append((vol.key, x, y, z))
            items.append(Patch(vol, (x - half, y - half, z - half), (patch,) * 3, (patch,) * 3))
            split.append(s)
            if lmap is not None:
                value = _label_value(lmap[x, y, z])
                if value in ignore:  # e.g. background: the patch feeds pretraining, no probe
                    value, ignored = None, ignored + 1
                labels.append(value)
            elif volume_labels is not None:
                labels.append(volume_labels[v])
            else:
                labels.append(None)
    if not labelled:
        labels = None
    meta = {"granularity": "patch", "id_columns": list(ID_COLUMNS), "patch_size": patch, "in_channels": 1,
            "volumes": len(volumes), "spacing": list(volumes[0].spacing)}
    if ignore and label_maps is not None:
        meta["ignored_label_patches"] = ignored
        shown = ", ".join(str(v) for v in sorted(ignore))
        print(f"note: {source}: {ignored} of {len(ids)} patches have an ignored label ({shown}) at their centre and "
              "no label: they feed pretraining only and are left out of the probes.", file=sys.stderr)
    if split_mode != "given" and (not labelled or (split_mode == "block" and TEST not in split)):
        # Unlabelled patches feed pretraining only (no probe to leak into), and a block split without a
        # test side is useless: core's hash-of-id split decides.  A split the source gives is kept.
        split = None
    return Samples(ids=ids, items=items, labels=labels, split=split, meta=meta, source=source,
                   fingerprint=fingerprint)


def _label_value(v: Any) -> Any:
    f = float(v)
    return int(f) if f.is_integer() else f


def volume_samples(volumes: Sequence[Volume], volume_labels: Sequence[Any] | None, opts: dict, source: str,
                   fingerprint: str, volume_split: Sequence[str] | None = None) -> Samples:
    """One item per volume, resampled to ``volume_size`` voxels a side; the given ``volume_split``, else core's
    hash split by volume name."""
    size = (opts["volume_size"],) * 3
    items = []
    for vol in volumes:
        _check_finite(vol, opts["nan"])  # truncation and NaNs fail now, not during training
        items.append(Patch(vol, (0, 0, 0), tuple(vol.shape), size))
    meta = {"granularity": "volume", "volume_size": opts["volume_size"], "patch_size": opts["volume_size"],
            "in_channels": 1, "volumes": len(volumes), "spacing": list(volumes[0].spacing)}
    return Samples(ids=[v.key for v in volumes], items=items,
                   labels=list(volume_labels) if volume_labels is not None else None,
                   split=list(volume_split) if volume_split is not None else None, meta=meta, source=source,
                   fingerprint=fingerprint)


def _check_label_map(lmap: np.ndarray, vol: Volume, where: str) -> np.ndarray:
    if tuple(lmap.shape[:3]) != tuple(vol.shape) or lmap.ndim != 3:
        raise DataError(f"{where}: the label volume has shape {tuple(lmap.shape)} but the image "
                        f"{vol.path or vol.key} has shape {vol.shape}; they must match voxel for voxel.")
    if not np.isfinite(lmap).all():
        raise DataError(f"{where}: the label volume holds NaN or infinite values; expected integer labels.")
    return lmap


def _read_label_volume(path: Path, vol: Volume) -> np.ndarray:
    lab = Volume(path)
    return _check_label_map(lab.load(), vol, str(path))


def _read_label_csv(path: Path, keys: Sequence[str]) -> tuple[list[Any], list[str] | None]:
    """(label of each volume in ``keys``, its split from an optional ``split`` column, else None)."""
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: not a readable CSV ({exc}).") from None
    if not rows or not {"volume", "label"} <= set(rows[0]):
        raise DataError(f"{path}: expected a CSV with columns 'volume' and 'label'.")
    table = {volume_name(r["volume"]): r["label"] for r in rows}
    missing = [k for k in keys if k not in table]
    if missing:
        raise DataError(f"{path}: no label for volume {missing[0]!r} ({len(missing)} volume(s) unlabelled); "
                        "add a row 'volume,label' for each.")
    if "split" not in rows[0]:
        return [table[k] for k in keys], None
    sides = {}
    for i, r in enumerate(rows, start=2):
        side = (r["split"] or "").strip().lower()
        if side not in (TRAIN, TEST):
            raise DataError(f"{path}: line {i} has split {r['split']!r}; the split column holds 'train' or 'test'.")
        sides[volume_name(r["volume"])] = side
    return [table[k] for k in keys], [sides[k] for k in keys]


def _volume_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(VOLUME_SUFFIXES)
                  and not p.name.startswith("."))


def _check_unique(paths: Sequence[Path], where: str) -> None:
    seen: dict[str, Path] = {}
    for p in paths:
        k = volume_name(p)
        if k in seen:
            raise DataError(f"{where}: {seen[k].name} and {p.name} have the same volume name {k!r}; keep one.")
        seen[k] = p


# --------------------------------------------------------------------------- readers
class VolumeReader(Reader):
    """NIfTI (.nii, .nii.gz, via nibabel) and .npy volumes: one file, or a folder of them (see the module doc)."""

    name = "volumes"
    suffixes = VOLUME_SUFFIXES
    reads_folders = True
    description = "3-D volumes: NIfTI (.nii/.nii.gz) or .npy, a file or a folder (optionally labelled)"

    def read(self, source: str, options: dict[str, Any]) -> Samples:
        opts = resolve_options(options)
        path = Path(source)
        if not path.exists():
            raise DataError(f"{source}: no such file or folder.")
        label_opt = Path(opts["labels"]) if opts["labels"] else None
        if label_opt is not None and not label_opt.exists():
            raise DataError(f"data_options.labels: {label_opt} does not exist.")
        if path.is_dir():
            parts = _split_folders(path)
            groups = [(side, *_folder_contents(sub, label_opt)) for side, sub in parts] if parts else \
                [(None, *_folder_contents(path, label_opt))]
        else:
            groups = [(None, [path], None, label_opt)]
        files = [f for g in groups for f in g[1]]
        _check_unique(files, source)
        volumes = [Volume(f, index=opts["volume_index"]) for f in files]
        voxel_label_files: list[Path] | None = []
        volume_labels: list[Any] | None = []
        volume_split: list[str] | None = []
        extra: list[Path] = []
        kinds = []
        at = 0
        for side, gfiles, glabels, glabel_opt in groups:
            vols, at = volumes[at:at + len(gfiles)], at + len(gfiles)
            vox, vlab, vsplit = _labels_of(vols, glabels, glabel_opt)
            if glabel_opt is not None and glabel_opt not in extra:
                extra.append(glabel_opt)
            kinds.append("label volumes" if vox is not None else "labels per volume" if vlab is not None else
                         "no labels")
            if vsplit is not None and side is not None:
                clash = next((v.key for v, s in zip(vols, vsplit) if s != side), None)
                if clash is not None:
                    raise DataError(f"{glabel_opt}: the split column puts {clash!r} in the other part than its "
                                    f"folder {side}/; give the split once (folders or the column).")
            voxel_label_files = None if vox is None or voxel_label_files is None else voxel_label_files + vox
            volume_labels = None if vlab is None or volume_labels is None else volume_labels + list(vlab)
            given = [side] * len(vols) if side is not None else vsplit
            volume_split = None if given is None or volume_split is None else volume_split + list(given)
        if len(set(kinds)) > 1:
            raise DataError(f"{source}: train/ has {kinds[0]} but test/ has {kinds[1]}; label both parts the same "
                            "way (or neither).")
        granularity = opts["granularity"]
        if granularity == "auto":
            granularity = "volume" if volume_labels is not None else "patch"
        fingerprint = _fingerprint([*files, *extra], opts)
        if granularity == "volume":
            if voxel_label_files is not None:
                raise ConfigError("data_options.granularity = \"volume\" needs labels per volume (a CSV or class "
                                  "folders), not label volumes; use granularity = \"patch\".")
            return volume_samples(volumes, volume_labels, opts, str(source), fingerprint, volume_split=volume_split)
        maps = None
        if voxel_label_files is not None:
            maps = [_read_label_volume(f, v) for f, v in zip(voxel_label_files, volumes)]
        return patch_samples(volumes, maps, opts, str(source), fingerprint, volume_labels=volume_labels,
                             volume_split=volume_split)


def _split_folders(path: Path) -> list[tuple[str, Path]] | None:
    """``[("train", path/train), ("test", path/test)]`` when the folder is split into those two sub-folders
    (and holds no volume of its own), else None; a DataError for a half-made split layout."""
    subdirs = [p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")]
    named = {p.name.lower(): p for p in subdirs if p.name.lower() in (TRAIN, TEST)}
    if not named:
        return None
    if len(named) == 1:
        have = next(iter(named))
        lack = TEST if have == TRAIN else TRAIN
        raise DataError(f"{path}: has a '{have}' folder but no '{lack}' folder; a fixed split needs both train/ and "
                        f"test/ sub-folders (rename the folder if '{have}' is a class).")
    others = sorted(p.name for p in subdirs if p.name.lower() not in (TRAIN, TEST))
    if others or _volume_files(path):
        what = f"the folder '{others[0]}'" if others else f"the volume {_volume_files(path)[0].name}"
        raise DataError(f"{path}: holds train/ and test/ and also {what}; a folder split into train/ and test/ "
                        "keeps every volume inside those two.")
    return [(TRAIN, named[TRAIN]), (TEST, named[TEST])]


def _folder_contents(path: Path, label_opt: Path | None) -> tuple[list[Path], list[Any] | None, Path | None]:
    """(volume files, labels per volume from class folders or None, the label source) of one folder:
    volumes, ``images/`` (+ ``labels/``), or one sub-folder per class; a ``labels.csv`` inside is the label source
    unless data_options.labels names one."""
    files = _volume_files(path)
    subdirs = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    volume_labels = None
    if not files and (path / "images").is_dir():
        files = _volume_files(path / "images")
        if (path / "labels").is_dir() and label_opt is None:
            label_opt = path / "labels"
    elif not files and subdirs:  # folder per class
        files, volume_labels = [], []
        for sub in subdirs:
            inside = _volume_files(sub)
            files += inside
            volume_labels += [sub.name] * len(inside)
    if not files:
        raise DataError(f"{path}: the folder holds no volume ({', '.join(VOLUME_SUFFIXES)}).")
    if label_opt is None and (path / "labels.csv").is_file():
        label_opt = path / "labels.csv"
    return files, volume_labels, label_opt


def _labels_of(volumes: Sequence[Volume], volume_labels: list[Any] | None, label_opt: Path | None
               ) -> tuple[list[Path] | None, list[Any] | None, list[str] | None]:
    """(label volume of each image, or None; label of each volume, or None; split from a CSV, or None)."""
    if label_opt is None:
        return None, volume_labels, None
    keys = [v.key for v in volumes]
    if label_opt.is_file() and label_opt.name.lower().endswith(".csv"):
        labels, split = _read_label_csv(label_opt, keys)
        return None, labels, split
    if label_opt.is_file():
        if len(volumes) != 1:
            raise DataError(f"data_options.labels: one label volume {label_opt.name} for {len(volumes)} "
                            "images; give a folder of label volumes named like the images.")
        return [label_opt], None, None
    found = {volume_name(p): p for p in _volume_files(label_opt)}
    missing = [k for k in keys if k not in found]
    if missing:
        raise DataError(f"{label_opt}: no label volume named {missing[0]!r} for the image of that name "
                        f"({len(missing)} missing).")
    return [found[k] for k in keys], None, None


def _package_dir(package: str) -> Path | None:
    """The install folder of a package, found without importing it."""
    return package_path(package)


MNI_FILES = {kind: f"mni_icbm152_{kind}_tal_nlin_sym_09a_converted.nii.gz" for kind in ("t1", "gm", "wm")}
TISSUES = ("grey", "white", "csf")


def _mni_paths() -> dict[str, Path] | None:
    root = _package_dir("nilearn")
    if root is None:
        return None
    paths = {k: root / "datasets" / "data" / f for k, f in MNI_FILES.items()}
    return paths if all(p.is_file() for p in paths.values()) else None


def mni_tissue_maps(gm: np.ndarray, wm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(label map, brain envelope) from the MNI grey/white-matter probability maps.

    The CSF probability is ``1 − p_grey − p_white`` (the package ships no CSF map);
    the brain envelope is ``p_grey + p_white`` smoothed (Gaussian, σ = 2 voxels)
    above 0.5, which holds the ventricles and sulci; the label of a voxel is
    the tissue of largest probability (0 grey, 1 white, 2 CSF).
    """
    from scipy.ndimage import gaussian_filter

    gm = gm.astype(np.float32) / 255.0 if gm.max() > 1.5 else gm.astype(np.float32)
    wm = wm.astype(np.float32) / 255.0 if wm.max() > 1.5 else wm.astype(np.float32)
    csf = np.clip(1.0 - gm - wm, 0.0, 1.0)
    labels = np.argmax(np.stack([gm, wm, csf]), axis=0).astype(np.int8)
    envelope = gaussian_filter(gm + wm, sigma=2.0) > 0.5
    return labels, envelope


class VolumeDatasets(Reader):
    """Named volume data sets that ship inside installed packages (nilearn, nibabel, dipy)."""

    name = "volume-datasets"
    description = "MNI ICBM152 2009 template with tissue labels (nilearn), nibabel and dipy example MRI"

    DATASETS = {
        "mni152-tissue": "MNI ICBM152 2009c T1 template (nilearn), 1 mm; patches labelled grey/white/CSF by the "
                         "dominant tissue probability at the patch centre",
        "nibabel-anatomical": "nibabel's anatomical.nii, a 33×41×25 T1 MRI at 2 mm (unlabelled)",
        "nibabel-example4d": "nibabel's example4d.nii.gz, 128×96×24 EPI, first of its 2 volumes (unlabelled)",
        "dipy-small": "dipy's aniso_vox.nii.gz and ascm_out_test.nii.gz, 58×58×24 diffusion b0 at 4×4×5 mm "
                      "(unlabelled)",
    }

    def datasets(self) -> dict[str, str]:
        out = {}
        if _mni_paths() is not None:
            out["mni152-tissue"] = self.DATASETS["mni152-tissue"]
        if _package_dir("nibabel") is not None:
            out["nibabel-anatomical"] = self.DATASETS["nibabel-anatomical"]
            out["nibabel-example4d"] = self.DATASETS["nibabel-example4d"]
        if _package_dir("dipy") is not None:
            out["dipy-small"] = self.DATASETS["dipy-small"]
        return out

    def read(self, source: str, options: dict[str, Any]) -> Samples:
        name = source.lower()
        if name not in self.DATASETS:
            raise DataError(f"{source}: not a named volume data set; choose from {', '.join(self.DATASETS)}.")
        if name not in self.datasets():
            pkg = {"mni152-tissue": "nilearn", "dipy-small": "dipy"}.get(name, "nibabel")
            raise DataError(f"{source}: the data set ships with {pkg}, which is not installed "
                            f"(pip install --no-deps {pkg}).")
        if name == "mni152-tissue":
            return self._mni(options)
        opts = dict(options or {})
        if name == "nibabel-anatomical":
            files = [_package_dir("nibabel") / "tests" / "data" / "anatomical.nii"]
        elif name == "nibabel-example4d":
            files = [_package_dir("nibabel") / "tests" / "data" / "example4d.nii.gz"]
            opts.setdefault("volume_index", 0)
        else:
            root = _package_dir("dipy") / "data" / "files"
            files = [root / "aniso_vox.nii.gz", root / "ascm_out_test.nii.gz"]
        opts = resolve_options(opts)
        volumes = [Volume(f, index=opts["volume_index"]) for f in files]
        fingerprint = _fingerprint(files, opts)
        if opts["granularity"] == "volume":
            return volume_samples(volumes, None, opts, name, fingerprint)
        return patch_samples(volumes, None, opts, name, fingerprint)

    def _mni(self, options: dict) -> Samples:
        opts = dict(options or {})
        opts.setdefault("stride", 4)
        opts.setdefault("patches_per_volume", 4000)
        opts = resolve_options(opts)
        if opts["granularity"] == "volume":
            raise ConfigError("mni152-tissue is one volume with voxel labels; use data_options.granularity = "
                              "\"patch\".")
        paths = _mni_paths()
        t1 = Volume(paths["t1"], key="mni152_t1")
        gm, wm = Volume(paths["gm"]).load(), Volume(paths["wm"]).load()
        labels, envelope = mni_tissue_maps(gm, wm)
        samples = patch_samples([t1], [labels], opts, "mni152-tissue", _fingerprint(list(paths.values()), opts),
                                masks=[envelope])
        names = [None if l is None else TISSUES[int(l)] for l in samples.labels]
        return Samples(ids=samples.ids, items=samples.items, labels=names, split=samples.split, meta=samples.meta,
                       source=samples.source, fingerprint=samples.fingerprint)


READERS: list[Reader] = [VolumeDatasets(), VolumeReader()]
