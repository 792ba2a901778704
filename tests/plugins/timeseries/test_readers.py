"""Tests for the time-series readers: the UCR/UEA .ts format and long-format tables."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from contrastkit.core.data import Reader, Samples, file_fingerprint
from contrastkit.core.errors import DataError
from contrastkit.plugins.timeseries import readers
from contrastkit.plugins.timeseries.readers import READERS, LongFormatReader, TsReader, parse_ts


def _aeon_data() -> Path | None:
    spec = importlib.util.find_spec("aeon")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
    return folder if folder.is_dir() else None


AEON = _aeon_data()
needs_aeon = pytest.mark.skipif(AEON is None, reason="aeon's data folder is not installed")


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


HEADER = """# a comment
@problemName Toy
@timeStamps false
@missing true
@univariate true
@equalLength true
@seriesLength 4
@classLabel true a b
@data
"""


# -- the plugin surface -------------------------------------------------------
def test_readers_list_is_the_two_readers():
    assert [type(r) for r in READERS] == [TsReader, LongFormatReader]
    assert all(isinstance(r, Reader) for r in READERS)
    assert (READERS[0].name, READERS[0].suffixes) == ("ts", (".ts",))
    assert (READERS[1].name, READERS[1].suffixes) == ("long", (".parquet", ".csv"))
    assert READERS[0].accepts(Path("X_TRAIN.TS")) and READERS[1].accepts(Path("x.parquet"))


# -- named UCR/UEA sets --------------------------------------------------------
@needs_aeon
def test_datasets_lists_classification_pairs_with_descriptions():
    sets = TsReader().datasets()
    for name in ("GunPoint", "ItalyPowerDemand", "BasicMotions", "ArrowHead", "OSULeaf", "JapaneseVowels", "ACSF1"):
        assert name in sets
    # regression problems (@targetLabel) and aeon's own test fixtures are not offered
    assert "Covid3Month" not in sets and "CardanoSentiment" not in sets
    assert not any(n.startswith("UnitTest") for n in sets)
    assert sets["GunPoint"] == "UCR/UEA GunPoint (50/150, 1 channel(s), length 150, 2 classes) from aeon"
    assert sets["BasicMotions"] == "UCR/UEA BasicMotions (40/40, 6 channel(s), length 100, 4 classes) from aeon"
    assert "length 7-29" in sets["JapaneseVowels"]


@needs_aeon
def test_gunpoint_by_name_is_the_official_split_with_exact_values():
    s = TsReader().read("gunpoint", {})  # names are case-insensitive
    assert isinstance(s, Samples)
    assert s.split.count("train") == 50 and s.split.count("test") == 150
    assert s.split[:50] == ["train"] * 50
    assert s.ids[0] == "GunPoint_train_0" and s.ids[50] == "GunPoint_test_0" and len(set(s.ids)) == 200
    assert set(s.labels) == {"1", "2"}
    assert s.meta == {"in_channels": 1, "length": 150, "equal_length": True, "n_classes": 2,
                      "problem": "GunPoint", "task": "classification", "missing": False}
    assert all(it.shape == (1, 150) and it.dtype == np.float32 for it in s.items)
    train, test = AEON / "GunPoint" / "GunPoint_TRAIN.ts", AEON / "GunPoint" / "GunPoint_TEST.ts"
    assert s.fingerprint == file_fingerprint(train, test)
    # compare with a direct parse of the first and last data lines of each file
    for path, first, last in ((train, 0, 49), (test, 50, 199)):
        lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
        data = lines[[ln.lower() for ln in lines].index("@data") + 1:]
        for line, k in ((data[0], first), (data[-1], last)):
            values, label = line.rsplit(":", 1)
            np.testing.assert_array_equal(s.items[k][0], np.array(values.split(","), dtype=np.float64).astype(np.float32))
            assert s.labels[k] == label


@needs_aeon
def test_reading_the_test_file_reads_the_pair(tmp_path):
    s = TsReader().read(str(AEON / "GunPoint" / "GunPoint_TEST.ts"), {})
    assert len(s) == 200 and s.split[0] == "train" and s.split[-1] == "test"
    # a lone X_TRAIN.ts (no partner) is one file without a split
    lone = tmp_path / "Toy_TRAIN.ts"
    lone.write_bytes((AEON / "GunPoint" / "GunPoint_TRAIN.ts").read_bytes())
    s = TsReader().read(str(lone), {})
    assert len(s) == 50 and s.split is None and s.ids[0] == "Toy_0"


@needs_aeon
def test_basicmotions_is_multivariate():
    s = TsReader().read("BasicMotions", {})
    assert {it.shape for it in s.items} == {(6, 100)}
    assert s.split.count("train") == 40 and s.split.count("test") == 40
    assert s.meta["in_channels"] == 6 and s.meta["n_classes"] == 4
    assert set(s.labels) == {"Standing", "Running", "Walking", "Badminton"}


@needs_aeon
def test_japanese_vowels_has_unequal_lengths():
    s = TsReader().read("JapaneseVowels", {})
    lengths = {it.shape[1] for it in s.items}
    assert len(lengths) > 5 and min(lengths) == 7 and max(lengths) == 29
    assert {it.shape[0] for it in s.items} == {12}
    assert s.meta["equal_length"] is False and s.meta["length"] == 29
    assert not any(np.isnan(it).any() for it in s.items)


def test_unknown_name_lists_valid_names():
    with pytest.raises(DataError, match="neither an existing file nor a named UCR/UEA data set"):
        TsReader().read("NoSuchProblem", {})
    with pytest.raises(DataError, match="no such .ts file"):
        TsReader().read("missing/file.ts", {})


def test_without_aeon_no_datasets_and_a_hint(monkeypatch):
    monkeypatch.setattr(readers, "_data_roots", lambda: [])
    assert TsReader().datasets() == {} and LongFormatReader().datasets() == {}
    with pytest.raises(DataError, match=r"pip install --no-deps aeon==1\.6\.0"):
        TsReader().read("GunPoint", {})
    with pytest.raises(DataError, match=r"pip install --no-deps aeon==1\.6\.0"):
        LongFormatReader().read("airline", {})


# -- hand-written .ts files ----------------------------------------------------
def test_question_marks_are_nan_and_multivariate_unequal(tmp_path):
    p = write(tmp_path / "toy.ts", HEADER + "1,2,?,4:a\n\n5, 6 ,7,?:b\n")
    s = TsReader().read(str(p), {})
    assert s.split is None and s.ids == ["toy_0", "toy_1"] and s.labels == ["a", "b"]
    np.testing.assert_array_equal(s.items[0], np.array([[1, 2, np.nan, 4]], dtype=np.float32))
    np.testing.assert_array_equal(s.items[1], np.array([[5, 6, 7, np.nan]], dtype=np.float32))

    multi = """@problemName M
