"""DCL, DCLW, debiased, hard-negative, SupCon and per-sample-temperature losses.

Every loss is checked against a deliberately naive reference written here
(explicit loops over anchors and candidates, float64), values and gradients,
for K = 2 and 3 views; then against closed forms (collapse, perfectly aligned
orthogonal embeddings), the relations between the losses, and argument checks.
"""

from __future__ import annotations

import math

import pytest
import torch
from scipy.optimize import brentq

from contrastkit.core.errors import ConfigError
from contrastkit.core.losses import ContrastiveLoss, InfoNCE, LossOutput
from contrastkit.core.losses.contrastive import (
    DCL,
    DCLW,
    DESCRIPTIONS,
    LOSSES,
    DebiasedInfoNCE,
    HardNegativeInfoNCE,
    PerSampleTemperatureInfoNCE,
    SupCon,
)

# ---- naive references --------------------------------------------------------------------------


def embeddings(views):
    """{(view, sample): unit vector}, normalised by hand."""
    out = {}
    for v in range(len(views)):
        for i in range(views[0].shape[0]):
            x = views[v][i]
            out[(v, i)] = x / torch.sqrt((x * x).sum())
    return out


def dot(a, b):
    return (a * b).sum()


def naive_dcl(views, t, sigma=None):
    """DCL / DCLW: -w·s_ap/t averaged over positives, plus log sum over the other samples' views."""
    k, b = len(views), views[0].shape[0]
    emb = embeddings(views)
    total = 0.0
    for (v, i) in emb:
        denom = 0.0
        for (u, j) in emb:
            if j != i:
                denom = denom + torch.exp(dot(emb[(v, i)], emb[(u, j)]) / t)
        pos_term = 0.0
        for u in range(k):
            if u == v:
                continue
            s = dot(emb[(v, i)], emb[(u, i)])
            weight = 1.0
            if sigma is not None:
                norm = 0.0
                for g in range(b):
                    norm = norm + torch.exp(dot(emb[(v, g)], emb[(u, g)]) / sigma)
                weight = 2 - b * torch.exp(s / sigma) / norm
            pos_term = pos_term - weight * s / t
        total = total + pos_term / (k - 1) + torch.log(denom)
    return total / len(emb)


def naive_debiased(views, t, tau_plus, beta=0.0):
    """Chuang et al.'s estimator (Robinson et al.'s with beta > 0), directly in exp space."""
    k = len(views)
    emb = embeddings(views)
    total = 0.0
    for (v, i) in emb:
        negs = [torch.exp(dot(emb[(v, i)], emb[(u, j)]) / t) for (u, j) in emb if j != i]
        n = len(negs)
        if beta == 0:
            neg_sum = sum(negs)
        else:
            imp = [e ** beta for e in negs]  # exp(beta * s / t)
            neg_sum = n * sum(w * e for w, e in zip(imp, negs)) / sum(imp)
        pos = [torch.exp(dot(emb[(v, i)], emb[(u, i)]) / t) for u in range(k) if u != v]
        pos_mean = sum(pos) / len(pos)
        ng = (neg_sum - tau_plus * n * pos_mean) / (1 - tau_plus)
        floor = n * math.exp(-1 / t)
        if ng < floor:
            ng = torch.tensor(floor, dtype=torch.float64)
        anchor = 0.0
        for p in pos:
            anchor = anchor - torch.log(p / (p + ng))
        total = total + anchor / len(pos)
    return total / len(emb)


def naive_supcon(views, t, labels=None):
    """Positives: other views of the same sample, and any view of a sample with the same known label."""
    emb = embeddings(views)
    total = 0.0
    for (v, i) in emb:
        denom = 0.0
        for other in emb:
            if other != (v, i):
                denom = denom + torch.exp(dot(emb[(v, i)], emb[other]) / t)
        positives = []
        for (u, j) in emb:
            if (u, j) == (v, i):
                continue
            same_label = labels is not None and labels[i] >= 0 and labels[j] == labels[i]
            if j == i or same_label:
                positives.append((u, j))
        anchor = 0.0
        for p in positives:
            anchor = anchor - torch.log(torch.exp(dot(emb[(v, i)], emb[p]) / t) / denom)
        total = total + anchor / len(positives)
    return total / len(emb)


