"""Views (slices, dropout, time crop), the batch, and the encoders (packed loop = torch's GRU/LSTM)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from contrastkit.core.errors import ConfigError, DataError
from contrastkit.core.views import make_generator
from contrastkit.plugins.events.augmentations import EventDropout, RandomSlices, TimeCrop
from contrastkit.plugins.events.batch import collate
from contrastkit.plugins.events.encoders import (GRUEncoder, LSTMEncoder, TransformerEventEncoder,
                                                 _inference_recurrence, _recurrence)
from contrastkit.plugins.events.modality import embed
from contrastkit.plugins.events.readers import split_items


def batch_of(lengths, seed=0):
    rng = np.random.default_rng(seed)
    n = sum(lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    time = np.concatenate([np.sort(rng.uniform(0, 100, size=k)) for k in lengths])
    cat = rng.integers(2, 7, size=(n, 1)).astype(np.int32)
    num = np.arange(n, dtype=np.float32)[:, None]  # the event's global index: shows what a view kept
    return collate(split_items(starts, time, cat, num))


def real(b, i):
    return b["num"][i, : int(b["lengths"][i]), 0].tolist()


def test_collate_pads_at_the_end():
    b = batch_of([3, 1])
    assert b["lengths"].tolist() == [3, 1] and b["cat"].dtype == torch.int64 and b["time"].dtype == torch.float64
    assert b["num"][:, :, 0].tolist() == [[0, 1, 2], [3, 0, 0]]
    with pytest.raises(DataError):
        collate([])


def test_slices_are_contiguous_and_within_bounds():
    b = batch_of([40, 12, 3, 100])
    views = RandomSlices(min_length=5, max_length=20).views(b, 5, make_generator(0))
    assert len(views) == 5
    for v in views:
        for i, n in enumerate(b["lengths"].tolist()):
            got = real(v, i)
            orig = real(b, i)
            assert len(got) == (n if n < 5 else len(got)) and min(5, n) <= len(got) <= min(20, n)
            start = orig.index(got[0])
            assert got == orig[start:start + len(got)]  # a contiguous run of the entity's own events
            assert v["time"][i, : len(got)].tolist() == b["time"][i, start:start + len(got)].tolist()
    again = RandomSlices(5, 20).views(b, 5, make_generator(0))
    assert all(torch.equal(x["num"], y["num"]) for x, y in zip(views, again))


def test_slice_lengths_are_uniform():
    b = batch_of([300] * 200)
    sizes = torch.cat([v["lengths"] for v in RandomSlices(25, 200).views(b, 5, make_generator(1))]).float()
    assert sizes.min() >= 25 and sizes.max() <= 200
    assert abs(sizes.mean().item() - 112.5) < 6


def test_event_dropout_keeps_order_and_drops_about_rate():
    b = batch_of([200] * 20)
    v = EventDropout(rate=0.3)(b, make_generator(0))
    kept = v["lengths"].sum().item() / b["lengths"].sum().item()
    assert 0.62 < kept < 0.78
    for i in range(20):
        got = real(v, i)
        assert got == sorted(got) and set(got) <= set(real(b, i))
    one = batch_of([1, 1])
    assert EventDropout(rate=0.99)(one, make_generator(0))["lengths"].tolist() == [1, 1]  # never empty
    same = EventDropout(rate=0.5, p=0.0)(b, make_generator(0))
    assert torch.equal(same["num"], b["num"]) and torch.equal(same["lengths"], b["lengths"])


def test_time_crop_keeps_a_window():
    b = batch_of([100] * 10)
    v = TimeCrop(min_fraction=0.3, max_fraction=0.3)(b, make_generator(0))
    for i in range(10):
        t = b["time"][i, : int(b["lengths"][i])]
        span = (t.max() - t.min()).item()
        kept = v["time"][i, : int(v["lengths"][i])]
        assert (kept.max() - kept.min()).item() <= 0.3 * span + 1e-9
        inside = ((t >= kept.min()) & (t <= kept.max())).sum().item()
        assert inside == len(kept)  # every event inside the window is kept


def test_bad_arguments_and_batches():
    with pytest.raises(ConfigError):
        RandomSlices(10, 5)
    with pytest.raises(ConfigError):
        EventDropout(rate=1.0)
    with pytest.raises(ConfigError):
        TimeCrop(min_fraction=0.0)
    with pytest.raises(DataError, match="events batch"):
        EventDropout()(torch.zeros(3, 4), make_generator(0))


@pytest.mark.parametrize("cls", [GRUEncoder, LSTMEncoder])
@pytest.mark.parametrize("layers", [1, 2])
def test_loop_equals_torch_packed_rnn(cls, layers):
    b = batch_of([7, 1, 30, 12])
    torch.manual_seed(0)
    enc = cls(cat_cardinalities=[8], num_features=1, hidden=16, layers=layers, impl="loop")
    h_loop = enc(b)
    enc.impl = "native"
    h_native = enc(b)
    assert torch.allclose(h_loop, h_native, atol=1e-5)
    # gradients agree as well
    g_loop = torch.autograd.grad(h_loop.square().sum(), list(enc.rnn.parameters()))
    g_native = torch.autograd.grad(h_native.square().sum(), list(enc.rnn.parameters()))
    assert all(torch.allclose(a, c, atol=1e-4) for a, c in zip(g_loop, g_native))


@pytest.mark.parametrize("cls", [GRUEncoder, TransformerEventEncoder])
def test_padding_does_not_leak(cls):
    b = batch_of([5, 50])
    torch.manual_seed(0)
    enc = cls(cat_cardinalities=[8], num_features=1).eval()
    alone = collate([{"time": b["time"][0, :5].numpy(), "cat": b["cat"][0, :5].numpy().astype(np.int32),
                      "num": b["num"][0, :5].numpy()}])
    with torch.no_grad():
        assert torch.allclose(enc(b)[0], enc(alone)[0], atol=1e-5)


@pytest.mark.parametrize("cls", [GRUEncoder, TransformerEventEncoder])
def test_forward_views_equals_separate_encoding(cls, monkeypatch):
    b = batch_of([40, 12, 3, 100])
    torch.manual_seed(0)
    enc = cls(cat_cardinalities=[8], num_features=1).eval()
    views = RandomSlices(5, 20).views(b, 3, make_generator(0))
    passes = []
    original = enc._encode
    monkeypatch.setattr(enc, "_encode", lambda batch: passes.append(batch["lengths"].shape[0]) or original(batch))
    together = enc.forward_views(views)
    assert passes == [12]  # one pass over the three views' 3 × 4 sequences, the group's own batch
    passes.clear()
    apart = [enc(dict(v)) for v in views]
    assert passes == [4, 4, 4]
    assert all(torch.allclose(x, y, atol=1e-5) for x, y in zip(together, apart))
    # views of no group (e.g. after per-view augmentations), of different widths: concatenated, one pass
    passes.clear()
    mixed = [dict(views[0]), batch_of([7, 2, 9, 30])]
    out = enc.forward_views(mixed)
    assert passes == [8] and all(torch.allclose(x, enc(v), atol=1e-5) for x, v in zip(out, mixed))
    # a part of a group (e.g. two of three views) is not run as the whole group
    passes.clear()
    enc.forward_views(views[:2])
    assert passes == [8]


def test_pretrainer_encodes_the_views_through_forward_views():
    from contrastkit.core.heads import build_head
    from contrastkit.core.losses.coles import CoLESLoss
    from contrastkit.core.runs import Pretrainer

    torch.manual_seed(0)
    enc = GRUEncoder(cat_cardinalities=[8], num_features=1, hidden=16)
    calls = []
    enc.forward_views = lambda views: calls.append(len(views)) or GRUEncoder.forward_views(enc, views)
    model = Pretrainer(enc, build_head({"name": "none"}, 16), CoLESLoss())
    views = RandomSlices(5, 20).views(batch_of([40, 12, 3, 100]), 3, make_generator(0))
    loss = model(views)
    assert calls == [3] and torch.isfinite(loss.loss)


def test_bfloat16_inference_matmul_is_close_and_training_unchanged():
    b = batch_of([30, 7, 60])
    torch.manual_seed(0)
    enc = GRUEncoder(cat_cardinalities=[8], num_features=1, hidden=32)
    with torch.no_grad():
        ref = enc(b)
        enc.inference_matmul = "bfloat16"
        fast = enc(b)
    assert torch.nn.functional.cosine_similarity(ref, fast).min() > 0.999 and not torch.equal(ref, fast)
    trained = enc(b)  # with gradients (training) the product stays in float32
    assert torch.allclose(trained, ref, atol=1e-6) and not torch.allclose(trained, fast, atol=1e-5)
    with pytest.raises(ConfigError):
        GRUEncoder(cat_cardinalities=[8], num_features=1, inference_matmul="half")


@pytest.mark.parametrize("cls", [GRUEncoder, LSTMEncoder])
@pytest.mark.parametrize("layers", [1, 2])
def test_inference_path_equals_training_path(cls, layers):
    """Without autograd the loop runs in place in preallocated buffers, with the input projection a
    block of steps at a time; it computes the same numbers as the training (autograd) loop."""
    b = batch_of([7, 1, 30, 12, 30, 55])
    torch.manual_seed(0)
    enc = cls(cat_cardinalities=[8], num_features=1, hidden=16, layers=layers, impl="loop").eval()
    train_path = enc(b)
    assert train_path.requires_grad
    with torch.no_grad():
        fast = enc(b)
    assert torch.allclose(fast, train_path, atol=1e-6)
    # the block-wise input projection (blocks of a few steps, a block narrower than the first step)
    x, batch_sizes, _, _ = enc._packed_inputs(b)
    w_ih, b_ih, w_hh, b_hh = enc.rnn.weight_ih_l0, enc.rnn.bias_ih_l0, enc.rnn.weight_hh_l0, enc.rnn.bias_hh_l0
    sizes = batch_sizes.tolist()
    with torch.no_grad():
        ref_last, ref_outs = _recurrence(F.linear(x, w_ih, b_ih), sizes, w_hh, b_hh, enc.cell, True)
        for chunk_rows in (1, 5, 17, 10_000):
            last, outs = _inference_recurrence(x, sizes, w_ih, b_ih, w_hh, b_hh, enc.cell, True, chunk_rows=chunk_rows)
            assert torch.allclose(last, ref_last, atol=1e-6) and torch.allclose(outs, ref_outs, atol=1e-6)


def test_modality_embed_equals_one_entity_at_a_time():
    lengths = [3, 40, 1, 17, 17, 90, 5, 60, 2, 33]
    b = batch_of(lengths)
    items = [{"time": b["time"][i, :k].numpy(), "cat": b["cat"][i, :k].numpy().astype(np.int32),
              "num": b["num"][i, :k].numpy()} for i, k in enumerate(lengths)]
    torch.manual_seed(0)
    enc = GRUEncoder(cat_cardinalities=[8], num_features=1, hidden=16).eval()
    h = embed(enc, items, torch.device("cpu"), 2)  # several length-sorted batches, input order restored
    with torch.no_grad():
        alone = torch.cat([enc(collate([it])) for it in items])
    assert h.shape == (len(items), 16) and torch.allclose(h, alone, atol=1e-5)


def test_random_slices_auto_lengths_follow_the_training_data(capsys):
    from contrastkit.plugins.events.augmentations import auto_slice_lengths

    assert auto_slice_lengths((78, 179, 276)) == (25, 200)  # CoLES-like sequences: CoLES' 25–200
    assert auto_slice_lengths((1, 1, 4)) == (1, 4)  # CDNOW's short purchase histories
    assert auto_slice_lengths((10, 40, 90)) == (6, 90)
    assert auto_slice_lengths(None) == (25, 200)
    s = RandomSlices(length_percentiles=(1, 1, 4))
    assert (s.min_length, s.max_length) == (1, 4) and "slices of 1–4 events" in capsys.readouterr().err
    s = RandomSlices(max_length=10, length_percentiles=(78, 179, 276))  # an explicit bound wins
    assert (s.min_length, s.max_length) == (10, 10)
    s = RandomSlices(min_length=50, length_percentiles=(1, 1, 4))
    assert (s.min_length, s.max_length) == (50, 50)
    with pytest.raises(ConfigError, match="integer ≥ 1 or \"auto\""):
        RandomSlices(min_length="short")


def test_pretraining_resolves_auto_slices_from_the_training_split():
    from contrastkit.core.components import build_views
    from contrastkit.core.plugins import get_host
    from contrastkit.plugins.events.modality import DEFAULTS, prepare
    from contrastkit.plugins.events.readers import SyntheticReader

    raw = SyntheticReader().read("synthetic_transactions", {"n_clients": 200, "seed": 0})
    prepared, _ = prepare(raw, None, {"min_frequency": 1})
    p10, p50, p90 = prepared.meta["length_percentiles"]
    assert p10 <= p50 <= p90 and np.isclose(p50, np.median(prepared.items.lengths))
    gen = build_views(get_host().registry, "events", DEFAULTS, meta=prepared.meta)
    assert (gen.joint.min_length, gen.joint.max_length) == (25, 200)
