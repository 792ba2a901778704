"""Momentum target network, negatives queue and InfoNCE against momentum targets (MoCo v2 style)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from contrastkit.core.config import BASE_CONFIG, MOMENTUM_DEFAULTS, check_momentum, resolve
from contrastkit.core.errors import ConfigError
from contrastkit.core.heads import ProjectionHead
from contrastkit.core.losses.base import ContrastiveLoss, LossOutput
from contrastkit.core.losses.infonce import InfoNCE
from contrastkit.core.momentum import (NegativeQueue, accepts_targets, ema_update_, make_target, momentum_at)
from contrastkit.core.runs import Pretrainer

from tests.conftest import TINY_RECIPE
from tests.core._two_ranks import (WORLD, assert_matches_one_process, loss_and_grads, rank_half, rank_result,
                                   run_on_two_ranks)


# ---------------------------------------------------------------------------- EMA target

def toy_net(d_in: int = 5, d_out: int = 4) -> nn.Module:
    return nn.Sequential(nn.Linear(d_in, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, d_out)).double()


def test_ema_update_equals_the_formula_on_parameters_and_buffers():
    torch.manual_seed(0)
    online = toy_net()
    target = make_target(online)
    assert all(not p.requires_grad for p in target.parameters())
    assert all(p.requires_grad for p in online.parameters())
    # move the online net away: new weights and new batch-norm statistics
    with torch.no_grad():
        for p in online.parameters():
            p.add_(torch.randn_like(p))
    online.train()(torch.randn(7, 5, dtype=torch.float64))
    before = {k: v.clone() for k, v in target.state_dict().items()}
    m = 0.9
    ema_update_(target, online, m)
    tp, op = dict(target.named_parameters()), dict(online.named_parameters())
    for name in op:
        expected = m * before[name] + (1 - m) * op[name].detach()
        torch.testing.assert_close(tp[name], expected, rtol=0, atol=1e-14)
        assert not torch.equal(tp[name], op[name])
    ob = dict(online.named_buffers())
    assert set(ob) == {"1.running_mean", "1.running_var", "1.num_batches_tracked"}
    for name, buf in target.named_buffers():
        assert torch.equal(buf, ob[name]), name  # copied, not averaged
        assert not torch.equal(buf, before[name]), name


def test_momentum_one_keeps_and_zero_copies():
    online = toy_net()
    target = make_target(online)
    with torch.no_grad():
        for p in online.parameters():
            p.add_(1.0)
    before = [p.clone() for p in target.parameters()]
    ema_update_(target, online, 1.0)
    assert all(torch.equal(a, b) for a, b in zip(target.parameters(), before))
    ema_update_(target, online, 0.0)
    assert all(torch.equal(a, b) for a, b in zip(target.parameters(), online.parameters()))


def test_momentum_schedules():
    assert momentum_at(0.99, 0, 100) == 0.99
    assert momentum_at(0.99, 77, 100, "constant") == 0.99
    assert momentum_at(0.9, 0, 100, "cosine") == pytest.approx(0.9)
    assert momentum_at(0.9, 50, 100, "cosine") == pytest.approx(0.95)
    assert momentum_at(0.9, 100, 100, "cosine") == pytest.approx(1.0)
    assert momentum_at(0.9, 25, 100, "cosine") == pytest.approx(1 - 0.1 * (math.cos(math.pi / 4) + 1) / 2)
    with pytest.raises(ConfigError, match="schedule"):
        momentum_at(0.9, 0, 10, "linear")


class Flat(nn.Module):
    """A toy encoder on B × C × T batches: flatten and one linear map."""

    def __init__(self, d_in: int = 6, out_dim: int = 5) -> None:
        super().__init__()
        self.out_dim = out_dim
        self.lin = nn.Linear(d_in, out_dim)

    def forward(self, x):
        return self.lin(x.flatten(1))


def toy_pretrainer(momentum=0.5, queue_size=0, loss=None, head_layers=2) -> Pretrainer:
    torch.manual_seed(3)
    enc = Flat()
    head = ProjectionHead(enc.out_dim, out_dim=4, layers=head_layers)
    return Pretrainer(enc, head, loss or InfoNCE(temperature=0.5), momentum=momentum, queue_size=queue_size)


def toy_views(k=2, b=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(b, 2, 3, generator=g)
    return [base + 0.3 * torch.randn(b, 2, 3, generator=g) for _ in range(k)]


@pytest.mark.parametrize("m", [0.0, 0.7])
def test_pretrainer_step_then_update(m):
    model = toy_pretrainer(momentum=m)
    online = [model.encoder, model.head]
    targets = [model.target_encoder, model.target_head]
    for o, t in zip(online, targets):  # the target starts as a copy
        assert all(torch.equal(a, b) for a, b in zip(o.state_dict().values(), t.state_dict().values()))
    trained = [p for p in model.parameters() if p.requires_grad]
    assert {id(p) for p in trained}.isdisjoint({id(p) for t in targets for p in t.parameters()})
    opt = torch.optim.SGD(trained, lr=0.5)
    init = [{k: v.clone() for k, v in t.state_dict().items()} for t in targets]
    model.train()
    out = model(toy_views())
    out.loss.backward()
    assert all(p.grad is None for t in targets for p in t.parameters())  # no gradient into the target
    opt.step()
    assert model.update_target(0, 10) == m
    for o, t, t0 in zip(online, targets, init):
        os_, ts_ = o.state_dict(), t.state_dict()
        for name, value in ts_.items():
            if m == 0.0 or not value.is_floating_point() or "running" in name:
                assert torch.equal(value, os_[name]), name  # m = 0: the target is the online net
            else:
                torch.testing.assert_close(value, m * t0[name] + (1 - m) * os_[name], rtol=0, atol=1e-6)
                # lags behind wherever the step moved the weights
                assert torch.equal(value, os_[name]) == torch.equal(t0[name], os_[name]), name


def test_pretrainer_without_momentum_is_unchanged():
    model = toy_pretrainer(momentum=None)
    assert not model.has_target and model.queue is None
    assert not any(k.startswith("target") for k in model.state_dict())
    assert model.update_target(0, 1) == 1.0
    views = toy_views()
    out = model(views)
    ref = model.loss([model.head(model.encoder(v)) for v in views])
    torch.testing.assert_close(out.loss, ref.loss)


class Spy(InfoNCE):
    def forward(self, views, labels=None, *, targets=None, queue=None):
        self.seen = {"targets": [t.clone() for t in targets], "queue": None if queue is None else queue.clone()}
        return super().forward(views, labels, targets=targets, queue=queue)


def test_forward_passes_targets_and_queue_then_enqueues():
    model = toy_pretrainer(momentum=0.9, queue_size=10, loss=Spy(temperature=0.5))
    assert isinstance(model.queue, NegativeQueue) and model.queue.dim == 4 and len(model.queue) == 0
    model.train()
    v1, v2 = toy_views(seed=1), toy_views(seed=2)
    model(v1)
    seen = model.loss.seen
    assert seen["queue"].shape == (0, 4)  # the queue was empty for the first step
    with torch.no_grad():
        expected = [model.target_head(model.target_encoder(v)) for v in v1]
    for t, e in zip(seen["targets"], expected):
        torch.testing.assert_close(t, e)
        assert not t.requires_grad
    keys1 = torch.nn.functional.normalize(torch.cat(expected), dim=1)
    assert len(model.queue) == 10 and model.queue.ptr == 0  # 12 keys in a queue of 10: the last 10 kept
    torch.testing.assert_close(model.queue.keys, keys1[2:])
    model(v2)
    torch.testing.assert_close(model.loss.seen["queue"], keys1[2:])
    # evaluation mode leaves the queue alone
    model.eval()
    snapshot = model.queue.keys.clone()
    model(v1)
    assert torch.equal(model.queue.keys, snapshot)


class NoTargets(ContrastiveLoss):
    def forward(self, views, labels=None):
        return LossOutput(sum(v.sum() for v in views))


def test_losses_without_targets_are_refused():
    assert accepts_targets(InfoNCE()) and not accepts_targets(NoTargets())
    with pytest.raises(ConfigError, match="loss 'NoTargets' does not support a momentum target"):
        toy_pretrainer(momentum=0.9, loss=NoTargets())
    toy_pretrainer(momentum=None, loss=NoTargets())  # fine without momentum


# ---------------------------------------------------------------------------- queue

def test_queue_ring_buffer_order_and_wrap_around():
    q = NegativeQueue(5, 2)
    rows = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [0.6, 0.8], [0.8, -0.6], [-0.6, 0.8]])
    assert q.get().shape == (0, 2) and len(q) == 0
    q.push(3 * rows[:3])  # stored normalised
    torch.testing.assert_close(q.get(), rows[:3])
    assert (q.ptr, q.filled) == (3, 3)
    q.push(rows[3:6])  # rows 3, 4, then wraps to 0
    torch.testing.assert_close(q.keys, torch.stack([rows[5], rows[1], rows[2], rows[3], rows[4]]))
    assert (q.ptr, q.filled) == (1, 5)
    torch.testing.assert_close(q.get(), q.keys)
    q.push(rows[6:7])
    torch.testing.assert_close(q.keys[1], rows[6])
    assert q.ptr == 2
    # more keys than the queue holds: the last 5, written from the write position on
    q.push(rows)
    assert (q.ptr, q.filled) == (2, 5)
    torch.testing.assert_close(q.keys, torch.stack([rows[5], rows[6], rows[2], rows[3], rows[4]]))
    # get() is a copy: a later push does not change what a loss already holds
    snap = q.get()
    q.push(rows[:2])
    assert not torch.equal(snap, q.get())


def test_queue_state_round_trips_through_state_dict():
    a = NegativeQueue(4, 3)
    a.push(torch.randn(3, 3))
    state = a.state_dict()
    assert set(state) == {"keys", "_extra_state"}
    b = NegativeQueue(4, 3)
    b.load_state_dict(state)
    assert (b.ptr, b.filled) == (3, 3) and torch.equal(a.get(), b.get())
    new = torch.randn(2, 3)
    a.push(new)
    b.push(new)
    assert torch.equal(a.keys, b.keys) and b.ptr == 1


def test_queue_checks_arguments():
    with pytest.raises(ConfigError, match="queue size"):
        NegativeQueue(0, 4)
    with pytest.raises(ConfigError, match="n × 4"):
        NegativeQueue(3, 4).push(torch.randn(2, 3))


# ---------------------------------------------------------------------------- InfoNCE with targets

def naive_targets_infonce(views, targets, queue, temperature):
    """Anchor = online view (v, i); candidates = every target key but (v, i), plus the queue rows."""
    k, b = len(views), views[0].shape[0]

    def unit(x):
        return x / torch.sqrt((x * x).sum())

    q = {(v, i): unit(views[v][i]) for v in range(k) for i in range(b)}
    key = {(v, i): unit(targets[v][i]) for v in range(k) for i in range(b)}
    negs = [unit(n) for n in queue] if queue is not None else []
    total = 0.0
    for anchor in q:
        denom = 0.0
        for other in key:
            if other != anchor:
                denom = denom + torch.exp((q[anchor] * key[other]).sum() / temperature)
        for n in negs:
            denom = denom + torch.exp((q[anchor] * n).sum() / temperature)
        positives = [(v, anchor[1]) for v in range(k) if v != anchor[0]]
        loss = 0.0
        for p in positives:
            loss = loss - torch.log(torch.exp((q[anchor] * key[p]).sum() / temperature) / denom)
        total = total + loss / len(positives)
    return total / len(q)


def target_case(k, b, d, seed, q_rows=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(b, d, generator=g, dtype=torch.float64)
    views = [(base + 0.5 * torch.randn(b, d, generator=g, dtype=torch.float64)).requires_grad_(True)
             for _ in range(k)]
    targets = [v.detach() + 0.2 * torch.randn(b, d, generator=g, dtype=torch.float64) for v in views]
    queue = torch.nn.functional.normalize(torch.randn(q_rows, d, generator=g, dtype=torch.float64), dim=1) \
        if q_rows else None
    return views, targets, queue


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("q_rows", [0, 7])
@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_targets_and_queue_match_naive_reference(k, q_rows, temperature):
    views, targets, queue = target_case(k, 5, 4, seed=k + q_rows, q_rows=q_rows)
    targets = [t.requires_grad_(True) for t in targets]
    loss = InfoNCE(temperature=temperature).double()
    tau = float(loss.temperature)
    out = loss(views, targets=targets, queue=queue)
    ref = naive_targets_infonce(views, [t.detach() for t in targets], queue, tau)
    assert out.loss.item() == pytest.approx(ref.item(), abs=1e-10, rel=1e-10)
    grads = torch.autograd.grad(out.loss, [*views, *targets], allow_unused=True)
    ref_grads = torch.autograd.grad(ref, views)
    for g, rg in zip(grads[:k], ref_grads):
        assert g.abs().max() > 1e-4
        torch.testing.assert_close(g, rg, atol=1e-10, rtol=1e-8)
    assert all(g is None for g in grads[k:])  # no gradient into the targets
    assert set(out.parts) == {"pos_sim", "top1", "temperature"}


def test_queue_adds_negatives_to_every_anchor():
    views, targets, queue = target_case(2, 4, 6, seed=9, q_rows=5)
    loss = InfoNCE(temperature=0.2).double()
    without = loss(views, targets=targets).loss.item()
    empty = loss(views, targets=targets, queue=queue[:0]).loss.item()
    with_q = loss(views, targets=targets, queue=queue).loss.item()
    assert empty == without and with_q > without
    # unnormalised queue rows are treated as directions
    assert loss(views, targets=targets, queue=3 * queue).loss.item() == pytest.approx(with_q, abs=1e-12)


def test_targets_equal_to_views_give_the_plain_loss_value():
    views, _, _ = target_case(3, 5, 4, seed=2)
    loss = InfoNCE(temperature=0.3).double()
    plain = loss(views)
    same = loss(views, targets=[v.detach() for v in views])
    assert same.loss.item() == pytest.approx(plain.loss.item(), abs=1e-12)
    torch.testing.assert_close(same.parts["top1"], plain.parts["top1"])


def test_target_argument_checks():
    views, targets, queue = target_case(2, 4, 3, seed=0, q_rows=2)
    loss = InfoNCE()
    with pytest.raises(ConfigError, match="queue of negatives needs momentum targets"):
        loss(views, queue=queue)
    with pytest.raises(ConfigError, match="expected 2 target views, got 1"):
        loss(views, targets=targets[:1])
    with pytest.raises(ConfigError, match="target"):
        loss(views, targets=[t[:3] for t in targets])
    with pytest.raises(ConfigError, match="queue must be Q × 3"):
        loss(views, targets=targets, queue=torch.randn(2, 5))


# ---------------------------------------------------------------------------- config

def test_config_momentum_defaults_and_checks():
    assert BASE_CONFIG["momentum"] == MOMENTUM_DEFAULTS == {"enabled": False, "momentum": 0.99, "queue_size": 0,
                                                            "schedule": "constant"}
    defaults = {"encoder": {"name": "conv"}}
    cfg = resolve(defaults, {"momentum": {"enabled": True, "queue_size": 64}}, {})
    assert cfg["momentum"] == {"enabled": True, "momentum": 0.99, "queue_size": 64, "schedule": "constant"}
    check_momentum(None)  # runs made before the table existed
    bad = [
        ({"enabled": "yes"}, "momentum.enabled: expected true or false, got 'yes'"),
        ({"enabled": True, "momentum": 1.5}, r"momentum.momentum: expected a number in \[0, 1\], got 1.5"),
        ({"enabled": True, "queue_size": -1}, "momentum.queue_size: expected an integer ≥ 0, got -1"),
        ({"enabled": True, "schedule": "linear"}, "momentum.schedule: expected one of"),
        ({"queue_size": 8}, "queue_size needs momentum.enabled = true"),
        ({"enabled": True, "size": 8}, r"momentum.size: unknown key"),
    ]
    for table, msg in bad:
        with pytest.raises(ConfigError, match=msg):
            resolve(defaults, {"momentum": table}, {})


# ---------------------------------------------------------------------------- end to end

MOMENTUM_RECIPE = TINY_RECIPE + """
[momentum]
enabled = true
momentum = 0.9
queue_size = 64
"""


def test_cli_refuses_momentum_with_a_loss_without_targets(cli, tmp_path, tiny_data):
    recipe = tmp_path / "m.toml"
    recipe.write_text(MOMENTUM_RECIPE)
    r = cli("pretrain", "timeseries", "--data", tiny_data, "--config", recipe, "--out", tmp_path / "run",
            "--loss", "hierarchical", "--no-progress")
    assert r.code != 0 and "loss 'hierarchical' does not support a momentum target" in r.err, r


@pytest.mark.slow
def test_momentum_pretrain_and_resume_reproduce(cli, tmp_path, tiny_data, monkeypatch):
    recipe = tmp_path / "m.toml"
    recipe.write_text(MOMENTUM_RECIPE)
    a, b = tmp_path / "a", tmp_path / "b"
    common = ["--data", tiny_data, "--config", recipe, "--no-progress", "--epochs", "2"]
    r = cli("pretrain", "timeseries", *common, "--out", a)
    assert r.code == 0, r
    monkeypatch.setenv("CONTRASTKIT_STOP_AFTER_EPOCH", "1")
    r = cli("pretrain", "timeseries", *common, "--out", b)
    assert r.code == 3, r
    monkeypatch.delenv("CONTRASTKIT_STOP_AFTER_EPOCH")
    assert cli("pretrain", "timeseries", *common, "--out", b, "--resume").code == 0

    ca = torch.load(a / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    cb = torch.load(b / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    wa, wb = ca["model"], cb["model"]
    assert wa.keys() == wb.keys()
    assert any(k.startswith("target_encoder.") for k in wa) and any(k.startswith("target_head.") for k in wa)
    # 32 training items at batch 8: 4 steps of 16 keys (K = 2) an epoch; 8 steps fill 64 rows twice
    assert wa["queue._extra_state"] == {"ptr": 0, "filled": 64} == wb["queue._extra_state"]
    for key in wa:
        if torch.is_tensor(wa[key]):
            torch.testing.assert_close(wa[key], wb[key], rtol=0, atol=1e-6, msg=key)
    # the target follows the online weights but lags behind them
    enc = {k[len("encoder."):]: v for k, v in wa.items() if k.startswith("encoder.")}
    tgt = {k[len("target_encoder."):]: v for k, v in wa.items() if k.startswith("target_encoder.")}
    assert enc.keys() == tgt.keys()
    assert any(not torch.allclose(enc[k], tgt[k]) for k in enc if enc[k].is_floating_point())
    first = torch.load(a / "checkpoints" / "epoch-0001.ckpt", map_location="cpu", weights_only=True)["model"]
    assert any(not torch.equal(first[f"target_encoder.{k}"], tgt[k]) for k in tgt)  # updated during training
    torch.testing.assert_close(wa["queue.keys"].norm(dim=1), torch.ones(64))
    la = [json.loads(l)["loss"] for l in (a / "metrics.jsonl").read_text().splitlines()]
    lb = [json.loads(l)["loss"] for l in (b / "metrics.jsonl").read_text().splitlines()]
    assert la == pytest.approx(lb, abs=1e-6) and all(math.isfinite(x) for x in la)
    # the run loads and embeds like any other (the online encoder only)
    r = cli("embed", a, "--data", tiny_data, "--out", tmp_path / "emb.parquet")
    assert r.code == 0, r


@pytest.mark.slow
def test_momentum_pretrain_ddp_two_cpu_processes(tmp_path, tiny_data, contrastkit_exe):
    import os
    import subprocess

    recipe = tmp_path / "m.toml"
    recipe.write_text(MOMENTUM_RECIPE + 'schedule = "cosine"\n')
    run = tmp_path / "ddp"
    done = subprocess.run([*contrastkit_exe, "pretrain", "timeseries", "--data", str(tiny_data), "--config",
                           str(recipe), "--out", str(run), "--devices", "2", "--no-progress"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert done.returncode == 0, done.stderr
    model = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["model"]
    # 2 epochs of 2 steps, each enqueueing 2 ranks x 8 samples x 2 views = 32 keys: 128 keys through 64 rows
    assert model["queue._extra_state"] == {"ptr": 0, "filled": 64}
    torch.testing.assert_close(model["queue.keys"].norm(dim=1), torch.ones(64))


# ---------------------------------------------------------------------------- two gloo processes

def queue_and_targets_on_rank(r: int, data: dict) -> dict:
    """Rank r of the two gloo processes: a queue pushed with its keys, InfoNCE with targets and a queue."""
    q = NegativeQueue(5, data["keys"].shape[1]).double()
    mine = rank_half(data["keys"], r)
    q.push(mine[:2])
    q.push(mine[2:])  # 2 ranks x 2 rows, then 2 x 1: 6 > 5 rows, wraps
    out, grads = loss_and_grads(InfoNCE(temperature=0.3).double(), [rank_half(v, r) for v in data["views"]],
                                targets=[rank_half(t, r) for t in data["targets"]], queue=data["queue"])
    return rank_result(out, grads, keys=q.keys.clone(), ptr=q.ptr, filled=q.filled)


def test_queue_identical_on_two_ranks_and_targets_loss_equals_one_process(tmp_path):
    g = torch.Generator().manual_seed(5)
    b, d = 3, 4
    keys = torch.nn.functional.normalize(torch.randn(WORLD * b, d, generator=g, dtype=torch.float64), dim=1)
    base = torch.randn(WORLD * b, d, generator=g, dtype=torch.float64)
    views = [base + 0.5 * torch.randn(WORLD * b, d, generator=g, dtype=torch.float64) for _ in range(2)]
    targets = [v + 0.2 * torch.randn(WORLD * b, d, generator=g, dtype=torch.float64) for v in views]
    queue = torch.nn.functional.normalize(torch.randn(4, d, generator=g, dtype=torch.float64), dim=1)
    res = run_on_two_ranks(queue_and_targets_on_rank,
                           {"keys": keys, "views": views, "targets": targets, "queue": queue}, tmp_path)

    # the queue is the same on both ranks, and is what one process pushing the gathered keys gets
    assert torch.equal(res[0]["keys"], res[1]["keys"])
    assert res[0]["ptr"] == res[1]["ptr"] == 1 and res[0]["filled"] == 5
    one = NegativeQueue(5, d).double()
    one.push(torch.cat([keys[0:2], keys[3:5]]))  # first push: rank 0's 2 rows, then rank 1's
    one.push(torch.cat([keys[2:3], keys[5:6]]))
    torch.testing.assert_close(res[0]["keys"], one.keys, rtol=0, atol=1e-15)

    # with targets, mean over ranks of the loss = one process; local grads / W = full grads
    full, full_grads = loss_and_grads(InfoNCE(temperature=0.3).double(), views, targets=targets, queue=queue)
    assert_matches_one_process(res, full, full_grads, loss_atol=1e-12, loss_rtol=1e-12, grad_atol=1e-12, grad_rtol=1e-9)
