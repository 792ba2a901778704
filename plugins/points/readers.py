"""Point-cloud readers: arrays, meshes and point files, class folders, and named data sets.

An item is a float32 array of shape ``N × C`` with ``C ≥ 3``: columns 0–2 are
x, y, z and any further columns are per-point features.  Meshes are sampled to
a fixed number of surface points with a sampler seeded by the file's name, so
reading the same file twice gives the same points.

- :class:`ArrayReader` — ``.npy`` (one cloud ``N × C`` or a stack ``M × N × C``)
  and ``.npz`` (``points`` [+ ``features``, ``labels``, ``split``, ``ids``], or
  one cloud per key).
- :class:`MeshReader` — ``.ply``, ``.off``, ``.obj``, ``.stl`` meshes and point
  files (``.ply`` without faces, ``.xyz``) through trimesh; and folders: the
  ModelNet layout ``<root>/<class>/{train,test}/*.off``, a fixed split first
  ``<root>/{train,test}/<class>/*`` (labelled) or ``<root>/{train,test}/*``
  (unlabelled), a folder per class ``<root>/<class>/*.<ext>``, or a flat
  folder of unlabelled files.
- :class:`SyntheticShapesReader` — ``synthetic_shapes``, the procedural
  benchmark of :mod:`.procedural` (SYNTHETIC, fixed split).
- :class:`RealMeshesReader` — ``real_meshes``, real scanned/modelled objects
  that ship in installed wheels (PyGSP's Stanford bunny; pyvista's airplane,
  ant and nut when pyvista is installed), for the instance-retrieval check.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from contrastkit.core import (
    TEST, TRAIN, ConfigError, DataError, Reader, Samples, array_fingerprint, file_fingerprint, package_path,
)

__all__ = ["ArrayReader", "MeshReader", "SyntheticShapesReader", "RealMeshesReader", "READERS", "check_cloud",
           "sample_mesh_file"]

MESH_SUFFIXES = (".ply", ".off", ".obj", ".stl", ".xyz")
ARRAY_SUFFIXES = (".npy", ".npz")
#: Surface points sampled from each mesh when data_options.num_points is not given.
DEFAULT_POINTS = 1024


def _num_points(options: dict[str, Any]) -> int:
    n = (options or {}).get("num_points", DEFAULT_POINTS)
    if isinstance(n, bool) or not isinstance(n, int) or n < 8:
        raise ConfigError(f"data_options.num_points must be an integer >= 8, got {n!r}.")
    return int(n)


def _seed_of(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def check_cloud(x: Any, where: str) -> np.ndarray:
    """``x`` as a float32 ``N × C`` array (C ≥ 3, N ≥ 1, finite), or a DataError naming ``where``."""
    try:
        a = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError):
        raise DataError(f"{where}: the points are not numbers; expected an N × 3 (or N × (3 + F)) float array.") from None
    if a.ndim != 2 or a.shape[1] < 3 or a.shape[0] < 1:
        raise DataError(f"{where}: the points have shape {a.shape}; expected N × 3 (or N × (3 + F) with per-point "
                        "features).")
    bad = ~np.isfinite(a)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(f"{where}: {int(bad.any(axis=1).sum())} point(s) have NaN or infinite values, the first at "
                        f"row {row}, column {col}.")
    return np.ascontiguousarray(a)


# --------------------------------------------------------------------------- arrays


class ArrayReader(Reader):
    """NumPy arrays: ``.npy`` holds one cloud (N × C) or a stack (M × N × C); ``.npz`` holds ``points``
    (N × C or M × N × C) with optional ``features`` (same leading shape, F columns), ``labels`` (M),
    ``split`` (M, "train"/"test") and ``ids`` (M) — or, without a ``points`` key, one cloud per key."""

    name = "array"
    suffixes = ARRAY_SUFFIXES
    description = "Point clouds in .npy / .npz arrays (N × 3 plus optional per-point features)"

    def read(self, source: str, options: dict[str, Any] | None = None) -> Samples:
        path = Path(source)
        if not path.is_file():
            raise DataError(f"{source}: no such file.")
        try:
            data = np.load(path, allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 - numpy raises many kinds for a bad file
            raise DataError(f"{source}: not a readable NumPy {path.suffix} file ({type(exc).__name__}).") from None
        stem = path.stem
        labels = split = None
        if isinstance(data, np.ndarray):
            ids, items = self._stack(data, stem, source)
        else:
            with data:
                keys = list(data.files)
                if not keys:
                    raise DataError(f"{source}: the .npz file holds no array.")
                try:
                    arrays = {k: data[k] for k in keys}
                except Exception as exc:  # noqa: BLE001
                    raise DataError(f"{source}: an array in the .npz file cannot be read ({type(exc).__name__}).") from None
            key = "points" if "points" in arrays else ("pos" if "pos" in arrays else None)
            if key is None:
                ids = [f"{stem}/{k}" for k in keys]
                items = [check_cloud(arrays[k], f"{source}[{k!r}]") for k in keys]
            else:
                pts = arrays[key]
                if "features" in arrays:
                    feats = arrays["features"]
                    if feats.shape[:-1] != pts.shape[:-1]:
                        raise DataError(f"{source}: 'features' has shape {feats.shape} but '{key}' has shape "
                                        f"{pts.shape}; they must agree on all but the last axis.")
                    if pts.ndim >= 2 and pts.shape[-1] != 3:
                        raise DataError(f"{source}: '{key}' has {pts.shape[-1]} columns; with 'features' it must "
                                        "hold x, y, z only.")
                    pts = np.concatenate([pts, feats], axis=-1)
                ids, items = self._stack(pts, stem, source)
                if "ids" in arrays:
                    ids = [str(v) for v in arrays["ids"].tolist()]
                labels = self._column(arrays, "labels", len(items), source)
                split = self._column(arrays, "split", len(items), source)
                if split is not None:
                    bad = sorted(set(split) - {TRAIN, TEST})
                    if bad:
                        raise DataError(f"{source}: 'split' holds {bad[0]!r}; expected 'train' or 'test'.")
        meta = {"granularity": "cloud"}
        return Samples(ids=ids, items=items, labels=labels, split=split, meta=meta, source=str(source),
                       fingerprint=file_fingerprint(path))

    @staticmethod
    def _stack(a: np.ndarray, stem: str, source: str) -> tuple[list[str], list[np.ndarray]]:
        if a.ndim == 3:
            return [f"{stem}/{i}" for i in range(a.shape[0])], [check_cloud(a[i], f"{source}, cloud {i}")
                                                                for i in range(a.shape[0])]
        return [stem], [check_cloud(a, source)]

    @staticmethod
    def _column(arrays: dict, key: str, n: int, source: str) -> list | None:
        if key not in arrays:
            return None
        col = arrays[key].tolist()
        if not isinstance(col, list) or len(col) != n:
            raise DataError(f"{source}: '{key}' has {len(col) if isinstance(col, list) else 1} value(s) for {n} "
                            "cloud(s); expected one per cloud.")
        return [str(v) for v in col]


# --------------------------------------------------------------------------- meshes


def sample_mesh_file(path: Path, num_points: int) -> np.ndarray:
    """The points of one mesh or point file: a mesh is sampled (area-weighted, seeded by the file name) to
    ``num_points`` surface points; a point file's points are returned as they are."""
    import trimesh

    where = str(path)
    if not path.is_file():
        raise DataError(f"{where}: no such file.")
    if path.stat().st_size == 0:
        raise DataError(f"{where}: the file is empty.")
    try:
        if path.suffix.lower() == ".xyz":
            pts = np.loadtxt(path, dtype=np.float64, ndmin=2)
            return check_cloud(pts, where)
        loaded = trimesh.load(str(path), force=None, process=False)
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - trimesh raises many kinds for a bad file
        raise DataError(f"{where}: not a readable {path.suffix} mesh ({type(exc).__name__}: "
                        f"{' '.join(str(exc).split())[:80]}).") from None
    if isinstance(loaded, trimesh.Scene):
        geoms = [g for g in loaded.dump() if isinstance(g, trimesh.Trimesh)] if loaded.geometry else []
        loaded = trimesh.util.concatenate(geoms) if geoms else None
        if loaded is None:
            raise DataError(f"{where}: the file holds no mesh and no points.")
    if isinstance(loaded, trimesh.PointCloud):
        if path.suffix.lower() != ".ply":  # OFF/OBJ/STL are mesh formats: vertices without faces is a broken mesh
            raise DataError(f"{where}: the mesh has {len(loaded.vertices)} vertices but no faces; a mesh needs faces "
                            "to be sampled (save bare points as a .ply point cloud, .xyz or .npy).")
        return check_cloud(loaded.vertices, where)
    if not isinstance(loaded, trimesh.Trimesh):
        raise DataError(f"{where}: trimesh read a {type(loaded).__name__}; expected a triangle mesh or a point cloud.")
    vertices = np.asarray(loaded.vertices)
    if len(vertices) == 0:
        raise DataError(f"{where}: the mesh has no vertices.")
    check_cloud(vertices, where)
    if len(loaded.faces) == 0:
        raise DataError(f"{where}: the mesh has {len(vertices)} vertices but no faces; a mesh needs faces to be "
                        "sampled (save bare points as a .ply point cloud, .xyz or .npy).")
    if not loaded.area > 0:
        raise DataError(f"{where}: the mesh's faces have zero total area; nothing to sample.")
    pts, _ = trimesh.sample.sample_surface(loaded, num_points, seed=_seed_of(path.name))
    return check_cloud(pts, where)


