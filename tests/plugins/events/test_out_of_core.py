"""Event data larger than memory: the store over flat arrays, the out-of-core reader (hash buckets →
memory-mapped files, cached), and ``prepare`` mapping chunk by chunk — each checked against the
in-memory path on the same table, value for value."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

import contrastkit.plugins.events.modality as modality
import contrastkit.core.memory as memory
import contrastkit.plugins.events.out_of_core as out_of_core
from contrastkit.core.errors import DataError
from contrastkit.plugins.events.modality import prepare
from contrastkit.plugins.events.readers import EventsReader
from contrastkit.plugins.events.store import EventStore


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CONTRASTKIT_CACHE", str(tmp_path / "cache"))


def awkward_table(path, n: int = 6000, seed: int = 0):
    """String ids, string timestamps (a few missing), integer and text categories with nulls, a label."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, 300, n)
    mcc = rng.integers(5000, 5060, n)
    frame = pl.DataFrame({
        "user": [f"u{u}" for u in users],
        "ts": [None if k == 0 else f"2024-{m:02d}-{d:02d} {h:02d}:30:00"
               for k, m, d, h in zip(rng.integers(0, 200, n), rng.integers(1, 13, n), rng.integers(1, 28, n),
                                      rng.integers(0, 24, n))],
        "mcc": [None if v % 13 == 0 else int(v) for v in mcc],
        "shop": [None if x == 0 else f"s{x}" for x in rng.integers(0, 25, n)],
        "amount": rng.lognormal(3, 1, n).astype(np.float32),
        "label": (users % 3 == 0).astype(np.int64),
    })
    frame.write_parquet(path)
    return path


def read(path, **options):
    return EventsReader().read(str(path), options)


def same_samples(a, b) -> None:
    assert a.ids == b.ids and a.labels == b.labels and a.fingerprint == b.fingerprint
    assert {k: v for k, v in a.meta.items() if k != "out_of_core"} == \
        {k: v for k, v in b.meta.items() if k != "out_of_core"}
    assert len(a.items) == len(b.items) and all(x == y for x, y in zip(a.items, b.items))


def test_store_views_subsets_and_chunks():
    time = np.arange(10, dtype=np.float64)
    cat = np.arange(10, dtype=np.int32)[:, None]
    num = (np.arange(10, dtype=np.float32) * 10)[:, None]
    s = EventStore.from_flat(np.array([0, 3, 4, 9]), time, cat, num)
    assert len(s) == 4 and s.lengths.tolist() == [3, 1, 5, 1] and s.n_events == 10
    assert s[2]["time"].tolist() == [4, 5, 6, 7, 8] and s[-1]["num"][:, 0].tolist() == [90.0]
    assert np.shares_memory(s[2]["time"], time)  # views, not copies
    sub = s.subset([2, 0])
    assert [it["time"].tolist() for it in sub] == [[4, 5, 6, 7, 8], [0, 1, 2]]
    assert [it["cat"][:, 0].tolist() for it in s[1:3]] == [[3], [4, 5, 6, 7, 8]]
    assert [it["time"].tolist() for it in s.last(2)] == [[1, 2], [3], [7, 8], [9]]
    assert sub.gather(0, 2)["time"].tolist() == [4, 5, 6, 7, 8, 0, 1, 2]
    assert list(s.chunks(4)) == [(0, 2), (2, 3), (3, 4)]  # about 4 events each, at least one entity
    rows = s.subset([2, 0]).sample_rows(3, seed=1)
    assert len(rows) == 3 and set(rows.tolist()) <= {0, 1, 2, 4, 5, 6, 7, 8}
    assert sorted(s.sample_rows(100).tolist()) == list(range(10))


def test_out_of_core_equals_in_memory(tmp_path, capsys):
    path = awkward_table(tmp_path / "ev.parquet")
    mem = read(path, out_of_core=False)
    ooc = read(path, out_of_core=True, memory_budget_mb=0.02)  # dozens of buckets
    err = capsys.readouterr().err
    assert "reading out of core" in err and "event(s) without a time (column 'ts') are dropped" in err
    assert isinstance(ooc.items, EventStore) and ooc.items.on_disk and not mem.items.on_disk
    assert ooc.meta["out_of_core"] is True
    same_samples(mem, ooc)
    # the grouped events are cached: a second read maps the same files without reading the table
    again = read(path, out_of_core=True, memory_budget_mb=0.02)
    assert "using the events grouped earlier" in capsys.readouterr().err
    same_samples(mem, again)
    entries = [p for p in (tmp_path / "cache" / "events").iterdir()]
    assert len(entries) == 1 and (entries[0] / "meta.json").is_file()
    assert not (entries[0] / "buckets").exists()  # the buckets are gone once grouped
    # other columns → another entry
    other = read(path, out_of_core=True, categorical=["shop"], numeric=["amount"])
    assert other.meta["cat_columns"] == ["shop"] and len(list((tmp_path / "cache" / "events").iterdir())) == 2


