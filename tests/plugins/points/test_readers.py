"""Tests for the point-cloud readers: arrays, meshes, class folders, the synthetic and real named sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh

from contrastkit.core.data import Samples
from contrastkit.core.errors import ConfigError, DataError
from contrastkit.plugins.points.procedural import CLASSES, make_object
from contrastkit.plugins.points.readers import (
    READERS,
    ArrayReader,
    MeshReader,
    RealMeshesReader,
    SyntheticShapesReader,
    real_mesh_files,
)


def box_mesh(extents=(2.0, 1.0, 0.5)) -> trimesh.Trimesh:
    return trimesh.creation.box(extents=extents)


def on_box_surface(points: np.ndarray, extents=(2.0, 1.0, 0.5), tol=1e-5) -> bool:
    half = np.asarray(extents) / 2
    inside = (np.abs(points) <= half + tol).all(axis=1)
    on_face = (np.abs(np.abs(points) - half) < tol).any(axis=1)
    return bool(inside.all() and on_face.all())


# -- the plugin surface ---------------------------------------------------------------------------
def test_readers_are_the_four_readers():
    assert [type(r) for r in READERS] == [SyntheticShapesReader, RealMeshesReader, ArrayReader, MeshReader]
    assert MeshReader().accepts(Path("a.OFF")) and MeshReader().reads_folders
    assert ArrayReader().accepts(Path("a.npz")) and not ArrayReader().accepts(Path("a.off"))


# -- synthetic shapes -------------------------------------------------------------------------------
def test_synthetic_shapes_has_a_fixed_split_labels_and_exact_sizes():
    s = SyntheticShapesReader().read("synthetic_shapes", {"num_points": 64, "train_per_class": 3,
                                                          "test_per_class": 2})
    assert isinstance(s, Samples) and len(s) == 10 * 5
    assert set(s.labels) == set(CLASSES) and len(CLASSES) == 10
    assert s.split.count("train") == 30 and s.split.count("test") == 20
    assert s.ids[:5] == ["box/0000", "box/0001", "box/0002", "box/0003", "box/0004"]
    assert s.split[:5] == ["train"] * 3 + ["test"] * 2
    assert all(x.shape == (64, 3) and x.dtype == np.float32 and np.isfinite(x).all() for x in s.items)
    assert s.meta["synthetic"] is True
    again = SyntheticShapesReader().read("synthetic_shapes", {"num_points": 64, "train_per_class": 3,
                                                              "test_per_class": 2})
    assert again.fingerprint == s.fingerprint and all(np.array_equal(a, b) for a, b in zip(s.items, again.items))
    other = SyntheticShapesReader().read("synthetic_shapes", {"num_points": 64, "train_per_class": 3,
                                                              "test_per_class": 2, "shape_seed": 1})
    assert other.fingerprint != s.fingerprint


def test_synthetic_objects_differ_within_a_class_and_are_centred():
    a, b = make_object("table", 0, 128), make_object("table", 1, 128)
    assert a.shape == (128, 3) and not np.allclose(a, b)
    assert np.abs(make_object("torus", 3, 256, noise=0.0, partial=0.0).mean(axis=0)).max() < 0.05
    # without noise, a box's points lie on a box surface (up to its pose): 6 flat faces -> distances to
    # the centroid never reach 0
    assert np.linalg.norm(make_object("sphere", 0, 256, noise=0.0, partial=0.0), axis=1).min() > 0.5


def test_synthetic_shapes_rejects_bad_options():
    with pytest.raises(ConfigError, match="num_points"):
        SyntheticShapesReader().read("synthetic_shapes", {"num_points": 2})
    with pytest.raises(ConfigError, match="noise"):
        SyntheticShapesReader().read("synthetic_shapes", {"noise": -1})


# -- real meshes ------------------------------------------------------------------------------------
needs_real = pytest.mark.skipif(len(real_mesh_files()) < 2, reason="pygsp / pyvista data not installed")


@needs_real
def test_real_meshes_are_the_bunny_and_pyvista_objects_in_the_test_split():
    s = RealMeshesReader().read("real_meshes", {"num_points": 256})
    assert s.ids[0] == "bunny" and s.labels == s.ids and set(s.split) == {"test"}
    assert all(x.shape == (256, 3) and np.isfinite(x).all() for x in s.items)
    assert "real_meshes" in RealMeshesReader().datasets()


# -- arrays -----------------------------------------------------------------------------------------
def test_npy_single_cloud_and_stack(tmp_path):
    one = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    np.save(tmp_path / "one.npy", one)
    s = ArrayReader().read(str(tmp_path / "one.npy"), {})
    assert s.ids == ["one"] and np.array_equal(s.items[0], one) and s.labels is None
    stack = np.random.default_rng(1).normal(size=(4, 20, 5))
    np.save(tmp_path / "stack.npy", stack)
    s = ArrayReader().read(str(tmp_path / "stack.npy"), {})
    assert s.ids == ["stack/0", "stack/1", "stack/2", "stack/3"] and s.items[2].shape == (20, 5)
    assert np.allclose(s.items[2], stack[2])


def test_npz_with_features_labels_split_and_ids(tmp_path):
    pts = np.zeros((3, 10, 3))
    feats = np.ones((3, 10, 2))
    np.savez(tmp_path / "set.npz", points=pts, features=feats, labels=np.array(["a", "b", "a"]),
             split=np.array(["train", "train", "test"]), ids=np.array(["x", "y", "z"]))
    s = ArrayReader().read(str(tmp_path / "set.npz"), {})
    assert s.ids == ["x", "y", "z"] and s.labels == ["a", "b", "a"] and s.split == ["train", "train", "test"]
    assert s.items[0].shape == (10, 5) and (s.items[0][:, 3:] == 1).all() and (s.items[0][:, :3] == 0).all()
    np.savez(tmp_path / "keys.npz", chair=np.zeros((5, 3)), lamp=np.ones((7, 3)))
    s = ArrayReader().read(str(tmp_path / "keys.npz"), {})
    assert s.ids == ["keys/chair", "keys/lamp"] and s.items[1].shape == (7, 3)


@pytest.mark.parametrize("array, match", [
    (np.zeros((10, 2)), r"shape \(10, 2\); expected N × 3"),
    (np.zeros(10), r"shape \(10,\)"),
    (np.zeros((2, 3, 4, 5)), r"shape \(2, 3, 4, 5\)"),
])
def test_wrong_array_shapes_are_one_sentence_errors(tmp_path, array, match):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(DataError, match=match) as exc:
        ArrayReader().read(str(tmp_path / "bad.npy"), {})
    assert "\n" not in str(exc.value)


def test_nan_coordinates_name_the_row(tmp_path):
    a = np.zeros((10, 3))
    a[7, 1] = np.nan
    np.save(tmp_path / "nan.npy", a)
    with pytest.raises(DataError, match="row 7, column 1"):
        ArrayReader().read(str(tmp_path / "nan.npy"), {})


def test_npz_mismatched_features_and_bad_split(tmp_path):
    np.savez(tmp_path / "f.npz", points=np.zeros((2, 10, 3)), features=np.zeros((2, 9, 1)))
    with pytest.raises(DataError, match="'features' has shape"):
        ArrayReader().read(str(tmp_path / "f.npz"), {})
    np.savez(tmp_path / "s.npz", points=np.zeros((2, 10, 3)), split=np.array(["train", "val"]))
    with pytest.raises(DataError, match="'val'"):
        ArrayReader().read(str(tmp_path / "s.npz"), {})


# -- meshes -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".off", ".ply", ".obj", ".stl"])
def test_mesh_is_sampled_on_its_surface_deterministically(tmp_path, suffix):
    path = tmp_path / f"box{suffix}"
    box_mesh().export(path)
    s = MeshReader().read(str(path), {"num_points": 300})
    assert s.ids == ["box"] and s.items[0].shape == (300, 3)
    assert on_box_surface(s.items[0])
    again = MeshReader().read(str(path), {"num_points": 300})
    assert np.array_equal(s.items[0], again.items[0])


def test_ply_point_cloud_is_read_as_points(tmp_path):
    pts = np.random.default_rng(0).normal(size=(40, 3))
    trimesh.PointCloud(pts).export(tmp_path / "scan.ply")
    s = MeshReader().read(str(tmp_path / "scan.ply"), {"num_points": 300})
    assert s.items[0].shape == (40, 3) and np.allclose(s.items[0], pts, atol=1e-6)


def test_mesh_without_faces_and_garbage_are_one_sentence_errors(tmp_path):
    (tmp_path / "nofaces.off").write_text("OFF\n3 0 0\n0 0 0\n1 0 0\n0 1 0\n")
    with pytest.raises(DataError, match="no faces") as exc:
        MeshReader().read(str(tmp_path / "nofaces.off"), {})
    assert "\n" not in str(exc.value)
    (tmp_path / "nofaces.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\n")
    with pytest.raises(DataError, match="no faces"):
        MeshReader().read(str(tmp_path / "nofaces.obj"), {})
    (tmp_path / "junk.off").write_bytes(b"\x00\x01garbage")
    with pytest.raises(DataError, match="junk.off"):
        MeshReader().read(str(tmp_path / "junk.off"), {})
    (tmp_path / "nan.off").write_text("OFF\n3 1 0\n0 0 0\n1 nan 0\n0 1 0\n3 0 1 2\n")
    with pytest.raises(DataError):
        MeshReader().read(str(tmp_path / "nan.off"), {})


# -- folders ----------------------------------------------------------------------------------------
def test_modelnet_layout_gives_labels_and_the_official_split(tmp_path):
    for cls, extents in (("box", (1, 1, 1)), ("plank", (3, 1, 0.2))):
        for part, n in (("train", 2), ("test", 1)):
            folder = tmp_path / cls / part
            folder.mkdir(parents=True)
            for i in range(n):
                box_mesh(extents).export(folder / f"{cls}_{i:04d}.off")
    s = MeshReader().read(str(tmp_path), {"num_points": 64})
    assert s.ids == ["box/test/box_0000", "box/train/box_0000", "box/train/box_0001",
                     "plank/test/plank_0000", "plank/train/plank_0000", "plank/train/plank_0001"]
    assert s.labels == ["box"] * 3 + ["plank"] * 3
    assert s.split == ["test", "train", "train"] * 2
    assert s.meta["layout"] == "modelnet" and all(x.shape == (64, 3) for x in s.items)


def test_train_test_folders_first_give_the_fixed_split(tmp_path):
    """<root>/{train,test}/<class>/<file> (labelled) and <root>/{train,test}/<file> (unlabelled)."""
    for part, names in (("train", ("a", "b")), ("test", ("c",))):
        for cls in ("box", "plank"):
            (tmp_path / "lab" / part / cls).mkdir(parents=True)
            for name in names:
                box_mesh().export(tmp_path / "lab" / part / cls / f"{name}.off")
        (tmp_path / "unl" / part).mkdir(parents=True)
        for name in names:
            np.save(tmp_path / "unl" / part / f"{name}.npy", np.zeros((9, 3)) + len(name))
    s = MeshReader().read(str(tmp_path / "lab"), {"num_points": 32})
    assert s.ids == ["test/box/c", "test/plank/c", "train/box/a", "train/box/b", "train/plank/a", "train/plank/b"]
    assert s.labels == ["box", "plank", "box", "box", "plank", "plank"]
    assert s.split == ["test", "test", "train", "train", "train", "train"]
    assert s.meta["layout"] == "split_classes" and s.with_split().split == s.split  # core keeps the given split
    s = MeshReader().read(str(tmp_path / "unl"), {})
    assert s.ids == ["test/c", "train/a", "train/b"] and s.labels is None and s.split == ["test", "train", "train"]
    assert s.meta["layout"] == "split" and s.items[0].shape == (9, 3)


def test_a_bad_split_layout_is_one_sentence(tmp_path):
    (tmp_path / "only" / "train").mkdir(parents=True)
    np.save(tmp_path / "only" / "train" / "a.npy", np.zeros((9, 3)))
    with pytest.raises(DataError, match=r"'train' folder but no 'test' folder") as err:
        MeshReader().read(str(tmp_path / "only"), {})
    assert len(str(err.value).splitlines()) == 1
    (tmp_path / "only" / "test").mkdir()
    np.save(tmp_path / "only" / "test" / "b.npy", np.zeros((9, 3)))
    np.save(tmp_path / "only" / "loose.npy", np.zeros((9, 3)))
    with pytest.raises(DataError, match="mixes layouts"):
        MeshReader().read(str(tmp_path / "only"), {})
    (tmp_path / "only" / "loose.npy").unlink()
    (tmp_path / "only" / "test" / "x" / "y").mkdir(parents=True)
    np.save(tmp_path / "only" / "test" / "x" / "y" / "deep.npy", np.zeros((9, 3)))
    with pytest.raises(DataError, match=r"test/x/y/deep.npy does not fit a known layout; expected .*<train\|test>/"):
        MeshReader().read(str(tmp_path / "only"), {})


def test_class_folders_and_flat_folders(tmp_path):
    (tmp_path / "c" / "a").mkdir(parents=True)
    (tmp_path / "c" / "b").mkdir()
    box_mesh().export(tmp_path / "c" / "a" / "x.ply")
    np.save(tmp_path / "c" / "b" / "y.npy", np.zeros((9, 3)))
    s = MeshReader().read(str(tmp_path / "c"), {"num_points": 32})
    assert s.labels == ["a", "b"] and s.split is None and s.items[1].shape == (9, 3)
    (tmp_path / "flat").mkdir()
    box_mesh().export(tmp_path / "flat" / "one.stl")
    s = MeshReader().read(str(tmp_path / "flat"), {"num_points": 32})
    assert s.ids == ["one"] and s.labels is None


def test_mixed_or_empty_folders_are_errors(tmp_path):
    (tmp_path / "m" / "a").mkdir(parents=True)
    box_mesh().export(tmp_path / "m" / "a" / "x.off")
    box_mesh().export(tmp_path / "m" / "top.off")
    with pytest.raises(DataError, match="mixes layouts"):
        MeshReader().read(str(tmp_path / "m"), {})
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no point-cloud file"):
        MeshReader().read(str(tmp_path / "empty"), {})