class MeshReader(Reader):
    """Meshes and point files through trimesh, one file or a folder of them.

    Folder layouts: ``<root>/<class>/{train,test}/*`` (ModelNet: labels and the
    official split), ``<root>/{train,test}/<class>/*`` (the split first: labels
    and that split), ``<root>/{train,test}/*`` (unlabelled, that split; used
    when the only sub-folders are exactly ``train`` and ``test``),
    ``<root>/<class>/*`` (labels; core's hash split) or ``<root>/*``
    (unlabelled).  ``.npy`` files inside folders are read as one
    cloud each.  Ids are the file paths relative to the root, without suffix.
    """

    name = "mesh"
    suffixes = MESH_SUFFIXES
    reads_folders = True
    description = "Meshes and point files (.ply .off .obj .stl .xyz) via trimesh; class folders (ModelNet layout)"

    def read(self, source: str, options: dict[str, Any] | None = None) -> Samples:
        n = _num_points(dict(options or {}))
        path = Path(source)
        if not path.exists():
            raise DataError(f"{source}: no such file or folder.")
        if path.is_file():
            item = sample_mesh_file(path, n)
            return Samples(ids=[path.stem], items=[item], meta={"granularity": "cloud"}, source=str(source),
                           fingerprint=file_fingerprint(path))
        return self._read_folder(path, n)

    def _read_folder(self, root: Path, n: int) -> Samples:
        readable = MESH_SUFFIXES + (".npy",)
        files = sorted(f for f in root.rglob("*") if f.is_file() and f.suffix.lower() in readable
                       and not any(p.startswith(".") for p in f.relative_to(root).parts))
        if not files:
            raise DataError(f"{root}: the folder holds no point-cloud file ({', '.join(readable)}).")
        split_first = _split_folders(root, files)
        ids, items, labels, split = [], [], [], []
        layout = None
        for f in files:
            rel = f.relative_to(root)
            parts = rel.parts
            if split_first and len(parts) == 2:
                kind, label, part = "split", None, parts[0].lower()
            elif split_first and len(parts) == 3:
                kind, label, part = "split_classes", parts[1], parts[0].lower()
            elif len(parts) == 1:
                kind, label, part = "flat", None, None
            elif len(parts) == 2 and not split_first:
                kind, label, part = "classes", parts[0], None
            elif len(parts) == 3 and parts[1].lower() in (TRAIN, TEST) and not split_first:
                kind, label, part = "modelnet", parts[0], parts[1].lower()
            else:
                raise DataError(f"{root}: {rel} does not fit a known layout; expected {LAYOUTS}.")
            if layout is None:
                layout = kind
            elif layout != kind:
                raise DataError(f"{root}: mixes layouts ({rel} is '{kind}', earlier files are '{layout}'); use one of "
                                f"{LAYOUTS}.")
            if f.suffix.lower() == ".npy":
                try:
                    item = check_cloud(np.load(f, allow_pickle=False), str(f))
                except DataError:
                    raise
                except Exception as exc:  # noqa: BLE001
                    raise DataError(f"{f}: not a readable .npy file ({type(exc).__name__}).") from None
            else:
                item = sample_mesh_file(f, n)
            ids.append(str(rel.with_suffix("")))
            items.append(item)
            labels.append(label)
            split.append(part)
        meta: dict[str, Any] = {"granularity": "cloud", "layout": layout}
        return Samples(ids=ids, items=items, labels=None if layout in ("flat", "split") else labels,
                       split=split if layout in ("modelnet", "split", "split_classes") else None, meta=meta,
                       source=str(root), fingerprint=file_fingerprint(*files))


