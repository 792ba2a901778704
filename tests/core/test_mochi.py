"""MoCHi: hard negatives mixed from the momentum queue (Kalantidis et al. 2020)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from contrastkit.core.errors import ConfigError
from contrastkit.core.heads import ProjectionHead
from contrastkit.core.losses.infonce import InfoNCE, MoCHi
from contrastkit.core.runs import Pretrainer

D = 12


def e(i: int) -> torch.Tensor:
    return torch.eye(D, dtype=torch.float64)[i]


def constructed_queue() -> torch.Tensor:
    """Rows 'hard' (cosine 0.8 with e0, along e1..e3) and 'easy' (negative cosine with e0, along e4..e9).

    The easy ones differ in how anti-aligned they are with e0, so that for the query −e0 the three
    most similar are unambiguous (along e7, e8, e9).
    """
    hard = [0.8 * e(0) + 0.6 * e(k) for k in (1, 2, 3)]
    easy = [F.normalize(-c * e(0) + e(k), dim=0) for c, k in zip((0.1, 0.2, 0.3, 0.4, 0.5, 0.6), range(4, 10))]
    rows = [easy[0], hard[0], easy[1], easy[2], hard[1], easy[3], easy[4], hard[2], easy[5]]
    return torch.stack(rows)


def test_synthetic_negatives_mix_the_hardest_queue_negatives():
    torch.manual_seed(0)
    queue = constructed_queue()
    s1, s2 = 40, 30
    loss = MoCHi(n_hard=3, s1=s1, s2=s2).double()
    q = torch.stack([e(0), F.normalize(e(0) + 0.3 * e(10), dim=0), -e(0)]).requires_grad_(True)
    syn = loss.synthesize(q, queue)
    assert syn.shape == (3, s1 + s2, D)
    assert not syn.requires_grad and syn.grad_fn is None  # constants: no gradient flows into them
    torch.testing.assert_close(syn.norm(dim=2), torch.ones(3, s1 + s2, dtype=torch.float64))

    for a in (0, 1):  # queries near e0: the hardest negatives are the three along e1, e2, e3
        mix, qmix = syn[a, :s1], syn[a, s1:]
        # s1: a mixture of (at most) two hard negatives: nothing along the easy directions or the query's e10
        assert mix[:, 4:].abs().max() < 1e-12
        assert (mix[:, 1:4] >= -1e-12).all() and ((mix[:, 1:4] > 1e-12).sum(dim=1) <= 2).all()
        # both hard negatives have e0 : (e_i + e_j) = 0.8 : 0.6 whatever the weight α
        torch.testing.assert_close(mix[:, 0] / mix[:, 1:4].sum(dim=1), torch.full((s1,), 0.8 / 0.6,
                                   dtype=torch.float64))
        assert set(mix[:, 1:4].argmax(dim=1).tolist()) == {0, 1, 2}  # all three hard negatives are drawn
        # s2: the query and exactly one hard negative, with weight β ∈ [0, 0.5) on the query
        assert qmix[:, 4:10].abs().max() < 1e-12
        assert ((qmix[:, 1:4] > 1e-12).sum(dim=1) == 1).all()
        nj = qmix[:, 1:4].sum(dim=1) / 0.6  # (1 − β)/norm
        qpart = qmix[:, 10] / q[a, 10].item() if a == 1 else (qmix[:, 0] - 0.8 * nj)
        beta = qpart / (qpart + nj)  # β/norm ÷ ((β + 1 − β)/norm)
        if a == 1:
            torch.testing.assert_close(qmix[:, 0], qpart * q[a, 0].item() + 0.8 * nj)
        assert (beta >= 0).all() and (beta < 0.5).all() and beta.std() > 0.05
    # the query −e0 ranks the queue the other way round: its hard negatives are the easy ones along e7..e9
    mix = syn[2]
    assert mix[:, 1:7].abs().max() < 1e-12 and mix[:, 10:].abs().max() < 1e-12
    assert (mix[:, 7:10].abs().sum(dim=1) > 0.3).all()


def test_counts_and_queue_shorter_than_n_hard():
    torch.manual_seed(1)
    q = F.normalize(torch.randn(5, 6, dtype=torch.float64), dim=1)
    queue = F.normalize(torch.randn(3, 6, dtype=torch.float64), dim=1)
    assert MoCHi(n_hard=1024, s1=4, s2=0).synthesize(q, queue).shape == (5, 4, 6)
    assert MoCHi(n_hard=2, s1=0, s2=7).synthesize(q, queue).shape == (5, 7, 6)
    assert MoCHi(s1=0, s2=0).synthesize(q, queue).shape == (5, 0, 6)


def naive_mochi(views, targets, queue, synthetic, temperature):
    """InfoNCE with targets and queue; anchor a = (view v, sample i) also has synthetic[v·B + i] as negatives."""
    k, b = len(views), views[0].shape[0]

    def unit(x):
        return x / torch.sqrt((x * x).sum())

    total = 0.0
    for v in range(k):
        for i in range(b):
            q = unit(views[v][i])
            denom = 0.0
            for w in range(k):
                for c in range(b):
                    if (w, c) != (v, i):
                        denom = denom + torch.exp((q * unit(targets[w][c])).sum() / temperature)
            for n in queue:
                denom = denom + torch.exp((q * unit(n)).sum() / temperature)
            for s in synthetic[v * b + i]:
                denom = denom + torch.exp((q * s).sum() / temperature)
            loss = 0.0
            for w in range(k):
                if w != v:
                    loss = loss - torch.log(torch.exp((q * unit(targets[w][i])).sum() / temperature) / denom)
            total = total + loss / (k - 1)
    return total / (k * b)


@pytest.mark.parametrize("k", [2, 3])
def test_loss_equals_reference_with_the_synthetic_negatives_as_constants(k):
    g = torch.Generator().manual_seed(7 + k)
    b, d = 4, 5
    base = torch.randn(b, d, generator=g, dtype=torch.float64)
    views = [(base + 0.5 * torch.randn(b, d, generator=g, dtype=torch.float64)).requires_grad_(True)
             for _ in range(k)]
    targets = [(v.detach() + 0.2 * torch.randn(b, d, generator=g, dtype=torch.float64)).requires_grad_(True)
               for v in views]
    queue = torch.randn(9, d, generator=g, dtype=torch.float64).requires_grad_(True)
    loss = MoCHi(temperature=0.2, n_hard=4, s1=3, s2=2).double()
    seen = []
    original = loss.synthesize

    def recording(*args, **kwargs):
        seen.append(original(*args, **kwargs))
        return seen[-1]

    loss.synthesize = recording
    torch.manual_seed(0)
    out = loss(views, targets=targets, queue=queue)
    (syn,) = seen
    assert syn.shape == (k * b, 5, d)
    ref = naive_mochi(views, [t.detach() for t in targets], queue.detach(), syn, float(loss.temperature))
    assert out.loss.item() == pytest.approx(ref.item(), abs=1e-10, rel=1e-10)
    grads = torch.autograd.grad(out.loss, [*views, *targets, queue], allow_unused=True)
    ref_grads = torch.autograd.grad(ref, views)
    for gr, rg in zip(grads[:k], ref_grads):
        assert gr.abs().max() > 1e-4
        torch.testing.assert_close(gr, rg, atol=1e-10, rtol=1e-8)
    assert all(gr is None for gr in grads[k:])  # nothing flows into targets, queue or synthetic negatives
    # harder than InfoNCE with the same targets and queue; the part reports the mean similarity
    plain = InfoNCE(temperature=0.2).double()(views, targets=targets, queue=queue)
    assert out.loss.item() > plain.loss.item()
    expected_sim = torch.einsum("ad,asd->as", F.normalize(torch.cat([v.detach() for v in views]), dim=1), syn)
    assert float(out.parts["synthetic_sim"]) == pytest.approx(float(expected_sim.mean()), abs=1e-12)
    assert float(out.parts["top1"]) == float(plain.parts["top1"])  # top-1 among the real candidates


def test_empty_queue_is_infonce_with_targets():
    g = torch.Generator().manual_seed(3)
    views = [torch.randn(4, 3, generator=g, dtype=torch.float64) for _ in range(2)]
    targets = [v + 0.1 for v in views]
    mochi = MoCHi(temperature=0.3).double()(views, targets=targets, queue=torch.zeros(0, 3, dtype=torch.float64))
    plain = InfoNCE(temperature=0.3).double()(views, targets=targets)
    assert mochi.loss.item() == pytest.approx(plain.loss.item(), abs=1e-12)
    assert float(mochi.parts["synthetic_sim"]) == 0.0


def test_needs_targets_and_queue_and_checks_arguments():
    views = [torch.randn(4, 3) for _ in range(2)]
    with pytest.raises(ConfigError, match="mixes negatives from the momentum queue"):
        MoCHi()(views)
    with pytest.raises(ConfigError, match="mixes negatives from the momentum queue"):
        MoCHi()(views, targets=views)
    for kwargs, msg in (({"n_hard": 0}, "n_hard must be an integer ≥ 1"), ({"s1": -1}, "s1 must be"),
                        ({"s2": 1.5}, "s2 must be"), ({"temperature": 0}, "MoCHi: temperature")):
        with pytest.raises(ConfigError, match=msg):
            MoCHi(**kwargs)
    enc_head = (torch.nn.Linear(3, 4), ProjectionHead(4, out_dim=4))
    enc_head[0].out_dim = 4
    with pytest.raises(ConfigError, match="needs the negatives queue"):
        Pretrainer(*enc_head, MoCHi())
    with pytest.raises(ConfigError, match="needs the negatives queue"):
        Pretrainer(*enc_head, MoCHi(), momentum=0.99)


def test_a_few_training_steps_with_a_queue():
    torch.manual_seed(0)
    enc = torch.nn.Linear(6, 8)
    enc.out_dim = 8
    model = Pretrainer(enc, ProjectionHead(8, out_dim=4), MoCHi(temperature=0.2, n_hard=16, s1=8, s2=4),
                       momentum=0.9, queue_size=32)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model.train()
    base = torch.randn(64, 6)
    sims = []
    for step in range(6):
        x = base[step * 8 % 64:][:8]
        out = model([x + 0.1 * torch.randn_like(x), x + 0.1 * torch.randn_like(x)])
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        model.update_target(step, 6)
        assert math.isfinite(out.loss.item())
        sims.append(float(out.parts["synthetic_sim"]))
    assert len(model.queue) == 32 and sims[0] == 0.0 and all(s != 0.0 for s in sims[1:])
