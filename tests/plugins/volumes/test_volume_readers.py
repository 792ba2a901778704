"""Reading NIfTI/.npy volumes, folders, label volumes and per-volume labels; clear errors for bad input."""

from __future__ import annotations


import numpy as np
import pytest

from contrastkit.core.data import TEST, TRAIN
from contrastkit.core.errors import ConfigError, DataError
from contrastkit.plugins.volumes.modality import collate, prepare
from contrastkit.plugins.volumes.readers import VolumeDatasets, VolumeReader, mni_tissue_maps

from tests.plugins.volumes.volume_data import save_nifti, tissue_volume

OPTS = {"patch_size": 8, "stride": 3, "patches_per_volume": 500}


def read(src, **opts):
    return VolumeReader().read(str(src), {**OPTS, **opts})


def test_nifti_patches_keep_affine_spacing_and_ids(labelled_volume):
    image, labels = labelled_volume
    s = read(image, labels=str(labels))
    assert s.meta["granularity"] == "patch" and s.meta["id_columns"] == ["volume", "x", "y", "z"]
    assert s.meta["spacing"] == [1.5, 1.5, 2.0]
    vol = s.items[0].volume
    assert np.allclose(vol.affine, np.diag([1.5, 1.5, 2.0, 1.0]))
    assert all(isinstance(i, tuple) and len(i) == 4 and i[0] == "image" for i in s.ids)
    img, lab, _ = tissue_volume()
    for sid, item, label in list(zip(s.ids, s.items, s.labels))[:50]:
        x, y, z = sid[1:]
        assert item.centre == (x, y, z) and label == int(lab[x, y, z])
        assert np.array_equal(item.raw(), img[x - 4:x + 4, y - 4:y + 4, z - 4:z + 4])


def test_uncompressed_volumes_are_read_through_memory_maps(tmp_path):
    img, _, _ = tissue_volume()
    path = save_nifti(tmp_path / "big.nii", img)
    s = read(path)
    vol = s.items[0].volume
    batch = collate(list(s.items[:4]))
    assert batch.shape == (4, 1, 8, 8, 8)
    assert vol._cache is None, "an uncompressed volume was loaded whole"
    np.save(tmp_path / "arr.npy", img)
    s2 = read(tmp_path / "arr.npy")
    collate(list(s2.items[:4]))
    assert s2.items[0].volume._cache is None


def test_npy_volume_matches_the_nifti(tmp_path):
    img, _, _ = tissue_volume()
    np.save(tmp_path / "v.npy", img)
    s = read(tmp_path / "v.npy")
    item = s.items[3]
    x, y, z = s.ids[3][1:]
    assert np.array_equal(item.raw(), img[x - 4:x + 4, y - 4:y + 4, z - 4:z + 4])


def test_4d_volume_needs_volume_index(tmp_path):
    img, _, _ = tissue_volume()
    four = np.stack([img, img * 2], axis=-1)
    path = save_nifti(tmp_path / "four.nii.gz", four)
    with pytest.raises(DataError, match="volume_index") as err:
        read(path)
    assert "4-D" in str(err.value) and "0 to 1" in str(err.value)
    s = read(path, volume_index=1)
    x, y, z = s.ids[0][1:]
    assert np.array_equal(s.items[0].raw(), 2 * img[x - 4:x + 4, y - 4:y + 4, z - 4:z + 4])
    with pytest.raises(DataError, match="out of range"):
        read(path, volume_index=5)


def test_label_volume_of_another_shape_is_refused(tmp_path):
    img, lab, _ = tissue_volume()
    image = save_nifti(tmp_path / "a.nii.gz", img)
    labels = save_nifti(tmp_path / "a_lab.nii.gz", lab[:, :, :30])
    with pytest.raises(DataError) as err:
        read(image, labels=str(labels))
    msg = str(err.value)
    assert "(32, 32, 30)" in msg and "(32, 32, 32)" in msg and "\n" not in msg


def test_truncated_gzip_is_a_data_error(tmp_path):
    img, _, _ = tissue_volume()
    good = save_nifti(tmp_path / "good.nii.gz", img)
    raw = good.read_bytes()
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="bad.nii.gz") as err:
        read(bad)
    assert "\n" not in str(err.value)
    empty = tmp_path / "empty.nii"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        read(empty)


def test_nan_voxels_are_refused_or_zeroed(tmp_path):
    img, _, _ = tissue_volume()
    img[10, 11, 12] = np.nan
    path = save_nifti(tmp_path / "nan.nii.gz", img)
    with pytest.raises(DataError, match=r"\(10, 11, 12\)"):
        read(path)
    s = read(path, nan="zero")
    assert len(s) > 0 and np.isfinite(collate(list(s.items)).numpy()).all()
    raw = save_nifti(tmp_path / "nan.nii", img)  # uncompressed: scanned slab by slab
    with pytest.raises(DataError, match=r"\(10, 11, 12\)"):
        VolumeReader().read(str(raw), {**OPTS})
    from contrastkit.plugins.volumes.volume import Volume

    assert Volume(raw).scan(slab_voxels=100) == (1, (10, 11, 12))  # many slabs, none kept