#: The folder layouts :class:`MeshReader` reads, for its error messages.
LAYOUTS = ("<class>/<train|test>/<file> (ModelNet), <train|test>/<class>/<file>, <train|test>/<file>, "
           "<class>/<file> or <file>")


def _split_folders(root: Path, files: list[Path]) -> bool:
    """Whether ``root``'s sub-folders holding clouds are exactly ``train/`` and ``test/`` (a fixed split first);
    a DataError when only one of the two is there (a class called 'train' would be a silent mistake)."""
    top = {f.relative_to(root).parts[0] for f in files if len(f.relative_to(root).parts) > 1}
    named = {t.lower() for t in top}
    if not top or not named <= {TRAIN, TEST}:
        return False
    if named != {TRAIN, TEST}:
        have, lack = (TRAIN, TEST) if TRAIN in named else (TEST, TRAIN)
        raise DataError(f"{root}: has a '{have}' folder but no '{lack}' folder with clouds; a fixed split needs both "
                        f"train/ and test/ (rename the folder if '{have}' is a class).")
    return True


# --------------------------------------------------------------------------- named data sets


class SyntheticShapesReader(Reader):
    """``synthetic_shapes``: the procedural benchmark (10 classes, 40 train + 20 test objects each).

    data_options: ``num_points`` (1024), ``train_per_class`` (40), ``test_per_class`` (20),
    ``shape_seed`` (0), ``noise`` (0.01), ``partial`` (0.25).
    """

    name = "synthetic_shapes"
    description = "Procedural SYNTHETIC shape benchmark (trimesh primitives and composites, fixed split)"

    def datasets(self) -> dict[str, str]:
        return {"synthetic_shapes": "SYNTHETIC procedural shapes: 10 classes (box, sphere, cylinder, cone, torus, "
                                    "capsule, table, chair, lamp, mug), 40 train + 20 test each, random proportions, "
                                    "poses, noise and partial views"}

    def read(self, source: str, options: dict[str, Any] | None = None) -> Samples:
        from .procedural import CLASSES, generate

        opts = dict(options or {})
        if str(source).lower() != "synthetic_shapes":
            raise DataError(f"{source}: not a data set of this reader; it offers 'synthetic_shapes'.")
        n = _num_points(opts)
        params = {}
        for key, default, cast in (("train_per_class", 40, int), ("test_per_class", 20, int), ("shape_seed", 0, int),
                                   ("noise", 0.01, float), ("partial", 0.25, float)):
            value = opts.get(key, default)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"data_options.{key} must be a non-negative number, got {value!r}.")
            params[key] = cast(value)
        if params["train_per_class"] < 1:
            raise ConfigError("data_options.train_per_class must be at least 1.")
        ids, items, labels, split = generate(params["train_per_class"], params["test_per_class"], num_points=n,
                                             seed=params["shape_seed"], noise=params["noise"],
                                             partial=params["partial"])
        meta = {"granularity": "cloud", "synthetic": True, "n_classes": len(CLASSES)}
        return Samples(ids=ids, items=items, labels=labels, split=split, meta=meta, source="synthetic_shapes",
                       fingerprint=array_fingerprint(items))


