"""Barlow Twins and VICReg against naive references, closed forms and argument checks.

The references loop over samples and features on scalars in float64, written
from the papers' definitions independently of the library.
"""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.core.errors import ConfigError
from contrastkit.core.losses.base import ContrastiveLoss, LossOutput
from contrastkit.core.losses.noncontrastive import LOSSES, BarlowTwins, VICReg


def random_views(k: int, n: int, d: int, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, d, generator=g, dtype=torch.float64) * torch.linspace(0.5, 2.0, d, dtype=torch.float64)
    return [(base + 0.6 * torch.randn(n, d, generator=g, dtype=torch.float64) + 0.3).requires_grad_(True)
            for _ in range(k)]


def hadamard(n: int) -> torch.Tensor:
    h = torch.ones(1, 1, dtype=torch.float64)
    while h.shape[0] < n:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h


def column_stats(z, biased):
    """Per-feature means and variances with loops."""
    n, d = len(z), len(z[0])
    means = [sum(z[s][f] for s in range(n)) / n for f in range(d)]
    var = [sum((z[s][f] - means[f]) ** 2 for s in range(n)) / (n if biased else n - 1) for f in range(d)]
    return means, var


def naive_barlow(views, lam, eps):
    k, n, d = len(views), views[0].shape[0], views[0].shape[1]
    normed = []
    for v in views:
        means, var = column_stats(v, biased=True)
        normed.append([[(v[s][f] - means[f]) / torch.sqrt(var[f] + eps) for f in range(d)] for s in range(n)])
    total, pairs = 0.0, 0
    for a in range(k):
        for b in range(a + 1, k):
            pairs += 1
            for i in range(d):
                for j in range(d):
                    c = sum(normed[a][s][i] * normed[b][s][j] for s in range(n)) / n
                    total = total + ((1 - c) ** 2 if i == j else lam * c ** 2)
    return total / pairs


def naive_vicreg_pair(za, zb, lam, mu, nu, gamma=1.0, eps=1e-4):
    n, d = za.shape
    inv = sum((za[s][f] - zb[s][f]) ** 2 for s in range(n) for f in range(d)) / (n * d)
    reg = 0.0
    for z in (za, zb):
        means, var = column_stats(z, biased=False)
        reg = reg + mu * sum(torch.clamp(gamma - torch.sqrt(var[f] + eps), min=0) for f in range(d)) / d
        cov = 0.0
        for i in range(d):
            for j in range(d):
                if i != j:
                    c = sum((z[s][i] - means[i]) * (z[s][j] - means[j]) for s in range(n)) / (n - 1)
                    cov = cov + c ** 2
        reg = reg + nu * cov / d
    return lam * inv + reg


def naive_vicreg(views, lam, mu, nu):
    k = len(views)
    pairs = [(a, b) for a in range(k) for b in range(a + 1, k)]
    return sum(naive_vicreg_pair(views[a], views[b], lam, mu, nu) for a, b in pairs) / len(pairs)


def assert_matches(loss_fn, reference, views, atol=1e-9):
    out = loss_fn(views)
    ref = reference(views)
    assert isinstance(out, LossOutput) and out.loss.dim() == 0 and out.loss.dtype == torch.float64
    assert out.loss.item() == pytest.approx(ref.item(), abs=atol, rel=atol)
    grads = torch.autograd.grad(out.loss, views)
    ref_grads = torch.autograd.grad(ref, views)
    for g, rg in zip(grads, ref_grads):
        assert g.abs().max() > 1e-5
        torch.testing.assert_close(g, rg, atol=atol, rtol=1e-7)
    return out


# ----------------------------------------------------------------------------- Barlow Twins


