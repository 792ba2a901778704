"""Readers: parquet/CSV grouping and sorting, inferred columns, labels, CDNOW's split in time, bad input."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from contrastkit.core.errors import DataError
from contrastkit.plugins.events.readers import CDNOWReader, EventsReader, SyntheticReader, cdnow_path
from contrastkit.plugins.events.synthetic import generate_transactions

from .conftest import tiny_table


def test_groups_by_entity_and_sorts_by_time(tmp_path, capsys):
    s = EventsReader().read(str(tiny_table(tmp_path / "t.csv")), {})
    assert s.ids == ["a", "b", "c"]
    a = s.items[0]
    # string dates parsed, sorted: 01-01, 01-02, 01-03 (days since the epoch)
    assert np.allclose(np.diff(a["time"]), [1.0, 1.0])
    assert a["num"][:, 0].tolist() == [1.0, 100.0, 10.0]
    names = s.meta["cat_names"]["shop"]
    assert [names[c] for c in a["cat"][:, 0]] == ["y", "x", "x"]
    assert np.isnan(s.items[1]["num"][1, 0])  # missing amount kept as NaN until prepare
    assert s.labels == [1, 0, 1]  # a 'label' column in the events table: one label per entity
    err = capsys.readouterr().err
    assert "entity id 'user'" in err and "time 'ts'" in err and "categorical ['shop']" in err


def test_labels_from_a_second_table(events_files):
    ev, lab = events_files
    s = EventsReader().read(str(ev), {"labels": str(lab)})
    truth = dict(zip(*pl.read_csv(lab).to_dict(as_series=False).values()))
    assert len(s) == 120 and s.labels == [truth[i] for i in s.ids]
    assert all(np.all(np.diff(it["time"]) >= 0) for it in s.items)
    assert s.meta["cat_columns"] == ["category"] and s.meta["num_columns"] == ["amount"]


def test_same_events_as_the_generator(events_files):
    ev, _ = events_files
    s = EventsReader().read(str(ev), {})
    g = generate_transactions(n_clients=120, seed=3, min_events=20, max_events=60)
    assert [len(it["time"]) for it in s.items] == g["lengths"].tolist()
    got = np.concatenate([it["num"][:, 0] for it in s.items])
    assert np.allclose(got, g["amount"])


def test_missing_column_names_the_existing_ones(tmp_path):
    path = tiny_table(tmp_path / "t.parquet", fmt="parquet")
    with pytest.raises(DataError, match=r"no time column 'when'.*user, ts, shop, amount, label"):
        EventsReader().read(str(path), {"time_column": "when"})
    with pytest.raises(DataError, match=r"no column 'price'.*user, ts"):
        EventsReader().read(str(path), {"numeric": ["price"]})


def test_unparseable_timestamps(tmp_path):
    path = tmp_path / "bad.csv"
    pl.DataFrame({"id": [1, 1, 2], "time": ["2024-01-01", "yesterday", "2024-01-02"], "v": [1.0, 2, 3]}).write_csv(path)
    with pytest.raises(DataError, match=r"1 value\(s\) of time column 'time' cannot be read as dates, e.g. 'yesterday'"):
        EventsReader().read(str(path), {})


@pytest.mark.parametrize("name", ["empty.csv", "empty.parquet"])
def test_empty_files(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"")
    with pytest.raises(DataError, match=str(path)):
        EventsReader().read(str(path), {})


def test_header_only_csv(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("id,time,amount\n")
    with pytest.raises(DataError, match="no events"):
        EventsReader().read(str(path), {})


@pytest.mark.skipif(cdnow_path() is None, reason="lifetimes is not installed")
def test_cdnow_is_split_in_time():
    s = CDNOWReader().read("CDNOW_sample", {})
    assert len(s) == 2357 and s.meta["calibration_end"] == "1997-10-01"
    cut = (np.datetime64("1997-10-01") - np.datetime64("1970-01-01")).astype(int)
    assert max(it["time"].max() for it in s.items) < cut  # no hold-out purchase in the sequences
    rate = np.mean(s.labels)
    assert 0.2 < rate < 0.45 and set(s.labels) == {0, 1}
    spend = CDNOWReader().read("CDNOW_sample", {"target": "spend"})
    assert spend.meta["task"] == "regression"
    assert all((l > 0) == (r == 1) for l, r in zip(spend.labels, s.labels))  # spend > 0 iff a repeat purchase


def test_synthetic_is_deterministic():
    a = SyntheticReader().read("synthetic_transactions", {"n_clients": 30, "seed": 1})
    b = SyntheticReader().read("synthetic_transactions", {"n_clients": 30, "seed": 1})
    assert a.fingerprint == b.fingerprint and a.labels == b.labels
    assert all(np.array_equal(x["time"], y["time"]) for x, y in zip(a.items, b.items))


def test_single_key_sort_with_coarsened_times_stays_exact(tmp_path):
    # integer ids over a huge range and times over 30 years force the (entity, time) key to coarsen
    # the times (buckets of ~0.3 s); two events 10 µs apart, written in reverse order, must still
    # come out sorted (the reader checks the order and re-sorts by both columns)
    base = 1_000_000_000_000_000_000
    frame = pl.DataFrame({
        "id": [2**30, 0, 0, 0],
        "time": pl.Series([base + 10**18, base + 10_000, base, base - 10**9], dtype=pl.Int64).cast(pl.Datetime("ns")),
        "amount": [9.0, 3.0, 2.0, 1.0],
    })
    path = tmp_path / "ns.parquet"
    frame.write_parquet(path)
    s = EventsReader().read(str(path), {})
    assert s.ids == [0, 2**30]
    assert s.items[0]["num"][:, 0].tolist() == [1.0, 2.0, 3.0]


def test_retail_style_table_is_understood_without_options(tmp_path, capsys):
    """Online-Retail-like CSV: "CustomerID" (float, some missing), "InvoiceDate" as m/d/Y H:M text with
    one-digit months and days, an "InvoiceNo" of digits — none named as our candidates spell them."""
    path = tmp_path / "retail.csv"
    pl.DataFrame({
        "InvoiceNo": [536365, 536365, 536366, 536367, 536368],
        "StockCode": ["85123A", "71053", "22633", "84879", "22960"],
        "Quantity": [6, 6, 6, 32, 6],
        "InvoiceDate": ["12/1/2010 8:26", "12/1/2010 8:26", "12/1/2010 8:28", "7/2/2011 13:05", "3/26/2011 9:01"],
        "UnitPrice": [2.55, 3.39, 1.85, 1.69, 4.25],
        "CustomerID": [17850.0, 17850.0, None, 13047.0, 13047.0],
        "Country": ["United Kingdom"] * 5,
    }).write_csv(path)
    s = EventsReader().read(str(path), {})
    err = capsys.readouterr().err
    assert "entity id 'CustomerID', time 'InvoiceDate'" in err
    assert "categorical ['InvoiceNo', 'StockCode', 'Country'], numeric ['Quantity', 'UnitPrice']" in err
    assert "read with format '%m/%d/%Y %H:%M'" in err and "1 event(s) without an entity id" in err
    assert s.ids == [13047.0, 17850.0]
    days = s.items[0]["time"]  # 26 March 2011, then 2 July 2011 — not 7 February
    assert np.allclose(days, [15059 + 9 / 24 + 1 / 1440, 15157 + 13 / 24 + 5 / 1440])


def test_ambiguous_day_month_dates_warn(tmp_path, capsys):
    path = tmp_path / "amb.csv"
    pl.DataFrame({"id": [1, 1, 2], "date": ["03/04/2020", "05/04/2020", "01/02/2020"], "v": [1.0, 2, 3]}).write_csv(path)
    s = EventsReader().read(str(path), {})
    err = capsys.readouterr().err
    assert "read both as month/day and as day/month" in err and "data_options.time_format" in err
    assert s.items[0]["time"].tolist() == [18325.0, 18386.0]  # 4 March and 4 May 2020 (month first)
    s = EventsReader().read(str(path), {"time_format": "%d/%m/%Y"})
    assert "both as month/day" not in capsys.readouterr().err
    assert s.items[0]["time"].tolist() == [18355.0, 18357.0]  # 3 and 5 April 2020


@pytest.mark.parametrize("out_of_core", [False, True])
def test_split_column_in_the_labels_table_or_the_events_table(tmp_path, events_files, out_of_core):
    ev, lab = events_files
    labels = pl.read_csv(lab)
    first = labels.columns[0]
    ids = labels[first].to_list()
    split = ["test" if i % 4 == 0 else "train" for i in range(len(ids))]
    with_split = tmp_path / "labels_split.csv"
    labels.with_columns(pl.Series("split", [s.upper() if i % 7 == 0 else s for i, s in enumerate(split)])) \
        .write_csv(with_split)
    opts = {"labels": str(with_split), "out_of_core": out_of_core, "memory_budget_mb": 0.05}
    s = EventsReader().read(str(ev), opts)
    truth = dict(zip(map(str, ids), split))
    assert s.split == [truth[str(i)] for i in s.ids]  # case and order do not matter
    # in the events table (one value per entity); never a feature
    events = pl.read_parquet(ev) if str(ev).endswith(".parquet") else pl.read_csv(ev)
    id_col = next(c for c in events.columns if c in ("client_id", "id", "user"))
    by_id = {str(i): s_ for i, s_ in zip(ids, split)}
    events = events.with_columns(pl.col(id_col).cast(pl.String).replace_strict(by_id).alias("Split"))
    path = tmp_path / "ev_split.parquet"
    events.write_parquet(path)
    s2 = EventsReader().read(str(path), {"out_of_core": out_of_core, "memory_budget_mb": 0.05})
    assert s2.split == [truth[str(i)] for i in s2.ids]
    assert "Split" not in s2.meta["cat_columns"] + s2.meta["num_columns"]


def test_bad_split_values_are_one_sentence(tmp_path, events_files):
    ev, lab = events_files
    labels = pl.read_csv(lab)
    bad = tmp_path / "bad_split.csv"
    labels.with_columns(pl.lit("validation").alias("split")).write_csv(bad)
    with pytest.raises(DataError, match=r"split column 'split' holds 'validation' .* expected 'train' or 'test'"):
        EventsReader().read(str(ev), {"labels": str(bad)})
    with pytest.raises(DataError, match=r"no split column 'part'"):
        EventsReader().read(str(ev), {"split_column": "part"})