def _package_dir(name: str) -> Path | None:
    """The install folder of a package, found without importing it."""
    return package_path(name)


#: pyvista's example meshes (shipped as files in its wheel).
PYVISTA_MESHES = ("airplane", "ant", "nut")


def real_mesh_files() -> dict[str, Path]:
    """The real objects installed on this machine: name -> file."""
    out: dict[str, Path] = {}
    pygsp = _package_dir("pygsp")
    if pygsp is not None and (pygsp / "data" / "pointclouds" / "bunny.mat").is_file():
        out["bunny"] = pygsp / "data" / "pointclouds" / "bunny.mat"
    pyvista = _package_dir("pyvista")
    if pyvista is not None:
        for name in PYVISTA_MESHES:
            f = pyvista / "examples" / f"{name}.ply"
            if f.is_file():
                out[name] = f
    return out


class RealMeshesReader(Reader):
    """``real_meshes``: real objects that ship offline, every one in the test split, labelled by its name.

    The Stanford bunny (2,503 scanned points, PyGSP ``bunny.mat``) and, when
    pyvista is installed (``pip install --no-deps pyvista``: only its files are
    read), its example meshes airplane, ant and nut, sampled to
    ``num_points`` surface points.  Too few objects to train on: it is the
    gallery of the instance-retrieval check (``contrastkit evaluate RUN --data
    real_meshes -e retrieval``).
    """

    name = "real_meshes"
    description = "Real objects shipped in wheels (PyGSP bunny; pyvista airplane/ant/nut) for instance retrieval"

    def datasets(self) -> dict[str, str]:
        files = real_mesh_files()
        if len(files) < 2:
            return {}
        return {"real_meshes": f"real objects for instance retrieval: {', '.join(files)} (from PyGSP"
                               f"{' and pyvista' if len(files) > 1 else ''} wheels; all in the test split)"}

    def read(self, source: str, options: dict[str, Any] | None = None) -> Samples:
        import scipy.io

        n = _num_points(dict(options or {}))
        if str(source).lower() != "real_meshes":
            raise DataError(f"{source}: not a data set of this reader; it offers 'real_meshes'.")
        files = real_mesh_files()
        if len(files) < 2:
            raise DataError("real_meshes: fewer than two real objects are installed; install pygsp and pyvista "
                            "(pip install --no-deps pyvista).")
        ids, items = [], []
        for name, f in files.items():
            if f.suffix == ".mat":
                pts = check_cloud(scipy.io.loadmat(str(f))["bunny"], str(f))
                rng = np.random.default_rng(_seed_of(name))
                pts = pts[rng.choice(len(pts), size=n, replace=len(pts) < n)]
            else:
                pts = sample_mesh_file(f, n)
            ids.append(name)
            items.append(pts)
        return Samples(ids=ids, items=items, labels=list(ids), split=[TEST] * len(ids),
                       meta={"granularity": "cloud", "synthetic": False}, source="real_meshes",
                       fingerprint=file_fingerprint(*files.values()))


READERS = [SyntheticShapesReader(), RealMeshesReader(), ArrayReader(), MeshReader()]
