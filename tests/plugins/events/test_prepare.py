"""prepare: vocabularies with OOV and frequency cut-off, numeric transforms, skipping short entities."""

from __future__ import annotations

import numpy as np
import pytest

from contrastkit.core.data import Samples
from contrastkit.core.errors import ConfigError
from contrastkit.plugins.events.modality import inverse_numeric, prepare
from contrastkit.plugins.events.readers import split_items


def make(names, codes_per_entity, amounts_per_entity):
    lengths = [len(c) for c in codes_per_entity]
    cat = np.concatenate(codes_per_entity).astype(np.int32)[:, None]
    num = np.concatenate(amounts_per_entity).astype(np.float32)[:, None]
    time = np.concatenate([np.arange(n, dtype=np.float64) for n in lengths])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    items = split_items(starts, time, cat, num)
    meta = {"cat_columns": ["shop"], "num_columns": ["amount"], "cat_names": {"shop": names}}
    return Samples(ids=list(range(len(items))), items=items, meta=meta, source="t")


def test_vocabulary_frequency_cut_and_oov(capsys):
    # 'x' 4 times, 'y' 2 times, 'z' once: with min_frequency 2, 'z' goes to OOV (1); ids by frequency
    train = make(["x", "y", "z"], [[0, 0, 1], [0, 2, 1, 0]], [[1, 2, 3], [4, 5, 6, 7]])
    out, state = prepare(train, None, {"min_frequency": 2})
    assert state["vocab"]["shop"] == ["x", "y"]
    assert out.items[0]["cat"][:, 0].tolist() == [2, 2, 3]
    assert out.items[1]["cat"][:, 0].tolist() == [2, 1, 3, 2]
    assert out.meta["cat_cardinalities"] == [4]
    assert capsys.readouterr().err == ""  # rare values seen in training are no surprise

    # new data with its own dictionary (other order) and an unseen value 'w'
    new = make(["w", "y", "x"], [[2, 1, 0]], [[1, 1, 1]])
    out2, _ = prepare(new, state, {})
    assert out2.items[0]["cat"][:, 0].tolist() == [2, 3, 1]
    err = capsys.readouterr().err
    assert "never seen in training" in err and "'w'" in err


def test_numeric_transform_is_fitted_once_and_reapplied():
    train = make(["x"], [[0] * 5], [[1, 10, 100, 1000, np.nan]])
    out, state = prepare(train, None, {})
    spec = state["numeric"]
    logs = np.log1p([1, 10, 100, 1000])
    assert spec["center"][0] == pytest.approx(np.median(logs))
    assert spec["scale"][0] == pytest.approx(np.percentile(logs, 75) - np.percentile(logs, 25))
    x = out.items[0]["num"][:, 0]
    assert x[-1] == 0.0  # missing -> 0 after scaling
    assert np.allclose(inverse_numeric(x[:4, None], spec)[:, 0], [1, 10, 100, 1000], rtol=1e-4)
    other = make(["x"], [[0]], [[100]])
    out2, _ = prepare(other, state, {})
    assert out2.items[0]["num"][0, 0] == pytest.approx(x[2])


def test_short_entities_are_skipped_only_in_training(capsys):
    s = make(["x"], [[0] * 3, [0] * 10, [0] * 1], [[1] * 3, [1] * 10, [1]])
    out, state = prepare(s, None, {"min_events": 3, "min_frequency": 1})
    assert out.ids == [0, 1]
    assert "1 of 3 entities have fewer than 3 events" in capsys.readouterr().err
    again, _ = prepare(s, state, {"min_events": 3})
    assert again.ids == [0, 1, 2]  # embedding keeps every entity


def test_max_events_keeps_the_latest():
    s = make(["x"], [[0] * 6], [[1, 2, 3, 4, 5, 6]])
    out, state = prepare(s, None, {"max_events": 2, "min_frequency": 1, "scaling": "none", "numeric_transform": "none"})
    assert out.items[0]["num"][:, 0].tolist() == [5.0, 6.0]
    assert out.items[0]["time"].tolist() == [4.0, 5.0]


def test_bad_options():
    s = make(["x"], [[0]], [[1]])
    with pytest.raises(ConfigError, match="numeric_transform"):
        prepare(s, None, {"numeric_transform": "sqrt"})
    with pytest.raises(ConfigError, match="min_events"):
        prepare(s, None, {"min_events": 0})