def test_folder_of_class_subfolders_gives_volume_items(tmp_path):
    for cls, seed in (("healthy", 0), ("healthy", 1), ("lesion", 2), ("lesion", 3)):
        (tmp_path / cls).mkdir(exist_ok=True)
        img, _, aff = tissue_volume(shape=(20, 24, 16), seed=seed)
        save_nifti(tmp_path / cls / f"s{seed}.nii.gz", img, aff)
    s = read(tmp_path, volume_size=12)
    assert s.meta["granularity"] == "volume" and s.ids == ["s0", "s1", "s2", "s3"]
    assert s.labels == ["healthy", "healthy", "lesion", "lesion"]
    batch = collate(list(s.items))
    assert batch.shape == (4, 1, 12, 12, 12)


def test_labels_csv_and_missing_row(tmp_path):
    for seed in range(3):
        img, _, _ = tissue_volume(shape=(16, 16, 16), seed=seed)
        save_nifti(tmp_path / f"v{seed}.nii.gz", img)
    (tmp_path / "labels.csv").write_text("volume,label\nv0.nii.gz,a\nv1,b\nv2,a\n")
    s = read(tmp_path)
    assert s.labels == ["a", "b", "a"] and s.meta["granularity"] == "volume"
    p = read(tmp_path, granularity="patch")
    assert p.meta["granularity"] == "patch" and set(p.labels) == {"a", "b"}
    (tmp_path / "labels.csv").write_text("volume,label\nv0,a\n")
    with pytest.raises(DataError, match="v1"):
        read(tmp_path)


def test_images_and_labels_folders(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    for seed in range(2):
        img, lab, _ = tissue_volume(seed=seed)
        save_nifti(tmp_path / "images" / f"c{seed}.nii.gz", img)
        save_nifti(tmp_path / "labels" / f"c{seed}.nii.gz", lab)
    s = read(tmp_path)
    assert {i[0] for i in s.ids} == {"c0", "c1"} and set(s.labels) <= {0, 1, 2}


def test_block_split_keeps_train_and_test_patches_apart(labelled_volume):
    image, labels = labelled_volume
    s = read(image, labels=str(labels), split_block=12, stride=2)
    assert set(s.split) == {TRAIN, TEST}
    boxes = {TRAIN: np.zeros((32, 32, 32), bool), TEST: np.zeros((32, 32, 32), bool)}
    for item, side in zip(s.items, s.split):
        (x, y, z), e = item.corner, item.extent[0]
        boxes[side][x:x + e, y:y + e, z:z + e] = True
    assert not (boxes[TRAIN] & boxes[TEST]).any(), "a test patch shares voxels with a training patch"


def test_bad_options_and_sources(tmp_path, labelled_volume):
    image, _ = labelled_volume
    with pytest.raises(ConfigError):
        read(image, patch_size=0)
    with pytest.raises(ConfigError):
        read(image, granularity="slice")
    with pytest.raises(DataError, match="smaller than"):
        read(image, patch_size=40)
    with pytest.raises(DataError, match="no such"):
        read(tmp_path / "nope.nii")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no volume"):
        read(tmp_path / "empty")


def test_prepare_fits_global_normalisation_and_reuses_it(labelled_volume):
    image, labels = labelled_volume
    s = read(image, labels=str(labels))
    train = s.subset([i for i, sp in enumerate(s.split) if sp == TRAIN])
    prepared, state = prepare(train, None, {})
    assert state["normalize"] == "global" and state["std"] > 0
    batch = collate(list(prepared.items))
    inside = batch[batch > (state["lo"] - state["mean"]) / state["std"] + 1e-3]
    assert abs(float(inside.mean())) < 0.3 and 0.6 < float(inside.std()) < 1.4
    again, _ = prepare(train, state, {"normalize": "none"})  # the fitted state decides, not the options
    assert np.array_equal(collate(list(again.items)).numpy(), batch.numpy())
    per_volume, st2 = prepare(train, None, {"normalize": "volume"})
    assert st2["normalize"] == "volume" and collate(list(per_volume.items[:2])).shape[0] == 2
    with pytest.raises(ConfigError):
        prepare(train, None, {"normalize": "zscore"})


def test_named_data_sets():
    r = VolumeDatasets()
    offered = r.datasets()
    assert {"nibabel-anatomical", "nibabel-example4d"} <= set(offered)
    s = r.read("nibabel-example4d", {"patch_size": 8})
    assert s.items[0].volume.index == 0 and s.labels is None
    with pytest.raises(DataError):
        r.read("no-such-set", {})


@pytest.mark.skipif("mni152-tissue" not in VolumeDatasets().datasets(), reason="nilearn's MNI template is absent")
def test_mni_tissue_labels_are_the_dominant_tissue_at_the_centre():
    from contrastkit.plugins.volumes.volume import Volume
    from contrastkit.plugins.volumes.readers import _mni_paths

    s = VolumeDatasets().read("mni152-tissue", {"patches_per_volume": 300})
    assert set(s.labels) <= {"grey", "white", "csf"} and {"grey", "white"} <= set(s.labels)
    assert set(s.split) == {TRAIN, TEST}
    paths = _mni_paths()
    gm, wm = Volume(paths["gm"]).load() / 255.0, Volume(paths["wm"]).load() / 255.0
    for sid, label in list(zip(s.ids, s.labels))[:100]:
        x, y, z = sid[1:]
        probs = {"grey": gm[x, y, z], "white": wm[x, y, z], "csf": max(0.0, 1 - gm[x, y, z] - wm[x, y, z])}
        assert label == max(probs, key=probs.get)
    labels, env = mni_tissue_maps(np.array([[[255]]], dtype=np.uint8), np.array([[[0]]], dtype=np.uint8))
    assert labels.item() == 0