def test_out_of_core_csv_with_labels_table(tmp_path, events_files):
    ev, lab = events_files
    csv = tmp_path / "events.csv"
    pl.read_parquet(ev).write_csv(csv)
    mem = read(csv, labels=str(lab), out_of_core=False)
    ooc = read(csv, labels=str(lab), out_of_core=True, memory_budget_mb=0.05)
    assert ooc.items.on_disk
    assert ooc.ids == mem.ids and ooc.labels == mem.labels
    assert all(x == y for x, y in zip(mem.items, ooc.items))


def test_prepare_maps_a_store_on_disk_like_one_in_memory(tmp_path):
    path = awkward_table(tmp_path / "ev.parquet")
    mem = read(path, out_of_core=False).with_split()
    ooc = read(path, out_of_core=True, memory_budget_mb=0.05).with_split()
    opts = {"min_events": 5, "max_events": 30, "min_frequency": 3}
    pm, state_m = prepare(mem.subset([i for i, s in enumerate(mem.split) if s == "train"]), None, opts)
    po, state_o = prepare(ooc.subset([i for i, s in enumerate(ooc.split) if s == "train"]), None, opts)
    assert state_m == state_o and pm.ids == po.ids
    assert pm.meta == {k: v for k, v in po.meta.items() if k != "out_of_core"}
    assert po.items.on_disk and all(x == y for x, y in zip(pm.items, po.items))
    assert max(po.items.lengths) == 30
    # the prepared files are unlinked once mapped: only the cache entry is left on disk
    assert [p.name for p in (tmp_path / "cache" / "events").iterdir() if p.name.startswith("prepared")] == []
    # a fitted state maps every entity, new data the same way
    em, _ = prepare(mem, state_m, opts)
    eo, _ = prepare(ooc, state_o, opts)
    assert len(eo) == len(ooc) and all(x == y for x, y in zip(em.items, eo.items))


def test_numeric_scaling_fitted_on_a_uniform_sample_of_many_events(tmp_path, monkeypatch, capsys):
    path = awkward_table(tmp_path / "ev.parquet")
    s = read(path, out_of_core=False)
    _, exact = prepare(s, None, {"min_events": 1})
    monkeypatch.setattr(modality, "FIT_ROWS", 2000)
    _, sampled = prepare(s, None, {"min_events": 1})
    assert "fitted on 2,000 of" in capsys.readouterr().err and sampled["fitted_on_events"] == 2000
    assert sampled["vocab"] == exact["vocab"]  # vocabularies count every event
    assert abs(sampled["numeric"]["center"][0] - exact["numeric"]["center"][0]) < 0.1 * exact["numeric"]["scale"][0]


def test_auto_reads_out_of_core_when_memory_is_short(tmp_path, monkeypatch, capsys):
    path = awkward_table(tmp_path / "ev.parquet")
    assert not read(path).items.on_disk  # plenty of memory here
    monkeypatch.setattr(out_of_core, "available_memory", lambda: 1 << 20)
    s = read(path)
    assert s.items.on_disk and "reading out of core" in capsys.readouterr().err


def test_out_of_core_bad_input_leaves_nothing_behind(tmp_path):
    path = tmp_path / "bad.parquet"
    pl.DataFrame({"id": [1, 1, 2, 3], "time": ["2024-01-01", "yesterday", "2024-01-02", "2024-01-05"],
                  "v": [1.0, 2, 3, 4]}).write_parquet(path)
    with pytest.raises(DataError, match=r"time column 'time' cannot be read as dates, e.g. 'yesterday'"):
        read(path, out_of_core=True, memory_budget_mb=0.001)
    assert list((tmp_path / "cache" / "events").iterdir()) == []  # no half-written cache entry
    with pytest.raises(DataError, match=r"out_of_core must be true, false or \"auto\", got 'yes'"):
        read(path, out_of_core="yes")
    with pytest.raises(DataError, match="memory_budget_mb must be a positive number"):
        read(path, out_of_core=True, memory_budget_mb=0)