@univariate false
@dimensions 2
@equalLength false
@classLabel false
@data
1,2,3:4,5,6
7,8:9,?
"""
    s = TsReader().read(str(write(tmp_path / "m.ts", multi)), {})
    assert s.labels is None and s.meta["in_channels"] == 2 and s.meta["equal_length"] is False
    assert [it.shape for it in s.items] == [(2, 3), (2, 2)]
    np.testing.assert_array_equal(s.items[1], np.array([[7, 8], [9, np.nan]], dtype=np.float32))


def test_dimensions_inferred_and_regression_targets(tmp_path):
    text = "@problemName R\n@univariate false\n@equalLength true\n@targetLabel true\n@data\n1,2:3,4:0.5\n5,6:7,8:-1\n"
    s = TsReader().read(str(write(tmp_path / "r.ts", text)), {})
    assert s.meta["in_channels"] == 2 and s.meta["task"] == "regression" and s.labels == [0.5, -1.0]


@pytest.mark.parametrize(
    "text, expected",
    [
        (HEADER.replace("@data\n", "") + "1,2,3,4:a\n",
         r"bad\.ts line \d+: expected a header tag starting with '@'"),
        (HEADER.replace("@data\n", ""), r"bad\.ts line 8: reached the end of the file without an @data line"),
        (HEADER + "1,2,3,4:a\n1,x2,3,4:b\n",
         r"bad\.ts line 11: expected a number or '\?' as value 2 of dimension 1, found 'x2'"),
        (HEADER + "1,2,3,4:a\n1,2,3,4:5,6,7,8:b\n",
         r"bad\.ts line 11: expected 1 dimension\(s\) separated by ':' and a label, found 2"),
        (HEADER + "1,2,3,4:a\n1,2,3,4:c\n",
         r"bad\.ts line 11: expected a class label among the @classLabel values a b, found 'c'"),
        (HEADER.replace("@missing true", "@colour blue"), r"bad\.ts line 4: unknown header tag '@colour'"),
        (HEADER.replace("@seriesLength 4", "@seriesLength four"),
         r"bad\.ts line 7: expected a positive whole number after @seriesLength, found 'four'"),
        (HEADER.replace("@univariate true", "@univariate maybe"),
         r"bad\.ts line 5: expected true or false after @univariate, found 'maybe'"),
        (HEADER + "1,2,3:a\n", r"bad\.ts line 10: expected 4 values per dimension \(@seriesLength 4\), found 3"),
        (HEADER.replace("@timeStamps false", "@timeStamps true") + "(1,2),(2,3):a\n",
         r"bad\.ts line 9: the file declares @timeStamps true"),
        (HEADER, r"bad\.ts line 9: no series after @data"),
    ],
)
def test_malformed_ts_names_file_and_line(tmp_path, text, expected):
    p = write(tmp_path / "bad.ts", text)
    with pytest.raises(DataError, match=expected):
        parse_ts(p)


def test_train_test_with_different_dimensions_is_refused(tmp_path):
    write(tmp_path / "P_TRAIN.ts", "@univariate true\n@classLabel false\n@data\n1,2\n")
    write(tmp_path / "P_TEST.ts", "@univariate false\n@classLabel false\n@data\n1,2:3,4\n")
    with pytest.raises(DataError, match="P_TEST.ts: 2 dimension"):
        TsReader().read(str(tmp_path / "P_TRAIN.ts"), {})


# -- long format ---------------------------------------------------------------
def _long_frame(seed: int = 0) -> pl.DataFrame:
    rows = []
    for key, n, label, part in (("a", 3, "x", "train"), ("b", 5, "y", "test"), ("c", 2, "x", "train")):
        for t in range(n):
            rows.append({"id": key, "time": t, "v1": 10.0 * t + ord(key), "v2": -float(t),
                         "label": label, "split": part, "note": "text"})
    df = pl.DataFrame(rows)
    df = df.with_columns(pl.when((pl.col("id") == "b") & (pl.col("time") == 3)).then(None)
                         .otherwise(pl.col("v2")).alias("v2"))
    return df.sample(fraction=1.0, shuffle=True, seed=seed)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_long_format_round_trips(tmp_path, suffix):
    df = _long_frame()
    path = tmp_path / f"data{suffix}"
    df.write_parquet(path) if suffix == ".parquet" else df.write_csv(path)
    s = LongFormatReader().read(str(path), {})
    assert s.ids == ["a", "b", "c"] and s.labels == ["x", "y", "x"] and s.split == ["train", "test", "train"]
    assert [it.shape for it in s.items] == [(2, 3), (2, 5), (2, 2)]
    assert all(it.dtype == np.float32 for it in s.items)
    # sorted by time although the rows were shuffled; channels in column order; null -> NaN
    np.testing.assert_array_equal(s.items[1][0], 10.0 * np.arange(5) + ord("b"))
    np.testing.assert_array_equal(s.items[1][1], np.array([0, -1, -2, np.nan, -4], dtype=np.float32))
    assert s.meta["in_channels"] == 2 and s.meta["length"] == 5 and s.meta["equal_length"] is False
    assert s.meta["n_classes"] == 2 and s.meta["value_columns"] == ["v1", "v2"]
    assert s.fingerprint == file_fingerprint(path) and s.source == str(path)


def test_long_format_options(tmp_path):
    df = _long_frame().rename({"id": "key", "time": "step"})
    path = tmp_path / "d.parquet"
    df.write_parquet(path)
    s = LongFormatReader().read(str(path), {"id_column": "key", "time_column": "step",
                                             "value_columns": ["v2"], "label_column": None, "split_column": None})
    assert s.labels is None and s.split is None and [it.shape for it in s.items] == [(1, 3), (1, 5), (1, 2)]


def test_long_format_errors(tmp_path):
    reader = LongFormatReader()
    with pytest.raises(DataError, match="no such file"):
        reader.read(str(tmp_path / "absent.parquet"), {})

    df = _long_frame()
    path = tmp_path / "d.parquet"
    df.write_parquet(path)
    with pytest.raises(DataError, match=r"d\.parquet: no column 'entity' \(option id_column\); "
                                        r"columns found: id, time, v1, v2, label, split, note"):
        reader.read(str(path), {"id_column": "entity"})
    with pytest.raises(DataError, match="value column 'note' has type String; expected a numeric column"):
        reader.read(str(path), {"value_columns": ["v1", "note"]})

    dup = pl.concat([df, df.filter((pl.col("id") == "b") & (pl.col("time") == 2))])
    dup.write_parquet(path)
    with pytest.raises(DataError, match=r"id 'b' has more than one row at time 2"):
        reader.read(str(path), {})

    varying = df.with_columns(pl.when((pl.col("id") == "c") & (pl.col("time") == 1)).then(pl.lit("z"))
                              .otherwise(pl.col("label")).alias("label"))
    varying.write_parquet(path)
    with pytest.raises(DataError, match=r"id 'c' has more than one value in the label column 'label'"):
        reader.read(str(path), {})

    df.with_columns(pl.lit("dev").alias("split")).write_parquet(path)
    with pytest.raises(DataError, match=r"split 'dev' in column 'split'; expected 'train' or 'test'"):
        reader.read(str(path), {})


@needs_aeon
def test_named_forecasting_series():
    reader = LongFormatReader()
    names = reader.datasets()
    assert {"airline", "lynx", "shampoo_sales", "uschange"} <= set(names)
    s = reader.read("Airline", {})
    assert s.ids == ["airline"] and s.items[0].shape == (1, 144) and s.labels is None
    assert s.items[0][0, :3].tolist() == [112.0, 118.0, 132.0] and s.items[0][0, -1] == 432.0
    assert s.meta["task"] == "forecast" and s.meta["freq"] == "M" and s.meta["in_channels"] == 1
    assert s.meta["length"] == 144 and s.meta["start"] == "1949-01"
    u = reader.read("uschange", {})
    assert u.items[0].shape == (5, 187) and u.meta["in_channels"] == 5 and u.meta["freq"] == "Q"
    with pytest.raises(DataError, match="neither an existing file nor a named forecasting data set"):
        reader.read("nosuchseries", {})