@pytest.mark.parametrize("k", [2, 3, 4])
@pytest.mark.parametrize("lam,eps", [(5e-3, 1e-5), (0.5, 0.0), (0.0, 1e-2)])
def test_barlow_matches_naive(k, lam, eps):
    views = random_views(k, 6, 4, seed=10 * k + int(100 * lam))
    out = assert_matches(BarlowTwins(lambda_offdiag=lam, eps=eps), lambda v: naive_barlow(v, lam, eps), views)
    assert out.loss.item() == pytest.approx(float(out.parts["on_diag"] + lam * out.parts["off_diag"]), abs=1e-12)


def test_barlow_identical_decorrelated_views_give_zero():
    # columns of a Hadamard matrix without the constant one: mean 0, biased variance 1,
    # mutually orthogonal -> after batch normalisation C = I exactly
    z = hadamard(8)[:, 1:6]
    for k in (2, 3):
        assert BarlowTwins(eps=0.0)([z.clone() for _ in range(k)]).loss.item() == 0.0
    # with ε the diagonal is 1/(1+ε): loss D (ε/(1+ε))²
    eps = 1e-3
    assert BarlowTwins(eps=eps)([z, z]).loss.item() == pytest.approx(5 * (eps / (1 + eps)) ** 2, rel=1e-10)
    # invariant to a per-feature affine map of each view (batch normalisation), up to ε
    a = z * torch.tensor([3.0, 0.1, 7.0, 1.0, 2.0], dtype=torch.float64) + 5.0
    assert BarlowTwins(eps=0.0)([a, z]).loss.item() == pytest.approx(0.0, abs=1e-24)


def test_barlow_closed_forms():
    h = hadamard(8)
    lam = 0.01
    # a duplicated feature: C = [[1,1,0],[1,1,0],[0,0,1]] -> λ·2
    z = torch.stack([h[:, 1], h[:, 1], h[:, 2]], dim=1)
    assert BarlowTwins(lambda_offdiag=lam, eps=0.0)([z, z]).loss.item() == pytest.approx(2 * lam, abs=1e-15)
    # uncorrelated views: C = 0 -> on-diagonal term D, off-diagonal 0
    out = BarlowTwins(lambda_offdiag=lam, eps=0.0)([h[:, 1:4], h[:, 4:7]])
    assert out.loss.item() == pytest.approx(3.0, abs=1e-15) and float(out.parts["off_diag"]) == 0.0
    # collapse: constant embeddings normalise to 0 -> loss D exactly
    const = torch.full((6, 4), 2.5, dtype=torch.float64)
    assert BarlowTwins()([const, const, const]).loss.item() == 4.0


# ----------------------------------------------------------------------------- VICReg


@pytest.mark.parametrize("k", [2, 3, 4])
@pytest.mark.parametrize("coeffs", [(25.0, 25.0, 1.0), (1.0, 3.0, 10.0)])
def test_vicreg_matches_naive(k, coeffs):
    views = random_views(k, 6, 4, seed=k + int(coeffs[2]))
    # a feature with small variance, so the hinge is active for some features only
    with torch.no_grad():
        for v in views:
            v[:, 0] *= 0.2
    out = assert_matches(VICReg(*coeffs), lambda v: naive_vicreg(v, *coeffs), views)
    parts = out.parts
    assert 0 < float(parts["variance"]) and float(parts["covariance"]) > 0
    expected = coeffs[0] * parts["invariance"] + coeffs[1] * parts["variance"] + coeffs[2] * parts["covariance"]
    assert out.loss.item() == pytest.approx(float(expected), abs=1e-12)


def test_vicreg_two_views_matches_paper_pseudocode():
    # Algorithm 1 of the paper, vectorised, as an independent formulation
    za, zb = (v.detach() for v in random_views(2, 9, 5, seed=4))
    n, d = za.shape
    sim = torch.nn.functional.mse_loss(za, zb)
    std_a, std_b = torch.sqrt(za.var(dim=0) + 1e-4), torch.sqrt(zb.var(dim=0) + 1e-4)
    std = torch.relu(1 - std_a).mean() + torch.relu(1 - std_b).mean()
    ca, cb = za - za.mean(0), zb - zb.mean(0)
    cov_a, cov_b = ca.T @ ca / (n - 1), cb.T @ cb / (n - 1)

    def off(m):
        return m.flatten()[:-1].view(d - 1, d + 1)[:, 1:].flatten()

    cov = off(cov_a).pow(2).sum() / d + off(cov_b).pow(2).sum() / d
    expected = 25 * sim + 25 * std + 1 * cov
    assert VICReg()([za, zb]).loss.item() == pytest.approx(expected.item(), abs=1e-12)