def naive_per_sample(views, rho, tau_min, tau_max):
    """Per anchor: min over tau in [tau_min, tau_max] of tau·log mean_j exp((s_j - mean_p s_p)/tau) + rho·tau.

    The minimiser is found with scipy's brentq on dF/dtau, the derivative taken by
    autograd of the naive F (nothing about the KL form the library uses).  The
    returned value keeps tau* fixed, so its gradient is the partial derivative
    at tau* (the library's claim that this is the gradient of the min is checked
    separately with finite differences).
    """
    k = len(views)
    emb = embeddings(views)
    total, taus = 0.0, []
    for (v, i) in emb:
        negs = [dot(emb[(v, i)], emb[(u, j)]) for (u, j) in emb if j != i]
        pos = [dot(emb[(v, i)], emb[(u, i)]) for u in range(k) if u != v]
        pos_mean = sum(pos) / len(pos)

        def objective(tau):
            mean_exp = sum(torch.exp((s - pos_mean) / tau) for s in negs) / len(negs)
            return tau * torch.log(mean_exp) + rho * tau

        def slope(x: float) -> float:
            tau = torch.tensor(x, dtype=torch.float64, requires_grad=True)
            with torch.enable_grad():
                (g,) = torch.autograd.grad(objective(tau), [tau])
            return float(g)

        if slope(tau_min) >= 0:
            tau = tau_min
        elif slope(tau_max) <= 0:
            tau = tau_max
        else:
            tau = brentq(slope, tau_min, tau_max, xtol=1e-15, rtol=1e-15, maxiter=500)
        taus.append(tau)
        total = total + objective(torch.tensor(tau, dtype=torch.float64))
    return total / len(emb), taus


