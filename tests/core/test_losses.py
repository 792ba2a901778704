"""InfoNCE against a deliberately naive reference, closed forms and argument checks."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.core.errors import ConfigError
from contrastkit.core.losses import ContrastiveLoss, InfoNCE, LossOutput


def naive_infonce(views: list[torch.Tensor], temperature) -> torch.Tensor:
    """InfoNCE with explicit loops: anchor (k, b) against every other embedding of the batch.

    Written independently of the library: every embedding is normalised by hand,
    and for each anchor, each positive (same sample, other view) contributes
    -log(exp(s_ap/t) / sum_{j != a} exp(s_aj/t)); positives are averaged per
    anchor, anchors averaged over the batch.
    """
    k, b = len(views), views[0].shape[0]
    emb = {}
    for v in range(k):
        for i in range(b):
            x = views[v][i]
            emb[(v, i)] = x / torch.sqrt((x * x).sum())
    keys = list(emb)
    total = 0.0
    for anchor in keys:
        denom = 0.0
        for other in keys:
            if other != anchor:
                denom = denom + torch.exp((emb[anchor] * emb[other]).sum() / temperature)
        anchor_loss = 0.0
        positives = [(v, anchor[1]) for v in range(k) if v != anchor[0]]
        for pos in positives:
            num = torch.exp((emb[anchor] * emb[pos]).sum() / temperature)
            anchor_loss = anchor_loss - torch.log(num / denom)
        total = total + anchor_loss / len(positives)
    return total / len(keys)


def random_views(k: int, b: int, d: int, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, d, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(k)]


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("temperature", [0.07, 0.1, 0.5, 1.0, 2.0])
def test_matches_naive_reference_values_and_gradients(k, temperature):
    views = random_views(k, 5, 4, seed=10 * k + int(100 * temperature))
    # correlated views, so that positives are on average more similar than negatives
    with torch.no_grad():
        for v in views[1:]:
            v.mul_(0.5).add_(views[0])
    loss_fn = InfoNCE(temperature=temperature).double()
    tau = float(loss_fn.temperature)  # exp(log t) with log t stored in float32
    assert tau == pytest.approx(temperature, rel=1e-6)

    out = loss_fn(views)
    ref = naive_infonce(views, tau)
    assert isinstance(out, LossOutput)
    assert out.loss.dim() == 0 and out.loss.dtype == torch.float64
    assert out.loss.item() == pytest.approx(ref.item(), abs=1e-5, rel=1e-5)

    grads = torch.autograd.grad(out.loss, views)
    ref_grads = torch.autograd.grad(ref, views)
    for g, rg in zip(grads, ref_grads):
        assert g.abs().max() > 1e-4  # gradients are not trivially zero
        torch.testing.assert_close(g, rg, atol=1e-5, rtol=1e-5)


def test_float32_agrees_with_float64_reference():
    views = random_views(2, 6, 5, seed=3)
    out = InfoNCE(temperature=0.2)([v.detach().float() for v in views])
    assert out.loss.dtype == torch.float32
    assert out.loss.item() == pytest.approx(naive_infonce(views, 0.2).item(), abs=1e-4)


def test_scale_invariant():
    views = random_views(2, 4, 3, seed=1)
    loss = InfoNCE(temperature=0.3).double()
    a = loss(views).loss.item()
    b = loss([v * s for v, s in zip(views, (7.0, 0.01))]).loss.item()
    assert a == pytest.approx(b, abs=1e-12)


@pytest.mark.parametrize("k,b", [(2, 4), (3, 5), (4, 2)])
def test_collapse_gives_log_n_minus_1(k, b):
    # every embedding equal: all similarities are 1, every term is log(1/(N-1))
    z = torch.ones(b, 6, dtype=torch.float64)
    for t in (0.05, 1.0):
        out = InfoNCE(temperature=t).double()([z.clone() for _ in range(k)])
        assert out.loss.item() == pytest.approx(math.log(k * b - 1), abs=1e-10)


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("temperature", [0.02, 0.1, 1.0])
def test_aligned_orthogonal_closed_form(k, temperature):
    # view v of sample i is e_i: positives have similarity 1, negatives 0, so
    # l = -1/t + log((k-1) e^{1/t} + (N-k)) = log((k-1) + (N-k) e^{-1/t})
    b = 6
    n = k * b
    z = torch.eye(b, 8, dtype=torch.float64)
    loss = InfoNCE(temperature=temperature).double()
    tau = float(loss.temperature)
    assert tau == pytest.approx(temperature, rel=1e-6)
    out = loss([z.clone() for _ in range(k)])
    expected = math.log((k - 1) + (n - k) * math.exp(-1 / tau))
    assert out.loss.item() == pytest.approx(expected, abs=1e-10)
    assert float(out.parts["top1"]) == 1.0
    assert float(out.parts["pos_sim"]) == pytest.approx(1.0, abs=1e-10)
    assert float(out.parts["temperature"]) == pytest.approx(temperature, rel=1e-6)
    if k == 2 and temperature <= 0.02:
        assert out.loss.item() < 1e-15  # the loss's lower bound, 0, for two views
    if k == 3:
        # with K > 2 positives compete with each other: the bound is log(K - 1)
        assert out.loss.item() >= math.log(k - 1)


def test_antipodal_views_are_worst_case():
    # positive pairs pointing in opposite directions: top-1 accuracy 0, loss above log(N-1)
    z = torch.eye(4, 4, dtype=torch.float64)
    out = InfoNCE(temperature=0.5).double()([z, -z])
    assert float(out.parts["top1"]) == 0.0
    assert float(out.parts["pos_sim"]) == pytest.approx(-1.0)
    assert out.loss.item() > math.log(2 * 4 - 1)


def test_learnable_temperature_gets_gradient():
    views = random_views(2, 5, 4, seed=4)
    loss = InfoNCE(temperature=0.2, learnable_temperature=True).double()
    params = dict(loss.named_parameters())
    assert list(params) == ["log_temperature"]
    assert loss.temperature.item() == pytest.approx(0.2)
    out = loss(views)
    (g,) = torch.autograd.grad(out.loss, [loss.log_temperature])
    # against the naive reference with a differentiable temperature
    log_t = torch.tensor(math.log(0.2), dtype=torch.float64, requires_grad=True)
    (ref_g,) = torch.autograd.grad(naive_infonce(views, log_t.exp()), [log_t])
    assert float(g) != 0.0
    assert float(g) == pytest.approx(float(ref_g), abs=1e-6)
    # a fixed temperature is a buffer, not a parameter
    fixed = InfoNCE(temperature=0.2)
    assert list(fixed.parameters()) == [] and "log_temperature" in dict(fixed.named_buffers())


@pytest.mark.parametrize("bad", [0, 0.0, -0.1, "0.1", None, float("nan")])
def test_rejects_bad_temperature(bad):
    with pytest.raises(ConfigError, match="temperature must be a positive number"):
        InfoNCE(temperature=bad)


def test_rejects_bad_views():
    loss = InfoNCE()
    z = torch.randn(4, 3)
    with pytest.raises(ConfigError, match="at least 2 views, got 1"):
        loss([z])
    with pytest.raises(ConfigError, match="at least 2 views, got 0"):
        loss([])
    with pytest.raises(ConfigError, match="same shape"):
        loss([z, torch.randn(5, 3)])
    with pytest.raises(ConfigError, match="same shape"):
        loss([z, z, torch.randn(4, 2)])
    with pytest.raises(ConfigError, match="B × D"):
        loss([torch.randn(4, 3, 2), torch.randn(4, 3, 2)])
    assert isinstance(loss, ContrastiveLoss) and loss.distributed == "gather"


def test_per_sample_temperature_is_an_option_of_infonce():
    from contrastkit.core.losses import InfoNCE, PerSampleTemperatureInfoNCE

    torch.manual_seed(0)
    z1 = torch.randn(6, 8, dtype=torch.float64, requires_grad=True)
    z2 = torch.randn(6, 8, dtype=torch.float64, requires_grad=True)
    option = InfoNCE(per_sample_temperature={"rho": 0.2})([z1, z2])
    alone = PerSampleTemperatureInfoNCE(rho=0.2)([z1, z2])
    torch.testing.assert_close(option.loss, alone.loss)
    torch.testing.assert_close(torch.autograd.grad(option.loss, z1), torch.autograd.grad(alone.loss, z1))
    assert not torch.allclose(option.loss, InfoNCE()([z1, z2]).loss)
    for bad in ({"per_sample_temperature": "yes"}, {"per_sample_temperature": True, "learnable_temperature": True},
                {"per_sample_temperature": {"nope": 1}}):
        with pytest.raises(ConfigError):
            InfoNCE(**bad)