def test_a_damaged_cache_entry_is_rebuilt(tmp_path):
    path = awkward_table(tmp_path / "ev.parquet")
    first = read(path, out_of_core=True)
    entry = next((tmp_path / "cache" / "events").iterdir())
    meta = json.loads((entry / "meta.json").read_text())
    (entry / "entities.parquet").write_bytes(b"not parquet")
    second = read(path, out_of_core=True)
    assert json.loads((entry / "meta.json").read_text())["rows"] == meta["rows"]
    same_samples(first, second)


@pytest.mark.slow
def test_pretrain_and_embed_out_of_core_through_the_cli(cli, tmp_path, events_files):
    ev, lab = events_files
    cfg = tmp_path / "ooc.toml"
    cfg.write_text('epochs = 1\nbatch_size = 16\nviews = 3\n[encoder]\nname = "gru"\nhidden = 16\n'
                   '[joint_view]\nname = "random_slices"\nmin_length = 5\nmax_length = 20\n'
                   f'[data_options]\nlabels = "{lab}"\nmin_events = 5\nout_of_core = true\nmemory_budget_mb = 0.1\n')
    run = tmp_path / "run"
    r = cli("pretrain", "events", "--data", ev, "--config", cfg, "--out", run, "--no-progress")
    assert r.code == 0, r
    out = tmp_path / "emb.parquet"
    r = cli("embed", run, "--out", out)
    assert r.code == 0, r
    emb = pl.read_parquet(out)
    assert emb.height == 120 and emb["id"].n_unique() == 120


def test_aggregate_features_chunk_by_chunk_equal_all_at_once(tmp_path):
    from contrastkit.plugins.events.evaluators import aggregate_features

    s = read(awkward_table(tmp_path / "ev.parquet"), out_of_core=True)
    prepared, _ = prepare(s, None, {"min_frequency": 1})
    mask = np.arange(len(prepared)) % 3 != 0
    whole = aggregate_features(list(prepared.items), prepared.meta, mask)
    chunked = aggregate_features(prepared.items, prepared.meta, mask, chunk_events=500)
    assert whole.shape[0] == len(prepared) and np.array_equal(whole, chunked)


def test_available_memory_respects_a_cgroup_limit(tmp_path, monkeypatch):
    cg = tmp_path / "cg"
    cg.mkdir()
    (cg / "memory.max").write_text(str(512 << 20))
    (cg / "memory.current").write_text(str(300 << 20))
    (cg / "memory.stat").write_text(f"anon {200 << 20}\nfile {100 << 20}\n")
    monkeypatch.setattr(memory, "_cgroup_memory_files", lambda: [(str(cg / "memory.max"), str(cg / "memory.current"))])
    assert memory.available_memory() == (512 - 200) << 20  # the page cache counts as free
    (cg / "memory.max").write_text("max")
    assert memory.available_memory() > (512 - 200) << 20


@pytest.mark.parametrize("out_of_core", [False, True])
def test_rows_without_an_id_or_a_time_are_counted_and_dropped(tmp_path, capsys, out_of_core):
    path = tmp_path / "holes.parquet"
    pl.DataFrame({"id": [1, None, 1, 2, None, 2], "time": [1.0, 2.0, None, 3.0, 4.0, 5.0],
                  "v": [1.0, 2, 3, 4, 5, 6]}).write_parquet(path)
    s = read(path, out_of_core=out_of_core)
    err = capsys.readouterr().err
    assert "2 event(s) without an entity id (column 'id') are dropped" in err
    assert "1 event(s) without a time (column 'time') are dropped" in err
    assert s.ids == [1, 2] and [len(it["time"]) for it in s.items] == [1, 2]
    empty = tmp_path / "no_ids.parquet"
    pl.DataFrame({"id": pl.Series([None, None], dtype=pl.Int64), "time": [1.0, 2.0]}).write_parquet(empty)
    with pytest.raises(DataError, match="no event has an entity id in column 'id'"):
        read(empty, out_of_core=out_of_core)


@pytest.mark.parametrize("out_of_core", [False, True])
def test_events_at_the_same_time_keep_the_table_order(tmp_path, out_of_core):
    path = tmp_path / "ties.parquet"
    n = 3000
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 50, n)
    pl.DataFrame({"id": ids, "time": rng.integers(0, 5, n).astype(np.int64), "v": np.arange(n, dtype=np.float64)}) \
        .write_parquet(path)
    s = read(path, out_of_core=out_of_core, memory_budget_mb=0.01)
    for i, it in zip(s.ids, s.items):
        t, v = it["time"], it["num"][:, 0]
        assert np.all(np.diff(t) >= 0)
        same = np.diff(t) == 0
        assert np.all(np.diff(v)[same] > 0)  # ties in the order of the table's rows