def random_views(k: int, b: int, d: int, seed: int, spread: float = 0.7) -> list[torch.Tensor]:
    """Correlated float64 views (positives on average closer than negatives), requiring grad."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(b, d, generator=g, dtype=torch.float64)
    return [(base + spread * torch.randn(b, d, generator=g, dtype=torch.float64)).requires_grad_(True)
            for _ in range(k)]


def assert_matches(loss_fn, ref_fn, views, labels=None, atol=1e-9, rtol=1e-8):
    out = loss_fn(views, labels) if labels is not None else loss_fn(views)
    ref = ref_fn(views)
    assert isinstance(out, LossOutput)
    assert out.loss.dim() == 0 and out.loss.dtype == torch.float64
    torch.testing.assert_close(out.loss, ref.detach(), atol=atol, rtol=rtol)
    grads = torch.autograd.grad(out.loss, views)
    ref_grads = torch.autograd.grad(ref, views)
    for g, rg in zip(grads, ref_grads):
        assert g.abs().max() > 1e-4  # gradients are not trivially zero
        torch.testing.assert_close(g, rg, atol=atol, rtol=rtol)
    return out


# ---- against the references -----------------------------------------------------------------------

K_B_D = [(2, 5, 4), (3, 4, 3)]


@pytest.mark.parametrize("k,b,d", K_B_D)
@pytest.mark.parametrize("t", [0.1, 0.5, 1.0])
def test_dcl_matches_naive(k, b, d, t):
    views = random_views(k, b, d, seed=k * 100 + int(10 * t))
    assert_matches(DCL(temperature=t), lambda v: naive_dcl(v, t), views)


@pytest.mark.parametrize("k,b,d", K_B_D)
@pytest.mark.parametrize("t,sigma", [(0.1, 0.5), (0.5, 0.2), (1.0, 2.0)])
def test_dclw_matches_naive(k, b, d, t, sigma):
    views = random_views(k, b, d, seed=k * 100 + int(10 * sigma))
    assert_matches(DCLW(temperature=t, sigma=sigma), lambda v: naive_dcl(v, t, sigma), views)


@pytest.mark.parametrize("k,b,d", K_B_D)
@pytest.mark.parametrize("t,tau_plus", [(0.5, 0.0), (0.5, 0.1), (0.2, 0.3), (1.0, 0.05)])
def test_debiased_matches_naive(k, b, d, t, tau_plus):
    views = random_views(k, b, d, seed=k * 7 + int(100 * tau_plus))
    assert_matches(DebiasedInfoNCE(temperature=t, tau_plus=tau_plus), lambda v: naive_debiased(v, t, tau_plus), views)


@pytest.mark.parametrize("k,b,d", K_B_D)
@pytest.mark.parametrize("t,tau_plus,beta", [(0.5, 0.1, 1.0), (0.5, 0.0, 0.5), (0.2, 0.2, 2.0), (1.0, 0.1, 3.0)])
def test_hard_negative_matches_naive(k, b, d, t, tau_plus, beta):
    views = random_views(k, b, d, seed=k * 11 + int(10 * beta))
    assert_matches(HardNegativeInfoNCE(temperature=t, tau_plus=tau_plus, beta=beta),
                   lambda v: naive_debiased(v, t, tau_plus, beta), views)


def test_debiased_clamp_is_exercised_and_matches_naive():
    # a large class prior makes the corrected negative sum fall below n·e^{-1/t} for some anchors
    views = random_views(3, 4, 3, seed=5, spread=0.3)
    loss = DebiasedInfoNCE(temperature=0.5, tau_plus=0.4)
    out = assert_matches(loss, lambda v: naive_debiased(v, 0.5, 0.4), views)
    assert 0 < float(out.parts["clamped"]) < 1


@pytest.mark.parametrize("k,b,d", K_B_D)
@pytest.mark.parametrize("t", [0.1, 0.5])
def test_supcon_matches_naive_with_labels(k, b, d, t):
    views = random_views(k, b, d, seed=k + 31)
    labels = torch.tensor([0, 1, 0, -1, 1][:b])
    out = assert_matches(SupCon(temperature=t), lambda v: naive_supcon(v, t, labels.tolist()), views, labels=labels)
    # expected mean positive count: own views (k-1) plus (k·(class size) - k) for the labelled ones
    sizes = {0: 2, 1: 2 if b == 5 else 1}
    expected = sum(k - 1 + (k * sizes[int(y)] - k if y >= 0 else 0) for y in labels) / b
    assert float(out.parts["positives"]) == pytest.approx(expected)


@pytest.mark.parametrize("k,b,d", K_B_D)
def test_supcon_matches_naive_without_labels(k, b, d):
    views = random_views(k, b, d, seed=k + 41)
    out = assert_matches(SupCon(temperature=0.2), lambda v: naive_supcon(v, 0.2), views)
    assert float(out.parts["positives"]) == k - 1


@pytest.mark.parametrize("k,b,d", K_B_D)
@pytest.mark.parametrize("rho,tau_min,tau_max", [(0.3, 0.05, 0.7), (0.1, 0.05, 2.0), (0.8, 0.1, 0.5)])
def test_per_sample_temperature_matches_naive(k, b, d, rho, tau_min, tau_max):
    views = random_views(k, b, d, seed=k * 3 + int(10 * rho), spread=1.0)
    loss = PerSampleTemperatureInfoNCE(rho=rho, tau_min=tau_min, tau_max=tau_max)
    taus = []

    def ref(v):
        value, found = naive_per_sample(v, rho, tau_min, tau_max)
        taus.extend(found)
        return value

    out = assert_matches(loss, ref, views)
    assert float(out.parts["tau_mean"]) == pytest.approx(sum(taus) / len(taus), abs=1e-10)
    at_bound = [tau in (tau_min, tau_max) for tau in taus]
    assert float(out.parts["tau_at_bound"]) == pytest.approx(sum(at_bound) / len(taus))
    assert not all(at_bound)  # the interior solve is exercised


def test_per_sample_temperature_gradient_is_that_of_the_min():
    # gradcheck differentiates the loss numerically, re-solving every tau_i at each
    # perturbed input: the analytic gradient (tau_i held fixed) must agree (Danskin)
    views = [v.detach().requires_grad_(True) for v in random_views(3, 4, 3, seed=8, spread=1.0)]
    loss = PerSampleTemperatureInfoNCE(rho=0.2, tau_min=0.05, tau_max=0.8, iterations=60)
    assert float(loss(views).parts["tau_at_bound"]) < 1
    assert torch.autograd.gradcheck(lambda *v: loss(list(v)).loss, tuple(views), eps=1e-6, atol=1e-6, rtol=1e-5)


def test_per_sample_temperatures_differ_across_anchors():
    # an anchor surrounded by a tight cluster of negatives vs one with spread-out negatives
    views = random_views(2, 8, 6, seed=3, spread=1.0)
    out = PerSampleTemperatureInfoNCE(rho=0.2, tau_min=0.01, tau_max=5.0)(views)
    _, taus = naive_per_sample(views, 0.2, 0.01, 5.0)
    assert max(taus) - min(taus) > 0.05
    assert float(out.parts["tau_mean"]) == pytest.approx(sum(taus) / len(taus), abs=1e-10)


# ---- known limits -----------------------------------------------------------------------------------

def collapsed(k, b):
    z = torch.ones(b, 5, dtype=torch.float64)
    return [z.clone() for _ in range(k)]


def aligned(k, b):
    z = torch.eye(b, b + 2, dtype=torch.float64)  # view v of sample i is e_i
    return [z.clone() for _ in range(k)]


@pytest.mark.parametrize("k,b", [(2, 4), (3, 5), (4, 2)])
def test_collapse_closed_forms(k, b):
    n = k * (b - 1)  # negatives of an anchor
    for t in (0.05, 1.0):
        # all similarities 1: DCL = -1/t + log(n e^{1/t}) = log n; the DCLW weights are all 1
        assert DCL(t)(collapsed(k, b)).loss.item() == pytest.approx(math.log(n), abs=1e-10)
        assert DCLW(t, sigma=0.3)(collapsed(k, b)).loss.item() == pytest.approx(math.log(n), abs=1e-10)
        # N_g = (n e^{1/t} - tau+ n e^{1/t}) / (1 - tau+) = n e^{1/t}: loss log(1 + n), whatever tau+ and beta
        for tau_plus in (0.0, 0.3):
            out = DebiasedInfoNCE(t, tau_plus)(collapsed(k, b))
            assert out.loss.item() == pytest.approx(math.log1p(n), abs=1e-10)
            assert float(out.parts["clamped"]) == 0.0
            for beta in (0.5, 4.0):
                assert HardNegativeInfoNCE(t, tau_plus, beta)(collapsed(k, b)).loss.item() == pytest.approx(
                    math.log1p(n), abs=1e-10)
        # SupCon: log(N - 1) with or without labels (all of one class: every other item positive)
        for labels in (None, torch.zeros(b, dtype=torch.long)):
            assert SupCon(t)(collapsed(k, b), labels).loss.item() == pytest.approx(math.log(k * b - 1), abs=1e-10)
    # per-sample: every negative alike, KL = 0 < rho, so tau_i = tau_min and loss = rho·tau_min
    out = PerSampleTemperatureInfoNCE(rho=0.3, tau_min=0.05, tau_max=0.7)(collapsed(k, b))
    assert out.loss.item() == pytest.approx(0.3 * 0.05, abs=1e-12)
    assert float(out.parts["tau_mean"]) == pytest.approx(0.05)
    assert float(out.parts["tau_at_bound"]) == 1.0


@pytest.mark.parametrize("k,b", [(2, 4), (3, 5)])
@pytest.mark.parametrize("t", [0.1, 0.5, 1.0])
def test_aligned_orthogonal_closed_forms(k, b, t):
    # positives similarity 1, negatives 0
    n = k * (b - 1)
    dcl = DCL(t)(aligned(k, b))
    assert dcl.loss.item() == pytest.approx(-1 / t + math.log(n), abs=1e-10)
    assert float(dcl.parts["top1"]) == 1.0 and float(dcl.parts["pos_sim"]) == pytest.approx(1.0)
    assert DCLW(t, 0.5)(aligned(k, b)).loss.item() == pytest.approx(-1 / t + math.log(n), abs=1e-10)
    # debiased: sum of negatives n, corrected n(1 - tau+ e^{1/t})/(1 - tau+), clamped at n e^{-1/t}
    for tau_plus in (0.0, 0.01, 0.5):
        ng = max(n * (1 - tau_plus * math.exp(1 / t)) / (1 - tau_plus), n * math.exp(-1 / t))
        expected = math.log1p(ng * math.exp(-1 / t))
        out = DebiasedInfoNCE(t, tau_plus)(aligned(k, b))
        assert out.loss.item() == pytest.approx(expected, abs=1e-10)
        clamped = tau_plus * math.exp(1 / t) > 1 - math.exp(-1 / t) * (1 - tau_plus)  # A < n e^{-1/t}
        assert float(out.parts["clamped"]) == float(clamped)
        # all negatives alike: importance weights change nothing
        assert HardNegativeInfoNCE(t, tau_plus, 2.0)(aligned(k, b)).loss.item() == pytest.approx(expected, abs=1e-10)
    # SupCon with all-distinct labels is InfoNCE's closed form log((k-1) + (N-k) e^{-1/t})
    expected = math.log((k - 1) + (k * b - k) * math.exp(-1 / t))
    assert SupCon(t)(aligned(k, b), torch.arange(b)).loss.item() == pytest.approx(expected, abs=1e-10)
    # per-sample: negatives alike -> tau_min; loss = 0 - 1 + rho·tau_min
    out = PerSampleTemperatureInfoNCE(rho=0.3, tau_min=0.05, tau_max=0.7)(aligned(k, b))
    assert out.loss.item() == pytest.approx(0.3 * 0.05 - 1, abs=1e-12)
    assert float(out.parts["top1"]) == 1.0


@pytest.mark.parametrize("k", [2, 3])
def test_supcon_class_clusters_closed_form(k):
    # 6 samples in 3 classes of 2; samples of a class share one unit vector, classes orthogonal
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    z = torch.eye(3, 4, dtype=torch.float64)[labels]
    t = 0.3
    n_all, p = k * 6, 2 * k - 1  # every anchor: 2k - 1 positives at similarity 1, the rest at 0
    expected = -1 / t + math.log(p * math.exp(1 / t) + (n_all - 1 - p))
    out = SupCon(t)([z.clone() for _ in range(k)], labels)
    assert out.loss.item() == pytest.approx(expected, abs=1e-10)
    assert float(out.parts["positives"]) == p and float(out.parts["top1"]) == 1.0


# ---- relations between losses ---------------------------------------------------------------------------

def infonce_with(t):
    loss = InfoNCE(temperature=t).double()
    return loss, float(loss.temperature)


@pytest.mark.parametrize("k", [2, 3])
def test_supcon_without_or_with_distinct_or_unknown_labels_is_infonce(k):
    views = random_views(k, 6, 4, seed=17)
    info, t = infonce_with(0.2)
    ref = info(views)
    ref_grads = torch.autograd.grad(ref.loss, views)
    for labels in (None, torch.arange(6), torch.full((6,), -1), torch.tensor([-1, 3, -2, 7, 0, 9])):
        out = SupCon(t)(views, labels)
        torch.testing.assert_close(out.loss, ref.loss, atol=1e-12, rtol=1e-12)
        for g, rg in zip(torch.autograd.grad(out.loss, views), ref_grads):
            torch.testing.assert_close(g, rg, atol=1e-12, rtol=1e-10)
        for key in ("pos_sim", "top1"):
            torch.testing.assert_close(out.parts[key].double(), ref.parts[key].double(), atol=1e-12, rtol=0)


def test_debiased_without_prior_is_infonce_for_two_views():
    views = random_views(2, 6, 4, seed=21)
    info, t = infonce_with(0.5)
    ref = info(views)
    out = DebiasedInfoNCE(temperature=t, tau_plus=0.0)(views)
    torch.testing.assert_close(out.loss, ref.loss, atol=1e-12, rtol=1e-12)
    for g, rg in zip(torch.autograd.grad(out.loss, views), torch.autograd.grad(ref.loss, views)):
        torch.testing.assert_close(g, rg, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("k,b,t", [(2, 4, 0.5), (3, 5, 0.2)])
def test_debiased_without_prior_is_softplus_of_dcl_when_anchors_alike(k, b, t):
    # per anchor and positive, the debiased term with tau+ = 0 is log(1 + e^d) where d is the
    # DCL term; with every anchor alike (aligned embeddings) the means obey the same relation
    dcl = DCL(t)(aligned(k, b)).loss.item()
    assert DebiasedInfoNCE(t, 0.0)(aligned(k, b)).loss.item() == pytest.approx(math.log1p(math.exp(dcl)), abs=1e-12)
    # and with arbitrary embeddings, the mean of softplus(d) ≥ softplus(mean d) (Jensen): debiased ≥ softplus(DCL)
    views = random_views(k, b, 4, seed=2)
    dcl = DCL(t)(views).loss.item()
    assert DebiasedInfoNCE(t, 0.0)(views).loss.item() >= math.log1p(math.exp(dcl)) - 1e-12


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("tau_plus", [0.0, 0.1, 0.4])
def test_hard_negative_with_beta_zero_is_debiased(k, tau_plus):
    views = random_views(k, 5, 4, seed=k + int(10 * tau_plus), spread=0.4)
    a = HardNegativeInfoNCE(temperature=0.4, tau_plus=tau_plus, beta=0.0)(views)
    b = DebiasedInfoNCE(temperature=0.4, tau_plus=tau_plus)(views)
    torch.testing.assert_close(a.loss, b.loss, atol=1e-13, rtol=0)
    for ga, gb in zip(torch.autograd.grad(a.loss, views), torch.autograd.grad(b.loss, views)):
        torch.testing.assert_close(ga, gb, atol=1e-13, rtol=0)
    assert a.parts.keys() == b.parts.keys()


def test_hard_negative_large_beta_uses_the_hardest_negative():
    # beta -> infinity: the reweighted negative sum tends to n·e^{max_j s_ij / t}
    k, t = 2, 1.0
    views = random_views(k, 6, 5, seed=9)
    emb = torch.cat([torch.nn.functional.normalize(v.detach(), dim=1) for v in views])
    sims = emb @ emb.T
    b = views[0].shape[0]
    sample = torch.arange(k * b) % b
    neg = sims.masked_fill(sample[:, None] == sample[None, :], float("-inf"))
    top2 = neg.topk(2, dim=1).values
    assert (top2[:, 0] - top2[:, 1]).min() > 2e-3  # a unique hardest negative per anchor
    pos = sims[torch.arange(k * b), (torch.arange(k * b) + b) % (k * b)]
    n = k * (b - 1)
    limit = torch.nn.functional.softplus(math.log(n) + top2[:, 0] / t - pos / t).mean()
    out = HardNegativeInfoNCE(temperature=t, tau_plus=0.0, beta=2e4)(views)
    assert out.loss.item() == pytest.approx(limit.item(), abs=1e-9)
    assert torch.isfinite(torch.autograd.grad(out.loss, views)[0]).all()


def test_per_sample_with_a_fixed_temperature_is_scaled_dcl():
    # tau_min = tau_max = t: loss = t·DCL(t) - t·log n + rho·t
    k, b, t, rho = 3, 5, 0.3, 0.2
    views = random_views(k, b, 4, seed=13)
    n = k * (b - 1)
    out = PerSampleTemperatureInfoNCE(rho=rho, tau_min=t, tau_max=t)(views)
    dcl = DCL(t)(views)
    torch.testing.assert_close(out.loss, t * dcl.loss - t * math.log(n) + rho * t, atol=1e-12, rtol=0)
    for g, rg in zip(torch.autograd.grad(out.loss, views), torch.autograd.grad(dcl.loss, views)):
        torch.testing.assert_close(g, t * rg, atol=1e-12, rtol=1e-10)
    assert float(out.parts["tau_mean"]) == pytest.approx(t)


def test_per_sample_bounds_of_rho():
    views = random_views(2, 5, 4, seed=4)
    n = 2 * 4
    # rho = 0: the KL ball is a point, tau -> tau_max; rho ≥ log n: tau = tau_min
    high = PerSampleTemperatureInfoNCE(rho=0.0, tau_min=0.1, tau_max=0.9)(views)
    low = PerSampleTemperatureInfoNCE(rho=math.log(n) + 0.01, tau_min=0.1, tau_max=0.9)(views)
    assert float(high.parts["tau_mean"]) == pytest.approx(0.9) and float(high.parts["tau_at_bound"]) == 1.0
    assert float(low.parts["tau_mean"]) == pytest.approx(0.1) and float(low.parts["tau_at_bound"]) == 1.0


def test_dclw_weights_average_one_per_view_pair():
    # the weighting only redistributes the positive term: equal positive similarities give DCL
    views = random_views(2, 5, 4, seed=6)
    rotated = [views[0], views[0].detach().clone().requires_grad_(True)]  # every positive pair at similarity 1
    assert DCLW(0.2, 0.5)(rotated).loss.item() == pytest.approx(DCL(0.2)(rotated).loss.item(), abs=1e-12)
    # and with distinct positive similarities they differ
    assert abs(DCLW(0.2, 0.5)(views).loss.item() - DCL(0.2)(views).loss.item()) > 1e-3


# ---- numerics, dtype, interface --------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(LOSSES))
def test_float32_agrees_with_float64(name):
    views = random_views(3, 6, 5, seed=19)
    loss = LOSSES[name]()
    a = loss(views)
    b = loss([v.detach().float() for v in views])
    assert b.loss.dtype == torch.float32
    assert b.loss.item() == pytest.approx(a.loss.item(), abs=1e-4, rel=1e-4)


@pytest.mark.parametrize("cls,kwargs", [
    (DCL, {"temperature": 0.01}), (DCLW, {"temperature": 0.01, "sigma": 0.01}),
    (DebiasedInfoNCE, {"temperature": 0.01, "tau_plus": 0.1}),
    (HardNegativeInfoNCE, {"temperature": 0.01, "tau_plus": 0.1, "beta": 5.0}),
    (SupCon, {"temperature": 0.01}), (PerSampleTemperatureInfoNCE, {"tau_min": 0.005}),
])
def test_small_temperature_float32_is_finite(cls, kwargs):
    views = [v.detach().float().requires_grad_(True) for v in random_views(2, 16, 8, seed=23)]
    out = cls(**kwargs)(views, torch.arange(16) % 3) if cls is SupCon else cls(**kwargs)(views)
    grads = torch.autograd.grad(out.loss, views)
    assert torch.isfinite(out.loss) and all(torch.isfinite(g).all() for g in grads)
    assert all(torch.isfinite(v) for v in out.parts.values())


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_interface(name):
    cls = LOSSES[name]
    loss = cls()
    assert issubclass(cls, ContrastiveLoss) and cls.distributed == "gather"
    assert "Distributed:" in cls.__doc__ and "Example::" in cls.__doc__ and " et al." in cls.__doc__
    assert DESCRIPTIONS[name]
    views = random_views(2, 4, 3, seed=1)
    out = loss(views)
    assert {"pos_sim", "top1"} <= set(out.parts)
    assert all(v.dim() == 0 and not v.requires_grad for v in out.parts.values())
    # scale invariance: embeddings are normalised
    scaled = loss([v * s for v, s in zip(views, (5.0, 0.01))])
    assert scaled.loss.item() == pytest.approx(out.loss.item(), abs=1e-10)
    with pytest.raises(ConfigError, match="at least 2 views, got 1"):
        loss([views[0]])
    with pytest.raises(ConfigError, match="same shape"):
        loss([views[0], torch.randn(5, 3, dtype=torch.float64)])
    assert repr(loss).startswith(cls.__name__ + "(")


@pytest.mark.parametrize("cls", [DCL, DCLW, DebiasedInfoNCE, HardNegativeInfoNCE, PerSampleTemperatureInfoNCE])
def test_single_sample_batch_has_no_negatives(cls):
    z = torch.randn(1, 3)
    with pytest.raises(ConfigError, match="at least 2 samples"):
        cls()([z, z.clone()])


BAD_NUMBERS = [0, -0.5, "0.1", None, float("nan"), float("inf"), True]


@pytest.mark.parametrize("bad", BAD_NUMBERS)
def test_constructors_reject_bad_arguments(bad):
    for cls in (DCL, DCLW, DebiasedInfoNCE, HardNegativeInfoNCE, SupCon):
        with pytest.raises(ConfigError, match=f"{cls.__name__}: temperature must be a positive number"):
            cls(temperature=bad)
    with pytest.raises(ConfigError, match="DCLW: sigma must be a positive number"):
        DCLW(sigma=bad)
    for name in ("tau_min", "tau_max"):
        with pytest.raises(ConfigError, match=f"PerSampleTemperatureInfoNCE: {name} must be a positive number"):
            PerSampleTemperatureInfoNCE(**{name: bad})


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan"), "0.1", None])
def test_rejects_bad_tau_plus(bad):
    for cls in (DebiasedInfoNCE, HardNegativeInfoNCE):
        with pytest.raises(ConfigError, match=r"tau_plus \(the class prior\) must lie in \[0, 1\)"):
            cls(tau_plus=bad)


def test_rejects_other_bad_arguments():
    for bad in (-1.0, float("nan"), "1", None):
        with pytest.raises(ConfigError, match="HardNegativeInfoNCE: beta must be a number ≥ 0"):
            HardNegativeInfoNCE(beta=bad)
        with pytest.raises(ConfigError, match="rho must be a number ≥ 0"):
            PerSampleTemperatureInfoNCE(rho=bad)
    with pytest.raises(ConfigError, match="tau_max must be ≥ tau_min"):
        PerSampleTemperatureInfoNCE(tau_min=0.5, tau_max=0.1)
    for bad in (0, 2.5, True):
        with pytest.raises(ConfigError, match="iterations must be an integer ≥ 1"):
            PerSampleTemperatureInfoNCE(iterations=bad)
    # edge values that are allowed
    assert HardNegativeInfoNCE(beta=0).beta == 0.0 and DebiasedInfoNCE(tau_plus=0).tau_plus == 0.0
    assert PerSampleTemperatureInfoNCE(rho=0, tau_min=0.2, tau_max=0.2).tau_max == 0.2


def test_supcon_rejects_bad_labels():
    views = random_views(2, 4, 3, seed=1)
    loss = SupCon()
    for bad, what in ((torch.zeros(4), "float"), (torch.zeros(3, dtype=torch.long), r"\(3,\)"),
                      (torch.zeros(4, 1, dtype=torch.long), r"\(4, 1\)"), ([0, 1, 2, 3], "list"),
                      (torch.zeros(4, dtype=torch.bool), "bool")):
        with pytest.raises(ConfigError, match=r"SupCon: labels must be an integer tensor of shape \(4,\), got .*"
                           + what):
            loss(views, bad)
    # other integer dtypes are fine
    assert torch.isfinite(loss(views, torch.tensor([0, 1, 0, 1], dtype=torch.int32)).loss)


def test_losses_registry_names():
    assert set(LOSSES) == {"dcl", "dclw", "debiased", "hard_negative", "supcon", "per_sample_temperature"}
    assert set(DESCRIPTIONS) == set(LOSSES)


@pytest.mark.parametrize("k", [2, 3, 4])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_one_process_fast_path_equals_general_path(k, dtype):
    """InfoNCE, DCL and MV-InfoNCE take a fused one-node path in one process; it must equal the general one."""
    from unittest import mock

    import contrastkit.core.losses.contrastive as con
    import contrastkit.core.losses.infonce as inf
    import contrastkit.core.losses.multiview as mv
    from contrastkit.core.losses.contrastive import DCL
    from contrastkit.core.losses.infonce import InfoNCE
    from contrastkit.core.losses.multiview import MVInfoNCE

    gen = torch.Generator().manual_seed(k)
    for cls in (InfoNCE, DCL, MVInfoNCE):
        views = [torch.randn(7, 5, dtype=dtype, generator=gen, requires_grad=True) for _ in range(k)]
        fast = cls(temperature=0.3)(views)
        g_fast = torch.autograd.grad(fast.loss * 1.7, views)
        with mock.patch.object(inf, "fused_applies", lambda *a: False), \
                mock.patch.object(con, "fused_applies", lambda *a: False), \
                mock.patch.object(mv, "fused_applies", lambda *a: False):
            slow = cls(temperature=0.3)(views)
            g_slow = torch.autograd.grad(slow.loss * 1.7, views)
        torch.testing.assert_close(fast.loss, slow.loss)
        for a, b in zip(g_fast, g_slow):
            torch.testing.assert_close(a, b)
        for key, val in slow.parts.items():
            torch.testing.assert_close(fast.parts[key].to(dtype), val.to(dtype), msg=key)
