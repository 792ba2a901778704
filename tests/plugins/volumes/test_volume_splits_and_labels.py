"""Fixed splits from train/test folders or a split column, ignore_label for label volumes, the raw-intensity
baseline as a FeatureBaseline."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from contrastkit.core.data import TEST, TRAIN, Samples
from contrastkit.core.errors import ConfigError, DataError
from contrastkit.core.evaluation import EvalContext, FeatureBaseline
from contrastkit.plugins.volumes.evaluators import EVALUATORS, RawIntensityBaseline, intensity_features
from contrastkit.plugins.volumes.modality import collate, prepare
from contrastkit.plugins.volumes.readers import VolumeReader

from tests.plugins.volumes.volume_data import save_nifti, tissue_volume

OPTS = {"patch_size": 8, "stride": 3, "patches_per_volume": 500}


def read(src, **opts):
    return VolumeReader().read(str(src), {**OPTS, **opts})


# -- ignore_label -------------------------------------------------------------------------------------
def striped(tmp_path):
    """A 24³ image that is foreground everywhere but one corner voxel, and a label volume of three slabs
    along x: 0 for x < 10, 1 for 10 ≤ x < 16, 2 for x ≥ 16.  With patch 8 and stride 4 the centres are
    {4, 8, 12, 16, 20}³ (125 patches): x = 4, 8 → label 0 (2·5·5 = 50), x = 12 → 1 (25),
    x = 16, 20 → 2 (50)."""
    image = np.full((24, 24, 24), 100.0, dtype=np.float32)
    image[0, 0, 0] = 0.0
    labels = np.zeros((24, 24, 24), dtype=np.int16)
    labels[10:16] = 1
    labels[16:] = 2
    return save_nifti(tmp_path / "img.nii.gz", image), save_nifti(tmp_path / "lab.nii.gz", labels)


def test_ignore_label_removes_the_class_and_counts_the_patches(tmp_path, capsys):
    image, labels = striped(tmp_path)
    opts = {"labels": str(labels), "patch_size": 8, "stride": 4}
    plain = read(image, **opts)
    assert len(plain) == 125 and Counter(plain.labels) == {0: 50, 1: 25, 2: 50}
    assert "ignored" not in capsys.readouterr().err  # no ignore_label: as before (the MNI task keeps 0 = grey)
    s = read(image, ignore_label=0, **opts)
    assert s.ids == plain.ids  # every patch is kept, for pretraining
    assert Counter(s.labels) == {None: 50, 1: 25, 2: 50} and s.meta["ignored_label_patches"] == 50
    assert all(b == a for a, b in zip(plain.labels, s.labels) if a != 0)  # the other labels are unchanged
    err = capsys.readouterr().err
    assert err.startswith("note: ") and "50 of 125 patches have an ignored label (0)" in err
    assert len(err.strip().splitlines()) == 1
    both = read(image, ignore_label=[2, 0], **opts)
    assert Counter(both.labels) == {None: 100, 1: 25}
    # the unlabelled patches are dropped from the probes: a labelled split sees the 75 others only
    ctx = EvalContext(samples=s.with_split(), embed=lambda smp: np.zeros((len(smp), 2)), seeds=[0])
    _, y_tr, _, y_te = ctx.labelled_split()
    assert len(y_tr) + len(y_te) == 75 and set(y_tr) | set(y_te) == {1, 2}


def test_ignore_label_is_checked(tmp_path):
    image, labels = striped(tmp_path)
    for bad in ("0", True, [0, "a"], 1.5):
        with pytest.raises(ConfigError, match="ignore_label"):
            read(image, labels=str(labels), ignore_label=bad)
    # no label volume: nothing to ignore, the option is harmless (a run's config reads unlabelled data too)
    assert read(image, ignore_label=0).labels is None


# -- fixed splits ------------------------------------------------------------------------------------
def _volumes(folder, names, shape=(16, 16, 16), labels_folder=None):
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        img, lab, aff = tissue_volume(shape=shape, seed=i)
        save_nifti(folder / f"{name}.nii.gz", img, aff)
        if labels_folder is not None:
            labels_folder.mkdir(parents=True, exist_ok=True)
            save_nifti(labels_folder / f"{name}.nii.gz", lab, aff)


def test_train_and_test_folders_give_the_split_of_every_patch(tmp_path):
    _volumes(tmp_path / "unl" / "train", ["a", "b"])
    _volumes(tmp_path / "unl" / "test", ["c"])
    s = read(tmp_path / "unl")
    assert s.labels is None and s.split is not None  # a given split is kept without labels
    assert {v: {sp for i, sp in zip(s.ids, s.split) if i[0] == v} for v in "abc"} == \
        {"a": {TRAIN}, "b": {TRAIN}, "c": {TEST}}
    assert s.with_split().split == s.split
    # images/ + labels/ inside each part: voxel labels, the same split
    root = tmp_path / "lab"
    _volumes(root / "train" / "images", ["a", "b"], labels_folder=root / "train" / "labels")
    _volumes(root / "test" / "images", ["c"], labels_folder=root / "test" / "labels")
    s = read(root, split="block")  # the given split wins over the block split
    assert set(s.labels) <= {0, 1, 2} and None not in s.labels
    assert {sp for i, sp in zip(s.ids, s.split) if i[0] == "c"} == {TEST}
    assert {sp for i, sp in zip(s.ids, s.split) if i[0] != "c"} == {TRAIN}


def test_train_and_test_class_folders_give_volume_items_with_their_split(tmp_path):
    for part, names in ((TRAIN, ("h0", "h1")), (TEST, ("h2",))):
        _volumes(tmp_path / part / "healthy", names)
        _volumes(tmp_path / part / "lesion", [n.replace("h", "l") for n in names])
    s = read(tmp_path, volume_size=8)
    assert s.meta["granularity"] == "volume"
    assert s.ids == ["h0", "h1", "l0", "l1", "h2", "l2"]
    assert s.labels == ["healthy", "healthy", "lesion", "lesion", "healthy", "lesion"]
    assert s.split == [TRAIN] * 4 + [TEST] * 2


def test_a_split_column_in_the_labels_csv(tmp_path):
    _volumes(tmp_path, ["v0", "v1", "v2"])
    (tmp_path / "labels.csv").write_text("volume,label,split\nv0,a,train\nv1.nii.gz,b,Train\nv2,a,test\n")
    s = read(tmp_path)
    assert s.labels == ["a", "b", "a"] and s.split == [TRAIN, TRAIN, TEST]
    p = read(tmp_path, granularity="patch")
    assert {sp for i, sp in zip(p.ids, p.split) if i[0] == "v2"} == {TEST} and TRAIN in p.split
    (tmp_path / "labels.csv").write_text("volume,label,split\nv0,a,train\nv1,b,val\nv2,a,test\n")
    with pytest.raises(DataError, match=r"line 3 has split 'val'; the split column holds 'train' or 'test'"):
        read(tmp_path)


@pytest.mark.parametrize("case", ["only_train", "extra_folder", "loose_volume", "mixed_labels", "csv_clash"])
def test_a_bad_split_layout_is_one_sentence(tmp_path, case):
    root = tmp_path / "data"
    _volumes(root / "train", ["a"])
    expect = {"only_train": "has a 'train' folder but no 'test' folder",
              "extra_folder": "holds train/ and test/ and also the folder 'val'",
              "loose_volume": "holds train/ and test/ and also the volume z.nii.gz",
              "mixed_labels": "train/ has labels per volume but test/ has no labels",
              "csv_clash": "puts 'b' in the other part than its folder test/"}[case]
    if case != "only_train":
        _volumes(root / "test", ["b"])
    if case == "extra_folder":
        _volumes(root / "val", ["c"])
    if case == "loose_volume":
        _volumes(root, ["z"])
    if case == "mixed_labels":
        (root / "train" / "labels.csv").write_text("volume,label\na,x\n")
    if case == "csv_clash":
        for part, name in ((TRAIN, "a"), (TEST, "b")):
            (root / part / "labels.csv").write_text(f"volume,label,split\n{name},x,train\n")
    with pytest.raises(DataError, match=expect) as err:
        read(root)
    assert len(str(err.value).splitlines()) == 1


# -- the raw-intensity baseline ------------------------------------------------------------------------
def test_raw_intensity_is_a_feature_baseline_with_core_probes(labelled_volume):
    image, labels = labelled_volume
    raw = read(image, labels=str(labels), split_block=12, stride=2)
    samples, _ = prepare(raw.with_split(), None, {})
    assert EVALUATORS == {"raw_intensity": RawIntensityBaseline}
    assert issubclass(RawIntensityBaseline, FeatureBaseline) and not RawIntensityBaseline.uses_encoder
    base = RawIntensityBaseline(grid=2, bins=4)
    some = samples.subset([0, 3])
    assert np.allclose(base.features(some), intensity_features(collate(list(some.items)).float(), 2, 4).numpy())
    calls = []
    m = base(EvalContext(samples=samples, embed=lambda s: calls.append(1), seeds=[0]))["metrics"]
    assert not calls and {"linear.accuracy", "linear.f1_macro", "knn.accuracy", "knn.best_k"} <= set(m)
    assert m["linear.accuracy"] > 0.6  # three tissues told by intensity; chance ≈ 0.33–0.5
    with pytest.raises(ConfigError, match="grid"):
        RawIntensityBaseline(grid=0)
    with pytest.raises(DataError, match="no items"):
        base.features(Samples(ids=[], items=[]))