@pytest.mark.parametrize("k", [2, 3])
def test_vicreg_known_limits(k):
    h = hadamard(4)[:, 1:]  # N = 4, D = 3: centred, orthogonal columns
    # identical views, unbiased std √(4/3) ≥ 1, zero covariance: every term vanishes
    out = VICReg()([h.clone() for _ in range(k)])
    assert out.loss.item() == 0.0
    # the same with entries ±1/2: std √(1/3 + ε) < γ; only the variance hinge remains
    expected = 25 * 2 * (1 - math.sqrt(1 / 3 + 1e-4))
    assert VICReg()([0.5 * h for _ in range(k)]).loss.item() == pytest.approx(expected, rel=1e-12)
    # views shifted by a constant c: invariance c², variance and covariance unchanged (0)
    c = 0.7
    shifted = [h + c * i for i in range(k)]
    pair_mean = sum((c * (j - i)) ** 2 for i in range(k) for j in range(i + 1, k)) / (k * (k - 1) / 2)
    assert VICReg()(shifted).loss.item() == pytest.approx(25 * pair_mean, rel=1e-12)
    # collapse: std √ε = 0.01 -> variance 2·0.99, invariance and covariance 0
    const = torch.full((5, 3), -1.0, dtype=torch.float64)
    assert VICReg()([const] * k).loss.item() == pytest.approx(25 * 2 * 0.99, rel=1e-12)


# ----------------------------------------------------------------------------- common behaviour


def test_registry_names():
    assert LOSSES == {"barlow_twins": BarlowTwins, "vicreg": VICReg}
    for cls in LOSSES.values():
        assert issubclass(cls, ContrastiveLoss) and cls.distributed == "gather"
        assert "Distributed:" in cls.__doc__


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_float32_agrees(name):
    views = random_views(3, 8, 5, seed=1)
    loss = LOSSES[name]()
    ref = loss(views).loss.item()
    assert loss([v.detach().float() for v in views]).loss.item() == pytest.approx(ref, rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_rejects_bad_views(name):
    loss = LOSSES[name]()
    z = torch.randn(4, 3)
    with pytest.raises(ConfigError, match="at least 2 views, got 1"):
        loss([z])
    with pytest.raises(ConfigError, match="same shape"):
        loss([z, torch.randn(4, 2)])
    with pytest.raises(ConfigError, match="at least 2 samples"):
        loss([torch.randn(1, 3), torch.randn(1, 3)])


@pytest.mark.parametrize(
    "cls,kwargs,message",
    [
        (BarlowTwins, {"lambda_offdiag": -1e-3}, "lambda_offdiag must be a number ≥ 0"),
        (BarlowTwins, {"lambda_offdiag": "5e-3"}, "lambda_offdiag must be a number ≥ 0"),
        (BarlowTwins, {"eps": float("nan")}, "eps must be a number ≥ 0"),
        (VICReg, {"sim_coeff": -25}, "sim_coeff must be a number ≥ 0"),
        (VICReg, {"std_coeff": None}, "std_coeff must be a number ≥ 0"),
        (VICReg, {"cov_coeff": True}, "cov_coeff must be a number ≥ 0"),
        (VICReg, {"sim_coeff": 0, "std_coeff": 0, "cov_coeff": 0}, "at least one of"),
        (VICReg, {"gamma": 0}, "gamma must be a positive number"),
        (VICReg, {"eps": 0}, "eps must be a positive number"),
    ],
)
def test_constructor_errors(cls, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        cls(**kwargs)
